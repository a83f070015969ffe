"""Fused cross-validation and fused ensembles against scikit-learn's, in one run.

Two workloads on ``make_classification(n, 20, n_informative=10, n_classes=5, random_state=0)``,
standardised once, an MLP 20-64-32-5 (ReLU, Adam, batch 64, no early stopping, ``--epochs``):

* **cross-validation**: ``cross_val_score(model, X, y, cv=5)``, fused
  (:func:`sknn_tune.model_selection.cross_val_score`, one process) against
  :func:`sklearn.model_selection.cross_val_score` over the same estimator with ``n_jobs=1`` and
  ``n_jobs=-1`` (loky processes). The scores must agree (checked and printed);
* **ensemble**: a 10-member :class:`sknn_tune.ensemble.FusedBaggingClassifier` (bootstrap, and a
  seed ensemble with ``bootstrap=False``) against one model (test accuracy on a held-out quarter)
  and against :class:`sklearn.ensemble.BaggingClassifier` over the same MLP with ``n_jobs=-1``
  (time; its predictions must equal the fused ensemble's).

Times are wall clock, the best of ``--repeats`` after an untimed warm-up of every contender on a
few rows. The machine may be shared: the 1-minute load average is recorded before and after every
timing, and a row whose load exceeded the cores (every contender uses them all: torch's
intra-op threads, or loky's processes) is flagged. ``--quick`` is a smoke run
(600 rows, 5 epochs, one repeat). Run from the repository root with the checkout on the path:
``PYTHONPATH=. python benchmarks/bench_model_selection.py --quick``. Results go to
``benchmarks/results/model_selection[_quick].json``.
"""

import argparse
import os
import time
import warnings

import numpy as np
from _common import (
    describe_machine,
    detect_device,
    format_table,
    load_average,
    machine_info,
    write_json,
)
from sklearn import model_selection as sk
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.ensemble import BaggingClassifier
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.preprocessing import StandardScaler

from sknn_tune import MLPClassifier
from sknn_tune import model_selection as ms
from sknn_tune.ensemble import FusedBaggingClassifier


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: small data, 1 repeat")
    parser.add_argument("--samples", type=int, default=None, help="rows (default 4000; quick 600)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs (default 20; quick 5)")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs (default 3)")
    parser.add_argument("--members", type=int, default=10, help="ensemble members")
    parser.add_argument("--out", default=None, help="JSON path")
    args = parser.parse_args()
    args.samples = args.samples or (600 if args.quick else 4000)
    args.epochs = args.epochs or (5 if args.quick else 20)
    args.repeats = args.repeats or (1 if args.quick else 3)
    return args


CORES = os.cpu_count() or 1


def timing(name, call, repeats, threads=CORES):
    """Best wall time of ``repeats`` calls, with the load average around them."""
    before = load_average()
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = call()
        times.append(time.perf_counter() - start)
    after = load_average()
    busy = max(before or 0, after or 0) > threads
    return {"name": name, "best_s": min(times), "all_s": times, "load_before": before,
            "load_after": after, "loaded": "yes" if busy else "no"}, result


def main():
    args = parse_args()
    device = detect_device()
    info = machine_info(device)
    print(describe_machine(info))
    X, y = make_classification(args.samples, 20, n_informative=10, n_redundant=0, n_classes=5,
                               random_state=0)
    X = StandardScaler().fit_transform(X)
    model = MLPClassifier((64, 32), max_epochs=args.epochs, batch_size=64, random_state=0,
                          device=device)
    cv = StratifiedKFold(5, shuffle=True, random_state=0)

    # Warm-up: imports, thread and process pools.
    Xw, yw = X[:100], y[:100]
    warm = clone(model).set_params(max_epochs=1)
    ms.cross_val_score(warm, Xw, yw, cv=2)
    sk.cross_val_score(warm, Xw, yw, cv=2, n_jobs=-1)
    FusedBaggingClassifier(warm, n_estimators=2, random_state=0).fit(Xw, yw)
    BaggingClassifier(warm, n_estimators=2, random_state=0, n_jobs=-1).fit(Xw, yw)

    # -- cross-validation ------------------------------------------------------------------------
    cv_rows = []
    row, fused_scores = timing("fused cross_val_score", lambda: ms.cross_val_score(
        model, X, y, cv=cv), args.repeats)
    cv_rows.append(row)
    for n_jobs in (1, -1):
        def call(n_jobs=n_jobs):
            return sk.cross_val_score(model, X, y, cv=cv, n_jobs=n_jobs)

        row, scores = timing(f"sklearn cross_val_score n_jobs={n_jobs}", call, args.repeats)
        row["same_scores"] = bool(np.allclose(scores, fused_scores, atol=1e-6))
        cv_rows.append(row)
    for row in cv_rows:
        row["ratio"] = row["best_s"] / cv_rows[0]["best_s"]
    print(f"\ncross_val_score, {args.samples} x 20, 5 folds, {args.epochs} epochs "
          f"(mean accuracy {np.mean(fused_scores):.3f})")
    columns = [("name", "contender", "s"), ("best_s", "best s", ".2f"),
               ("ratio", "x fused", ".2f"), ("load_before", "load before", ".2f"),
               ("load_after", "load after", ".2f"), ("loaded", "loaded", "s"),
               ("same_scores", "same scores", "")]
    print(format_table(cv_rows, columns))

    # -- ensembles -------------------------------------------------------------------------------
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y,
                                                        random_state=0)
    contenders = {
        "one model": lambda: clone(model).fit(X_train, y_train),
        f"FusedBagging x{args.members}": lambda: FusedBaggingClassifier(
            model, n_estimators=args.members, random_state=0).fit(X_train, y_train),
        f"seed ensemble x{args.members}": lambda: FusedBaggingClassifier(
            model, n_estimators=args.members, bootstrap=False, random_state=0).fit(
            X_train, y_train),
        f"sklearn Bagging x{args.members} n_jobs=-1": lambda: BaggingClassifier(
            model, n_estimators=args.members, random_state=0, n_jobs=-1).fit(X_train, y_train),
    }
    ens_rows, fitted = [], {}
    for name, fit in contenders.items():
        row, fitted[name] = timing(name, fit, args.repeats)
        row["test_accuracy"] = float(fitted[name].score(X_test, y_test))
        ens_rows.append(row)
    fused_name, sk_name = list(contenders)[1], list(contenders)[3]
    same = np.allclose(fitted[fused_name].predict_proba(X_test),
                       fitted[sk_name].predict_proba(X_test), atol=1e-6)
    for row in ens_rows:
        row["ratio"] = row["best_s"] / ens_rows[1]["best_s"]
    print(f"\nensembles, {len(y_train)} training rows, {args.epochs} epochs "
          f"(fused and sklearn's bagging predict the same: {same})")
    columns = [("name", "contender", "s"), ("test_accuracy", "test acc", ".3f"),
               ("best_s", "best s", ".2f"), ("ratio", "x FusedBagging", ".2f"),
               ("load_before", "load before", ".2f"), ("load_after", "load after", ".2f"),
               ("loaded", "loaded", "s")]
    print(format_table(ens_rows, columns))

    payload = {"machine": info, "config": vars(args), "cross_val_score": cv_rows,
               "ensembles": ens_rows, "same_ensemble_predictions": bool(same)}
    name = "model_selection" + ("_quick" if args.quick else "")
    print("\nwrote", write_json(name, payload, args.out))


if __name__ == "__main__":
    main()
