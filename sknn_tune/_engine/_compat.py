"""Every private torch call of the engine, each beside a public-API fallback.

The fast paths are torch's own kernels that are not public API: the fused optimizer kernels
(``torch._fused_adam_``, ``torch._fused_sgd_``: one pass over the parameters instead of a dozen
elementwise ops), its ``torch._foreach_*`` arithmetic, and ATen's fused activation backward
kernels (``torch.ops.aten.*_backward``, one op instead of three on the hot path). Each kernel here
has a fallback written with public tensor ops only, following ``torch.optim``'s single-tensor
implementations and the derivatives' closed forms, so a torch that renames or drops a private
name still trains the same numbers (to float rounding).

The fast path is used when torch has the name (checked once, at import). The fallback is forced
by the environment variable ``SKNN_TUNE_TORCH_FALLBACK=1`` (read at import) or, for tests, by
:func:`forced_fallback`.
"""

import math
import os
from collections.abc import Callable
from contextlib import contextmanager

import torch

_aten = torch.ops.aten
_FALLBACK_ENV = "SKNN_TUNE_TORCH_FALLBACK"
_forced = os.environ.get(_FALLBACK_ENV, "").strip() not in ("", "0")


def _has_aten(name):
    return hasattr(_aten, name)


class Kernel:
    """One operation with a private-torch fast path and a public-API fallback.

    Parameters
    ----------
    fast : callable
        The implementation on private torch names.
    fallback : callable
        The same operation on public tensor ops only; same arguments.
    available : bool
        Whether this torch has what ``fast`` calls.
    """

    def __init__(self, fast: Callable, fallback: Callable, available: bool):
        self.fast, self.fallback, self.available = fast, fallback, available

    def __call__(self, *args, **kwargs):
        chosen = self.fast if self.available and not _forced else self.fallback
        return chosen(*args, **kwargs)


def fallback_forced():
    """Whether every kernel runs its public-API fallback."""
    return _forced


@contextmanager
def forced_fallback(force=True):
    """Run every kernel's fallback (``force=True``) or fast path where available, inside the block.

    Examples
    --------
    >>> from sknn_tune._engine import _compat
    >>> with _compat.forced_fallback():
    ...     _compat.fallback_forced()
    True
    """
    global _forced
    before, _forced = _forced, bool(force)
    try:
        yield
    finally:
        _forced = before


# ------------------------------------------------------------------------------------------------
# optimizer updates, in place on lists of member rows (``steps``: each row's update count, already
# counting this update, float32 as torch.optim keeps it)


def _fused_sgd(params, grads, momentum_buffers, lr, momentum, nesterov):
    # A zero momentum buffer makes the first step's buffer the gradient, as torch.optim's.
    torch._fused_sgd_(params, grads, momentum_buffers if momentum else [], weight_decay=0.0,
                      momentum=momentum, lr=lr, dampening=0.0, nesterov=nesterov, maximize=False,
                      is_first_step=False)


def _public_sgd(params, grads, momentum_buffers, lr, momentum, nesterov):
    # torch.optim.SGD's single-tensor update (no dampening, no weight decay: the trainer adds it).
    for i, (param, grad) in enumerate(zip(params, grads)):
        if momentum:
            buffer = momentum_buffers[i].mul_(momentum).add_(grad)
            grad = grad.add(buffer, alpha=momentum) if nesterov else buffer
        param.add_(grad, alpha=-lr)


def _fused_adam(params, grads, exp_avgs, exp_avg_sqs, steps, lr, beta1, beta2, eps):
    torch._fused_adam_(params, grads, exp_avgs, exp_avg_sqs, [], steps, lr=lr, beta1=beta1,
                       beta2=beta2, weight_decay=0.0, eps=eps, amsgrad=False, maximize=False)


def _public_adam(params, grads, exp_avgs, exp_avg_sqs, steps, lr, beta1, beta2, eps):
    # torch.optim.Adam's single-tensor update, with the step count kept on the device (no host
    # read per step): the bias corrections are tensors in the parameters' dtype.
    for param, grad, exp_avg, exp_avg_sq, step in zip(params, grads, exp_avgs, exp_avg_sqs, steps):
        exp_avg.lerp_(grad, 1.0 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1.0 - beta2)
        step = step.to(param.dtype)
        bias_correction1 = 1.0 - torch.pow(beta1, step)
        bias_correction2_sqrt = (1.0 - torch.pow(beta2, step)).sqrt()
        denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
        param.addcdiv_(exp_avg, denom * (bias_correction1 / -lr))


def _foreach_adagrad(params, grads, sums, lr, eps):
    # torch.optim.Adagrad's foreach arithmetic (its fused kernel is CPU-only); the gradient rows
    # are scratch, so they are scaled in place.
    torch._foreach_addcmul_(sums, grads, grads, value=1.0)
    std = torch._foreach_sqrt(sums)
    torch._foreach_add_(std, eps)
    torch._foreach_mul_(grads, -lr)
    torch._foreach_addcdiv_(params, grads, std)


def _public_adagrad(params, grads, sums, lr, eps):
    # torch.optim.Adagrad's single-tensor update (no lr decay).
    for param, grad, total in zip(params, grads, sums):
        total.addcmul_(grad, grad, value=1.0)
        param.addcdiv_(grad, total.sqrt().add_(eps), value=-lr)


def _foreach_rmsprop(params, grads, square_avgs, lr, rho, eps):
    # torch has no fused RMSprop; this is torch.optim.RMSprop's foreach arithmetic.
    torch._foreach_mul_(square_avgs, rho)
    torch._foreach_addcmul_(square_avgs, grads, grads, value=1.0 - rho)
    denom = torch._foreach_sqrt(square_avgs)
    torch._foreach_add_(denom, eps)
    torch._foreach_addcdiv_(params, grads, denom, value=-lr)


def _public_rmsprop(params, grads, square_avgs, lr, rho, eps):
    # torch.optim.RMSprop's single-tensor update (not centered, no momentum).
    for param, grad, square_avg in zip(params, grads, square_avgs):
        square_avg.mul_(rho).addcmul_(grad, grad, value=1.0 - rho)
        param.addcdiv_(grad, square_avg.sqrt().add_(eps), value=-lr)


_HAS_FOREACH = all(hasattr(torch, f"_foreach_{op}")
                   for op in ("addcmul_", "sqrt", "add_", "mul_", "addcdiv_"))

sgd_ = Kernel(_fused_sgd, _public_sgd, hasattr(torch, "_fused_sgd_"))
adam_ = Kernel(_fused_adam, _public_adam, hasattr(torch, "_fused_adam_"))
adagrad_ = Kernel(_foreach_adagrad, _public_adagrad, _HAS_FOREACH)
rmsprop_ = Kernel(_foreach_rmsprop, _public_rmsprop, _HAS_FOREACH)


# ------------------------------------------------------------------------------------------------
# activation backward passes: the upstream gradient ``g`` times da/dz, from the pre-activation
# ``z`` or the output ``a``

_GELU_PDF_SCALE = 1.0 / math.sqrt(2.0 * math.pi)

relu_backward = Kernel(lambda g, z: _aten.threshold_backward(g, z, 0),
                       lambda g, z: torch.where(z > 0, g, 0.0),
                       _has_aten("threshold_backward"))


leaky_relu_backward = Kernel(lambda g, z, slope: _aten.leaky_relu_backward(g, z, slope, False),
                             lambda g, z, slope: torch.where(z > 0, g, g * slope),
                             _has_aten("leaky_relu_backward"))
# ELU with alpha 1, from its output: da/dz = a + 1 where a <= 0, else 1.
elu_backward = Kernel(lambda g, a: _aten.elu_backward(g, 1.0, 1, 1, True, a),
                      lambda g, a: torch.where(a <= 0, g * (a + 1.0), g),
                      _has_aten("elu_backward"))
# Exact GELU z * Phi(z): da/dz = Phi(z) + z * phi(z).
gelu_backward = Kernel(lambda g, z: _aten.gelu_backward(g, z),
                       lambda g, z: g * (0.5 * (1.0 + torch.erf(z * math.sqrt(0.5)))
                                         + z * torch.exp(-0.5 * z * z) * _GELU_PDF_SCALE),
                       _has_aten("gelu_backward"))
tanh_backward = Kernel(lambda g, a: _aten.tanh_backward(g, a), lambda g, a: g * (1.0 - a * a),
                       _has_aten("tanh_backward"))
sigmoid_backward = Kernel(lambda g, a: _aten.sigmoid_backward(g, a),
                          lambda g, a: g * (1.0 - a) * a, _has_aten("sigmoid_backward"))
