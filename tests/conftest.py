import os
import sys
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from sknn_tune._engine.trainer import StackedTrainer

# Two pytest-xdist workers on two cores: one torch thread each, or the OpenMP pools of the two
# processes fight over the cores and tiny ops take milliseconds instead of microseconds.
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)


def pytest_addoption(parser):
    parser.addoption(
        "--device", default=os.environ.get("SKNN_TUNE_TEST_DEVICE", "cpu"),
        help="device the tests' device='auto' estimators and stacks run on: cpu (default) or "
             "cuda; sets SKNN_TUNE_DEVICE for the run")


def pytest_configure(config):
    # Every worker runs this too: 'auto' means the chosen device in every process of the run.
    device = config.getoption("--device")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise pytest.UsageError(f"--device {device}: CUDA is not available here")
    os.environ["SKNN_TUNE_DEVICE"] = device
    config.addinivalue_line(
        "markers", "cpu_only: compares with a CPU float64 reference bit for bit or to 1e-6 "
                   "(scikit-learn's MLP, skorch, torch.optim) or checks CPU behaviour: skipped "
                   "when --device is not cpu")


def pytest_collection_modifyitems(config, items):
    if run_device().type == "cpu":
        return
    skip = pytest.mark.skip(reason=f"CPU-only test; this run's device is {run_device()}")
    for item in items:
        if item.get_closest_marker("cpu_only"):
            item.add_marker(skip)


@pytest.fixture
def test_device():
    """The device of this run (``--device``), as a torch.device."""
    return run_device()


# ----------------------------------------------------------------------------------------------
# tolerances: the CPU is exact, a GPU within the fusion-invariance tolerance (docs: How it works)

# Fusion invariance on CUDA: float32 kernels of a stack and of one member reduce in
# other orders, so a member trained in a stack agrees with it trained alone to about 1e-3.
CUDA_TRAINING_TOLERANCE = 1e-3


def run_device():
    """The device ``device='auto'`` means in this run (``--device``; set by pytest_configure,
    before the test modules are imported)."""
    return torch.device(os.environ.get("SKNN_TUNE_DEVICE", "cpu"))


def training_tolerance(cpu=0.0):
    """Absolute tolerance between two trainings of the same member (stacked or alone, fused or
    sequential search): ``cpu`` on the CPU (0: bitwise), the fusion-invariance tolerance
    (docs: How it works) on a GPU."""
    return cpu if run_device().type == "cpu" else max(cpu, CUDA_TRAINING_TOLERANCE)


def assert_same_training(a, b, cpu_atol=0.0, err_msg=""):
    """``a`` and ``b`` (arrays or tensors: weights, scores, predictions) come from the same
    training: equal to ``cpu_atol`` on the CPU (bit for bit by default), within the design's
    tolerance on a GPU (relative as well, for large values such as losses)."""
    a, b = (x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
            for x in (a, b))
    atol = training_tolerance(cpu_atol)
    if atol == 0:
        np.testing.assert_array_equal(a, b, err_msg=err_msg)
    else:
        rtol = 0 if run_device().type == "cpu" else CUDA_TRAINING_TOLERANCE
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, equal_nan=True, err_msg=err_msg)


def assert_same_history(a, b):
    """Two trainings' ``history_`` tables: the same columns, index and dtypes; the floating-point
    columns compared with ``assert_same_training`` (the CPU: every bit), the others exactly."""
    assert list(a.columns) == list(b.columns) and a.index.equals(b.index)
    for column in a.columns:
        assert a[column].dtype == b[column].dtype, column
        if np.issubdtype(a[column].dtype, np.floating):
            assert_same_training(a[column], b[column], err_msg=column)
        else:
            np.testing.assert_array_equal(a[column], b[column], err_msg=column)


# One fitted model's numbers computed two ways (the engine and torch.nn layers, skorch, numpy by
# hand or a scikit-learn metric; one batch or another) on a GPU: the engine's float32 rounding.
CUDA_MODEL_RTOL, CUDA_MODEL_ATOL = 1e-5, 1e-6


def model_tolerance(cpu=0.0):
    """Relative tolerance between one fitted model's numbers computed two ways: ``cpu`` on the
    CPU, float32 rounding on a GPU (where the engine computes in float32)."""
    return cpu if run_device().type == "cpu" else max(cpu, CUDA_MODEL_RTOL)


def assert_same_model(actual, expected, cpu_rtol=0.0, cpu_atol=0.0, err_msg=""):
    """``actual`` and ``expected`` are one fitted model's outputs (or statistics) computed two
    ways: to ``cpu_rtol`` / ``cpu_atol`` on the CPU (bit for bit by default), to float32 rounding
    on a GPU."""
    actual, expected = (x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
                        for x in (actual, expected))
    if run_device().type != "cpu":
        cpu_rtol, cpu_atol = max(cpu_rtol, CUDA_MODEL_RTOL), max(cpu_atol, CUDA_MODEL_ATOL)
    if cpu_rtol == cpu_atol == 0:
        np.testing.assert_array_equal(actual, expected, err_msg=err_msg)
    else:
        np.testing.assert_allclose(actual, expected, rtol=cpu_rtol, atol=cpu_atol, err_msg=err_msg)




# ----------------------------------------------------------------------------------------------
# counting training (test_search.py and test_optuna.py keep richer logs of their own)

FUSION_MODULE = "sknn_tune._fused.jobs"
ESTIMATOR_MODULE = "sknn_tune._base"


@dataclass
class Training:
    fused: bool  # from the fused stacks; else an estimator's own fit
    members: int


class TrainingLog(list):
    def fused(self):
        return sum(t.members for t in self if t.fused)

    def plain(self):
        return sum(t.members for t in self if not t.fused)


@pytest.fixture
def trained(monkeypatch):
    """Every ``StackedTrainer.fit`` call, with who called it and how many members it trained."""
    log = TrainingLog()
    original = StackedTrainer.fit

    def fit(self, *args, **kwargs):
        caller = sys._getframe(1).f_globals["__name__"]
        assert caller in (FUSION_MODULE, ESTIMATOR_MODULE), caller
        log.append(Training(caller == FUSION_MODULE, len(self.members)))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(StackedTrainer, "fit", fit)
    return log
