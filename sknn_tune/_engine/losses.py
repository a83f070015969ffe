"""Loss registry: per-sample loss and its gradient with respect to the network's raw output.

``value_and_grad(out, target)`` takes ``(M, B, k)`` outputs and targets and returns the per-sample loss
``(M, B)`` and ``d loss_i / d out`` ``(M, B, k)``. ``link`` maps raw outputs to predictions
(probabilities for the softmax and sigmoid losses). Classification targets arrive one-hot; multilabel
targets (the sigmoid losses) as 0/1 indicator rows.
"""

from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F

HUBER_DELTA = 1.0


class Loss(NamedTuple):
    value_and_grad: Callable
    link: Callable


# Up to this many classes a CPU log-softmax runs over the classes as the rows' dimension
# (``(M, k, B)``, the batch contiguous): torch's CPU kernel along a last dimension of a few
# elements is 3-9x slower (a (25, 128, 4) batch: 181 -> 20 us). Either way a member's numbers
# do not depend on the members beside it.
FEW_CLASSES = 10


def _softmax_log_loss(out, target):
    if out.device.type == "cpu" and out.shape[-1] <= FEW_CLASSES:
        log_p = torch.log_softmax(out.transpose(-1, -2), dim=-2).transpose(-1, -2)
    else:
        log_p = torch.log_softmax(out, dim=-1)
    return -(target * log_p).sum(-1), torch.exp(log_p) - target


def _softmax_squared_error(out, target):
    p = torch.softmax(out, dim=-1)
    residual = p - target
    k = out.shape[-1]
    g = residual / k  # d/dp of 0.5 * mean_k (p - t)^2
    # Back through the softmax Jacobian: p * (g - <p, g>).
    grad = p * (g - (p * g).sum(-1, keepdim=True))
    return 0.5 * (residual * residual).mean(-1), grad


def _sigmoid_log_loss(out, target):
    # Binary cross-entropy of each label, summed over the labels (scikit-learn's multilabel MLP
    # loss), computed from the logits so that it stays finite where the sigmoid saturates.
    value = F.binary_cross_entropy_with_logits(out, target, reduction="none").sum(-1)
    return value, torch.sigmoid(out) - target


def _sigmoid_squared_error(out, target):
    p = torch.sigmoid(out)
    residual = p - target
    # d/dp of 0.5 * mean_k (p - t)^2, back through the sigmoid: p * (1 - p).
    return 0.5 * (residual * residual).mean(-1), residual * p * (1.0 - p) / out.shape[-1]


def _squared_error(out, target):
    residual = out - target
    return 0.5 * (residual * residual).mean(-1), residual / out.shape[-1]


def _absolute_error(out, target):
    residual = out - target
    return residual.abs().mean(-1), torch.sign(residual) / out.shape[-1]


def _huber(out, target):
    residual = out - target
    grad = residual.clamp(-HUBER_DELTA, HUBER_DELTA) / out.shape[-1]
    value = F.huber_loss(out, target, reduction="none", delta=HUBER_DELTA).mean(-1)
    return value, grad


def _sklearn_squared_error(out, target):
    # scikit-learn's MLPRegressor: it reports 0.5 * the mean over outputs of the squared error,
    # but steps along out - target, the gradient of 0.5 * their sum (the two agree for one output)
    residual = out - target
    return 0.5 * (residual * residual).mean(-1), residual


def _poisson(out, target):
    # The half Poisson deviance of exp(out), summed over the outputs (scikit-learn's MLPRegressor
    # with loss='poisson', its constant xlogy(y, y) - y included), from the log-mean ``out``.
    mean = torch.exp(out)
    value = (torch.special.xlogy(target, target) - target * out - target + mean).sum(-1)
    return value, mean - target


def _softmax(out):
    return torch.softmax(out, dim=-1)


def _sigmoid(out):
    return torch.sigmoid(out)


def _identity(out):
    return out


LOSSES = {
    "softmax_log_loss": Loss(_softmax_log_loss, _softmax),
    "softmax_squared_error": Loss(_softmax_squared_error, _softmax),
    "sigmoid_log_loss": Loss(_sigmoid_log_loss, _sigmoid),
    "sigmoid_squared_error": Loss(_sigmoid_squared_error, _sigmoid),
    "squared_error": Loss(_squared_error, _identity),
    "absolute_error": Loss(_absolute_error, _identity),
    "huber": Loss(_huber, _identity),
    "sklearn_squared_error": Loss(_sklearn_squared_error, _identity),
    "poisson": Loss(_poisson, torch.exp),
}
