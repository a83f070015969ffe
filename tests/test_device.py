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
    from sknn_tune.search import _fusion

    free = 2**30
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (free, 2 * free))
    monkeypatch.setattr(_fusion.engine_device, "available_devices",
                        lambda: [torch.device("cuda", i) for i in range(gpus)])
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 4)), rng.normal(size=60)
    estimator = MLPRegressor((8,), max_epochs=1, device="cpu")
    with parallel_config(backend="threading", n_jobs=n_jobs):
        fusion = _fusion.Fusion(estimator, X, y, {})
    planned = fusion._plan({}, 0, np.arange(60))
    plan = replace(planned.plan, config=replace(planned.plan.config,
                                                device=torch.device("cuda", 0)))
    return fusion, planned._replace(plan=plan, spread=_fusion.spread_request(device))


@pytest.mark.parametrize("device, n_jobs, gpus, concurrent", [
    ("auto", 1, 1, 1),  # one stack at a time: half the free memory
    ("auto", 4, 1, 4),  # four threads on one GPU: an eighth each
    ("auto", 4, 2, 2),  # four threads over two GPUs: two stacks on each
    ("cuda:0", 4, 2, 4),  # a named GPU takes every concurrent stack
])
def test_concurrent_stacks_share_the_free_gpu_memory(device, n_jobs, gpus, concurrent,
                                                     monkeypatch):
    alone, planned = _cuda_planned(device, 1, 1, monkeypatch)
    size_alone = alone._stack_size([planned])
    fusion, planned = _cuda_planned(device, n_jobs, gpus, monkeypatch)
    assert fusion._stacks_per_device(planned.spread is not None) == concurrent
    assert fusion._stack_size([planned]) == pytest.approx(size_alone / concurrent, abs=1)
