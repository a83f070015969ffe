"""Full-batch L-BFGS: scipy's L-BFGS-B driving the engine's loss and gradient, one member at a time.

L-BFGS keeps a history of whole-data gradients and searches along lines, so its members cannot
share steps: each member of a stack is minimised on its own, on every training row at once, with
the same :class:`~.network.TrainStep` (on the stack's device) that the stochastic optimizers use.
The objective is the weighted mean loss plus the penalties: ``weight_decay / 2 * ||W||^2`` (over
the total weight under ``StackConfig.batch_penalty``, scikit-learn's MLP objective) and
``l1 * |W|``. scipy's ``maxiter`` is the member's remaining epochs, ``maxfun`` its ``max_fun``
and ``gtol`` its ``tol``; each iteration is an epoch of the member's log.
"""

import time
from dataclasses import dataclass

import numpy as np
import scipy.optimize
import torch

from .network import TrainStep
from .sparse_rows import gather_rows


@dataclass(frozen=True)
class LbfgsResult:
    """How scipy's minimisation of one member ended (``status`` 0: converged)."""

    status: int
    message: str
    n_iter: int
    n_evaluations: int


def fit_lbfgs(trainer, X, Y, data, target, on_epoch=None):
    """Minimise each member of ``trainer`` that still trains, up to ``target`` epochs in all.

    Sets each minimised member's ``trainer.lbfgs_results[i]`` (a :class:`LbfgsResult`); a member
    that converged (scipy's status 0) is marked stopped.
    """
    for i in range(len(trainer.members)):
        remaining = int(target[i] - trainer.epochs_done[i])
        if remaining <= 0 or trainer.stopped[i] or trainer.diverged[i]:
            continue
        trainer.lbfgs_results[i] = _minimise(trainer, i, X, Y, data[i], remaining, on_epoch)
    return trainer


def _minimise(trainer, i, X, Y, data, max_iter, on_epoch):
    config, member = trainer.config, trainer.members[i]
    arch = config.select([i], len(trainer.members)).architecture
    n_params = arch.n_parameters()
    params = trainer.params[i:i + 1]  # a view: the member's row is trained in place
    grad = torch.zeros_like(params)
    step = TrainStep(arch, params, grad)
    rows = torch.as_tensor(np.asarray(data.train_rows), device=params.device)[None]
    x, y = gather_rows(X, rows), gather_rows(Y, rows)
    if not isinstance(y, torch.Tensor):
        y = y.dense()
    weight = None
    total = float(len(data.train_rows))
    if data.train_weight is not None and not np.all(data.train_weight == 1):
        weight = torch.as_tensor(np.asarray(data.train_weight), dtype=params.dtype,
                                 device=params.device)[None, :, None]
        total = float(weight.sum())
    mask = arch.decay_mask(params.dtype, params.device)
    l2 = member.weight_decay / (total if config.batch_penalty else 1.0)
    l1 = member.l1
    buffers = trainer.buffers[i:i + 1]

    def objective(theta):
        params[0, :n_params].copy_(torch.from_numpy(theta))
        _, loss_sum, _ = step(buffers, x, y, weight, None, None, None)
        loss = loss_sum[0] / total
        weights = params * mask
        if l2:
            loss = loss + 0.5 * l2 * (weights * weights).sum()
            grad.add_(weights, alpha=l2)
        if l1:
            loss = loss + l1 * weights.abs().sum()
            grad.add_(torch.sign(weights), alpha=l1)
        return float(loss), grad[0, :n_params].to(torch.float64).cpu().numpy()

    started = [time.perf_counter()]

    def log_iteration(intermediate_result):
        trainer.epochs_done[i] += 1
        trainer.rows_seen[i] += len(data.train_rows)
        _log(trainer, i, float(intermediate_result.fun), member.lr,
             time.perf_counter() - started[0])
        started[0] = time.perf_counter()
        if on_epoch is not None:
            on_epoch(trainer)

    start = params[0, :n_params].to(torch.float64).cpu().numpy()
    result = scipy.optimize.minimize(
        objective, start, method="L-BFGS-B", jac=True, callback=log_iteration,
        options={"maxiter": max_iter, "maxfun": member.max_fun, "gtol": member.tol})
    params[0, :n_params].copy_(torch.from_numpy(result.x))
    trainer.best_params[i].copy_(params[0])
    loss = float(result.fun)
    if np.isnan(trainer.first_loss[i]):
        trainer.first_loss[i] = loss
    if not np.isfinite(loss):
        trainer.diverged[i] = True
    trainer.stopped[i] = result.status == 0
    return LbfgsResult(int(result.status), str(result.message), int(min(result.nit, max_iter)),
                       int(result.nfev))


def _log(trainer, i, loss, lr, seconds):
    m = len(trainer.members)
    trained = np.zeros(m, dtype=bool)
    trained[i] = True
    entry = {"trained": trained, "epoch": trainer.epochs_done.copy(),
             "train_loss": np.full(m, np.nan), "val_loss": np.full(m, np.nan),
             "val_score": np.full(m, np.nan), "lr": np.full(m, np.nan),
             "seconds": np.full(m, np.nan), "diverged": np.zeros(m, dtype=bool)}
    entry["train_loss"][i], entry["lr"][i], entry["seconds"][i] = loss, lr, seconds
    trainer.log.append(entry)
