import os
import sys
from dataclasses import dataclass

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


@pytest.fixture
def test_device():
    """The device of this run (``--device``), as a torch.device."""
    return torch.device(os.environ["SKNN_TUNE_DEVICE"])


# ----------------------------------------------------------------------------------------------
# counting training (test_search.py and test_optuna.py keep richer logs of their own)

FUSION_MODULE = "sknn_tune.search._fusion"
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
