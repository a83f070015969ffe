"""A fused search of thousands of candidates x 5 folds on CPU: time and peak memory against the count.

Issue 7: a search of >= 2000 candidates x 5 folds completes with bounded memory. Workload:
``make_classification(--n-samples 300, 10 features, 6 informative, 3 classes, random_state=0)``,
standardised once; ``sknn_tune.MLPClassifier((16,), relu, adam, batch 64, --epochs 2)``; a grid
of N candidates = N / 5 learning rates log-spaced in [1e-4, 1e-1] x 5 weight decays {0, 1e-5, 1e-4,
1e-3, 1e-2} (one network structure), on the same 5 stratified folds. For each N of
``--candidates`` (250 1000 2000 4000) one ``FusedGridSearchCV`` (``refit=False``) runs in a fresh
Python process, so that its peak memory is its own:

* wall and process CPU time of the search, fits per second, seconds per 1000 fits;
* peak RSS of the process (``ru_maxrss``) and its growth during the search (the high-water mark
  minus the RSS before the search, after imports and an untimed warm-up search);
* the most trained members the search held at once (waiting for scikit-learn to score them, and
  kept for a later round) and the bytes of their tensors;
* with ``--tracemalloc``, the peak of Python allocations (numpy included, torch's not) during a
  second, traced search of the same N (tracemalloc slows it about 3x, so it is not timed).

``GridSearchCV`` over the same estimator (``n_jobs=1``, the sequential search) times only
``--sklearn-candidates`` (60) candidates spread over the largest grid, all folds, and **extrapolates**
its time to each N; its ``mean_test_score`` is compared with the fused one on those candidates.
``GridSearchCV`` over a **no-op classifier** (``NoOpClassifier``: the same two parameters; ``fit``
and ``predict`` validate their input as any scikit-learn estimator does, and do nothing else)
searches the whole grid of the smallest N: scikit-learn's own cost per fit (clone, split, fit and
score calls, input validation, accuracy), which a search that keeps scikit-learn's scoring pass
cannot go below. The fused rows give their training time per fit beside it (``train_stack``).
Results go to ``benchmarks/results/many_candidates_<device>[_<tag>][_quick].json``. Run
``python benchmarks/bench_many_candidates.py --help``.
"""

import argparse
import gc
import json
import os
import subprocess
import sys
import time
import tracemalloc
import warnings

import numpy as np
import torch
from _common import (
    command_line,
    describe_machine,
    detect_device,
    format_markdown_table,
    format_table,
    limit_threads,
    load_average,
    machine_info,
    peak_memory,
    reset_peak_memory,
    thread_environment,
    time_spent_in,
    timed,
    write_json,
)
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import make_classification
from sklearn.model_selection import GridSearchCV, ParameterGrid, StratifiedKFold
from sklearn.preprocessing import StandardScaler
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from sknn_tune import FusedGridSearchCV, MLPClassifier
from sknn_tune._fused import workers
from sknn_tune._fused.session import Session

HIDDEN = (16,)
BATCH = 64
SEED = 0
FOLDS = 5
LR_RANGE = (1e-4, 1e-1)
WEIGHT_DECAYS = (0.0, 1e-5, 1e-4, 1e-3, 1e-2)
FUSED, SEQUENTIAL = "FusedGridSearchCV", "GridSearchCV(ours)"
NO_OP = "GridSearchCV(no-op)"

# ------------------------------------------------------------------------------------------------
# workload


def load_data(n_samples):
    X, y = make_classification(n_samples=n_samples, n_features=10, n_informative=6,
                               n_redundant=0, n_classes=3, random_state=SEED)
    return StandardScaler().fit_transform(X), y


def estimator(epochs):
    return MLPClassifier(hidden_layer_sizes=HIDDEN, activation="relu", optimizer="adam",
                         batch_size=BATCH, max_epochs=epochs, random_state=SEED, device="cpu")


class NoOpClassifier(ClassifierMixin, BaseEstimator):
    """Takes the searched parameters and validates its input like any scikit-learn classifier;
    learns nothing (predicts the first class). What scikit-learn's search costs per fit."""

    def __init__(self, lr=1e-3, weight_decay=0.0):
        self.lr = lr
        self.weight_decay = weight_decay

    def fit(self, X, y):
        X, y = validate_data(self, X, y)
        check_classification_targets(y)
        self.classes_ = np.unique(y)
        return self

    def predict(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, reset=False)
        return np.full(X.shape[0], self.classes_[0])


def candidate_points(n_candidates):
    """The grid of ``n_candidates`` (a multiple of 5) as a list of ``{'lr', 'weight_decay'}``,
    in scikit-learn's ``ParameterGrid`` order."""
    n_lr = max(1, n_candidates // len(WEIGHT_DECAYS))
    lrs = np.geomspace(*LR_RANGE, n_lr).tolist()
    return list(ParameterGrid({"lr": lrs, "weight_decay": list(WEIGHT_DECAYS)}))


def spread(n_total, k):
    """``k`` indices spread evenly over ``range(n_total)``."""
    return sorted({round(float(i)) for i in np.linspace(0, n_total - 1, min(k, n_total))})


def folds(X, y):
    return list(StratifiedKFold(FOLDS, shuffle=True, random_state=SEED).split(X, y))


# ------------------------------------------------------------------------------------------------
# one measurement, in its own process


def _trainer_bytes(trainer):
    tensors = [v for v in vars(trainer).values() if isinstance(v, torch.Tensor)]
    tensors += list(trainer.state.values())
    return sum(t.numel() * t.element_size() for t in tensors)


def track_held():
    """Record the most trained members the fused search holds at once (registered for
    scikit-learn's scoring pass, or kept for a later round) and their tensors' bytes: measured
    each time a batch (or slice) has been trained, when the most are held."""
    held = {"fits": 0, "tensor_mib": 0.0}
    train = Session.train

    def tracking_train(self, *args, **kwargs):
        out = train(self, *args, **kwargs)
        entries = [*self.registry.values(), *(member for member, _ in self.resumable.values())]
        members = {id(m): m for entry in entries
                   for m in (entry if isinstance(entry, list) else [entry])}
        if len(members) > held["fits"]:
            held["fits"] = len(members)
            held["tensor_mib"] = sum(map(_trainer_bytes, members.values())) / 2**20
        return out

    Session.train = tracking_train
    return held


def measure(spec):
    """Run one search as ``spec`` says; return its figures (a JSON-able dict)."""
    X, y = load_data(spec["n_samples"])
    splits = folds(X, y)
    est = estimator(spec["epochs"])
    points = candidate_points(spec["grid_candidates"])
    if spec.get("indices") is None:  # the whole grid, as a user writes it
        grid = {"lr": sorted({p["lr"] for p in points}), "weight_decay": list(WEIGHT_DECAYS)}
    else:  # some of its candidates, in the grid's order
        grid = [{name: [value] for name, value in points[i].items()} for i in spec["indices"]]

    if spec["kind"] == NO_OP:
        est = NoOpClassifier()

    def search():
        search_class = FusedGridSearchCV if spec["kind"] == FUSED else GridSearchCV
        return search_class(est, grid, cv=splits, refit=False, n_jobs=1)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # untimed warm-up of the same kind: imports, first allocations, thread pools
        type(search())(est, {"lr": [1e-3, 1e-2]}, cv=splits[:2], refit=False).fit(X, y)
        held = track_held()
        gc.collect()
        reset_peak_memory("cpu")
        before = peak_memory("cpu")
        fitted = search()
        load_before = load_average()
        with time_spent_in(workers, "train_stack") as training:
            wall, cpu = timed(lambda: fitted.fit(X, y))
        after = peak_memory("cpu")
        traced_peak = None
        if spec.get("tracemalloc"):
            fitted_traced = search()
            gc.collect()
            tracemalloc.start()
            fitted_traced.fit(X, y)
            traced_peak = tracemalloc.get_traced_memory()[1] / 2**20
            tracemalloc.stop()
    scores = fitted.cv_results_["mean_test_score"]
    return {
        "seconds": wall, "cpu_s": cpu, "n_candidates": len(scores),
        "n_fits": len(scores) * len(splits),
        "rss_before_mib": before["vm_hwm_mib"] or before["ru_maxrss_mib"],
        "peak_rss_mib": after["vm_hwm_mib"] or after["ru_maxrss_mib"],
        "ru_maxrss_mib": after["ru_maxrss_mib"],
        "held_fits": held["fits"], "held_tensor_mib": held["tensor_mib"],
        "tracemalloc_peak_mib": traced_peak,
        "training_s": training[0] if spec["kind"] == FUSED else None,
        "member_epochs": getattr(fitted, "n_member_epochs_", None),
        "mean_test_score": scores.tolist(),
        "load_average": {"before": load_before, "after": load_average()},
    }


def run_measurement(spec, threads):
    """:func:`measure` in a fresh Python process (``--one``), so peak memory is its own."""
    command = [sys.executable, os.path.abspath(__file__), "--one", json.dumps(spec)]
    if threads is not None:
        command += ["--threads", str(threads)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        raise RuntimeError(f"measurement {spec} failed")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------------------------------------


def run(args, device):
    counts = sorted(args.candidates)
    largest = counts[-1]
    print(f"\nworkload: {args.n_samples} x 10, MLP 10-{'-'.join(map(str, HIDDEN))}-3, ReLU, Adam, "
          f"batch {BATCH}, {args.epochs} epochs; grids of {', '.join(map(str, counts))} candidates "
          f"x {FOLDS} folds; device {device}", flush=True)
    base = {"n_samples": args.n_samples, "epochs": args.epochs}
    rows, fused_scores = [], {}
    for n in counts:
        print(f"  {FUSED} {n} candidates ...", end=" ", flush=True)
        result = run_measurement({**base, "kind": FUSED, "grid_candidates": n,
                                  "tracemalloc": args.tracemalloc}, args.threads)
        fused_scores[n] = np.array(result.pop("mean_test_score"))
        rows.append({"name": FUSED, "how": "measured", **result})
        print(f"{result['seconds']:.1f} s, peak RSS {result['peak_rss_mib']:.0f} MiB", flush=True)
        if result["member_epochs"] != result["n_fits"] * args.epochs:
            print(f"  warning: {result['member_epochs']} member-epochs, not "
                  f"{result['n_fits']} x {args.epochs}", file=sys.stderr)

    check = None
    if args.sklearn_candidates:
        indices = spread(largest, args.sklearn_candidates)
        print(f"  {SEQUENTIAL} {len(indices)} candidates ...", end=" ", flush=True)
        result = run_measurement({**base, "kind": SEQUENTIAL, "grid_candidates": largest,
                                  "indices": indices}, args.threads)
        sequential = np.array(result.pop("mean_test_score"))
        print(f"{result['seconds']:.1f} s", flush=True)
        per_fit = result["seconds"] / result["n_fits"]
        per_fit_cpu = result["cpu_s"] / result["n_fits"]
        for n in counts:
            n_fits = n * FOLDS
            rows.append({**result, "name": SEQUENTIAL, "n_candidates": n, "n_fits": n_fits,
                         "how": f"extrapolated from {result['n_fits']}",
                         "seconds": per_fit * n_fits, "cpu_s": per_fit_cpu * n_fits,
                         "measured_s": result["seconds"]})
        diff = np.abs(fused_scores[largest][indices] - sequential)
        check = {"n_candidates": len(indices), "indices": indices,
                 "max_abs_diff": float(np.nanmax(diff))}

    if args.no_op:
        n = counts[0]
        print(f"  {NO_OP} {n} candidates ...", end=" ", flush=True)
        result = run_measurement({**base, "kind": NO_OP, "grid_candidates": n}, args.threads)
        result.pop("mean_test_score")
        print(f"{result['seconds']:.1f} s", flush=True)
        rows.append({"name": NO_OP, "how": "measured", **result})

    for r in rows:
        r["fits_per_s"] = r["n_fits"] / r["seconds"]
        r["ms_per_fit"] = 1000 * r["seconds"] / r["n_fits"]
        r["training_ms_per_fit"] = (None if r.get("training_s") is None
                                    else 1000 * r["training_s"] / r["n_fits"])
        r["s_per_1000_fits"] = 1000 * r["seconds"] / r["n_fits"]
        r["rss_growth_mib"] = r["peak_rss_mib"] - r["rss_before_mib"]
        fused = next(f for f in rows if f["name"] == FUSED and f["n_candidates"] == r["n_candidates"])
        r["ratio"] = r["seconds"] / fused["seconds"]
    columns = [
        ("name", "search", ""), ("n_candidates", "candidates", "d"), ("n_fits", "fits", "d"),
        ("how", "fits timed", ""), ("seconds", "wall s", ".1f"), ("cpu_s", "cpu s", ".1f"),
        ("fits_per_s", "fits/s", ".0f"), ("ms_per_fit", "ms / fit", ".2f"),
        ("training_ms_per_fit", "of which training", ".2f"),
        ("ratio", "÷ fused", ".2f"), ("peak_rss_mib", "peak RSS MiB", ".0f"),
        ("rss_growth_mib", "RSS growth MiB", ".0f"), ("held_fits", "held fits", "d"),
        ("held_tensor_mib", "held tensors MiB", ".1f")]
    if args.tracemalloc:
        columns.append(("tracemalloc_peak_mib", "tracemalloc peak MiB", ".1f"))
    print()
    print(format_table(rows, columns))
    if check is not None:
        print(f"  fused vs {SEQUENTIAL} on {check['n_candidates']} candidates of the "
              f"{largest}-candidate grid: max |diff| of mean_test_score = {check['max_abs_diff']:.3g}")
    no_op = next((r for r in rows if r["name"] == NO_OP), None)
    if no_op is not None:
        fused = next(r for r in rows if r["name"] == FUSED and r["n_candidates"] == counts[0])
        print(f"  scikit-learn's own pass (a no-op classifier): {no_op['ms_per_fit']:.2f} ms per "
              f"fit; the fused search {fused['ms_per_fit']:.2f} ms, of which training "
              f"{fused['training_ms_per_fit']:.2f} ms and the rest "
              f"{fused['ms_per_fit'] - fused['training_ms_per_fit']:.2f} ms "
              f"({(fused['ms_per_fit'] - fused['training_ms_per_fit']) / no_op['ms_per_fit']:.2f}"
              f" x scikit-learn's own)")
    print("  RSS growth: peak RSS of the search's process minus its RSS just before the search; "
          "held fits: the most trained members held at once; the GridSearchCV rows are extrapolated "
          "from the fits they timed, their memory is that run's (one fit at a time)")
    print("\nas a GitHub table:\n" + format_markdown_table(rows, columns))
    return {"n_samples": args.n_samples, "counts": counts, "n_folds": FOLDS, "results": rows,
            "fused_vs_sequential": check}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--candidates", type=int, nargs="+", default=[250, 1000, 2000, 4000],
                        help="grid sizes to run, multiples of 5 (default 250 1000 2000 4000)")
    parser.add_argument("--n-samples", type=int, default=300, help="rows (default 300)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per fit (default 2)")
    parser.add_argument("--sklearn-candidates", type=int, default=60, metavar="K",
                        help="candidates GridSearchCV(ours) times (all folds), extrapolated to "
                             "each grid; 0 leaves it out (default 60)")
    parser.add_argument("--no-op", action=argparse.BooleanOptionalAction, default=True,
                        help="also GridSearchCV over a no-op classifier on the smallest grid: "
                             "scikit-learn's own cost per fit (default on)")
    parser.add_argument("--tracemalloc", action="store_true",
                        help="also the peak of Python allocations, from a second, traced search "
                             "per grid size (about 3x slower, not timed)")
    parser.add_argument("--threads", type=int,
                        help="threads for torch and (threadpoolctl) BLAS/OpenMP; default: each "
                             "library's own")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 50 and 200 candidates, 1 epoch, 10 sequential "
                             "candidates; writes *_quick.json")
    parser.add_argument("--tag", help="suffix of the JSON name (many_candidates_<device>_<tag>.json)")
    parser.add_argument("--out", help="JSON path (overrides the default name)")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # one measurement, in a child process
    args = parser.parse_args(argv)
    if args.quick:
        args.candidates, args.epochs, args.sklearn_candidates = [50, 200], 1, 10
    if any(n < 5 or n % 5 for n in args.candidates):
        parser.error("--candidates must be multiples of 5 (lr values x 5 weight decays)")
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.one is not None:
        with limit_threads(args.threads):
            print(json.dumps(measure(json.loads(args.one))))
        return
    device = detect_device()
    with limit_threads(args.threads):
        info = machine_info(device)
    print("many-candidates benchmark:", describe_machine(info), f"; load average {load_average()}")
    print("command:", command_line())
    started = time.perf_counter()
    workload = run(args, device)
    payload = {
        "benchmark": "many_candidates",
        "machine": info,
        "command": sys.argv,
        "environment": thread_environment(),
        "config": {"hidden_layer_sizes": HIDDEN, "activation": "relu", "optimizer": "adam",
                   "batch_size": BATCH, "epochs": args.epochs, "candidates": args.candidates,
                   "folds": FOLDS, "n_samples": args.n_samples, "lr_range": LR_RANGE,
                   "weight_decays": WEIGHT_DECAYS, "sklearn_candidates": args.sklearn_candidates,
                   "tracemalloc": args.tracemalloc, "threads": args.threads, "quick": args.quick,
                   "seed": SEED},
        "workload": workload,
        "total_seconds": time.perf_counter() - started,
    }
    name = ("many_candidates_" + device + (f"_{args.tag}" if args.tag else "")
            + ("_quick" if args.quick else ""))
    path = write_json(name, payload, args.out)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
