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
