"""The fused layer holds the data by reference: one copy of ``X`` in the compute dtype, indexed by
every fold, stack and thread of a bare estimator's search."""

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sknn_tune import FusedGridSearchCV, MLPClassifier
from sknn_tune._engine import StackedTrainer
from sknn_tune._engine import device as engine_device
from sknn_tune._fused import workers

X, Y = make_classification(240, 6, n_informative=4, n_redundant=0, n_classes=3, random_state=0)
GRID = {"lr": [1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1]}


@pytest.fixture
def stack_inputs(monkeypatch):
    """``[(members, X tensor)]`` of every fused stack trained, on two CPU threads."""
    log = []
    original = StackedTrainer.fit

    def fit(self, X, *args, **kwargs):
        if len(self.members) > 1:  # a fused stack (the refit trains one member)
            log.append((len(self.members), X))
        return original(self, X, *args, **kwargs)

    monkeypatch.setattr(StackedTrainer, "fit", fit)
    monkeypatch.setattr(workers.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(engine_device, "available_devices", lambda: [])
    monkeypatch.setattr("sknn_tune._fused.packing.CPU_MIN_MEMBERS", 2)
    return log


def clf(**params):
    return MLPClassifier((8,), max_epochs=2, batch_size=32, random_state=0, device="cpu",
                         **params)


def test_a_bare_search_trains_every_stack_on_the_callers_array_in_float64(stack_inputs):
    # float64 X and a float64 network: no copy of X at all, in any fold, stack or thread
    search = FusedGridSearchCV(clf(dtype="float64"), GRID, cv=3, n_jobs=2, refit=False)
    search.fit(X, Y)
    assert len(stack_inputs) >= 2  # several stacks, on two threads
    assert sum(m for m, _ in stack_inputs) == len(GRID["lr"]) * 3
    for _, tensor in stack_inputs:
        assert tensor.shape == X.shape and tensor.data_ptr() == X.ctypes.data


def test_a_bare_search_makes_one_float32_copy_shared_by_every_stack(stack_inputs):
    network = clf(dtype="float32")
    search = FusedGridSearchCV(network, GRID, cv=3, n_jobs=2, refit=False).fit(X, Y)
    assert len(stack_inputs) >= 2
    assert {tensor.data_ptr() for _, tensor in stack_inputs} != {X.ctypes.data}
    assert len({tensor.data_ptr() for _, tensor in stack_inputs}) == 1
    assert {tensor.dtype for _, tensor in stack_inputs} == {torch.float32}
    ref = GridSearchCV(network, GRID, cv=3, refit=False).fit(X, Y)
    np.testing.assert_array_equal(search.cv_results_["mean_test_score"],
                                  ref.cv_results_["mean_test_score"])


def test_a_pipeline_search_makes_one_copy_per_transformed_fold(stack_inputs):
    network = make_pipeline(StandardScaler(), clf())
    grid = {f"mlpclassifier__{name}": values for name, values in GRID.items()}
    FusedGridSearchCV(network, grid, cv=3, n_jobs=2, refit=False).fit(X, Y)
    # the three folds' transformed rows, concatenated or one each; never one per candidate
    copies = {tensor.data_ptr() for _, tensor in stack_inputs}
    assert len(copies) <= 3
    assert sum(m for m, _ in stack_inputs) == len(GRID["lr"]) * 3


def test_the_scoring_pass_splits_and_predicts_by_index(monkeypatch):
    # scikit-learn's fits and scorers get rows of X by reference: no fold of X is copied out,
    # every prediction reads the float32 copy the stacks trained on, and the scores (train and
    # test) are GridSearchCV's.
    from sknn_tune import _base
    from sknn_tune._fit_protocol import IndexedRows

    copied, predicted = [], []
    monkeypatch.setattr(IndexedRows, "__array__",
                        lambda self, dtype=None, copy=None: copied.append(len(self)))
    original = _base.as_rows

    def as_rows(array, dtype, device):
        if array is X:
            predicted.append("copied X")
        return original(array, dtype, device)

    monkeypatch.setattr(_base, "as_rows", as_rows)
    tensors = []
    original_tensor = IndexedRows.tensor

    def tensor(self, dtype, device):
        tensors.append(self._tensors(dtype, device).data_ptr())
        return original_tensor(self, dtype, device)

    monkeypatch.setattr(IndexedRows, "tensor", tensor)
    search = FusedGridSearchCV(clf(), GRID, cv=3, return_train_score=True).fit(X, Y)
    assert copied == [] and predicted == []
    # 18 fits scored on test and train rows, and the refit: one shared copy throughout
    assert len(tensors) == 18 * 2 + 1 and len(set(tensors)) == 1
    monkeypatch.undo()
    ref = GridSearchCV(clf(), GRID, cv=3, return_train_score=True).fit(X, Y)
    for key in ("mean_test_score", "split1_test_score", "mean_train_score"):
        np.testing.assert_array_equal(search.cv_results_[key], ref.cv_results_[key])
    np.testing.assert_array_equal(search.predict_proba(X), ref.predict_proba(X))


def test_indexed_rows_index_as_the_array_they_stand_for():
    from sknn_tune._fit_protocol import IndexedRows

    base = np.arange(20.0).reshape(10, 2)
    view = IndexedRows(base)
    fold = view[np.array([7, 2, 5]), ...]  # as scikit-learn's _safe_indexing indexes
    assert isinstance(fold, IndexedRows) and fold.base is base and fold.shape == (3, 2)
    np.testing.assert_array_equal(np.asarray(fold), base[[7, 2, 5]])
    np.testing.assert_array_equal(np.asarray(fold[1:]), base[[2, 5]])
    np.testing.assert_array_equal(np.asarray(fold[np.array([True, False, True])]), base[[7, 5]])
    np.testing.assert_array_equal(fold[0], base[7])  # anything else: the array's own indexing
    assert len(view) == 10 and view.dtype == base.dtype and view.ndim == 2


def test_fused_cross_validation_scores_by_index(monkeypatch):
    # sknn_tune.model_selection hands scikit-learn's functions the rows by reference too: no
    # fold copied out, the predictions and scores scikit-learn's own functions give.
    from sklearn import model_selection as sk

    from sknn_tune import model_selection
    from sknn_tune._fit_protocol import IndexedRows

    original = IndexedRows.__array__
    copied = []

    def array(self, dtype=None, copy=None):
        copied.append(len(self))
        return original(self, dtype, copy)

    monkeypatch.setattr(IndexedRows, "__array__", array)
    read = []
    original_tensor = IndexedRows.tensor
    monkeypatch.setattr(IndexedRows, "tensor", lambda self, *args: read.append(len(self))
                        or original_tensor(self, *args))
    fused = model_selection.cross_validate(clf(), X, Y, cv=3, return_train_score=True)
    proba = model_selection.cross_val_predict(clf(), X, Y, cv=3, method="predict_proba")
    assert copied == []
    assert sorted(read) == [80] * 6 + [160] * 3  # test and train rows, then the predictions
    monkeypatch.undo()
    ref = sk.cross_validate(clf(), X, Y, cv=3, return_train_score=True)
    for key in ("test_score", "train_score"):
        np.testing.assert_array_equal(fused[key], ref[key])
    np.testing.assert_array_equal(proba, sk.cross_val_predict(clf(), X, Y, cv=3,
                                                               method="predict_proba"))
