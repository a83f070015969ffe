"""n_jobs on the CPU: stacks spread over threads, one torch thread each, the same results."""

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification

from sknn_tune import FusedGridSearchCV, MLPClassifier
from sknn_tune._engine import StackedTrainer
from sknn_tune._engine import device as engine_device
from sknn_tune._fused import packing, workers


@pytest.fixture
def stacks(monkeypatch):
    """``[(members, torch threads)]`` of every fused stack trained."""
    log = []
    original = StackedTrainer.fit

    def fit(self, *args, **kwargs):
        log.append((len(self.members), torch.get_num_threads()))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(StackedTrainer, "fit", fit)
    monkeypatch.setattr(workers.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(engine_device, "available_devices", lambda: [])
    return log


@pytest.fixture
def two_torch_threads():
    """torch with two intra-op threads (n_jobs=None uses as many stack threads)."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("n_jobs", [2, -1, None])
def test_n_jobs_spreads_stacks_over_cpu_threads_with_one_torch_thread(stacks, n_jobs,
                                                                      two_torch_threads):
    X, y = make_classification(120, 5, n_informative=3, n_redundant=0, random_state=0)
    est = MLPClassifier((8,), max_epochs=3, batch_size=32, random_state=0, device="cpu")
    grid = {"lr": [1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1]}
    one = FusedGridSearchCV(est, grid, cv=3, n_jobs=1, refit=False).fit(X, y)
    single = list(stacks)
    stacks.clear()
    many = FusedGridSearchCV(est, grid, cv=3, n_jobs=n_jobs, refit=False).fit(X, y)
    assert [m for m, _ in single] == [18]
    assert stacks == [(9, 1), (9, 1)]
    assert torch.get_num_threads() == 2
    for key in ("mean_test_score", "split0_test_score", "rank_test_score"):
        np.testing.assert_array_equal(many.cv_results_[key], one.cv_results_[key])


def test_one_torch_thread_trains_one_stack_at_a_time_by_default(stacks):
    X, y = make_classification(120, 5, n_informative=3, n_redundant=0, random_state=0)
    est = MLPClassifier((8,), max_epochs=2, batch_size=32, random_state=0, device="cpu")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        FusedGridSearchCV(est, {"lr": [1e-3, 1e-2, 1e-1]}, cv=3, refit=False).fit(X, y)
    finally:
        torch.set_num_threads(before)
    assert stacks == [(9, 1)]


def test_a_stack_too_small_to_halve_trains_whole_on_every_core(stacks, two_torch_threads):
    # Halves below CPU_MIN_MEMBERS would be mostly per-step overhead: the 9 members stay one
    # stack, on both cores' op threads.
    X, y = make_classification(120, 5, n_informative=3, n_redundant=0, random_state=0)
    est = MLPClassifier((8,), max_epochs=2, batch_size=32, random_state=0, device="cpu")
    FusedGridSearchCV(est, {"lr": [1e-3, 1e-2, 1e-1]}, cv=3, n_jobs=2, refit=False).fit(X, y)
    assert packing.CPU_MIN_MEMBERS > 9 // 2
    assert stacks == [(9, 2)]


def test_a_batch_with_nothing_to_train_leaves_every_fit_to_scikit_learn(stacks, two_torch_threads):
    # Every candidate fails planning: no stack trains, and scikit-learn's own fits report the
    # error as GridSearchCV does (not a failure of the fused training).
    X, y = make_classification(60, 4, n_informative=2, n_redundant=0, random_state=0)
    est = MLPClassifier((4,), max_epochs=1, random_state=0, device="cpu")
    search = FusedGridSearchCV(est, {"lr": [-1.0, -2.0]}, cv=2, refit=False, error_score=np.nan)
    with pytest.raises(ValueError, match="All the 4 fits failed"):
        search.fit(X, y)
    assert stacks == []
