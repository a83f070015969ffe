"""device='auto' follows SKNN_TUNE_DEVICE (what the test suite's --device option sets)."""

import pytest
import torch

from sknn_tune._engine.device import AUTO_DEVICE_VARIABLE, resolve_device


def test_auto_follows_the_variable(monkeypatch):
    monkeypatch.setenv(AUTO_DEVICE_VARIABLE, "cpu")
    assert resolve_device("auto") == torch.device("cpu")
    monkeypatch.delenv(AUTO_DEVICE_VARIABLE)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_a_cuda_variable_without_cuda_is_a_clear_error(monkeypatch):
    monkeypatch.setenv(AUTO_DEVICE_VARIABLE, "cuda")
    with pytest.raises(ValueError, match="CUDA is not available"):
        resolve_device("auto")


def test_the_run_device_is_set(test_device):
    assert resolve_device("auto") == test_device


# ----------------------------------------------------------------------------------------------
# concurrent stacks on one GPU share its free memory (simulated: mem_get_info and devices faked)

def _cuda_planned(device, n_jobs, gpus, monkeypatch):
    from dataclasses import replace

    import numpy as np
    from joblib import parallel_config

    from sknn_tune import MLPRegressor
    from sknn_tune._engine import device as engine_device
    from sknn_tune._fused.planners import CVPlanner, spread_request
    from sknn_tune._fused.session import Session

    free = 2**30
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (free, 2 * free))
    monkeypatch.setattr(engine_device, "available_devices",
                        lambda: [torch.device("cuda", i) for i in range(gpus)])
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 4)), rng.normal(size=60)
    estimator = MLPRegressor((8,), max_epochs=1, device="cpu")
    with parallel_config(backend="threading", n_jobs=n_jobs):
        session = Session(CVPlanner(estimator, X, y, {}))
    planned = session.planner.plan({}, 0, np.arange(60))
    plan = replace(planned.plan, config=replace(planned.plan.config,
                                                device=torch.device("cuda", 0)))
    return session, planned._replace(plan=plan, spread=spread_request(device))


@pytest.mark.parametrize("device, n_jobs, gpus, concurrent", [
    ("auto", 1, 1, 1),  # one stack at a time: half the free memory
    ("auto", 4, 1, 4),  # four threads on one GPU: an eighth each
    ("auto", 4, 2, 2),  # four threads over two GPUs: two stacks on each
    ("cuda:0", 4, 2, 4),  # a named GPU takes every concurrent stack
])
def test_concurrent_stacks_share_the_free_gpu_memory(device, n_jobs, gpus, concurrent,
                                                     monkeypatch):
    alone, planned = _cuda_planned(device, 1, 1, monkeypatch)
    size_alone = alone._capacity(planned)
    session, planned = _cuda_planned(device, n_jobs, gpus, monkeypatch)
    assert session.workers.stacks_per_device(planned.spread is not None) == concurrent
    assert session._capacity(planned) == pytest.approx(size_alone / concurrent, abs=1)


# ----------------------------------------------------------------------------------------------
# a loaded or unpickled model continues where its estimator's device resolves now


def test_continuing_goes_where_device_resolves_now(monkeypatch):
    from sknn_tune._engine import device as engine_device

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    # CUDA usable (faked), 'auto' not pinned: a CPU model moves to the GPU in its dtype ...
    monkeypatch.delenv(AUTO_DEVICE_VARIABLE, raising=False)
    monkeypatch.setattr(engine_device.torch.cuda, "is_available", lambda: True)
    assert engine_device.continuing_placement("auto", None, cpu, torch.float64) == (
        cuda, torch.float64)
    # ... or in the one the estimator asks for; on its own device it keeps its dtype.
    assert engine_device.continuing_placement("auto", "float32", cpu, torch.float64) == (
        cuda, torch.float32)
    assert engine_device.continuing_placement("cpu", None, cpu, torch.float64) == (
        cpu, torch.float64)
    # SKNN_TUNE_DEVICE is what 'auto' means when set.
    monkeypatch.setenv(AUTO_DEVICE_VARIABLE, "cpu")
    assert engine_device.continuing_placement("auto", None, cpu, torch.float64) == (
        cpu, torch.float64)
    # A device not usable here (saved with 'cuda', loaded without a GPU): stays where it is.
    monkeypatch.setattr(engine_device.torch.cuda, "is_available", lambda: False)
    assert engine_device.continuing_placement("cuda", None, cpu, torch.float64) == (
        cpu, torch.float64)


@pytest.mark.parametrize("how", ["partial_fit", "warm_start"])
def test_continued_training_moves_the_model(how, monkeypatch):
    import numpy as np

    from sknn_tune import MLPRegressor, _base

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 3)), rng.normal(size=40)
    reg = MLPRegressor((4,), max_epochs=2, random_state=0, device="cpu", dtype="float64").fit(X, y)
    assert reg.model_.config.dtype == torch.float64
    asked = []

    def placement(*args):  # stands in for a GPU: the same CPU, in float32
        asked.append(args)
        return torch.device("cpu"), torch.float32

    monkeypatch.setattr(_base, "continuing_placement", placement)
    if how == "warm_start":
        reg.set_params(warm_start=True).fit(X, y)
    else:
        reg.partial_fit(X, y)
    assert asked == [("cpu", "float64", torch.device("cpu"), torch.float64)]
    assert reg.model_.config.dtype == torch.float32
    assert reg.model_.params.dtype == torch.float32
    assert reg.predict(X).dtype == np.float64  # the input's, as scikit-learn's outputs


@pytest.mark.parametrize("dtype, expected", [(None, torch.float64), ("float64", torch.float64),
                                             ("float32", torch.float32)])
def test_load_on_a_gpu_keeps_the_saved_dtype(dtype, expected, monkeypatch):
    # load(device='cuda') of a float64 model keeps float64 (nothing trained is rounded away:
    # dtype=None is how a file from before float32 became the default reads) unless the
    # estimator's dtype names another. The 'meta' device stands in for the GPU.
    import io

    import numpy as np

    from sknn_tune import MLPRegressor, _persistence, load, save

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 3)), rng.normal(size=40)
    reg = MLPRegressor((4,), max_epochs=2, random_state=0, device="cpu", dtype="float64").fit(X, y)
    reg.dtype = dtype  # the estimator's dtype as saved
    assert reg.model_.config.dtype == torch.float64
    file = io.BytesIO()
    save(reg, file)
    file.seek(0)
    on_cpu = load(file)
    assert on_cpu.model_.config.dtype == expected
    file.seek(0)
    monkeypatch.setattr(_persistence, "resolve_device", lambda device: torch.device("meta"))
    loaded = load(file, device="cuda")
    assert loaded.model_.config.device == torch.device("meta")
    assert loaded.model_.config.dtype == expected
    assert loaded.model_.params.dtype == expected
    assert loaded.model_.tensors.steps.dtype == torch.float32
    assert loaded.model_.tensors.seeds.dtype == torch.int64
