"""CPU stacks in worker processes: the results of one process, lost workers, Ctrl-C."""

import os
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification

from sknn_tune import FusedGridSearchCV, MLPClassifier
from sknn_tune._engine import device as engine_device
from sknn_tune._fused import processes, workers

X, Y = make_classification(150, 5, n_informative=3, n_redundant=0, n_classes=3, random_state=0)
GRID = {"lr": [3e-3, 3e-2], "batch_size": [16, 32]}  # two stacks of 2 x 3 members


def search(**params):
    est = MLPClassifier((8,), max_epochs=4, random_state=0, device="cpu")
    return FusedGridSearchCV(est, GRID, cv=3, return_train_score=True, **params)


@pytest.fixture
def process_calls(monkeypatch):
    """Every batch with two or more stacks trains in two worker processes (n_jobs=None: as
    many as torch's threads, two here); the calls made."""
    monkeypatch.setattr(processes, "PROCESS_MIN_STEPS", 0)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    monkeypatch.setattr(workers.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(engine_device, "available_devices", lambda: [])
    calls = []
    original = processes.train_in_processes

    def train(jobs, n_workers):
        calls.append((len(jobs), n_workers))
        return original(jobs, n_workers)

    monkeypatch.setattr(processes, "train_in_processes", train)
    yield calls
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def reference():
    return search(n_jobs=1).fit(X, Y)


def assert_same_results(a, b):
    for key, value in a.cv_results_.items():
        if not key.endswith("_time") and key != "params" and not key.startswith("param_"):
            np.testing.assert_array_equal(value, b.cv_results_[key], err_msg=key)
    assert a.best_params_ == b.best_params_
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))


@pytest.mark.parametrize("n_jobs", [-1, None])
def test_worker_processes_give_the_results_of_one_process(process_calls, reference, n_jobs):
    fused = search(n_jobs=n_jobs).fit(X, Y)
    assert process_calls == [(2, 2)]
    assert fused.n_member_epochs_ == reference.n_member_epochs_ == 12 * 4
    assert_same_results(fused, reference)


def test_small_batches_and_one_job_train_in_this_process(monkeypatch, reference):
    # The default threshold: 2 stacks x 4 epochs x at most 7 steps are far too few to start
    # workers.
    calls = []
    monkeypatch.setattr(processes, "train_in_processes", lambda *args: calls.append(args))
    assert_same_results(search(n_jobs=-1).fit(X, Y), reference)
    monkeypatch.setattr(processes, "PROCESS_MIN_STEPS", 0)
    assert_same_results(search(n_jobs=1).fit(X, Y), reference)
    assert calls == []


def _job(hidden, batch_size, n_members, epochs=15, n_rows=6400):
    """What ``processes.pays`` reads of a stack's job."""
    config = SimpleNamespace(batch_size=batch_size, architecture=SimpleNamespace(
        layer_sizes=(20, *hidden, 4)))
    return SimpleNamespace(config=config, members=[SimpleNamespace(max_epochs=epochs)] * n_members,
                           data=[SimpleNamespace(train_rows=np.arange(n_rows))] * n_members)


def test_processes_pay_for_many_small_steps():
    small = [_job((64,), 32, 10), _job((32,), 128, 5)]  # 3000 + 750 steps of < 3 MFLOP
    assert processes.step_flops(small[0]) == 6 * 32 * (20 * 64 + 64 * 4) * 10
    assert processes.pays(small * 2)
    assert not processes.pays(small)  # too few steps to start the workers
    large = [_job((1024, 1024), 256, 40), _job((1024, 1024), 256, 40)]  # GFLOP steps
    assert not processes.pays(large * 20)
    # Stacks train longest first: many small steps can outlast a few large ones.
    # (3000 steps of 2 members against 375 of 20: the steps' fixed cost dominates.)
    long, short = _job((32,), 32, 2), _job((32,), 256, 20)
    assert processes.estimated_seconds(long) > processes.estimated_seconds(short)


def _dies(flag, always=False):
    """``processes._train_indexed`` whose first call (or, with ``always``, every call on a stack
    of batch size 16) kills its worker process: a nested function, so loky pickles it by value."""
    train_stack = processes.train_stack

    def train(i, job):
        if always and job.config.batch_size == 16:
            os._exit(1)
        if not always:
            try:
                with open(flag, "x") as file:
                    file.write(str(os.getpid()))
            except FileExistsError:
                return i, train_stack(job)
            os._exit(1)  # as the OOM killer stops a process: no clean-up
        return i, train_stack(job)

    return train


def test_a_lost_worker_has_its_stacks_trained_again(process_calls, reference, monkeypatch,
                                                     tmp_path):
    flag = tmp_path / "died"
    monkeypatch.setattr(processes, "_train_indexed", _dies(flag))
    fused = search(n_jobs=2).fit(X, Y)
    assert int(flag.read_text()) != os.getpid()
    assert fused.n_member_epochs_ == reference.n_member_epochs_
    assert_same_results(fused, reference)


def test_a_stack_whose_workers_keep_dying_fails_clearly(process_calls, monkeypatch, tmp_path):
    monkeypatch.setattr(processes, "_train_indexed", _dies(tmp_path / "never", always=True))
    with pytest.raises(RuntimeError, match=r"a worker process died while training them, and "
                       r"again .*stack [12] of 2 \(6 candidate x fold fits: hidden_layer_sizes="
                       r"\(8,\), activation='relu'.*batch_size=16\).*n_jobs=1"):
        search(n_jobs=2).fit(X, Y)


def test_ctrl_c_keeps_the_stacks_that_finished(process_calls, reference, monkeypatch):
    # The pool returns one stack, then Ctrl-C: that stack's members are kept as trained, the
    # other's come back untrained and marked interrupted, and the search still ends.
    class Interrupted:
        def __init__(self, **kwargs):
            pass

        def __call__(self, tasks):
            function, args, kwargs = next(iter(tasks))
            yield function(*args, **kwargs)
            raise KeyboardInterrupt

    monkeypatch.setattr(processes, "Parallel", Interrupted)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fused = search(n_jobs=2, refit=False).fit(X, Y)
    assert any("interrupted" in str(w.message) for w in caught)
    assert fused.n_member_epochs_ == 6 * 4  # one stack of 2 candidates x 3 folds
    trained = np.isclose(fused.cv_results_["mean_train_score"],
                         reference.cv_results_["mean_train_score"], rtol=0, atol=0)
    assert trained.sum() == 2
