"""Optimizer registry: in-place update rules over lists of member rows.

``torch.optim`` takes one learning rate per parameter group; members need one each. The trainer
therefore groups members whose hyperparameters are equal (for the current epoch) and calls a rule
once per group with that group's rows of the flat ``(M, P)`` parameter, gradient and state
matrices. The rules are ``torch.optim``'s own fused CPU/CUDA kernels (``torch._fused_adam_`` and
``_fused_sgd_``: one pass over the parameters instead of a dozen elementwise ops) or its
``_foreach`` arithmetic where torch has no fused kernel for every device; the tests compare
trajectories with ``torch.optim``. Every member row is updated by the same kernel on its own, whatever
the group it sits in, so a member trains the same alone or beside others (fusion invariance).

L2 weight decay is added to the gradient by the trainer (as ``torch.optim``'s ``weight_decay``
does) and decoupled decay (AdamW) applied by the trainer before the rule, both to the weight
matrices only.
"""

from collections.abc import Callable
from typing import NamedTuple

import torch

EPS_ADAGRAD = 1e-10
EPS = 1e-8


class Optimizer(NamedTuple):
    state_names: tuple  # state tensors, each shaped like the parameters, starting at zero
    update: Callable  # (params, grads, state, steps, lr, hyper) -> None, in place on row lists
    hyper_names: tuple = ()  # the member hyperparameters the rule reads
    decoupled_weight_decay: bool = False


def _sgd_rule(momentum, nesterov):
    def update(params, grads, state, steps, lr, hyper):
        # A zero momentum buffer makes the first step's buffer the gradient, as torch.optim's.
        torch._fused_sgd_(params, grads, state["momentum_buffer"] if momentum else [],
                          weight_decay=0.0, momentum=hyper["momentum"] if momentum else 0.0,
                          lr=lr, dampening=0.0, nesterov=nesterov, maximize=False,
                          is_first_step=False)

    return update


def _adagrad(params, grads, state, steps, lr, hyper):
    # torch.optim.Adagrad's foreach arithmetic (its fused kernel is CPU-only); the gradient
    # rows are scratch, so they are scaled in place.
    total = state["sum"]
    torch._foreach_addcmul_(total, grads, grads, value=1.0)
    std = torch._foreach_sqrt(total)
    torch._foreach_add_(std, EPS_ADAGRAD)
    torch._foreach_mul_(grads, -lr)
    torch._foreach_addcdiv_(params, grads, std)


def _rmsprop(params, grads, state, steps, lr, hyper):
    # torch has no fused RMSprop; this is torch.optim.RMSprop's foreach arithmetic.
    rho, square_avg = hyper["rho"], state["square_avg"]
    torch._foreach_mul_(square_avg, rho)
    torch._foreach_addcmul_(square_avg, grads, grads, value=1.0 - rho)
    denom = torch._foreach_sqrt(square_avg)
    torch._foreach_add_(denom, EPS)
    torch._foreach_addcdiv_(params, grads, denom, value=-lr)


def _adam(params, grads, state, steps, lr, hyper):
    torch._fused_adam_(params, grads, state["exp_avg"], state["exp_avg_sq"], [], steps, lr=lr,
                       beta1=hyper["beta1"], beta2=hyper["beta2"], weight_decay=0.0, eps=EPS,
                       amsgrad=False, maximize=False)


OPTIMIZERS = {
    "sgd": Optimizer((), _sgd_rule(momentum=False, nesterov=False)),
    "momentum": Optimizer(("momentum_buffer",), _sgd_rule(momentum=True, nesterov=False),
                          ("momentum",)),
    "nesterov": Optimizer(("momentum_buffer",), _sgd_rule(momentum=True, nesterov=True),
                          ("momentum",)),
    "adagrad": Optimizer(("sum",), _adagrad),
    "rmsprop": Optimizer(("square_avg",), _rmsprop, ("rho",)),
    "adam": Optimizer(("exp_avg", "exp_avg_sq"), _adam, ("beta1", "beta2")),
    "adamw": Optimizer(("exp_avg", "exp_avg_sq"), _adam, ("beta1", "beta2"),
                       decoupled_weight_decay=True),
}
