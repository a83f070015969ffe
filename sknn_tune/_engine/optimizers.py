"""Optimizer registry: in-place update rules over stacked member rows.

``torch.optim`` takes one learning rate per parameter group; members need one each. Each entry
therefore has two forms of its update. The *grouped* rule (``update``): the trainer groups members
whose hyperparameters are equal (for the current epoch) and calls it once per group with that
group's rows of the flat ``(M, P)`` parameter, gradient and state matrices. The *column* rule
(``columns``): the hyperparameters are ``(M, 1)`` device columns and the update is a handful of
tensor ops over the whole matrices, however many distinct values there are (one launch per op
per step on a GPU, and a step a CUDA graph can replay: nothing in it depends on host values).
The trainer picks the form per device (``trainer._column_update``).

The grouped rules are ``torch.optim``'s own fused CPU/CUDA kernels (``torch._fused_adam_`` and
``_fused_sgd_``: one pass over the parameters instead of a dozen elementwise ops) or its
``_foreach`` arithmetic where torch has no fused kernel for every device, each behind
:mod:`._compat` with a public-API fallback. Every member row is updated by the same kernel on its
own, whatever the group it sits in, so a member trains the same alone or beside others (fusion
invariance). The tests compare both forms' trajectories with the ``torch.optim`` class each entry
names.

The column rules follow ``torch.optim``'s single-tensor arithmetic operation for operation (the
per-member constants folded into the tensor operand, in the order torch's kernels multiply), so
they reproduce it to float rounding. ``active`` (an ``(M, 1)`` bool column, or None when every
member updates) freezes the others: their gradient row is zeroed and their coefficients masked so
that parameters, state and step count keep their values.

L2 weight decay is added to the gradient by the trainer (as ``torch.optim``'s ``weight_decay``
does) and decoupled decay (AdamW) applied by the trainer before the rule, both to the weight
matrices only.

:data:`SKLEARN_OPTIMIZERS` holds the update rules of scikit-learn's MLP
(``sklearn.neural_network._stochastic_optimizers``), which :mod:`sknn_tune.neural_network`
trains with: its SGD keeps a *velocity* (``v = momentum * v - lr * g``, so a changed lr acts
through the velocity, unlike torch's momentum buffer), and its Adam folds both bias corrections
into the step size and adds ``epsilon`` to ``sqrt(v)`` uncorrected. Tests compare them with
scikit-learn's optimizer classes. :data:`UPDATE_RULES` is every rule the trainer knows.
"""

from collections.abc import Callable
from typing import NamedTuple

import torch

from . import _compat
from .network import ROW_ALIGNMENT

EPS_ADAGRAD = 1e-10
EPS = 1e-8


class Optimizer(NamedTuple):
    """One registry entry: the update rule and the ``torch.optim`` class it reproduces.

    ``torch_class(param_groups, lr=member.lr, weight_decay=..., **torch_kwargs(member))`` is the
    same optimizer for one member (weight decay on the weight matrices only, as the engine's).
    """

    state_names: tuple  # state tensors, each shaped like the parameters, starting at zero
    update: Callable  # (params, grads, state, steps, lr, hyper) -> None, in place on row lists
    columns: Callable  # (params, grad, state, steps, lr, hyper, active) -> None, (M, P) / (M, 1)
    torch_class: type  # the torch.optim.Optimizer this rule reproduces
    torch_kwargs: Callable  # MemberConfig -> that class's keyword arguments (but lr, weight_decay)
    hyper_names: tuple = ()  # the member hyperparameters the rule reads
    decoupled_weight_decay: bool = False
    # The grouped form is a fused torch kernel; False: it is the column rule row by row, and
    # the trainer runs the column rule on every device (scikit-learn's rules).
    grouped_kernel: bool = True


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


# ------------------------------------------------------------------------------------------------
# column rules: params, grad and state (M, P); steps (M, 1) float32 counting this update; lr and
# every hyper column (M, 1) in the parameters' dtype; active (M, 1) bool or None


def _masked(grad, active, *columns):
    """Zero the frozen members' gradient rows; ``columns`` multiplied by the active mask (as the
    parameters' dtype), so a frozen member's coefficients are 0."""
    if active is None:
        return columns
    grad.masked_fill_(~active, 0.0)
    return tuple(column * active for column in columns)


def _kept(active, column, frozen_value):
    """``column`` where active, ``frozen_value`` elsewhere (a decay factor of 1 keeps the state)."""
    return column if active is None else torch.where(active, column, frozen_value)


def _sgd_columns(momentum, nesterov):
    def update(params, grad, state, steps, lr, hyper, active):
        (neg_lr,) = _masked(grad, active, -lr)
        if momentum:
            # torch.optim: buf.mul_(momentum).add_(grad); nesterov: grad.add(buf, alpha=momentum)
            buffer = state["momentum_buffer"].mul_(_kept(active, hyper["momentum"], 1.0)).add_(grad)
            grad = grad.addcmul_(buffer, hyper["momentum"]) if nesterov else buffer
        params.addcmul_(grad, neg_lr)  # torch.optim: param.add_(grad, alpha=-lr)

    return update


def _adagrad_columns(params, grad, state, steps, lr, hyper, active):
    (neg_lr,) = _masked(grad, active, -lr)
    total = state["sum"].addcmul_(grad, grad)
    params.addcdiv_(grad * neg_lr, total.sqrt().add_(EPS_ADAGRAD))


def _rmsprop_columns(params, grad, state, steps, lr, hyper, active):
    neg_lr, one_minus_rho = _masked(grad, active, -lr, 1.0 - hyper["rho"])
    square_avg = state["square_avg"].mul_(_kept(active, hyper["rho"], 1.0))
    square_avg.addcmul_(grad * one_minus_rho, grad)
    params.addcdiv_(grad * neg_lr, square_avg.sqrt().add_(EPS))


def _member_pow(base, exponent):
    """``base ** exponent`` per column, every element through the same (vectorised) CPU path.

    A CPU kernel rounds a vectorised ``pow`` differently from its scalar tail, so a member's
    bias correction would depend on its position in the stack (fusion invariance); spread over
    a row of ``ROW_ALIGNMENT`` copies, every element is vectorised, whatever ``M``.
    """
    m, k = base.shape
    spread = base[:, :, None].expand(m, k, ROW_ALIGNMENT).contiguous()
    return torch.pow(spread, exponent[:, :, None])[..., 0].split(1, dim=1)


def _adam_columns(params, grad, state, steps, lr, hyper, active):
    beta1, beta2 = hyper["beta1"], hyper["beta2"]
    beta1_power, beta2_power = _member_pow(torch.cat([beta1, beta2], 1), steps.to(params.dtype))
    # (a frozen member that never stepped has bias corrections 0: they are masked, not divided by)
    bias_correction1 = 1.0 - beta1_power
    bias_correction2_sqrt = _kept(active, (1.0 - beta2_power).sqrt(), 1.0)
    neg_step_size = _kept(active, -lr / bias_correction1, 0.0)
    weight1, weight2 = _masked(grad, active, 1.0 - beta1, 1.0 - beta2)
    exp_avg = state["exp_avg"].lerp_(grad, weight1)
    exp_avg_sq = state["exp_avg_sq"].mul_(_kept(active, beta2, 1.0)).addcmul_(grad * weight2, grad)
    denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(EPS)
    params.addcdiv_(exp_avg * neg_step_size, denom)  # torch.optim: value=-step_size


def _adam_kwargs(member):
    return {"betas": (member.beta1, member.beta2), "eps": EPS}


_FROZEN = 1.0  # a frozen member's decay factor: its state keeps its value


def _sklearn_sgd_columns(nesterov):
    def update(params, grad, state, steps, lr, hyper, active):
        # scikit-learn: velocity = momentum * velocity - lr * grad; params += velocity, or with
        # Nesterov params += momentum * velocity - lr * grad (the new velocity)
        momentum = hyper["momentum"]
        (neg_lr,) = _masked(grad, active, -lr)
        velocity = state["velocity"].mul_(_kept(active, momentum, _FROZEN)).add_(grad * neg_lr)
        if nesterov:
            params.add_(velocity * _kept(active, momentum, 0.0)).add_(grad * neg_lr)
        else:
            params.add_(velocity if active is None else velocity * active)

    return update


def _sklearn_adam_columns(params, grad, state, steps, lr, hyper, active):
    # scikit-learn: lr_t = lr * sqrt(1 - beta2 ** t) / (1 - beta1 ** t);
    # params -= lr_t * m / (sqrt(v) + epsilon)
    beta1, beta2 = hyper["beta1"], hyper["beta2"]
    beta1_power, beta2_power = _member_pow(torch.cat([beta1, beta2], 1), steps.to(params.dtype))
    step_size = _kept(active, lr * (1.0 - beta2_power).sqrt() / (1.0 - beta1_power), 0.0)
    weight1, weight2 = _masked(grad, active, 1.0 - beta1, 1.0 - beta2)
    exp_avg = state["exp_avg"].mul_(_kept(active, beta1, _FROZEN)).add_(grad * weight1)
    exp_avg_sq = state["exp_avg_sq"].mul_(_kept(active, beta2, _FROZEN)).add_(grad * grad * weight2)
    params.sub_(exp_avg * step_size / (exp_avg_sq.sqrt() + hyper["epsilon"]))


def _rows_rule(columns):
    """The grouped form of a column rule: the rule on each member's row on its own (the
    scikit-learn rules have no fused kernel; a row's arithmetic is the same alone or stacked)."""
    def update(params, grads, state, steps, lr, hyper):
        for i, (param, grad) in enumerate(zip(params, grads)):
            row = {name: rows[i][None] for name, rows in state.items()}
            dtype = param.dtype
            columns(param[None], grad[None], row, steps[i][None],
                    torch.full((1, 1), lr, dtype=dtype, device=param.device),
                    {name: torch.full((1, 1), value, dtype=dtype, device=param.device)
                     for name, value in hyper.items()}, None)

    return update


OPTIMIZERS = {
    "sgd": Optimizer((), _sgd_rule(momentum=False, nesterov=False),
                     _sgd_columns(momentum=False, nesterov=False), torch.optim.SGD, lambda m: {}),
    "momentum": Optimizer(("momentum_buffer",), _sgd_rule(momentum=True, nesterov=False),
                          _sgd_columns(momentum=True, nesterov=False), torch.optim.SGD,
                          lambda m: {"momentum": m.momentum}, ("momentum",)),
    # torch.optim refuses Nesterov without momentum; with momentum 0 it is plain SGD.
    "nesterov": Optimizer(("momentum_buffer",), _sgd_rule(momentum=True, nesterov=True),
                          _sgd_columns(momentum=True, nesterov=True), torch.optim.SGD,
                          lambda m: {"momentum": m.momentum, "nesterov": m.momentum > 0},
                          ("momentum",)),
    "adagrad": Optimizer(("sum",), _adagrad, _adagrad_columns, torch.optim.Adagrad,
                         lambda m: {"eps": EPS_ADAGRAD}),
    "rmsprop": Optimizer(("square_avg",), _rmsprop, _rmsprop_columns, torch.optim.RMSprop,
                         lambda m: {"alpha": m.rho, "eps": EPS}, ("rho",)),
    "adam": Optimizer(("exp_avg", "exp_avg_sq"), _adam, _adam_columns, torch.optim.Adam,
                      _adam_kwargs, ("beta1", "beta2")),
    "adamw": Optimizer(("exp_avg", "exp_avg_sq"), _adam, _adam_columns, torch.optim.AdamW,
                       _adam_kwargs, ("beta1", "beta2"), decoupled_weight_decay=True),
}

SKLEARN_OPTIMIZERS = {
    # (torch_class None: the reference is scikit-learn's SGDOptimizer / AdamOptimizer)
    "sklearn_sgd": Optimizer(("velocity",), _rows_rule(_sklearn_sgd_columns(nesterov=False)),
                             _sklearn_sgd_columns(nesterov=False), None,
                             lambda m: {"momentum": m.momentum, "nesterov": False},
                             ("momentum",), grouped_kernel=False),
    "sklearn_nesterov": Optimizer(("velocity",), _rows_rule(_sklearn_sgd_columns(nesterov=True)),
                                  _sklearn_sgd_columns(nesterov=True), None,
                                  lambda m: {"momentum": m.momentum, "nesterov": True},
                                  ("momentum",), grouped_kernel=False),
    "sklearn_adam": Optimizer(("exp_avg", "exp_avg_sq"), _rows_rule(_sklearn_adam_columns),
                              _sklearn_adam_columns, None,
                              lambda m: {"beta_1": m.beta1, "beta_2": m.beta2,
                                         "epsilon": m.epsilon}, ("beta1", "beta2", "epsilon"),
                              grouped_kernel=False),
}

# L-BFGS has no per-step rule: the trainer hands the whole minimisation to scipy (._lbfgs)
LBFGS = Optimizer((), None, None, None, lambda m: {"max_fun": m.max_fun}, ())

UPDATE_RULES = {**OPTIMIZERS, **SKLEARN_OPTIMIZERS, "lbfgs": LBFGS}
