"""Optimizer registry: in-place update rules over lists of member rows.

``torch.optim`` takes one learning rate per parameter group; members need one each. The trainer
therefore groups members whose hyperparameters are equal (for the current epoch) and calls a rule
once per group with that group's rows of the flat ``(M, P)`` parameter, gradient and state
matrices. The rules are ``torch.optim``'s own fused CPU/CUDA kernels (``torch._fused_adam_`` and
``_fused_sgd_``: one pass over the parameters instead of a dozen elementwise ops) or its
``_foreach`` arithmetic where torch has no fused kernel for every device, each behind
:mod:`._compat` with a public-API fallback; the tests compare trajectories with the
``torch.optim`` class each entry names. Every member row is updated by the same kernel on its own,
whatever the group it sits in, so a member trains the same alone or beside others (fusion
invariance).

L2 weight decay is added to the gradient by the trainer (as ``torch.optim``'s ``weight_decay``
does) and decoupled decay (AdamW) applied by the trainer before the rule, both to the weight
matrices only.
"""

from collections.abc import Callable
from typing import NamedTuple

import torch

from . import _compat

EPS_ADAGRAD = 1e-10
EPS = 1e-8


class Optimizer(NamedTuple):
    """One registry entry: the update rule and the ``torch.optim`` class it reproduces.

    ``torch_class(param_groups, lr=member.lr, weight_decay=..., **torch_kwargs(member))`` is the
    same optimizer for one member (weight decay on the weight matrices only, as the engine's).
    """

    state_names: tuple  # state tensors, each shaped like the parameters, starting at zero
    update: Callable  # (params, grads, state, steps, lr, hyper) -> None, in place on row lists
    torch_class: type  # the torch.optim.Optimizer this rule reproduces
    torch_kwargs: Callable  # MemberConfig -> that class's keyword arguments (but lr, weight_decay)
    hyper_names: tuple = ()  # the member hyperparameters the rule reads
    decoupled_weight_decay: bool = False


def _sgd_rule(momentum, nesterov):
    def update(params, grads, state, steps, lr, hyper):
        _compat.sgd_(params, grads, state["momentum_buffer"] if momentum else [], lr,
                     hyper["momentum"] if momentum else 0.0, nesterov)

    return update


def _adagrad(params, grads, state, steps, lr, hyper):
    _compat.adagrad_(params, grads, state["sum"], lr, EPS_ADAGRAD)


def _rmsprop(params, grads, state, steps, lr, hyper):
    _compat.rmsprop_(params, grads, state["square_avg"], lr, hyper["rho"], EPS)


def _adam(params, grads, state, steps, lr, hyper):
    _compat.adam_(params, grads, state["exp_avg"], state["exp_avg_sq"], steps, lr,
                  hyper["beta1"], hyper["beta2"], EPS)


def _adam_kwargs(member):
    return {"betas": (member.beta1, member.beta2), "eps": EPS}


OPTIMIZERS = {
    "sgd": Optimizer((), _sgd_rule(momentum=False, nesterov=False), torch.optim.SGD,
                     lambda m: {}),
    "momentum": Optimizer(("momentum_buffer",), _sgd_rule(momentum=True, nesterov=False),
                          torch.optim.SGD, lambda m: {"momentum": m.momentum}, ("momentum",)),
    # torch.optim refuses Nesterov without momentum; with momentum 0 it is plain SGD.
    "nesterov": Optimizer(("momentum_buffer",), _sgd_rule(momentum=True, nesterov=True),
                          torch.optim.SGD,
                          lambda m: {"momentum": m.momentum, "nesterov": m.momentum > 0},
                          ("momentum",)),
    "adagrad": Optimizer(("sum",), _adagrad, torch.optim.Adagrad, lambda m: {"eps": EPS_ADAGRAD}),
    "rmsprop": Optimizer(("square_avg",), _rmsprop, torch.optim.RMSprop,
                         lambda m: {"alpha": m.rho, "eps": EPS}, ("rho",)),
    "adam": Optimizer(("exp_avg", "exp_avg_sq"), _adam, torch.optim.Adam, _adam_kwargs,
                      ("beta1", "beta2")),
    "adamw": Optimizer(("exp_avg", "exp_avg_sq"), _adam, torch.optim.AdamW, _adam_kwargs,
                       ("beta1", "beta2"), decoupled_weight_decay=True),
}
