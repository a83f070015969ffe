"""Scale-out: fused stacks as self-contained jobs, spread over several devices and dask workers.

Several GPUs are stood in for by CPU devices with distinct indices (``cpu:0``, ``cpu:1``, ...:
torch places their tensors on the CPU, while each stack's and each member's ``config.device``
still says where it was sent), by replacing ``available_devices``. The dask tests run a real
``LocalCluster`` of two worker processes. Training is counted as in ``test_search.py``: wrapping
``StackedTrainer.fit`` sees the training in this process; what dask workers train is counted by
``n_member_epochs_``.
"""

import logging
import multiprocessing
import multiprocessing.forkserver
import os
import pickle
import re
import sys
import threading
from functools import partial

import joblib
import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification
from sklearn.model_selection import GridSearchCV

from sknn_tune import FusedGridSearchCV, FusedHalvingGridSearchCV, MLPClassifier
from sknn_tune._engine import device as engine_device
from sknn_tune._engine.trainer import StackedTrainer
from sknn_tune._fused import workers
from sknn_tune._fused.planners import spread_request

FUSION_MODULE = "sknn_tune._fused.jobs"

_X, _Y = make_classification(150, 5, n_informative=3, n_redundant=0, n_classes=3,
                             random_state=0)
BASE = {"hidden_layer_sizes": (8,), "max_epochs": 4, "batch_size": 32, "random_state": 0}
GRID = {"lr": [3e-3, 3e-2], "batch_size": [16, 32]}  # two stacks of 2 x 3 members
N_FITS = 4 * 3


def clf(**params):
    return MLPClassifier(**{**BASE, **params})


@pytest.fixture
def trained(monkeypatch):
    """``(device, n_members, member_epochs, fused, in_main_thread)`` of every
    ``StackedTrainer.fit`` in this process."""
    log = []
    original = StackedTrainer.fit

    def fit(self, *args, **kwargs):
        fused = sys._getframe(1).f_globals["__name__"] == FUSION_MODULE
        before = int(self.epochs_done.sum())
        result = original(self, *args, **kwargs)
        log.append((self.config.device, len(self.members), int(self.epochs_done.sum()) - before,
                    fused, threading.current_thread() is threading.main_thread()))
        return result

    monkeypatch.setattr(StackedTrainer, "fit", fit)
    return log


def fused_calls(log):
    return [call for call in log if call[3]]


def plain_calls(log):
    return [call for call in log if not call[3]]


def fake_devices(monkeypatch, n):
    devices = [torch.device("cpu", i) for i in range(n)]
    monkeypatch.setattr(engine_device, "available_devices", lambda: list(devices))
    return devices


def assert_same_results(a, b):
    """Every number in ``cv_results_`` but the timings, exactly."""
    assert list(a.cv_results_) == list(b.cv_results_)
    for key, value in a.cv_results_.items():
        if key.endswith("_time"):
            continue
        other = b.cv_results_[key]
        if key == "params":
            assert value == other
        elif isinstance(value, np.ma.MaskedArray):  # param_*: compare what is not masked
            mask = np.ma.getmaskarray(value)
            np.testing.assert_array_equal(mask, np.ma.getmaskarray(other), err_msg=key)
            assert list(value.data[~mask]) == list(other.data[~mask]), key
        else:
            np.testing.assert_array_equal(value, other, err_msg=key)
    assert a.best_params_ == b.best_params_
    np.testing.assert_array_equal(a.predict_proba(_X), b.predict_proba(_X))


def _record_device(estimator, X, y, adopted):
    """A scorer that notes the device of the member it scores (and that it predicts)."""
    adopted.append(estimator.model_.config.device)
    return float(np.mean(estimator.predict(X) == y))


# ----------------------------------------------------------------------------------------------
# several devices


def test_available_devices_without_cuda():
    if not torch.cuda.is_available():
        assert engine_device.available_devices() == []
    else:
        assert len(engine_device.available_devices()) == torch.cuda.device_count()


@pytest.mark.parametrize("device, spread", [
    ("auto", "auto"), ("cuda", "cuda"), (torch.device("cuda"), "cuda"), ("cuda:1", None),
    (torch.device("cuda", 0), None), ("cpu", None)])
def test_only_auto_and_cuda_spread(device, spread):
    assert spread_request(device) == spread


def test_stacks_spread_over_devices_round_robin(monkeypatch, trained):
    kwargs = dict(cv=3, return_train_score=True)
    one = FusedGridSearchCV(clf(), GRID, scoring=partial(_record_device, adopted=[]), **kwargs)
    one.fit(_X, _Y)
    assert sorted(call[:2] for call in fused_calls(trained)) == [(torch.device("cpu"), 6)] * 2
    trained.clear()

    devices = fake_devices(monkeypatch, 3)
    adopted = []
    spread = FusedGridSearchCV(clf(), GRID, scoring=partial(_record_device, adopted=adopted),
                               **kwargs).fit(_X, _Y)
    # Two stacks for three devices: the larger is halved, each device trains one stack.
    stacks = fused_calls(trained)
    assert sorted((call[0].index, call[1]) for call in stacks) == [(0, 3), (1, 3), (2, 6)]
    assert sum(call[2] for call in stacks) == spread.n_member_epochs_ == N_FITS * 4
    # n_jobs=None: one thread per device.
    assert not any(call[4] for call in stacks)
    # Each member is adopted (and predicts) on the device it trained on: scored on its train
    # and test rows; the refit is a plain fit where device='auto' resolves.
    trained_on = [device.index for device, n, *_ in stacks for _ in range(n)]
    assert set(adopted) <= set(devices)
    assert sorted(device.index for device in adopted) == sorted(trained_on * 2)
    assert [call[:2] for call in plain_calls(trained)] == [(torch.device("cpu"), 1)]
    # Fusion invariance: the same numbers as on one device.
    assert_same_results(spread, one)


def test_spread_with_n_jobs_one_is_sequential(monkeypatch, trained):
    fake_devices(monkeypatch, 2)
    search = FusedGridSearchCV(clf(), GRID, cv=3, n_jobs=1, verbose=1).fit(_X, _Y)
    stacks = fused_calls(trained)
    assert sorted((call[0].index, call[1]) for call in stacks) == [(0, 6), (1, 6)]
    assert all(call[4] for call in stacks)  # in this thread
    assert search.n_member_epochs_ == N_FITS * 4


def test_fixed_device_does_not_spread(monkeypatch, trained):
    fake_devices(monkeypatch, 2)
    FusedGridSearchCV(clf(device="cpu"), GRID, cv=3).fit(_X, _Y)
    assert sorted(call[:2] for call in fused_calls(trained)) == [(torch.device("cpu"), 6)] * 2
    assert all(call[4] for call in trained)


def test_halving_survivors_continue_on_other_devices(monkeypatch, trained):
    # Survivors change stacks between rounds, and so devices: they continue from their state.
    grid = {"lr": [1e-3, 3e-3, 1e-2, 3e-2]}
    kwargs = dict(resource="max_epochs", min_resources=2, max_resources=8, factor=2, cv=3)
    one = FusedHalvingGridSearchCV(clf(), grid, **kwargs).fit(_X, _Y)
    fake_devices(monkeypatch, 2)
    trained.clear()
    spread = FusedHalvingGridSearchCV(clf(), grid, **kwargs).fit(_X, _Y)
    assert {call[0].index for call in fused_calls(trained)} == {0, 1}
    assert spread.n_member_epochs_ == one.n_member_epochs_ == 3 * (4 * 2 + 2 * 2 + 1 * 4)
    assert_same_results(spread, one)


@pytest.mark.parametrize("config", [{"backend": "threading", "n_jobs": 2}, {"n_jobs": 2}],
                         ids=["threading", "n_jobs-only"])
def test_joblib_context_drives_the_stacks(config, trained):
    # n_jobs=None takes the context's; without a backend, the stacks still run in threads. The
    # scoring pass stays in this thread, where the members are.
    ref = FusedGridSearchCV(clf(), GRID, cv=3).fit(_X, _Y)
    assert all(call[4] for call in trained)
    trained.clear()
    search = FusedGridSearchCV(clf(), GRID, cv=3)
    with joblib.parallel_config(**config):
        search.fit(_X, _Y)
    assert [call[4] for call in fused_calls(trained)] == [False, False]
    assert [call[4] for call in plain_calls(trained)] == [True]
    assert search.n_member_epochs_ == N_FITS * 4
    assert_same_results(search, ref)


# ----------------------------------------------------------------------------------------------
# stacks are pure functions of picklable jobs


def test_stack_jobs_cross_process_boundaries(monkeypatch):
    # Every job and every result goes through pickling, as with a process or dask backend:
    # the results are the same, and the members come back on the CPU.
    cloudpickle = pytest.importorskip("cloudpickle")
    grid = [{"lr": [3e-3, 3e-2]},
            {"scoring": ["accuracy"], "early_stopping": [True], "patience": [2]}]
    kwargs = dict(cv=3, return_train_score=True)
    ref = FusedGridSearchCV(clf(), grid, **kwargs).fit(_X, _Y)
    halving_kwargs = dict(resource="max_epochs", min_resources=2, max_resources=4, factor=2,
                          cv=3)
    halving_ref = FusedHalvingGridSearchCV(clf(), {"lr": [3e-3, 3e-2]}, **halving_kwargs)
    halving_ref.fit(_X, _Y)

    original = workers.train_stack
    returned = []

    def remote(job):
        members, epochs = original(cloudpickle.loads(cloudpickle.dumps(job)))
        members = pickle.loads(pickle.dumps(members))
        returned.extend(members)
        return members, epochs

    monkeypatch.setattr(workers, "train_stack", remote)
    crossed = FusedGridSearchCV(clf(), grid, **kwargs).fit(_X, _Y)
    assert_same_results(crossed, ref)
    assert crossed.n_member_epochs_ == ref.n_member_epochs_
    assert {m.config.device for m in returned} == {torch.device("cpu")}
    assert {m.params.device for m in returned} == {torch.device("cpu")}
    halving = FusedHalvingGridSearchCV(clf(), {"lr": [3e-3, 3e-2]}, **halving_kwargs)
    halving.fit(_X, _Y)
    assert_same_results(halving, halving_ref)
    assert halving.n_member_epochs_ == halving_ref.n_member_epochs_ == 3 * (2 * 2 + 2)


def test_out_of_memory_stack_is_split_and_finishes(monkeypatch):
    # A device that holds at most two members: a larger stack raises CUDA's out-of-memory error
    # (as torch does on the GPU), the stack is trained in halves, and the search ends with the
    # results of a search that never ran out of memory. One member that does not fit raises.
    ref = FusedGridSearchCV(clf(), GRID, cv=3).fit(_X, _Y)
    original = StackedTrainer.fit
    attempts = []

    def fit(self, *args, **kwargs):
        attempts.append(len(self.members))
        if len(self.members) > 2:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(StackedTrainer, "fit", fit)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    split = FusedGridSearchCV(clf(), GRID, cv=3).fit(_X, _Y)
    assert_same_results(split, ref)
    assert split.n_member_epochs_ == ref.n_member_epochs_
    # Two stacks of six members: 6 -> 3 + 3 -> 2 + 1 each, and the refit (one member).
    assert sorted(attempts, reverse=True) == [6, 6, 3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 1]

    def out_of_memory(self, *args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(StackedTrainer, "fit", out_of_memory)
    with pytest.raises(torch.cuda.OutOfMemoryError, match="out of memory"):
        FusedGridSearchCV(clf(), GRID, cv=3, error_score="raise").fit(_X, _Y)


# ----------------------------------------------------------------------------------------------
# dask


@pytest.fixture(scope="module")
def dask_client():
    dask = pytest.importorskip("dask")
    distributed = pytest.importorskip("dask.distributed")
    # Workers fork from a server that has imported sknn_tune (and torch) once: spawning each
    # worker afresh imports torch in every one, tens of seconds on a busy machine.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["distributed", "sknn_tune"])
    multiprocessing.forkserver.ensure_running()
    with dask.config.set({"distributed.worker.multiprocessing-method": "forkserver"}), \
            distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                     dashboard_address=None, silence_logs=logging.ERROR) as cluster, \
            distributed.Client(cluster) as client:
        client.run(torch.set_num_threads, 1)  # as this process under pytest-xdist
        yield client


def _accuracy_in_process(estimator, X, y, pid):
    assert os.getpid() == pid, "scored in another process"
    return float(np.mean(estimator.predict(X) == y))


@pytest.mark.slow
def test_sklearn_grid_search_on_dask(dask_client, trained):
    ref = GridSearchCV(clf(), GRID, cv=3, return_train_score=True).fit(_X, _Y)
    trained.clear()
    search = GridSearchCV(clf(), GRID, cv=3, n_jobs=2, return_train_score=True)
    with joblib.parallel_backend("dask"):
        search.fit(_X, _Y)
    assert_same_results(search, ref)
    # The cv fits ran on the workers: this process only refitted the best candidate.
    assert [call[1:3] for call in trained] == [(1, 4)]


@pytest.mark.slow
def test_fused_grid_search_on_dask(dask_client, trained):
    # One candidate has its own scoring monitor: its scorer travels with its stack.
    grid = [GRID, {"scoring": ["accuracy"], "early_stopping": [True], "patience": [2]}]
    kwargs = dict(cv=3, n_jobs=2, return_train_score=True,
                  scoring=partial(_accuracy_in_process, pid=os.getpid()))
    ref = FusedGridSearchCV(clf(), grid, **kwargs).fit(_X, _Y)
    assert sorted(call[1] for call in fused_calls(trained)) == [3, 6, 6]
    assert ref.n_member_epochs_ == sum(call[2] for call in fused_calls(trained))
    trained.clear()
    search = FusedGridSearchCV(clf(), grid, **kwargs)
    with joblib.parallel_backend("dask"):
        search.fit(_X, _Y)
    assert_same_results(search, ref)
    assert search.n_member_epochs_ == ref.n_member_epochs_
    # The stacks trained on the workers; the scoring pass (in this process, see the scorer)
    # adopted every member: the refit is the only training here.
    assert fused_calls(trained) == []
    assert [call[1] for call in plain_calls(trained)] == [1]
    assert search.n_jobs == 2


@pytest.mark.slow
def test_fused_halving_on_dask(dask_client, trained):
    # Survivors go back to the workers (as CPU members) and continue there.
    grid = {"lr": [1e-3, 3e-3, 1e-2, 3e-2]}
    kwargs = dict(resource="max_epochs", min_resources=2, max_resources=8, factor=2, cv=3)
    ref = FusedHalvingGridSearchCV(clf(), grid, **kwargs).fit(_X, _Y)
    trained.clear()
    search = FusedHalvingGridSearchCV(clf(), grid, **kwargs)
    with joblib.parallel_backend("dask"):
        search.fit(_X, _Y)
    assert_same_results(search, ref)
    assert search.n_member_epochs_ == ref.n_member_epochs_ == 3 * (4 * 2 + 2 * 2 + 1 * 4)
    assert fused_calls(trained) == []
    assert [call[1] for call in plain_calls(trained)] == [1]


# ----------------------------------------------------------------------------------------------
# dask workers that die


def _dies_first(flag, train_stack):
    """``train_stack`` whose first call anywhere kills its worker process (and leaves ``flag``
    with the worker's pid): a nested function, so dask pickles it by value."""

    def train(job):
        torch.set_num_threads(1)  # a restarted worker has its default threads
        try:
            with open(flag, "x") as file:  # created by exactly one call
                file.write(str(os.getpid()))
        except FileExistsError:
            return train_stack(job)
        os._exit(1)  # as the nanny or the OOM killer stops a worker: no clean-up

    return train


def _tanh_stacks_die(deaths, train_stack):
    """``train_stack`` that kills its worker process whenever the stack's batch size is 16,
    recording each death as a file named by the worker's pid in the ``deaths`` folder."""

    def train(job):
        if job.config.batch_size == 16:
            (deaths / str(os.getpid())).touch()
            os._exit(1)
        return train_stack(job)

    return train


def _fit_on_dask(search, seconds=120):
    """Fit ``search`` under the dask backend in a thread, so that a hang fails the test rather
    than blocking it; the error the fit raised, or None."""
    outcome = []

    def fit():
        try:
            with joblib.parallel_backend("dask"):
                search.fit(_X, _Y)
        except Exception as error:
            outcome.append(error)
        else:
            outcome.append(None)

    thread = threading.Thread(target=fit, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"the search still waits after {seconds} s"
    return outcome[0]


@pytest.fixture
def restored_workers(dask_client):
    """The module's client; afterwards two workers again, one torch thread each."""
    yield dask_client
    dask_client.wait_for_workers(2, timeout=60)
    dask_client.run(torch.set_num_threads, 1)


@pytest.mark.slow
def test_worker_lost_while_training_a_stack_is_recovered(restored_workers, trained, monkeypatch,
                                                         tmp_path):
    # The scheduler runs the lost stack again on another worker: the same results, as if
    # nothing had happened, and still nothing trained in this process but the refit.
    ref = FusedGridSearchCV(clf(), GRID, cv=3, return_train_score=True).fit(_X, _Y)
    trained.clear()
    flag = tmp_path / "died"
    monkeypatch.setattr(workers, "train_stack", _dies_first(flag, workers.train_stack))
    search = FusedGridSearchCV(clf(), GRID, cv=3, return_train_score=True)
    assert _fit_on_dask(search) is None
    died = int(flag.read_text())
    assert died != os.getpid()
    assert died not in restored_workers.run(os.getpid).values()  # a worker, now replaced
    assert_same_results(search, ref)
    assert search.n_member_epochs_ == ref.n_member_epochs_ == N_FITS * 4
    assert fused_calls(trained) == []
    assert [call[1] for call in plain_calls(trained)] == [1]


@pytest.mark.slow
def test_stack_that_keeps_killing_workers_fails_clearly(restored_workers, monkeypatch, tmp_path):
    # Past dask's allowed failures, the search stops with an error that names the stack, the
    # worker and the remedies; joblib's own dask backend would wait for the stack forever.
    distributed = pytest.importorskip("distributed")
    import dask

    monkeypatch.setattr(workers, "train_stack", _tanh_stacks_die(tmp_path, workers.train_stack))
    search = FusedGridSearchCV(clf(), GRID, cv=3)
    error = _fit_on_dask(search)
    assert isinstance(error, RuntimeError)
    assert isinstance(error.__cause__, distributed.KilledWorker)
    allowed = dask.config.get("distributed.scheduler.allowed-failures")
    message = str(error)
    assert re.match(r"Fused stack [12] of 2 \(6 candidate x fold fits: hidden_layer_sizes=\(8,\), "
                    r"activation='relu', batch_norm=False, optimizer='adam', batch_size=16\) was "
                    rf"not trained: {allowed + 1} dask workers died while running it, the last one "
                    r"tcp://", message), message
    assert error.__cause__.last_worker.address in message
    for remedy in ("memory", "max_members", f"allowed-failures={allowed}"):
        assert remedy in message
    # Every attempt ran in a worker of its own (each death takes one), none in this process.
    assert len(list(tmp_path.iterdir())) == allowed + 1
    assert not (tmp_path / str(os.getpid())).exists()
    assert not hasattr(search, "cv_results_")


@pytest.mark.slow
def test_self_tuning_estimator_on_dask(dask_client):
    # Its searches' stacks train on the workers; the results are the local ones.
    from sknn_tune import MLPClassifierCV

    params = {"n_iter": 3, "n_fine": 2, "cv": 3, "max_epochs": 6, "random_state": 0,
              "device": "cpu"}
    ref = MLPClassifierCV(**params).fit(_X, _Y)
    with joblib.parallel_backend("dask"):
        search = MLPClassifierCV(**params, n_jobs=2).fit(_X, _Y)
    np.testing.assert_array_equal(search.cv_results_["mean_test_score"],
                                  ref.cv_results_["mean_test_score"])
    assert search.best_params_ == ref.best_params_
    np.testing.assert_array_equal(search.predict_proba(_X), ref.predict_proba(_X))
