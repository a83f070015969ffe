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
