"""Time a whole hyperparameter search (workload B) with sknn_tune and with its rivals, in one run.

Workload B (the search workload): ``make_classification(20000, 40, n_informative=20, n_classes=5,
random_state=0)``, standardised once up front (every contender gets the same pre-scaled X), an MLP
40-128-64-5 with ReLU, Adam, batch 64, no early stopping, exactly ``--epochs`` (20) epochs; a grid of
``--candidates`` (32) = 8 learning rates log-spaced in [1e-4, 1e-2] x 4 L2 weight decays
{0, 1e-5, 1e-4, 1e-3}, numeric parameters only (one network structure), on the same ``--folds`` (5)
stratified splits for everyone: 160 fits. Contenders:

* ``fused``: ``sknn_tune.FusedGridSearchCV`` over ``sknn_tune.MLPClassifier(device='auto')`` — the
  reference of the ratio column;
* ``GridSearchCV(ours)``: ``sklearn.model_selection.GridSearchCV`` over the same estimator and grid,
  ``n_jobs=1`` (its ``mean_test_score`` must equal the fused one: checked and printed);
* ``GridSearchCV(ours) -1``: the same with ``n_jobs=-1`` (joblib's processes, one per core, each
  with one thread: what a scikit-learn user types by habit);
* ``GridSearchCV(sklearn)``: ``GridSearchCV`` over ``sklearn.neural_network.MLPClassifier`` (solver
  'adam', ``learning_rate_init`` = lr, ``alpha`` = weight decay x batch size, which adds the same
  ``weight_decay * W`` to the gradient, ``tol=0`` and ``n_iter_no_change=max_iter`` so every epoch
  runs), ``n_jobs=-1``, on the CPU;
* ``GridSearchCV(skorch)``: ``GridSearchCV`` over ``skorch.NeuralNetClassifier`` with an equivalent
  ``torch.nn`` module (float32, ``optimizer__weight_decay`` — which torch applies to the biases
  too —, ``train_split=None``, device ``cuda`` when there is one). Only ``--skorch-fits`` (3) fits
  are timed (one candidate on the first folds) and the time is **extrapolated** to all fits.

``--extrapolate-from K`` times only K candidates (all folds) of the two other sequential contenders
and extrapolates the same way; every extrapolated row says so. Times are one search each (refit off),
after an untimed warm-up search of each contender on a few rows (imports, thread and process pools);
on CUDA the device is synchronised before every clock read. Also recorded: process CPU time (the
joblib workers of ``n_jobs=-1`` are not in it), peak host memory of the process over each search
(``ru_maxrss`` after resetting the high-water mark; the workers of ``n_jobs=-1`` are separate
processes, not counted) and, on CUDA, ``torch.cuda.max_memory_allocated``, the load average (the
machine may be shared) and the best mean test accuracy. ``--profile`` afterwards profiles one more
fused search (cProfile, and torch.profiler's operator table). Results go to
``benchmarks/results/search_<device>[_<tag>].json``. Run ``python benchmarks/bench_search.py --help``.

``--workload small`` runs issue 15's small workload instead: ``make_classification(4000, 20,
n_informative=10, n_classes=4)``, MLP 20-64-32-4, 8 epochs, 16 candidates x 3 folds (the other
options still override it; unlike the issue's, X is scaled once up front, no pipeline).

``--workload random`` (``_random_workload.py``, whose docstring has the details) is a randomized
search over structure and numbers instead: ``make_classification(8000, 20, n_informative=12,
n_classes=4)`` through ``make_pipeline(StandardScaler(), MLPClassifier(max_epochs=15,
patience=None))``, 40 candidates x 5 folds drawn from 5 hidden-layer shapes, 3 activations, 4 batch
sizes, adam / momentum and continuous lr, weight decay and dropout; ``FusedRandomizedSearchCV``
against ``RandomizedSearchCV(n_jobs=-1)`` over the same pipeline (``cv_results_`` compared) and over
scikit-learn's MLP (its own space: no elu, no dropout), the stacks the fused search trained, the
GEMM floor of all its fits per core, and PASS/FAIL on the targets (fused >= 1.5x and >= 3x faster,
fused ÷ floor <= 2.5). It takes its own options (``--candidates``, ``--folds``, ``--epochs``,
``--repeats``, ``--skip fused,ours,sklearn``, ``--max-settle``: see ``--workload random --help``)
and writes ``search_<device>_random.json``.

**The GEMM floor.** In the same run, after the searches, the matrix products of one training step
(forward ``baddbmm``, weight-gradient and input-gradient ``bmm`` per layer, see
``_common.gemm_floor``) are timed alone, as one ``bmm`` over the stack, at each stack size M the
fused search actually trained (recorded from the engine's ``StackedTrainer.fit`` calls) and at M=1
for GridSearchCV(ours), in the compute dtype, at the thread count in use, best of
``--floor-repeats``; with several threads on a CPU, the better of one stack on all of them and one
stack per thread (the one-thread time ÷ the threads). A row's achieved time per member-step is its
measured time divided by the member-steps it trained, ``sum over timed fits of epochs x
ceil(n_train of the fold / batch)``; ``÷ floor`` divides that by the floor per member-step
(targets, issue 15: fused at most 1.3x on workload B, 2x on the small one). Each row and each
floor records the 1-min load average before and after; one whose load exceeded the threads it used
is flagged ``LOADED`` (discard it). Each timing first waits (at most two minutes) for the load of
the run before it to fall to its threads.

**The eager bound.** Beside the floor, the step's other kernels (``_common.step_kernels``: the
activations and their backward, the loss and its gradient, bias gradients, the copies into the
flat gradient, the L2 term and the fused Adam update, each the one ATen kernel the engine calls)
are timed alone at the same M. ``bound ÷ floor`` = (floor + kernels) / floor: what a step made of
these kernels cannot go below, before any Python, batch gathering or scikit-learn's scoring pass.
skorch is left out when it is not importable.
"""

import argparse
import contextlib
import cProfile
import functools
import gc
import io
import math
import os
import pstats
import sys
import warnings

import numpy as np
import torch
from _common import (
    TorchMLP,
    command_line,
    describe_machine,
    detect_device,
    format_markdown_table,
    format_table,
    gemm_floor,
    kernel_floor,
    limit_threads,
    load_average,
    load_flag,
    machine_info,
    parse_skip,
    peak_memory,
    reset_peak_memory,
    settle,
    synchronize,
    thread_environment,
    time_spent_in,
    timed,
    write_json,
)
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.model_selection import GridSearchCV, ParameterGrid, StratifiedKFold
from sklearn.neural_network import MLPClassifier as SklearnMLP
from sklearn.preprocessing import StandardScaler
from torch import nn

from sknn_tune import FusedGridSearchCV, MLPClassifier
from sknn_tune._engine.trainer import StackedTrainer
from sknn_tune._fused.session import Session

try:
    from skorch import NeuralNetClassifier
except ImportError:  # the GPU image has no skorch unless gpu_check.sh installs it
    NeuralNetClassifier = None

# name -> shape and default sizes; the command line overrides the sizes
WORKLOADS = {
    "B": {"n_samples": 20000, "n_features": 40, "n_informative": 20, "n_classes": 5,
          "hidden": (128, 64), "epochs": 20, "candidates": 32, "folds": 5, "target_x_floor": 1.3},
    "small": {"n_samples": 4000, "n_features": 20, "n_informative": 10, "n_classes": 4,
              "hidden": (64, 32), "epochs": 8, "candidates": 16, "folds": 3, "target_x_floor": 2.0},
}
HIDDEN = WORKLOADS["B"]["hidden"]
BATCH = 64
SEED = 0
LR_RANGE = (1e-4, 1e-2)
WEIGHT_DECAYS = (0.0, 1e-5, 1e-4, 1e-3)
FUSED, OURS, SKLEARN, SKORCH = "fused", "GridSearchCV(ours)", "GridSearchCV(sklearn)", "GridSearchCV(skorch)"
OURS_PARALLEL = "GridSearchCV(ours) -1"  # n_jobs=-1: what a scikit-learn user types by habit
SKIP_NAMES = {"fused": FUSED, "ours": OURS, "ours-1": OURS_PARALLEL, "sklearn": SKLEARN,
              "skorch": SKORCH}

# ------------------------------------------------------------------------------------------------
# workload


def load_data(n_samples, dtype, workload="B"):
    shape = WORKLOADS[workload]
    X, y = make_classification(n_samples=n_samples, n_features=shape["n_features"],
                               n_informative=shape["n_informative"],
                               n_classes=shape["n_classes"], random_state=SEED)
    return StandardScaler().fit_transform(X).astype(dtype), y.astype(np.int64)


def candidate_points(n_candidates):
    """The grid as a list of ``{'lr', 'weight_decay'}`` points: 4 weight decays when the count
    allows (8 learning rates x 4 for 32), else 2 or 1."""
    n_wd = 4 if n_candidates % 4 == 0 else 2 if n_candidates % 2 == 0 else 1
    n_lr = n_candidates // n_wd
    lrs = np.logspace(*np.log10(LR_RANGE), n_lr) if n_lr > 1 else np.array([1e-3])
    return list(ParameterGrid({"lr": [float(v) for v in lrs],
                               "weight_decay": list(WEIGHT_DECAYS[:n_wd])}))


def spread(n_total, k):
    """``k`` indices spread evenly over ``range(n_total)`` (the candidates a subset times)."""
    return sorted({round(float(i)) for i in np.linspace(0, n_total - 1, min(k, n_total))})


def as_grid(points, mapping):
    """A list-of-dicts grid that keeps the order of ``points``, parameter names renamed by
    ``mapping(name, value) -> (name, value)``."""
    return [dict(mapping(name, [value]) for name, value in p.items()) for p in points]


def contenders(n_features, n_classes, epochs, device, hidden=HIDDEN):
    """``name -> (estimator, parameter mapping, n_jobs, input dtype or None, device it runs on)``."""
    ours = MLPClassifier(hidden_layer_sizes=hidden, activation="relu", optimizer="adam",
                         batch_size=BATCH, max_epochs=epochs, early_stopping=False,
                         random_state=SEED, device=device)
    theirs = SklearnMLP(hidden_layer_sizes=hidden, activation="relu", solver="adam",
                        batch_size=BATCH, max_iter=epochs, tol=0.0, n_iter_no_change=epochs,
                        early_stopping=False, shuffle=True, random_state=SEED)

    def same(name, value):
        return name, value

    def to_sklearn(name, value):
        if name == "lr":
            return "learning_rate_init", value
        return "alpha", [v * BATCH for v in value]  # sklearn divides its L2 gradient by the batch

    def to_skorch(name, value):
        return (name, value) if name == "lr" else ("optimizer__weight_decay", value)

    out = {
        FUSED: (ours, same, None, None, device),
        OURS: (ours, same, 1, None, device),
        OURS_PARALLEL: (ours, same, -1, None, device),
        SKLEARN: (theirs, to_sklearn, -1, None, "cpu"),
    }
    if NeuralNetClassifier is not None:
        skorch_net = NeuralNetClassifier(
            TorchMLP, module__n_features=n_features, module__hidden=hidden,
            module__n_classes=n_classes, criterion=nn.CrossEntropyLoss, optimizer=torch.optim.Adam,
            batch_size=BATCH, max_epochs=epochs, iterator_train__shuffle=True, train_split=None,
            device=device, verbose=0)
        out[SKORCH] = (skorch_net, to_skorch, 1, np.float32, device)
    return out


@contextlib.contextmanager
def recorded_stacks():
    """Yield a list that collects the member count M of every ``StackedTrainer.fit`` call made
    inside the block (the stacks a search trained; observation only, the call is unchanged)."""
    sizes, original = [], StackedTrainer.fit

    def fit(self, *args, **kwargs):
        sizes.append(len(self.members))
        return original(self, *args, **kwargs)

    StackedTrainer.fit = fit
    try:
        yield sizes
    finally:
        StackedTrainer.fit = original


def member_steps(splits, n_candidates, epochs):
    """Training steps of all members: every candidate on every split, ``epochs x
    ceil(n_train / batch)`` each."""
    return n_candidates * sum(epochs * math.ceil(len(train) / BATCH) for train, _ in splits)


# ------------------------------------------------------------------------------------------------
# one contender


def build_search(name, estimator, grid, cv, n_jobs):
    search_class = FusedGridSearchCV if name == FUSED else GridSearchCV
    return search_class(estimator, grid, cv=cv, n_jobs=n_jobs, refit=False, error_score=np.nan)


def run_search(search, X, y, device, stacks=None):
    """Fit ``search`` once; return ``(wall s, process cpu s, memory, load averages)``. ``stacks``,
    a list, receives the M of every stack trained."""
    gc.collect()
    reset_peak_memory(device)
    settle(torch.get_num_threads())
    load_before = load_average()
    torch.manual_seed(SEED)  # skorch's initialisation and shuffling
    with recorded_stacks() as sizes, time_spent_in(Session, "train") as training:
        wall, cpu = timed(lambda: search.fit(X, y), device)
    if stacks is not None:
        stacks.extend(sizes)
    return wall, cpu, peak_memory(device), (load_before, load_average()), training[0]


def warm_up(name, estimator, grid, n_jobs, X, y, device):
    """An untimed tiny search of the same kind: first-call costs, thread pools, loky workers."""
    rows = min(len(X), 300)
    estimator = clone(estimator).set_params(**({"max_iter": 1, "n_iter_no_change": 1}
                                        if isinstance(estimator, SklearnMLP) else {"max_epochs": 1}))
    cv = list(StratifiedKFold(2, shuffle=True, random_state=SEED).split(X[:rows], y[:rows]))
    run_search(build_search(name, estimator, grid[:2], cv, n_jobs), X[:rows], y[:rows], device)


# ------------------------------------------------------------------------------------------------


def run(args, device):
    X, y = load_data(args.n_samples, np.dtype(args.dtype), args.workload)
    n_classes = len(np.unique(y))
    hidden = WORKLOADS[args.workload]["hidden"]
    layer_sizes = (X.shape[1], *hidden, n_classes)
    arch = "-".join(str(s) for s in layer_sizes)
    points = candidate_points(args.candidates)
    splits = list(StratifiedKFold(args.folds, shuffle=True, random_state=SEED).split(X, y))
    n_fits = len(points) * len(splits)
    print(f"\nworkload {args.workload}: {X.shape[0]} x {X.shape[1]} ({X.dtype}), MLP {arch}, ReLU, "
          f"Adam, batch {BATCH}, {args.epochs} epochs; {len(points)} candidates x {len(splits)} folds = "
          f"{n_fits} fits; device {device}", flush=True)

    rows, searches, stacks = [], {}, {}
    threads = torch.get_num_threads()
    # Rounds of every contender in turn (the machine's speed drifts over minutes); each
    # contender's fastest round counts, every round's seconds are kept.
    rounds = [item for _ in range(args.repeats) for item in contenders(
        X.shape[1], n_classes, args.epochs, device, hidden).items()]
    for name, (estimator, mapping, n_jobs, dtype, run_device) in rounds:
        if name in args.skip:
            continue
        # which fits to time: all, or a few (candidates spread over the grid, first folds)
        timed_points, timed_splits = points, splits
        if name == SKORCH:
            n_cand = math.ceil(args.skorch_fits / len(splits))
            timed_splits = splits[:min(args.skorch_fits, len(splits))]
            timed_points = [points[i] for i in spread(len(points), n_cand)]
        elif name != FUSED and args.extrapolate_from and args.extrapolate_from < len(points):
            timed_points = [points[i] for i in spread(len(points), args.extrapolate_from)]
        n_timed = len(timed_points) * len(timed_splits)
        grid = as_grid(timed_points, mapping)
        X_in = X if dtype is None else X.astype(dtype)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            warm_up(name, estimator, grid, n_jobs, X_in, y, run_device)
        search = build_search(name, estimator, grid, timed_splits, n_jobs)
        print(f"  {name:<22} {n_timed} fits ...", end=" ", flush=True)
        stacks[name] = []
        wall, cpu, memory, load, training = run_search(search, X_in, y, run_device,
                                                       stacks[name])
        extrapolated = n_timed < n_fits
        seconds = wall * n_fits / n_timed
        scores = search.cv_results_["mean_test_score"]
        row = {
            "name": name, "n_jobs": n_jobs, "device": str(run_device),
            "fits_timed": n_timed, "fits_total": n_fits, "measured_s": wall,
            "seconds": seconds, "how": f"extrapolated from {n_timed}" if extrapolated else "measured",
            "extrapolated": extrapolated, "fits_per_s": n_fits / seconds,
            # the workers of n_jobs=-1 run in other processes: this process's CPU time says nothing
            "cpu_s": None if n_jobs == -1 else cpu * n_fits / n_timed,
            "best_score": float(np.nanmax(scores)) if np.isfinite(scores).any() else None,
            "best_params": search.cv_results_["params"][int(np.nanargmax(scores))]
            if np.isfinite(scores).any() else None,
            "n_failed": int(np.isnan(scores).sum()),
            "peak_rss_mib": memory["ru_maxrss_mib"], "memory": memory,
            "load_average": {"before": load[0], "after": load[1]},
            "load_before": load[0], "load_after": load[1],
            # n_jobs=-1 runs one worker per core
            "threads": os.cpu_count() if n_jobs == -1 else threads,
            "member_steps": member_steps(timed_splits, len(timed_points), args.epochs),
            "stack_sizes": stacks[name],
            # fused: the time outside Session.train, scikit-learn's scoring pass and bookkeeping
            "outside_training_s": wall - training if name == FUSED else None,
        }
        row["flag"] = load_flag(load[0], load[1], row["threads"])
        row["us_per_member_step"] = wall / row["member_steps"] * 1e6
        if row["outside_training_s"] is not None:
            row["outside_us"] = row["outside_training_s"] / row["member_steps"] * 1e6
        if name == FUSED:
            row["member_epochs"] = int(search.n_member_epochs_)
            if row["member_epochs"] != n_fits * args.epochs:
                print(f"\n  warning: the fused search trained {row['member_epochs']} member-epochs, "
                      f"not {n_fits} x {args.epochs}", file=sys.stderr)
        print(f"{wall:.2f} s" + (f" (-> {seconds:.1f} s for {n_fits}, extrapolated)"
                                 if extrapolated else "")
              + (f"; load {load[1]:.2f}" if load[1] is not None else ""), flush=True)
        earlier = next((r for r in rows if r["name"] == name), None)
        row["all_measured_s"] = [*(earlier["all_measured_s"] if earlier else []), wall]
        if earlier is None:
            rows.append(row)
        elif wall < earlier["measured_s"]:
            rows[rows.index(earlier)] = row
        else:
            earlier["all_measured_s"] = row["all_measured_s"]
            continue
        searches[name] = (search, [points.index(p) for p in timed_points])

    for r in rows:
        fused = next((f for f in rows if f["name"] == FUSED), None)
        r["ratio"] = r["seconds"] / fused["seconds"] if fused else None
        r["ratio_cpu"] = (r["cpu_s"] / fused["cpu_s"]
                          if fused and r["cpu_s"] is not None and fused["cpu_s"] else None)

    floors = measure_floors(rows, layer_sizes, args, device)
    check = compare_fused_sequential(searches)
    columns = [
        ("name", "contender", ""), ("n_jobs", "n_jobs", ""), ("how", "fits timed", ""),
        ("seconds", "seconds", ".2f"), ("fits_per_s", "fits/s", ".2f"), ("ratio", "÷ fused", ".2f"),
        ("cpu_s", "cpu s", ".1f"), ("ratio_cpu", "÷ fused (cpu)", ".2f"),
        ("best_score", "best score", ".4f"), ("peak_rss_mib", "peak RSS MiB", ".0f"),
        ("us_per_member_step", "µs/member-step", ".1f"), ("floor_us", "floor µs", ".1f"),
        ("floor_m", "floor M", ""), ("x_floor", "÷ floor", ".2f"), ("target_x_floor", "target", ".1f"),
        ("kernels_us", "kernels µs", ".1f"), ("bound_x_floor", "bound ÷ floor", ".2f"),
        ("outside_us", "scoring pass µs", ".1f"),
        ("load_before", "load0", ".2f"), ("load_after", "load1", ".2f"), ("flag", "flag", "")]
    if device.startswith("cuda"):
        for r in rows:
            r["cuda_peak_mib"] = r["memory"].get("cuda_max_allocated_mib")
        columns.append(("cuda_peak_mib", "CUDA peak MiB", ".0f"))
    print()
    print(format_table(rows, columns))
    if check is not None:
        print(f"  fused vs GridSearchCV(ours) on {check['n_candidates']} candidates: max |diff| of "
              f"mean_test_score = {check['max_abs_diff']:.3g}; same best candidate: "
              f"{check['same_best']}")
    print(f"  seconds: the time of all {n_fits} fits, measured or (extrapolated rows) the timed fits "
          "scaled up; ÷ fused = seconds / fused seconds; cpu s: this process's CPU time, scaled "
          "alike; best score: best mean test accuracy of the candidates that row ran; peak RSS: "
          "this process's high-water mark during the search; µs/member-step: measured time / "
          "member-steps timed (epochs x ceil(fold's train rows / batch), summed); floor µs: the "
          "step's matrix products alone per member-step, one bmm over the stack size(s) 'floor M' "
          f"the row trained, member-weighted; ÷ floor: their ratio; kernels µs: the step's other "
          "kernels alone (activations, loss, bias gradients, gradient copies, L2, fused Adam; "
          "_common.step_kernels) at the same M; bound ÷ floor: (floor + kernels) / floor, what an "
          "eager step cannot go below, before any Python, batching or scoring; scoring pass µs: "
          "the fused search's time outside its training (Session.train), scikit-learn's pass that "
          "scores every fit, per member-step; load0/load1: 1-min load "
          "average before / after, LOADED when above the threads the row used (discard)")
    for f in floors:
        print(f"  GEMM floor M={f['m']} {f['dtype']} {f['device']}, {f['how']}: "
              f"{f['per_member_step_s'] * 1e6:.1f} µs/member-step ({f['gflops']:.1f} GFLOP/s), "
              f"other kernels {f['kernels']['per_member_step_s'] * 1e6:.1f} µs; "
              f"load {_fmt(f['load_average']['before'])} -> {_fmt(f['load_average']['after'])} "
              f"{f['flag']}")
    print("\nas a GitHub table:\n" + format_markdown_table(rows, columns))
    return {"n_samples": X.shape[0], "n_features": X.shape[1], "dtype": str(X.dtype),
            "architecture": arch, "n_candidates": len(points), "n_folds": len(splits),
            "n_fits": n_fits, "candidates": points, "results": rows,
            "gemm_floor": floors, "threads": threads, "workload": args.workload,
            "fused_vs_sequential": check}


def _fmt(load):
    return "-" if load is None else f"{load:.2f}"


def measure_floors(rows, layer_sizes, args, device):
    """Time the GEMM floor at every stack size the fused search and GridSearchCV(ours) trained
    (the latter M=1), in their compute dtype; fill each such row's ``floor_us`` (member-weighted
    over its stacks), ``x_floor`` and target. Returns the floor measurements."""
    dtype = "float32" if device.startswith("cuda") else args.dtype
    target = WORKLOADS[args.workload]["target_x_floor"]
    measured = {}
    for row in rows:
        if row["name"] not in (FUSED, OURS) or not row["stack_sizes"]:
            continue
        sizes = row["stack_sizes"]
        for m in sorted(set(sizes)):
            if m not in measured:
                measured[m] = best_per_core(gemm_floor, layer_sizes, m, dtype, device,
                                            args.floor_repeats)
                measured[m]["kernels"] = best_per_core(kernel_floor, layer_sizes, m, dtype,
                                                       device, args.floor_repeats)
        floor = sum(m * measured[m]["per_member_step_s"] for m in sizes) / sum(sizes)
        kernels = sum(m * measured[m]["kernels"]["per_member_step_s"] for m in sizes) / sum(sizes)
        row["floor_us"] = floor * 1e6
        row["kernels_us"] = kernels * 1e6
        row["bound_x_floor"] = (floor + kernels) / floor
        row["floor_m"] = "/".join(str(m) for m in sorted(set(sizes), reverse=True))
        row["x_floor"] = row["us_per_member_step"] / row["floor_us"]
        row["target_x_floor"] = target if row["name"] == FUSED else None
    return [measured[m] for m in sorted(measured)]


def best_per_core(measure, layer_sizes, m, dtype, device, repeats):
    """``measure`` (:func:`gemm_floor` or :func:`kernel_floor`) of an ``m``-member stack: on a
    CPU with several threads, the better of one stack on all of them and one stack per thread
    (one thread each, all cores at once: the one-thread time divided by the threads, as if
    they did not share cache or memory), since the fused search may train either way."""
    pooled = measure(layer_sizes, BATCH, m, dtype, device, repeats=repeats)
    threads = torch.get_num_threads()
    pooled["how"] = f"1 stack on {threads} threads"
    if device.startswith("cuda") or threads == 1:
        return pooled
    torch.set_num_threads(1)
    try:
        alone = measure(layer_sizes, BATCH, m, dtype, device, repeats=repeats)
    finally:
        torch.set_num_threads(threads)
    if alone["per_member_step_s"] / threads >= pooled["per_member_step_s"]:
        return pooled
    alone["how"] = f"{threads} stacks on 1 thread each"
    alone["per_step_s"] /= threads
    alone["per_member_step_s"] /= threads
    if "gflops" in alone:
        alone["gflops"] *= threads
    return alone


def compare_fused_sequential(searches):
    """``mean_test_score`` of the fused search against GridSearchCV over our estimator, on the
    candidates both ran (every fold)."""
    if FUSED not in searches or OURS not in searches:
        return None
    (fused, fused_idx), (seq, seq_idx) = searches[FUSED], searches[OURS]
    common = [i for i in seq_idx if i in fused_idx]
    a = fused.cv_results_["mean_test_score"][[fused_idx.index(i) for i in common]]
    b = seq.cv_results_["mean_test_score"][[seq_idx.index(i) for i in common]]
    both_nan = np.isnan(a) & np.isnan(b)
    diff = np.where(both_nan, 0.0, np.abs(a - b))
    return {"n_candidates": len(common), "max_abs_diff": float(np.max(diff)),
            "same_best": bool(np.nanargmax(a) == np.nanargmax(b)),
            "fused": a.tolist(), "sequential": b.tolist()}


def profile_fused(args, device):
    """One more fused search under cProfile, then under torch.profiler; print where time goes."""
    X, y = load_data(args.n_samples, np.dtype(args.dtype), args.workload)
    points = candidate_points(args.candidates)
    splits = list(StratifiedKFold(args.folds, shuffle=True, random_state=SEED).split(X, y))
    estimator = contenders(X.shape[1], len(np.unique(y)), args.epochs, device,
                           WORKLOADS[args.workload]["hidden"])[FUSED][0]

    def search():
        return build_search(FUSED, estimator, as_grid(points, lambda n, v: (n, v)), splits, None)

    profiler = cProfile.Profile()
    profiler.enable()
    search().fit(X, y)
    synchronize(device)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(args.profile_top)
    print("\n== cProfile of one fused search (sorted by own time)\n" + out.getvalue())
    activities = [torch.profiler.ProfilerActivity.CPU]
    if device.startswith("cuda"):
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    with torch.profiler.profile(activities=activities) as prof:
        search().fit(X, y)
        synchronize(device)
    sort = "self_cuda_time_total" if device.startswith("cuda") else "self_cpu_time_total"
    print("== torch.profiler of one fused search\n"
          + prof.key_averages().table(sort_by=sort, row_limit=args.profile_top))


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workload", choices=(*WORKLOADS, "random"), default="B",
                        help="B (default: 20000 x 40, 40-128-64-5, 20 epochs, 32 x 5) or small "
                             "(4000 x 20, 20-64-32-4, 8 epochs, 16 x 3); the options below "
                             "override its sizes. random: the randomized search of "
                             "_random_workload.py, with its own options (--workload random --help)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="device of sknn_tune and skorch (default auto: cuda when present)")
    parser.add_argument("--n-samples", type=int, help="rows (B: 20000, small: 4000)")
    parser.add_argument("--epochs", type=int, help="epochs per fit (B: 20, small: 8)")
    parser.add_argument("--candidates", type=int,
                        help="grid size: lr values x weight decays, 4 decays when divisible by 4 "
                             "(B: 32 = 8 x 4, small: 16)")
    parser.add_argument("--folds", type=int, help="CV folds (B: 5, small: 3)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="rounds of every contender in turn; each one's fastest counts (1)")
    parser.add_argument("--floor-repeats", type=int, default=7,
                        help="repeats of each GEMM floor timing; the best counts (7)")
    parser.add_argument("--skip", type=functools.partial(parse_skip, names=SKIP_NAMES),
                        default=set(), metavar="LIST",
                        help="comma-separated contenders to leave out: fused, ours, ours-1 "
                             "(GridSearchCV(ours, n_jobs=-1)), sklearn, skorch")
    parser.add_argument("--extrapolate-from", type=int, metavar="K",
                        help="time only K candidates (spread over the grid, every fold) of "
                             "GridSearchCV(ours) and GridSearchCV(sklearn), scale the time up to "
                             "the whole grid; default: run them fully")
    parser.add_argument("--skorch-fits", type=int, default=3,
                        help="skorch fits to time, always extrapolated (default 3)")
    parser.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                        help="X's dtype for sknn_tune and sklearn (skorch always gets float32); "
                             "default float64, as make_classification returns")
    parser.add_argument("--threads", type=int,
                        help="threads for torch and (threadpoolctl) BLAS/OpenMP in this process; "
                             "default: each library's own (OMP_NUM_THREADS or the core count)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 1000 rows, 2 epochs, 4 candidates x 2 folds, K=1, "
                             "1 skorch fit; writes *_quick.json")
    parser.add_argument("--profile", action="store_true",
                        help="afterwards, profile one more fused search (cProfile, torch.profiler)")
    parser.add_argument("--profile-top", type=int, default=25, help="rows per profile (25)")
    parser.add_argument("--tag", help="suffix of the JSON name (search_<device>_<tag>.json)")
    parser.add_argument("--out", help="JSON path (overrides the default name)")
    args = parser.parse_args(argv)
    if args.quick:
        args.n_samples, args.epochs, args.candidates, args.folds = 1000, 2, 4, 2
        args.extrapolate_from, args.skorch_fits = 1, 1
    for key in ("n_samples", "epochs", "candidates", "folds"):
        if getattr(args, key) is None:
            setattr(args, key, WORKLOADS[args.workload][key])
    return args


def wants_random(argv=None):
    """Whether the command line asks for ``--workload random`` (its own options and main)."""
    peek = argparse.ArgumentParser(add_help=False)
    peek.add_argument("--workload")
    return peek.parse_known_args(argv)[0].workload == "random"


def main(argv=None):
    if wants_random(argv):
        import _random_workload

        return _random_workload.main(argv)
    args = parse_args(argv)
    device = detect_device() if args.device == "auto" else args.device
    with limit_threads(args.threads):
        info = machine_info(device)
        print("search benchmark:", describe_machine(info), f"; load average {load_average()}")
        print("command:", command_line())
        workload = run(args, device)
        if args.profile:
            profile_fused(args, device)
    payload = {
        "benchmark": "search",
        "machine": info,
        "command": sys.argv,
        "environment": thread_environment(),
        "config": {"workload": args.workload,
                   "hidden_layer_sizes": WORKLOADS[args.workload]["hidden"],
                   "activation": "relu", "optimizer": "adam",
                   "batch_size": BATCH, "epochs": args.epochs, "candidates": args.candidates,
                   "folds": args.folds, "n_samples": args.n_samples, "dtype": args.dtype,
                   "lr_range": LR_RANGE, "weight_decays": WEIGHT_DECAYS,
                   "extrapolate_from": args.extrapolate_from, "skorch_fits": args.skorch_fits,
                   "skip": sorted(args.skip), "threads": args.threads, "quick": args.quick,
                   "seed": SEED, "repeats": args.repeats,
                   "target_x_floor": WORKLOADS[args.workload]["target_x_floor"]},
        "workload": workload,
    }
    name = (f"search_{device}" + ("" if args.workload == "B" else f"_{args.workload}")
            + (f"_{args.tag}" if args.tag else "") + ("_quick" if args.quick else ""))
    path = write_json(name, payload, args.out)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
