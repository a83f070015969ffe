"""``bench_search.py --workload random``: a randomized search over structure *and* numbers, fused
against scikit-learn's ``RandomizedSearchCV`` over our MLP and over scikit-learn's, in one run.

**Data and estimator.** ``make_classification(8000, 20, n_informative=12, n_classes=4,
random_state=0)``, float64 as it comes (every contender at its default dtype: sknn_tune computes
float32, scikit-learn's MLP float64), and ``make_pipeline(StandardScaler(),
sknn_tune.MLPClassifier(max_epochs=15, patience=None, random_state=0))``: ``patience=None``
trains exactly ``max_epochs`` (``--epochs``) epochs, no early stopping. ``--candidates`` (40)
candidates (``n_iter``, search ``random_state=0``) x ``--folds`` (5) folds of
``StratifiedKFold(5, shuffle=True, random_state=0)``, ``refit=False``: 200 fits.

**The space** (``mlpclassifier__`` + name): ``hidden_layer_sizes`` from (32,), (64,), (128,),
(64, 64), (128, 64, 32); ``activation`` relu / tanh / elu; ``batch_size`` 32 / 64 / 128 / 256;
``optimizer`` adam / momentum (SGD with momentum 0.9); ``lr`` loguniform(1e-4, 1e-1);
``weight_decay`` loguniform(1e-6, 1e-2); ``dropout`` uniform(0, 0.3) (scipy.stats). Candidates
that differ in structure, activation, optimizer or batch size train in different stacks, so this
workload measures how the fused search does with many small stacks of mixed shapes.

**Contenders**, each one search, their order alternating between ``--repeats`` (1) rounds (the
fastest round of each counts, every round's seconds are kept):

* ``fused``: ``sknn_tune.FusedRandomizedSearchCV`` over the pipeline, defaults (``n_jobs=None``)
  — the reference of the ratios;
* ``RandomizedSearchCV(ours) -1``: ``sklearn.model_selection.RandomizedSearchCV`` over the same
  pipeline and space, ``n_jobs=-1``: it draws the same candidates, so its ``cv_results_`` must
  equal the fused one (every ``mean_``/``std_``/``splitK_test_score`` column, max |diff| <= 1e-6,
  and the same ``best_index_``: checked and printed);
* ``RandomizedSearchCV(sklearn) -1``: ``RandomizedSearchCV`` over ``make_pipeline(StandardScaler(),
  sklearn.neural_network.MLPClassifier(max_iter=15, tol=0, n_iter_no_change=15, momentum=0.9,
  nesterovs_momentum=False, random_state=0))``, ``n_jobs=-1``, over a space of the same shape
  sampled on its own: the same ``hidden_layer_sizes`` and ``batch_size``, ``activation`` relu /
  tanh only and **no dropout** (scikit-learn's MLP has neither elu nor dropout), ``solver`` adam /
  sgd (with the momentum above), ``learning_rate_init`` loguniform(1e-4, 1e-1) and ``alpha``
  loguniform(1e-6, 1e-2) taken as the weight decay as it is (scikit-learn divides its L2 gradient
  by the batch size, so its decay is weaker; the time of an epoch does not depend on it). Its
  candidates are not ours: its best score is not comparable, its time is.

ConvergenceWarnings (every contender stops at its epoch budget on purpose) are silenced here and,
through ``PYTHONWARNINGS=ignore`` set before any pool starts, in joblib's worker processes. Each
timed search follows an untimed warm-up search of the same contender on 300 rows, 1 epoch, 2
candidates x 2 folds (imports, first calls, joblib's loky workers; the fused warm-up trains its
stacks in worker processes even though they are tiny, ``PROCESS_MIN_STEPS`` set to 0 for it, so
that the timed fused search finds the pool started as the ``n_jobs=-1`` contenders find theirs).
Each timing first waits (at most ``--max-settle`` seconds, 120) for the 1-min load average to
fall to the threads it uses, and records it before and after; ``LOADED`` flags a row whose load
exceeded them (discard it).

**Stacks.** The fused search's stacks are recorded from ``Session._pack`` (which runs in this
process even when the stacks train in worker processes): per stack ``(hidden_layer_sizes,
batch_size, n_members, epochs, n_train_rows)`` of its first member, and its member-steps
(``sum over members of epochs x ceil(n_train / batch)``).

**The GEMM floor of the whole search.** For each distinct (layer sizes, batch size) among the
stacks, ``_common.gemm_floor`` times the matrix products of one training step (forward
``baddbmm``, weight- and input-gradient ``bmm``) at the largest stack of that shape, in the
stacks' compute dtype, with **one torch thread**, and divides the time per member-step by
``os.cpu_count()``: the searches use every core (the fused one one stack per core in worker
processes, the ``n_jobs=-1`` ones one fit per core), so the floor is per core, as if the cores
did not share cache or memory bandwidth (on CUDA: the threads in use, not divided).
``floor = sum over stacks of member-steps x per-member-step floor of its shape`` (a smaller stack
of a shape counts at the largest one's floor); ``÷ floor`` = wall seconds / floor for the fused
search (goal <= 2.5) and for ``RandomizedSearchCV(ours)``, which trains the same fits.

Targets (PASS/FAIL): fused >= 1.5x faster than ``RandomizedSearchCV(ours) -1``, >= 3x faster than
``RandomizedSearchCV(sklearn) -1``, fused ÷ floor <= 2.5. JSON:
``benchmarks/results/search_<device>_random[_<tag>].json``.
"""

import argparse
import contextlib
import functools
import gc
import math
import os
import sys
import time
import warnings

import _common
import numpy as np
import torch
from _common import (
    command_line,
    describe_machine,
    detect_device,
    format_table,
    gemm_floor,
    load_average,
    load_flag,
    machine_info,
    parse_skip,
    settle,
    synchronize,
    thread_environment,
    time_spent_in,
    write_json,
)
from scipy.stats import loguniform, uniform
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.model_selection import RandomizedSearchCV, StratifiedKFold
from sklearn.neural_network import MLPClassifier as SklearnMLP
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sknn_tune import FusedRandomizedSearchCV, MLPClassifier
from sknn_tune._fused import processes
from sknn_tune._fused.session import Session

SEED = 0
DATA = {"n_samples": 8000, "n_features": 20, "n_informative": 12, "n_classes": 4}
DEFAULTS = {"candidates": 40, "folds": 5, "epochs": 15}
HIDDEN = [(32,), (64,), (128,), (64, 64), (128, 64, 32)]
BATCHES = [32, 64, 128, 256]
LR = (1e-4, 1e-1)
WEIGHT_DECAY = (1e-6, 1e-2)
DROPOUT = (0.0, 0.3)
TARGETS = {"speedup_vs_ours": 1.5, "speedup_vs_sklearn": 3.0, "fused_x_floor": 2.5}
CV_TOLERANCE = 1e-6
FUSED, OURS, SKLEARN = "fused", "RandomizedSearchCV(ours) -1", "RandomizedSearchCV(sklearn) -1"
SKIP_NAMES = {"fused": FUSED, "ours": OURS, "sklearn": SKLEARN}
STEP = "mlpclassifier__"


# ------------------------------------------------------------------------------------------------
# workload


def load_data():
    X, y = make_classification(**DATA, random_state=SEED)
    return X, y


def our_space():
    return {STEP + "hidden_layer_sizes": HIDDEN, STEP + "activation": ["relu", "tanh", "elu"],
            STEP + "batch_size": BATCHES, STEP + "optimizer": ["adam", "momentum"],
            STEP + "lr": loguniform(*LR), STEP + "weight_decay": loguniform(*WEIGHT_DECAY),
            STEP + "dropout": uniform(DROPOUT[0], DROPOUT[1] - DROPOUT[0])}


def sklearn_space():
    """The same shape in scikit-learn's names: no elu, no dropout; ``alpha`` = the weight decay
    as it is (see the module docstring)."""
    return {STEP + "hidden_layer_sizes": HIDDEN, STEP + "activation": ["relu", "tanh"],
            STEP + "batch_size": BATCHES, STEP + "solver": ["adam", "sgd"],
            STEP + "learning_rate_init": loguniform(*LR), STEP + "alpha": loguniform(*WEIGHT_DECAY)}


def contenders(epochs, device):
    """``name -> (search class, pipeline, space, n_jobs)``."""
    ours = make_pipeline(StandardScaler(), MLPClassifier(max_epochs=epochs, patience=None,
                                                         random_state=SEED, device=device))
    theirs = make_pipeline(StandardScaler(), SklearnMLP(
        max_iter=epochs, tol=0.0, n_iter_no_change=epochs, momentum=0.9, nesterovs_momentum=False,
        random_state=SEED))
    return {FUSED: (FusedRandomizedSearchCV, ours, our_space(), None),
            OURS: (RandomizedSearchCV, ours, our_space(), -1),
            SKLEARN: (RandomizedSearchCV, theirs, sklearn_space(), -1)}


def build_search(search_class, pipeline, space, n_iter, cv, n_jobs):
    return search_class(pipeline, space, n_iter=n_iter, cv=cv, n_jobs=n_jobs, refit=False,
                        random_state=SEED)


def threads_used(name):
    """The cores a contender's search keeps busy: one fit per core for ``n_jobs=-1``; the fused
    search one stack per torch thread (at most one per core)."""
    cores = os.cpu_count() or 1
    return cores if name != FUSED else max(1, min(torch.get_num_threads(), cores))


# ------------------------------------------------------------------------------------------------
# recording the fused search's stacks


@contextlib.contextmanager
def recorded_stacks():
    """Yield a list that receives, for every stack ``Session._pack`` returns inside the block,
    a dict of its shape and size (observation only: the stacks are returned unchanged)."""
    records, original = [], getattr(Session, "_pack", None)
    if original is None:
        print("  warning: Session._pack not found: the stacks are not recorded", file=sys.stderr)
        yield records
        return

    @functools.wraps(original)
    def _pack(self, planned):
        stacks = original(self, planned)
        records.extend(describe_stack(stack) for stack in stacks)
        return stacks

    Session._pack = _pack
    try:
        yield records
    finally:
        Session._pack = original


def describe_stack(stack):
    plan = stack[0].plan
    config, batch = plan.config, plan.config.batch_size
    return {"hidden_layer_sizes": tuple(config.architecture.hidden_layer_sizes),
            "layer_sizes": tuple(config.architecture.layer_sizes),
            # members of several activations / optimizers may share a stack: all of them
            "activations": sorted({m.plan.config.architecture.activation for m in stack}),
            "optimizers": sorted({m.plan.config.optimizer for m in stack}),
            "batch_size": int(batch), "n_members": len(stack),
            "epochs": int(plan.member.max_epochs), "n_train_rows": len(plan.data.train_rows),
            "dtype": str(config.dtype).replace("torch.", ""), "device": str(config.device),
            "member_steps": sum(int(m.plan.member.max_epochs)
                                * math.ceil(len(m.plan.data.train_rows) / batch) for m in stack)}


@contextlib.contextmanager
def process_pool_forced():
    """Within the block, the fused search trains any batch of 2+ CPU stacks in worker
    processes, however small (the warm-up: starts joblib's loky pool)."""
    original = processes.PROCESS_MIN_STEPS
    processes.PROCESS_MIN_STEPS = 0
    try:
        yield
    finally:
        processes.PROCESS_MIN_STEPS = original


# ------------------------------------------------------------------------------------------------
# one contender


def time_search(name, search, X, y, device, max_settle):
    """Fit ``search`` once; a dict of its wall seconds, load averages, flag and (fused) stacks
    and time in ``Session.train``."""
    gc.collect()
    threads = threads_used(name)
    waited = settle(threads, max_settle)
    load_before = load_average()
    with recorded_stacks() as stacks, time_spent_in(Session, "train") as training:
        synchronize(device)
        start = time.perf_counter()
        search.fit(X, y)
        synchronize(device)
        wall = time.perf_counter() - start
    load_after = load_average()
    return {"seconds": wall, "threads": threads, "settle_wait_s": waited,
            "load_before": load_before, "load_after": load_after,
            "flag": load_flag(load_before, load_after, threads),
            "stacks": stacks if name == FUSED else None,
            "training_s": training[0] if name == FUSED else None}


def warm_up(name, search_class, pipeline, space, n_jobs, X, y, device):
    """An untimed tiny search of the same kind (see the module docstring)."""
    rows = min(len(X), 300)
    params = {STEP + ("max_iter" if name == SKLEARN else "max_epochs"): 1}
    if name == SKLEARN:
        params[STEP + "n_iter_no_change"] = 1
    pipeline = clone(pipeline).set_params(**params)
    cv = list(StratifiedKFold(2, shuffle=True, random_state=SEED).split(X[:rows], y[:rows]))
    search = build_search(search_class, pipeline, space, 2, cv, n_jobs)
    with process_pool_forced() if name == FUSED else contextlib.nullcontext():
        search.fit(X[:rows], y[:rows])
    synchronize(device)


def summarize(name, search, timing):
    results = search.cv_results_
    scores = results["mean_test_score"]
    finite = np.isfinite(scores).any()
    best = getattr(search, "best_index_", None)
    return {
        "name": name, "n_jobs": search.n_jobs, **{k: v for k, v in timing.items() if k != "stacks"},
        "best_index": None if best is None else int(best),
        "best_score": float(scores[best]) if best is not None and finite else None,
        "best_params": {k: _plain(v) for k, v in results["params"][best].items()}
        if best is not None else None,
        "n_failed": int(np.isnan(scores).sum()),
    }


def _plain(value):
    return value.item() if hasattr(value, "item") else value


# ------------------------------------------------------------------------------------------------
# the floor and the cv_results_ check


def measure_floor(stacks, device, repeats, max_settle):
    """The GEMM floor of every distinct (layer sizes, batch) among ``stacks`` at its largest
    stack, per core (see the module docstring); ``(total floor seconds, measurements)``."""
    shapes = {}
    for s in stacks:
        key = (s["layer_sizes"], s["batch_size"], s["dtype"])
        shapes[key] = max(shapes.get(key, 0), s["n_members"])
    cuda = device.startswith("cuda")
    cores = 1 if cuda else os.cpu_count() or 1
    before = torch.get_num_threads()
    original_settle = _common.settle
    measured = {}
    try:
        if not cuda:
            torch.set_num_threads(1)
        # gemm_floor settles to its own threads (1 here) for two minutes at most: --max-settle
        _common.settle = functools.partial(original_settle, max_wait=max_settle)
        for (layer_sizes, batch, dtype), m in sorted(shapes.items()):
            f = gemm_floor(layer_sizes, batch, m, dtype, device, repeats=repeats)
            f["cores"] = cores
            f["per_member_step_per_core_s"] = f["per_member_step_s"] / cores
            measured[layer_sizes, batch, dtype] = f
            print(f"  floor {'-'.join(map(str, layer_sizes))} batch {batch} M={m} {dtype}: "
                  f"{f['per_member_step_s'] * 1e6:.1f} µs/member-step on {f['threads']} thread(s)"
                  f"{f' ÷ {cores} cores' if cores > 1 else ''} = "
                  f"{f['per_member_step_per_core_s'] * 1e6:.2f} µs ({f['gflops']:.1f} GFLOP/s); "
                  f"load {_fmt(f['load_average']['before'])} -> "
                  f"{_fmt(f['load_average']['after'])} {f['flag']}", flush=True)
    finally:
        _common.settle = original_settle
        torch.set_num_threads(before)
    total = sum(s["member_steps"] * measured[s["layer_sizes"], s["batch_size"], s["dtype"]][
        "per_member_step_per_core_s"] for s in stacks)
    return total, list(measured.values())


def compare_cv_results(fused, ours):
    """max |diff| of every mean / std / splitK test-score column, whether the candidates and
    ``best_index_`` are the same."""
    a, b = fused.cv_results_, ours.cv_results_
    columns = [k for k in a if k.endswith("_test_score") and k.startswith(("mean_", "std_", "split"))]
    diffs = {}
    for k in columns:
        x, y = np.asarray(a[k], dtype=float), np.asarray(b[k], dtype=float)
        both_nan = np.isnan(x) & np.isnan(y)
        d = np.where(both_nan, 0.0, np.abs(x - y))
        diffs[k] = float(np.nanmax(np.where(np.isnan(d), np.inf, d)))
    max_diff = max(diffs.values()) if diffs else None
    same_params = [repr(sorted(p.items())) for p in a["params"]] == \
        [repr(sorted(p.items())) for p in b["params"]]
    best_a, best_b = getattr(fused, "best_index_", None), getattr(ours, "best_index_", None)
    return {"columns": columns, "max_abs_diff": max_diff, "per_column": diffs,
            "within_tolerance": max_diff is not None and max_diff <= CV_TOLERANCE,
            "tolerance": CV_TOLERANCE, "same_params": same_params,
            "best_index": [None if best_a is None else int(best_a),
                           None if best_b is None else int(best_b)],
            "same_best_index": best_a is not None and best_a == best_b}


def _fmt(load):
    return "-" if load is None else f"{load:.2f}"


# ------------------------------------------------------------------------------------------------


def run_random(args, device):
    """Time every contender, measure the floor, compare; return the JSON's workload part."""
    X, y = load_data()
    cv = list(StratifiedKFold(args.folds, shuffle=True, random_state=SEED).split(X, y))
    n_fits = args.candidates * len(cv)
    print(f"\nworkload random: {X.shape[0]} x {X.shape[1]} ({X.dtype}), {DATA['n_classes']} classes, "
          f"StandardScaler + MLP, {args.epochs} epochs, patience=None; {args.candidates} candidates "
          f"x {len(cv)} folds = {n_fits} fits; device {device}", flush=True)
    print("  space: hidden_layer_sizes", HIDDEN, "activation relu/tanh/elu, batch_size", BATCHES,
          "optimizer adam/momentum, lr loguniform(1e-4, 1e-1), weight_decay loguniform(1e-6, "
          "1e-2), dropout uniform(0, 0.3); scikit-learn's MLP has no elu and no dropout: its "
          "search samples activation relu/tanh, solver adam/sgd (momentum 0.9), alpha = weight "
          "decay, no dropout")
    searches, rows, stacks, all_seconds = {}, {}, {}, {}
    names = [name for name in contenders(args.epochs, device) if name not in args.skip]
    for round_ in range(args.repeats):
        order = names if round_ % 2 == 0 else names[::-1]
        for name in order:
            search_class, pipeline, space, n_jobs = contenders(args.epochs, device)[name]
            warm_up(name, search_class, pipeline, space, n_jobs, X, y, device)
            search = build_search(search_class, pipeline, space, args.candidates, cv, n_jobs)
            print(f"  round {round_ + 1}: {name:<32}", end=" ", flush=True)
            timing = time_search(name, search, X, y, device, args.max_settle)
            print(f"{timing['seconds']:.2f} s; load {_fmt(timing['load_before'])} -> "
                  f"{_fmt(timing['load_after'])} {timing['flag']}", flush=True)
            all_seconds.setdefault(name, []).append(timing["seconds"])
            if name not in rows or timing["seconds"] < rows[name]["seconds"]:
                rows[name], searches[name] = summarize(name, search, timing), search
                if name == FUSED:
                    stacks = timing["stacks"]
                    epochs = int(getattr(search, "n_member_epochs_", -1))
                    rows[name]["member_epochs"] = epochs
                    if epochs != n_fits * args.epochs:
                        print(f"  warning: the fused search trained {epochs} member-epochs, not "
                              f"{n_fits} x {args.epochs}", file=sys.stderr)
    for name, row in rows.items():
        row["all_seconds"] = all_seconds[name]

    floor_s, floors = (measure_floor(stacks, device, args.floor_repeats, args.max_settle)
                       if stacks else (None, []))
    fused = rows.get(FUSED)
    for row in rows.values():
        row["ratio"] = row["seconds"] / fused["seconds"] if fused else None
        row["x_floor"] = (row["seconds"] / floor_s
                          if floor_s and row["name"] in (FUSED, OURS) else None)
    check = compare_cv_results(searches[FUSED], searches[OURS]) \
        if FUSED in searches and OURS in searches else None

    table = list(rows.values())
    columns = [("name", "contender", ""), ("n_jobs", "n_jobs", ""), ("seconds", "seconds", ".2f"),
               ("ratio", "÷ fused", ".2f"), ("x_floor", "÷ floor", ".2f"),
               ("best_index", "best index", ""), ("best_score", "best score", ".4f"),
               ("training_s", "of which training", ".2f"), ("load_before", "load0", ".2f"),
               ("load_after", "load1", ".2f"), ("flag", "flag", "")]
    print()
    print(format_table(table, columns))
    print("  seconds: one search (best of the rounds); ÷ fused: seconds / fused seconds (> 1: the "
          "fused search is faster); ÷ floor: seconds / the GEMM floor of all the fits (per core, "
          "see below); of which training: the fused search's time in Session.train; load0/load1: "
          "1-min load average before / after, LOADED when above the threads the row used "
          "(discard). RandomizedSearchCV(sklearn) samples its own candidates (no elu, no dropout): "
          "its best score is not comparable.")
    stack_summary = None
    if stacks:
        sizes = [s["n_members"] for s in stacks]
        stack_summary = {"n_stacks": len(stacks), "sizes": sizes, "n_members": sum(sizes),
                         "member_steps": sum(s["member_steps"] for s in stacks)}
        print(f"  the fused search trained {len(stacks)} stacks of {min(sizes)}-{max(sizes)} members "
              f"({sum(sizes)} fits, {stack_summary['member_steps']} member-steps); "
              f"(hidden, batch, members, epochs, train rows) of each: "
              + ", ".join(f"({'x'.join(map(str, s['hidden_layer_sizes']))}, {s['batch_size']}, "
                          f"{s['n_members']}, {s['epochs']}, {s['n_train_rows']})" for s in stacks))
    if floor_s:
        print(f"  GEMM floor of the whole search: {floor_s:.3f} s ({len(floors)} shapes, one torch "
              f"thread ÷ {floors[0]['cores']} cores)")
    if check is not None:
        print(f"  cv_results_ fused vs RandomizedSearchCV(ours): max |diff| over "
              f"{len(check['columns'])} test-score columns = {check['max_abs_diff']:.3g} "
              f"(<= {CV_TOLERANCE:g}: {check['within_tolerance']}); same candidates: "
              f"{check['same_params']}; same best_index_: {check['same_best_index']} "
              f"{tuple(check['best_index'])}")
    targets = {}
    if fused and OURS in rows:
        targets["speedup_vs_ours"] = rows[OURS]["ratio"]
    if fused and SKLEARN in rows:
        targets["speedup_vs_sklearn"] = rows[SKLEARN]["ratio"]
    if fused and floor_s:
        targets["fused_x_floor"] = fused["x_floor"]
    verdicts = {}
    for key, value in targets.items():
        goal = TARGETS[key]
        ok = value <= goal if key == "fused_x_floor" else value >= goal
        verdicts[key] = {"value": value, "target": goal, "pass": bool(ok)}
        text = {"speedup_vs_ours": f"fused {value:.2f}x faster than {OURS} (target >= {goal}x)",
                "speedup_vs_sklearn": f"fused {value:.2f}x faster than {SKLEARN} (target >= {goal}x)",
                "fused_x_floor": f"fused ÷ floor = {value:.2f} (goal <= {goal})"}[key]
        print(f"  {'PASS' if ok else 'FAIL'}: {text}")
    return {"n_samples": X.shape[0], "n_features": X.shape[1], "dtype": str(X.dtype),
            "n_candidates": args.candidates, "n_folds": len(cv), "n_fits": n_fits,
            "candidates": [{k: _plain(v) for k, v in p.items()}
                           for p in searches[FUSED].cv_results_["params"]] if FUSED in searches
            else None,
            "results": table, "stacks": stacks, "stack_summary": stack_summary,
            "floor": {"total_s": floor_s, "measurements": floors},
            "cv_results_check": check, "targets": verdicts}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="bench_search.py --workload random",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--workload", choices=("random",), default="random")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="device of sknn_tune's MLP (default auto: cuda when present)")
    parser.add_argument("--candidates", type=int, default=DEFAULTS["candidates"],
                        help="n_iter of every search (40)")
    parser.add_argument("--folds", type=int, default=DEFAULTS["folds"], help="CV folds (5)")
    parser.add_argument("--epochs", type=int, default=DEFAULTS["epochs"],
                        help="epochs of every fit: max_epochs, max_iter and n_iter_no_change (15)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="rounds of every contender, the order reversed every other round; "
                             "each one's fastest counts (1)")
    parser.add_argument("--skip", type=functools.partial(parse_skip, names=SKIP_NAMES),
                        default=set(), metavar="LIST",
                        help="comma-separated contenders to leave out: fused, ours, sklearn")
    parser.add_argument("--floor-repeats", type=int, default=7,
                        help="repeats of each GEMM floor timing; the best counts (7)")
    parser.add_argument("--max-settle", type=float, default=120.0, metavar="S",
                        help="the longest wait for the load average to fall before each timing "
                             "(120 s; 0: do not wait)")
    parser.add_argument("--tag", help="suffix of the JSON name (search_<device>_random_<tag>.json)")
    parser.add_argument("--out", help="JSON path (overrides the default name)")
    return parser.parse_args(argv)


def main(argv=None):
    # Before any pool starts: joblib's loky workers inherit the environment.
    os.environ["PYTHONWARNINGS"] = "ignore"
    warnings.simplefilter("ignore")
    args = parse_args(argv)
    device = detect_device() if args.device == "auto" else args.device
    info = machine_info(device)
    print("search benchmark:", describe_machine(info), f"; load average {load_average()}")
    print("command:", command_line())
    workload = run_random(args, device)
    payload = {
        "benchmark": "search",
        "machine": info,
        "command": sys.argv,
        "environment": thread_environment("PYTHONWARNINGS"),
        "config": {"workload": "random", "data": DATA, "seed": SEED, "epochs": args.epochs,
                   "candidates": args.candidates, "folds": args.folds, "repeats": args.repeats,
                   "skip": sorted(args.skip), "device": args.device,
                   "space": {"hidden_layer_sizes": HIDDEN, "activation": ["relu", "tanh", "elu"],
                             "batch_size": BATCHES, "optimizer": ["adam", "momentum"],
                             "lr_loguniform": LR, "weight_decay_loguniform": WEIGHT_DECAY,
                             "dropout_uniform": DROPOUT},
                   "sklearn_space": {"hidden_layer_sizes": HIDDEN, "activation": ["relu", "tanh"],
                                     "batch_size": BATCHES, "solver": ["adam", "sgd"],
                                     "momentum": 0.9, "nesterovs_momentum": False,
                                     "learning_rate_init_loguniform": LR,
                                     "alpha_loguniform": WEIGHT_DECAY, "dropout": None},
                   "floor_repeats": args.floor_repeats, "max_settle_s": args.max_settle,
                   "targets": TARGETS, "cv_tolerance": CV_TOLERANCE},
        "workload": workload,
    }
    name = f"search_{device}_random" + (f"_{args.tag}" if args.tag else "")
    path = write_json(name, payload, args.out)
    print(f"\nwrote {path}")
