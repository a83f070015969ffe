"""The offline demo: a scaled MLP on scikit-learn's bundled digits, cross-validated and tuned."""

import time

import pandas as pd
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from . import FusedGridSearchCV, MLPClassifier


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
    timings = {}
    for search_class in (FusedGridSearchCV, GridSearchCV):
        start = time.perf_counter()
        search = search_class(model.set_params(mlpclassifier__early_stopping=False), grid, cv=3)
        search.fit(X_train, y_train)
        timings[search_class.__name__] = time.perf_counter() - start
        results = pd.DataFrame(search.cv_results_)
        print(f"{search_class.__name__}: {len(results)} candidates x 3 folds in "
              f"{timings[search_class.__name__]:.1f} s; best {search.best_params_} "
              f"({search.best_score_:.3f})")
    columns = ["param_mlpclassifier__lr", "param_mlpclassifier__dropout", "mean_test_score",
               "rank_test_score"]
    print(results[columns].sort_values("rank_test_score").to_string(index=False), "\n")
    print(f"fused search: {timings['GridSearchCV'] / timings['FusedGridSearchCV']:.1f}x faster "
          "than GridSearchCV, same cv_results_")
