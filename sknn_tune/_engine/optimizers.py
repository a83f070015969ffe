"""Optimizer registry: update rules written for stacked parameters.

``torch.optim`` takes one learning rate per parameter group; members need one each. Every rule here
works on the flat ``(M, P)`` parameter matrix with per-member hyperparameters as ``(M, 1)`` columns and
follows ``torch.optim``'s arithmetic step for step (the tests compare trajectories). Rules are pure:
``step`` returns the new parameters and state, so the trainer can keep frozen members unchanged.

L2 weight decay is added to the gradient by the trainer (as ``torch.optim``'s ``weight_decay`` does),
except for rules with ``decoupled_weight_decay`` (AdamW), which apply it here.
"""

from collections.abc import Callable
from typing import NamedTuple

import torch

EPS_ADAGRAD = 1e-10
EPS = 1e-8


class Optimizer(NamedTuple):
    state_names: tuple  # state tensors, each shaped like the parameters
    step: Callable  # (params, grads, state, lr, hyper, t) -> (params, state)
    decoupled_weight_decay: bool = False
    column_state_names: tuple = ()  # (M, 1) state tensors that start at one


def _sgd(p, g, state, lr, hyper, t):
    return p - lr * g, state


def _momentum_rule(nesterov):
    def step(p, g, state, lr, hyper, t):
        # torch.optim.SGD starts the buffer at the first gradient, which equals mu * 0 + g.
        buf = hyper["momentum"] * state["momentum_buffer"] + g
        direction = g + hyper["momentum"] * buf if nesterov else buf
        return p - lr * direction, {"momentum_buffer": buf}

    return step


def _adagrad(p, g, state, lr, hyper, t):
    total = state["sum"] + g * g
    return p - lr * g / (torch.sqrt(total) + EPS_ADAGRAD), {"sum": total}


def _rmsprop(p, g, state, lr, hyper, t):
    rho = hyper["rho"]
    square_avg = rho * state["square_avg"] + (1.0 - rho) * g * g
    return p - lr * g / (torch.sqrt(square_avg) + EPS), {"square_avg": square_avg}


def _adam_update(p, g, state, lr, hyper, t):
    beta1, beta2 = hyper["beta1"], hyper["beta2"]
    exp_avg = torch.lerp(state["exp_avg"], g, 1.0 - beta1)
    exp_avg_sq = beta2 * state["exp_avg_sq"] + (1.0 - beta2) * g * g
    # beta ** t as a running product: a vectorised pow rounds differently for a lone member
    # than for one among many, and training would then depend on the stack it ran in.
    beta1_power = state["beta1_power"] * beta1
    beta2_power = state["beta2_power"] * beta2
    step_size = lr / (1.0 - beta1_power)
    denom = torch.sqrt(exp_avg_sq) / torch.sqrt(1.0 - beta2_power) + EPS
    return p - step_size * exp_avg / denom, {"exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq,
                                             "beta1_power": beta1_power,
                                             "beta2_power": beta2_power}


def _adamw(p, g, state, lr, hyper, t):
    p = p * (1.0 - lr * hyper["weight_decay"])
    return _adam_update(p, g, state, lr, hyper, t)


OPTIMIZERS = {
    "sgd": Optimizer((), _sgd),
    "momentum": Optimizer(("momentum_buffer",), _momentum_rule(nesterov=False)),
    "nesterov": Optimizer(("momentum_buffer",), _momentum_rule(nesterov=True)),
    "adagrad": Optimizer(("sum",), _adagrad),
    "rmsprop": Optimizer(("square_avg",), _rmsprop),
    "adam": Optimizer(("exp_avg", "exp_avg_sq"), _adam_update,
                      column_state_names=("beta1_power", "beta2_power")),
    "adamw": Optimizer(("exp_avg", "exp_avg_sq"), _adamw, decoupled_weight_decay=True,
                       column_state_names=("beta1_power", "beta2_power")),
}
