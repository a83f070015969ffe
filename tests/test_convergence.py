"""Convergence as in scikit-learn's MLP: training stops once the watched loss has not improved by
``tol`` for ``patience`` epochs, warns when ``max_epochs`` ends it first, and ``n_iter_`` counts the
last call's epochs; ``patience=None`` trains a fixed number of epochs."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV

from sknn_tune import FusedGridSearchCV, MLPClassifier

X, Y = make_classification(120, 5, n_informative=3, n_redundant=0, n_classes=3, random_state=0)


def clf(**params):
    return MLPClassifier(**{"hidden_layer_sizes": (8,), "max_epochs": 30, "batch_size": 32,
                            "random_state": 0, "device": "cpu", **params})


def test_training_stops_when_the_training_loss_stops_improving_by_tol():
    # No epoch after the first improves by tol=10: patience 3 ends training at epoch 4.
    est = clf(tol=10.0, patience=3).fit(X, Y)
    assert est.n_iter_ == 4 and len(est.history_) == 4
    assert np.all(np.diff(est.history_["train_loss"]) < 0)  # it was still improving, a little


def test_max_epochs_first_warns_and_patience_none_trains_every_epoch():
    with pytest.warns(ConvergenceWarning, match=r"Maximum epochs \(5\) reached"):
        est = clf(max_epochs=5).fit(X, Y)
    assert est.n_iter_ == 5
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        fixed = clf(max_epochs=8, tol=10.0, patience=None).fit(X, Y)
        clf(max_epochs=5).partial_fit(X, Y, classes=[0, 1, 2])  # partial_fit never warns
    assert fixed.n_iter_ == 8


def test_n_iter_counts_the_last_call_history_keeps_all():
    est = clf(max_epochs=3, warm_start=True, patience=None).fit(X, Y)
    est.fit(X, Y)
    assert est.n_iter_ == 3 and len(est.history_) == 6
    est.partial_fit(X, Y)
    assert est.n_iter_ == 1 and len(est.history_) == 7


def test_best_epoch_is_the_best_validation_value_tol_only_patience():
    # tol so large that no epoch counts for patience, yet the best epoch is the lowest val loss.
    est = clf(early_stopping=True, tol=1e9, patience=5, max_epochs=30, lr=1e-2).fit(X, Y)
    assert est.n_iter_ == 6  # the first epoch improves on nothing (inf), then 5 more
    val_loss = est.history_["val_loss"].to_numpy()
    assert est.best_epoch_ == int(np.argmin(val_loss)) + 1


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_fused_members_converge_individually():
    grid = {"tol": [1e-4, 10.0, 0.05], "lr": [1e-3, 3e-2]}
    fused = FusedGridSearchCV(clf(), grid, cv=3).fit(X, Y)
    ref = GridSearchCV(clf(), grid, cv=3).fit(X, Y)
    for key in ("mean_test_score", "split0_test_score", "split1_test_score"):
        np.testing.assert_array_equal(fused.cv_results_[key], ref.cv_results_[key])
    epochs = {params["tol"]: clf(**params).fit(X, Y).n_iter_ for params in fused.cv_results_[
        "params"]}
    assert epochs[10.0] == 11 and epochs[1e-4] > 11
