"""Default accuracy: ours against scikit-learn's MLP, both with default hyperparameters (issue 12.9).

For each data set, ``cross_val_score(make_pipeline(StandardScaler(), est), X, y, cv=5)`` for
``sklearn.neural_network.MLPClassifier`` / ``MLPRegressor`` with its defaults and for
``sknn_tune.MLPClassifier`` / ``MLPRegressor`` with its defaults (``device='cpu'``), over several
seeds; a seed fixes both estimators' ``random_state`` and the shuffled (stratified) 5-fold split,
which both estimators share. Scores are sklearn's defaults: accuracy for classifiers, R^2 for
regressors. Prints one row per data set (means over seeds of the 5-fold means), the CPU and wall time per fit
of each and the mean number of epochs trained, and writes JSON under ``benchmarks/results/``.

Candidate defaults are evaluated by passing our hyperparameters as overrides, for example::

    OMP_NUM_THREADS=1 python benchmarks/bench_accuracy.py
    OMP_NUM_THREADS=1 python benchmarks/bench_accuracy.py --quick
    OMP_NUM_THREADS=1 python benchmarks/bench_accuracy.py --ours init=xavier_uniform weight_decay=5e-7
    # sklearn's scores do not depend on our overrides: reuse them from an earlier run's JSON
    python benchmarks/bench_accuracy.py --ours max_epochs=100 \\
        --reuse-sklearn benchmarks/results/bench_accuracy.json --out benchmarks/results/e100.json

``--rst PATH`` also writes the table as reStructuredText, with the command and date, for the
documentation (``docs/_generated/accuracy.inc``, included by ``docs/comparison.rst``; not
``.rst``, which Sphinx would read as a page of its own).

``--quick`` runs 1 seed on data sets of at most 500 rows. Data sets are bundled with scikit-learn
or generated; nothing is downloaded. Every set has at most 2000 rows.
"""

import argparse
import ast
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn import datasets
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from sklearn.neural_network import MLPRegressor as SkMLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parent))
# the checkout's sknn_tune, not an installed one elsewhere (the script's folder, not the working
# directory, is first on sys.path)
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))
from _common import (
    describe_machine,
    fit_once,
    format_markdown_table,
    format_table,
    limit_threads,
    machine_info,
    write_json,
)

from sknn_tune import MLPClassifier, MLPRegressor


def _digits():
    return datasets.load_digits(return_X_y=True)


def _wine():
    return datasets.load_wine(return_X_y=True)


def _breast_cancer():
    return datasets.load_breast_cancer(return_X_y=True)


def _iris():
    return datasets.load_iris(return_X_y=True)


def _diabetes():
    return datasets.load_diabetes(return_X_y=True)


def _classification():
    return datasets.make_classification(n_samples=1000, n_features=20, n_informative=10,
                                        n_redundant=5, n_classes=3, flip_y=0.05, random_state=0)


def _moons():
    return datasets.make_moons(n_samples=1000, noise=0.3, random_state=0)


def _circles():
    return datasets.make_circles(n_samples=1000, noise=0.2, factor=0.5, random_state=0)


def _regression():
    return datasets.make_regression(n_samples=1000, n_features=20, n_informative=10, noise=10.0,
                                    random_state=0)


def _friedman1():
    return datasets.make_friedman1(n_samples=1000, n_features=10, noise=1.0, random_state=0)


def _friedman2():
    return datasets.make_friedman2(n_samples=1000, noise=0.0, random_state=0)


# name -> (task, loader)
DATASETS = {
    "digits": ("classification", _digits),
    "wine": ("classification", _wine),
    "breast_cancer": ("classification", _breast_cancer),
    "iris": ("classification", _iris),
    "make_classification": ("classification", _classification),
    "make_moons": ("classification", _moons),
    "make_circles": ("classification", _circles),
    "diabetes": ("regression", _diabetes),
    "make_regression": ("regression", _regression),
    "make_friedman1": ("regression", _friedman1),
    "make_friedman2": ("regression", _friedman2),
}

MAX_ROWS = 2000
QUICK_ROWS = 500


def load(name, max_rows, seed=0):
    """The data set, subsampled (stratified for classification) to ``max_rows`` rows."""
    task, loader = DATASETS[name]
    X, y = loader()
    X = np.asarray(X, dtype=np.float64)
    if len(X) > max_rows:
        rng = np.random.default_rng(seed)
        if task == "classification":
            from sklearn.model_selection import train_test_split
            keep, _ = train_test_split(np.arange(len(X)), train_size=max_rows, stratify=y,
                                       random_state=seed)
        else:
            keep = rng.choice(len(X), max_rows, replace=False)
        X, y = X[np.sort(keep)], y[np.sort(keep)]
    return task, X, y


def parse_overrides(items):
    """``['init=xavier_uniform', 'weight_decay=1e-4']`` -> dict, values as Python literals."""
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"override {item!r} is not name=value")
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key] = value
    return out


def make_estimator(kind, task, seed, overrides):
    if kind == "sklearn":
        cls = SkMLPClassifier if task == "classification" else SkMLPRegressor
        est = cls(random_state=seed)
    else:
        cls = MLPClassifier if task == "classification" else MLPRegressor
        est = cls(device="cpu", random_state=seed)
    est.set_params(**overrides)
    return make_pipeline(StandardScaler(), est)


def evaluate(kind, task, X, y, seed, overrides, folds):
    """``cross_val_score`` by hand (each fold: fit a clone, ``score`` on the held-out rows, as the
    default scorer does) so that each fit's wall and CPU seconds are both recorded: the CPU time of
    a 1-thread fit stays close to an idle machine's wall time when other work shares the cores."""
    cv = (StratifiedKFold if task == "classification" else KFold)(
        n_splits=folds, shuffle=True, random_state=seed)
    pipe = make_estimator(kind, task, seed, overrides)
    scores, wall, cpu, n_iter = [], [], [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for train, test in cv.split(X, y):
            elapsed, cpu_s, fitted = fit_once(pipe, X[train], y[train])
            scores.append(float(fitted.score(X[test], y[test])))
            wall.append(elapsed)
            cpu.append(cpu_s)
            n_iter.append(float(fitted[-1].n_iter_))
    return {"scores": scores, "mean": float(np.mean(scores)), "fit_s": wall, "fit_cpu_s": cpu,
            "n_iter": n_iter}


def run(args):
    overrides = parse_overrides(args.ours)
    sk_overrides = parse_overrides(args.sklearn)
    names = args.datasets or list(DATASETS)
    seeds = list(range(args.seeds))
    max_rows = QUICK_ROWS if args.quick else MAX_ROWS
    reused = {}
    if args.reuse_sklearn:
        previous = json.loads(Path(args.reuse_sklearn).read_text())
        if previous.get("sklearn_overrides", {}) != sk_overrides:
            raise SystemExit("--reuse-sklearn: that run used other sklearn overrides")
        reused = {r["dataset"]: r for r in previous["rows"]
                  if r["seeds"] == seeds and r["n_rows"] <= max_rows and r.get("folds") == args.folds}
    rows = []
    for name in names:
        task, X, y = load(name, max_rows)
        row = {"dataset": name, "task": task, "n_rows": len(X), "n_features": X.shape[1],
               "seeds": seeds, "folds": args.folds}
        if name in reused and reused[name]["n_rows"] == len(X):
            row["sklearn"] = reused[name]["sklearn"]
        else:
            row["sklearn"] = [evaluate("sklearn", task, X, y, s, sk_overrides, args.folds)
                              for s in seeds]
        row["ours"] = [evaluate("ours", task, X, y, s, overrides, args.folds) for s in seeds]
        for kind in ("sklearn", "ours"):
            runs = row[kind]
            row[f"{kind}_mean"] = float(np.mean([r["mean"] for r in runs]))
            row[f"{kind}_fit_s"] = float(np.mean([t for r in runs for t in r["fit_s"]]))
            cpu = [t for r in runs for t in r.get("fit_cpu_s", [])]
            row[f"{kind}_fit_cpu_s"] = float(np.mean(cpu)) if cpu else None
            row[f"{kind}_epochs"] = float(np.mean([i for r in runs for i in r["n_iter"]]))
        row["diff"] = row["ours_mean"] - row["sklearn_mean"]
        # seed-to-seed spread of the paired difference (same splits for both), as a standard error
        per_seed = [o["mean"] - k["mean"] for o, k in zip(row["ours"], row["sklearn"])]
        row["diff_se"] = (float(np.std(per_seed, ddof=1) / np.sqrt(len(per_seed)))
                          if len(per_seed) > 1 else None)
        row["ok"] = "yes" if row["diff"] >= 0 else "NO"
        rows.append(row)
        print(f"{name:20s} {task:14s} sklearn {row['sklearn_mean']:.4f} ours {row['ours_mean']:.4f} "
              f"diff {row['diff']:+.4f} ({row['sklearn_fit_s']:.2f}s / {row['ours_fit_s']:.2f}s "
              f"wall per fit)", flush=True)
    return rows, overrides, sk_overrides


COLUMNS = [("dataset", "data set", "s"), ("task", "task", "s"), ("n_rows", "rows", "d"),
           ("sklearn_mean", "sklearn", ".4f"), ("ours_mean", "ours", ".4f"),
           ("diff", "ours - sklearn", "+.4f"),
           ("diff_se", "+/- (s.e.)", ".4f"), ("ok", "ours >= sklearn", "s"),
           ("sklearn_fit_cpu_s", "sklearn CPU s/fit", ".3f"), ("ours_fit_cpu_s", "ours CPU s/fit", ".3f"),
           ("sklearn_fit_s", "sklearn wall s/fit", ".3f"), ("ours_fit_s", "ours wall s/fit", ".3f"),
           ("sklearn_epochs", "sklearn epochs", ".0f"), ("ours_epochs", "ours epochs", ".0f")]


RST_COLUMNS = [c for c in COLUMNS if c[0] in (
    "dataset", "task", "n_rows", "sklearn_mean", "ours_mean", "diff", "diff_se", "ok",
    "sklearn_fit_cpu_s", "ours_fit_cpu_s", "ours_epochs")]


def format_rst_table(rows, columns, argv, info, n_ok):
    """The table as an RST ``list-table``, preceded by the command, date and machine that made it."""
    def cell(value, fmt):
        return "n/a" if value is None else format(value, fmt)

    command = " ".join(["python benchmarks/bench_accuracy.py", *argv])
    lines = [f"Measured {time.strftime('%Y-%m-%d', time.gmtime())} with ``{command}``",
             f"({describe_machine(info)}); ours >= scikit-learn on {n_ok} of {len(rows)} data "
             "sets.", "", ".. list-table::", "   :header-rows: 1", ""]
    for cells in ([header for _, header, _ in columns],
                  *([cell(row.get(key), fmt) for key, _, fmt in columns] for row in rows)):
        lines.append("   * - " + cells[0])
        lines += [f"     - {c}" for c in cells[1:]]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"1 seed, data sets subsampled to {QUICK_ROWS} rows")
    parser.add_argument("--seeds", type=int, default=None, help="seeds 0..N-1 (default 3, quick 1)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--datasets", nargs="+", choices=list(DATASETS), metavar="NAME",
                        help=f"subset of: {', '.join(DATASETS)}")
    parser.add_argument("--ours", nargs="*", metavar="NAME=VALUE",
                        help="our hyperparameters overriding the defaults (candidate defaults)")
    parser.add_argument("--sklearn", nargs="*", metavar="NAME=VALUE",
                        help="sklearn MLP hyperparameters overriding its defaults")
    parser.add_argument("--reuse-sklearn", metavar="JSON",
                        help="take sklearn's scores from an earlier run's JSON (same seeds/rows)")
    parser.add_argument("--threads", type=int, default=1, help="torch/BLAS threads (default 1)")
    parser.add_argument("--out", help="JSON path (default benchmarks/results/bench_accuracy.json)")
    parser.add_argument("--markdown", action="store_true", help="also print a markdown table")
    parser.add_argument("--rst", metavar="PATH", help="also write the table as reStructuredText")
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    if args.seeds is None:
        args.seeds = 1 if args.quick else 3
    started = time.perf_counter()
    with limit_threads(args.threads):
        info = machine_info("cpu")
        print(describe_machine(info))
        print(f"ours overrides: {parse_overrides(args.ours) or 'none (defaults)'}; "
              f"seeds {args.seeds}, {args.folds}-fold\n", flush=True)
        rows, overrides, sk_overrides = run(args)
    print()
    print(format_table(rows, COLUMNS))
    if args.markdown:
        print()
        print(format_markdown_table(rows, COLUMNS))
    n_ok = sum(r["ok"] == "yes" for r in rows)
    print(f"\nours >= sklearn on {n_ok} of {len(rows)} data sets; "
          f"{time.perf_counter() - started:.0f} s in all")
    path = write_json("bench_accuracy", {
        "machine": info, "ours_overrides": overrides, "sklearn_overrides": sk_overrides,
        "quick": args.quick, "rows": rows, "n_ok": n_ok}, path=args.out)
    print(f"wrote {path}")
    if args.rst:
        rst = Path(args.rst)
        rst.parent.mkdir(parents=True, exist_ok=True)
        rst.write_text(format_rst_table(rows, RST_COLUMNS, argv, info, n_ok))
        print(f"wrote {rst}")
    return rows


if __name__ == "__main__":
    main()
