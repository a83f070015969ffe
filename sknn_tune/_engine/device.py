"""Choosing the device and the compute dtype."""

import os

import torch

# What device='auto' means, when set: the test suite's --device option sets it, and so may a user
# who wants every 'auto' estimator of a program on one device.
AUTO_DEVICE_VARIABLE = "SKNN_TUNE_DEVICE"


def resolve_device(device):
    """``'auto'`` -> the ``SKNN_TUNE_DEVICE`` environment variable's device when set, else CUDA
    when available, else CPU; anything else must name a usable device."""
    if device == "auto":
        chosen = os.environ.get(AUTO_DEVICE_VARIABLE)
        if chosen:
            return resolve_device(chosen)
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"device={device!r} is not a valid torch device; use 'auto', 'cpu', 'cuda' or 'cuda:N'."
        ) from exc
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device={device!r} was requested but CUDA is not available here; "
                             "use device='auto' or 'cpu'.")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ValueError(f"device={device!r} was requested but only "
                             f"{torch.cuda.device_count()} CUDA device(s) are visible.")
    return resolved


def compute_dtype(device, input_dtype, requested=None):
    """``requested`` ('float32' / 'float64') when given; else float32, on every device.

    Training a network needs no float64: float32 halves the time of the matrix products on a
    CPU and the memory everywhere, with the same accuracy (``benchmarks/bench_accuracy.py``).
    ``input_dtype`` does not change the compute dtype; outputs follow it (see
    ``_BaseMLP._predict_outputs``)."""
    if requested is not None:
        return getattr(torch, requested)
    return torch.float32


def continuing_placement(device, dtype, model_device, model_dtype):
    """``(device, dtype)`` a fitted model continues training in (``warm_start``, ``partial_fit``).

    Where the estimator's ``device`` resolves now: a model loaded or unpickled on the CPU moves
    to the GPU that ``'auto'`` finds. On its own device the model keeps its dtype; moved, it keeps
    it too unless the estimator's ``dtype`` names another. A ``device`` that is not usable here
    (a model saved with ``device='cuda'``, loaded without one) leaves it where it is.
    """
    try:
        device = resolve_device(device)
    except ValueError:
        return model_device, model_dtype
    if device == model_device:
        return model_device, model_dtype
    return device, model_dtype if dtype is None else getattr(torch, dtype)


def usable_device(device):
    """``device`` if it is usable here, else CPU (a model pickled on a GPU machine, loaded without)."""
    if device.type == "cuda" and not torch.cuda.is_available():
        return torch.device("cpu")
    return device


def available_devices():
    """The devices a fused search spreads its stacks over: every visible CUDA device, in order.

    Empty without CUDA (stacks then train where the estimator's ``device`` resolves). A dask or
    ray worker calls this for itself, so each machine uses the GPUs it sees (``CUDA_VISIBLE_DEVICES``
    narrows them). Tests replace it to spread over stand-ins for GPUs.
    """
    if not torch.cuda.is_available():
        return []
    return [torch.device("cuda", i) for i in range(torch.cuda.device_count())]
