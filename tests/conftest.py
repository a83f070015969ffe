import os

import pytest
import torch

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


@pytest.fixture
def test_device():
    """The device of this run (``--device``), as a torch.device."""
    return torch.device(os.environ["SKNN_TUNE_DEVICE"])
