"""The offline demo: a scaled MLP on scikit-learn's bundled digits, cross-validated and tuned."""

import time

import numpy as np
import pandas as pd
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from . import FusedGridSearchCV, MLPClassifier

# cv_results_ keys that measure the machine, not the model: they differ between any two runs
_TIMINGS = ("mean_fit_time", "std_fit_time", "mean_score_time", "std_score_time")
TOLERANCE = 1e-9  # what the demo calls "the same" score


def compare_cv_results(first, second):
    """Compare two searches' ``cv_results_`` on everything but their timings.

    Returns ``(largest, column, mismatched)``: the largest absolute difference found in a
    numeric column (scores, their means, standard deviations and ranks), the column it is in
    (None when there are none), and the names of the other keys (``params``, ``param_*``) that
    are not equal, or that only one of the two has.
    """
    largest, where, mismatched = 0.0, None, []
    for key in sorted(set(first) | set(second)):
        if key in _TIMINGS:
            continue
        if key not in first or key not in second:
            mismatched.append(key)
            continue
        a, b = first[key], second[key]
        if key == "params" or key.startswith("param_"):
            if list(np.ma.filled(np.ma.asarray(a, dtype=object), None)) != list(
                    np.ma.filled(np.ma.asarray(b, dtype=object), None)):
                mismatched.append(key)
            continue
        a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
        if a.shape != b.shape or not np.array_equal(np.isnan(a), np.isnan(b)):
            mismatched.append(key)
            continue
        both = ~np.isnan(a)
        difference = float(np.max(np.abs(a[both] - b[both]), initial=0.0))
        if where is None or difference > largest:
            largest, where = difference, key
    return largest, where, mismatched


def _comparison_report(fused, sequential):
    largest, column, mismatched = compare_cv_results(fused.cv_results_, sequential.cv_results_)
    lines = [f"largest difference between the two cv_results_: {largest:.3g} (in {column})"]
    if mismatched:
        lines.append(f"cv_results_ DIFFER: {', '.join(mismatched)} not equal")
    if largest > TOLERANCE:
        lines.append(f"cv_results_ DIFFER: {column} by {largest:.3g}, more than {TOLERANCE:g}")
    if len(lines) == 1:
        lines.append(f"same cv_results_ (to {TOLERANCE:g}; timings aside)")
    return "\n".join(lines)


def run_demo(max_epochs=30):
    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(f"sknn_tune demo on {device} (torch {torch.__version__})\n")
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y,
                                                        random_state=0)
    model = make_pipeline(
        StandardScaler(),
        MLPClassifier((128, 64), dropout=0.2, lr=1e-3, max_epochs=max_epochs,
                      early_stopping=True, patience=5, random_state=0),
    )

    start = time.perf_counter()
    scores = cross_val_score(model, X_train, y_train, cv=5)
    print(f"5-fold cross-validation accuracy: {scores.mean():.3f} +/- {scores.std():.3f} "
          f"({time.perf_counter() - start:.1f} s)\n")

    model.fit(X_train, y_train)
    mlp = model[-1]
    print(mlp.summary(), "\n")
    with pd.option_context("display.width", 120, "display.max_rows", 12):
        print(mlp.history_.round(4), "\n")
    print(f"stopped after {mlp.n_iter_} epochs; predicting with the weights of epoch "
          f"{mlp.best_epoch_}")
    print(f"held-out test accuracy: {model.score(X_test, y_test):.3f}\n")

    grid = {"mlpclassifier__lr": [1e-3, 3e-3, 1e-2], "mlpclassifier__dropout": [0.0, 0.2, 0.4]}
    model.set_params(mlpclassifier__early_stopping=False)
    searches, timings = {}, {}
    for search_class in (FusedGridSearchCV, GridSearchCV):
        name = search_class.__name__
        start = time.perf_counter()
        searches[name] = search_class(model, grid, cv=3).fit(X_train, y_train)
        timings[name] = time.perf_counter() - start
        print(f"{name}: {len(searches[name].cv_results_['params'])} candidates x 3 folds in "
              f"{timings[name]:.1f} s; best {searches[name].best_params_} "
              f"({searches[name].best_score_:.3f})")
    results = pd.DataFrame(searches["FusedGridSearchCV"].cv_results_)
    columns = ["param_mlpclassifier__lr", "param_mlpclassifier__dropout", "mean_test_score",
               "rank_test_score"]
    print(results[columns].sort_values("rank_test_score").to_string(index=False), "\n")
    print(f"fused search: {timings['GridSearchCV'] / timings['FusedGridSearchCV']:.1f}x faster "
          "than GridSearchCV")
    print(_comparison_report(searches["FusedGridSearchCV"], searches["GridSearchCV"]))
