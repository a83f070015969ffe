"""How a fused search groups its members into stacks: folds whose sizes differ by a row share a
stack under ``batch_size='auto'`` (one full batch an epoch), with GridSearchCV's results."""

import pytest
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.model_selection import GridSearchCV
from test_search import assert_same_search

from sknn_tune import FusedGridSearchCV, MLPClassifier
from sknn_tune._fused import packing

# 3 folds of 178 rows: the networks train on 118, 119 and 119 rows.
X, Y = make_classification(178, 5, random_state=0)


def test_auto_batch_folds_of_118_and_119_rows_share_one_stack(trained):
    network = MLPClassifier((8,), max_epochs=2, patience=None, random_state=0)
    grid = {"lr": [1e-3, 1e-2]}
    # Log loss reads the probabilities: equal to the last bit, the members trained the same bits
    # stacked as alone.
    fused = FusedGridSearchCV(network, grid, cv=3, scoring="neg_log_loss").fit(X, Y)
    ref = GridSearchCV(network, grid, cv=3, scoring="neg_log_loss").fit(X, Y)
    assert_same_search(fused, ref, X, atol=0)
    assert [t.members for t in trained if t.fused] == [6]


@pytest.mark.cpu_only
def test_cpu_stacks_are_sized_for_the_cache_and_equal(trained, monkeypatch):
    # A wide network's step touches more bytes per member than a narrow one's: fewer members a
    # stack, and the members spread over equal stacks (9 fits at most 4 a stack: 3 x 3).
    monkeypatch.setattr(packing, "CPU_MIN_MEMBERS", 1)
    wide = MLPClassifier((256,), batch_size=16, max_epochs=1, patience=None, random_state=0)
    itemsize = 4  # float32, the default
    step_bytes = itemsize * (4 * _row_width(wide) + 16 * (4 * 256 + X.shape[1] + 1))
    monkeypatch.setattr(packing, "CPU_STACK_BYTES", 4 * step_bytes)
    grid = {"lr": [1e-3, 2e-3, 3e-3]}
    # n_jobs=1: one stack at a time (with a thread per core, a slice's last stack would be
    # halved across the threads, which CPU_MIN_MEMBERS=1 allows)
    fused = FusedGridSearchCV(wide, grid, cv=3, scoring="neg_log_loss", n_jobs=1).fit(X, Y)
    assert [t.members for t in trained if t.fused] == [3, 3, 3]
    ref = GridSearchCV(wide, grid, cv=3, scoring="neg_log_loss").fit(X, Y)
    assert_same_search(fused, ref, X, atol=0)

    # The same budget holds many more members of a narrow network: one stack.
    trained.clear()
    narrow = clone(wide).set_params(hidden_layer_sizes=(4,))
    FusedGridSearchCV(narrow, grid, cv=3, n_jobs=1).fit(X, Y)
    assert [t.members for t in trained if t.fused] == [9]


def test_stacks_never_go_below_the_minimum_for_per_step_overhead(trained, monkeypatch):
    monkeypatch.setattr(packing, "CPU_STACK_BYTES", 1)  # every member "overflows" the cache
    network = MLPClassifier((8,), max_epochs=1, patience=None, random_state=0, device="cpu")
    FusedGridSearchCV(network, {"lr": [1e-3, 2e-3, 3e-3, 4e-3]}, cv=3).fit(X, Y)
    # 12 fits, at least CPU_MIN_MEMBERS = 8 a stack, in equal stacks: 2 x 6
    assert [t.members for t in trained if t.fused] == [6, 6]


def _row_width(network):
    # P of one member: the flat parameter row (weights and biases, aligned)
    network = clone(network).set_params(max_epochs=1)
    return network.fit(X, Y).model_.params.shape[1]
