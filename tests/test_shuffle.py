"""shuffle=False: the batches are the rows in their own order, every epoch."""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import make_regression
from sklearn.model_selection import GridSearchCV

from sknn_tune import FusedGridSearchCV, MLPRegressor

X, y = make_regression(96, 4, noise=1.0, random_state=0)
y = y / y.std()


def reg(**params):
    return MLPRegressor(**{"hidden_layer_sizes": (8,), "max_epochs": 3, "batch_size": 16,
                           "optimizer": "sgd", "lr": 1e-2, "random_state": 0, "device": "cpu",
                           "patience": None, "dtype": "float64", **params})


def test_in_order_batches_depend_on_batches_not_on_the_order_within_them():
    within = np.concatenate([np.arange(i, i + 16)[::-1] for i in range(0, 96, 16)])
    across = np.concatenate([np.arange(i, i + 16) for i in range(80, -1, -16)])
    base = reg(shuffle=False).fit(X, y).predict(X)
    # The mean loss of a batch does not depend on its rows' order; SGD does on the batches'.
    np.testing.assert_allclose(reg(shuffle=False).fit(X[within], y[within]).predict(X), base,
                               rtol=0, atol=1e-12)
    assert np.abs(reg(shuffle=False).fit(X[across], y[across]).predict(X) - base).max() > 1e-6
    # Shuffled, the same data trains another way; unshuffled, every seed orders alike.
    assert np.abs(reg().fit(X, y).predict(X) - base).max() > 1e-6
    assert np.abs(reg().fit(X[across], y[across]).predict(X)
                  - reg().fit(X, y).predict(X)).max() > 1e-6


def test_fused_members_with_and_without_shuffle_equal_sequential():
    grid = {"shuffle": [True, False], "lr": [1e-2, 3e-2]}
    fused = FusedGridSearchCV(reg(), grid, cv=3).fit(X, y)
    ref = GridSearchCV(reg(), grid, cv=3).fit(X, y)
    for key in ("mean_test_score", "split0_test_score", "split2_test_score"):
        np.testing.assert_array_equal(fused.cv_results_[key], ref.cv_results_[key])
    assert len(set(fused.cv_results_["mean_test_score"])) == 4


def test_epoch_order_does_not_depend_on_how_many_members_are_sorted_at_once(monkeypatch):
    # The epoch's order is drawn a chunk of members at a time (bounding the sort's memory); one
    # member per chunk and the whole stack in one must train the same bits, shuffled or not,
    # with sample weights or without.
    from sknn_tune._engine import trainer

    X, y = make_regression(120, 5, noise=1.0, random_state=0)
    weight = np.random.default_rng(0).uniform(0.5, 2.0, len(y))
    grid = {"lr": [1e-3, 3e-3, 1e-2], "shuffle": [True, False]}

    def searched(chunk):
        monkeypatch.setattr(trainer, "PERMUTATION_CHUNK", chunk)
        search = FusedGridSearchCV(MLPRegressor((8,), batch_size=16, max_epochs=3, patience=None,
                                                random_state=0), grid, cv=3)
        return search.fit(X, y, sample_weight=weight).cv_results_["mean_test_score"]

    one_at_a_time = searched(1)
    assert np.array_equal(one_at_a_time, searched(2**20))
    assert len(np.unique(one_at_a_time)) > 1


@pytest.mark.parametrize("sparse", [False, True])
def test_training_does_not_depend_on_how_many_steps_are_gathered_at_once(monkeypatch, sparse):
    # An epoch's rows are gathered a run of steps at a time, into buffers the next run writes
    # again: one step per run, a few, and the whole epoch in one run train the same bits.
    from sknn_tune._engine import trainer

    X, y = make_regression(150, 6, noise=1.0, random_state=0)
    if sparse:
        X = sp.csr_matrix(np.where(np.abs(X) > 1.0, X, 0.0))
    step_bytes = 4 * 16 * (X.shape[1] + 1)  # float32, one member, batch 16

    def fitted(gather_bytes):
        monkeypatch.setattr(trainer, "GATHER_BYTES", gather_bytes)
        reg = MLPRegressor((8,), batch_size=16, max_epochs=3, patience=None, random_state=0)
        return reg.fit(X, y).predict(X)

    whole = fitted(2**30)
    for gather_bytes in (1, 3 * step_bytes):
        np.testing.assert_array_equal(fitted(gather_bytes), whole)
