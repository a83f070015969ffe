"""The stacked trainer: fits M members of one architecture together.

Every member has its own rows, sample weights, seed and numeric hyperparameters; members only share
the architecture, the optimizer kind, the batch size, the dtype and the device (a *stack*). A plain
``fit`` is a stack of one. Per epoch the host reads each member's losses once (early stopping,
schedules and divergence decide per epoch); inside an epoch nothing waits on the device.
"""

import math
import os
import time
import warnings
from dataclasses import dataclass, fields, replace
from typing import NamedTuple

import numpy as np
import torch

from . import rng
from .losses import LOSSES
from .metrics import METRICS
from .network import (
    Architecture,
    TrainStep,
    forward_eval,
    initial_buffers,
    initial_parameters,
    per_member,
    runs_of,
)
from .optimizers import UPDATE_RULES
from .schedules import SCHEDULES, ScheduleInputs
from .sparse_rows import dense as dense_rows
from .sparse_rows import gather_rows
from .state import MemberProgress, MemberTensors, _delegate

# Rows predicted per forward pass: on a GPU many (fewer launches); on a CPU few enough that a
# chunk's activations stay in the cache (100k rows of a 50-64-2 network: 131 -> 55 ms, one
# thread). The same for every stack size: a row's output must not depend on the stack.
PREDICT_CHUNK_ROWS = {"cpu": 4096, "other": 65536}
# An epoch's rows are gathered this many bytes at a time (a run of steps per gather, written
# into the same buffers each time): per-step gathers cost 40 % more per epoch at 1M rows, and a
# whole epoch's gather is as large as the stack's data.
GATHER_BYTES = 64 * 2**20
# Members x rows sorted at once when drawing an epoch's order (bounds the sort's memory).
PERMUTATION_CHUNK = 2**20
DIVERGENCE_GROWTH = 1e6  # training loss this many times the first epoch's counts as diverged
# On CUDA the step is captured once per fit into a CUDA graph and replayed, unless this
# environment variable is "0" (or a capture failed: then, once warned, every step runs eagerly).
CUDA_GRAPHS_VARIABLE = "SKNN_TUNE_CUDA_GRAPHS"
# The optimizer update on the CPU: True, the column rules over the whole (M, P) matrices; False,
# the grouped rules (torch's fused kernels, once per group of equal hyperparameters). Measured on
# a 40-128-64-5 network with benchmarks/bench_step_compile.py (its docstring): on 2 CPU cores the
# grouped form is 1.1-1.35x faster at M = 16 and 80, even with a distinct lr per member.
CPU_COLUMN_UPDATE = False
# A member's history columns (``history(i)``), in order; the log also marks who trained.
HISTORY_COLUMNS = ("epoch", "train_loss", "val_loss", "val_score", "lr", "seconds", "diverged")


@dataclass(frozen=True)
class StackConfig:
    """What members of one stack share. Candidates that differ here train in different stacks,
    except in the activation and the optimizer: a mixed stack's ``architecture.activation`` and
    ``optimizer`` may be tuples, each member's (:meth:`join`, :meth:`select`)."""

    architecture: Architecture
    optimizer: str | tuple  # the update rule of every member, or a tuple of each member's
    batch_size: int
    metric: str  # validation score: a key of metrics.METRICS ('accuracy', 'subset_accuracy', 'r2')
    dtype: torch.dtype
    device: torch.device
    # scikit-learn's MLP objective: a step's L2 coefficient is weight_decay / the batch's total
    # weight (alpha / batch rows), the batch loss includes that penalty, and the epoch's training
    # loss is the mean of the batch losses weighted by their rows.
    batch_penalty: bool = False

    def optimizers(self, m):
        """The optimizer of each of ``m`` members."""
        return per_member(self.optimizer, m, "optimizers")

    def optimizer_runs(self, m):
        """``[(Optimizer, slice of members)]`` of a stack of ``m`` (:func:`~.network.runs_of`)."""
        return runs_of(self.optimizers(m), UPDATE_RULES)

    def state_names(self, m):
        """The optimizer state a stack of ``m`` members holds: every name any of them uses."""
        return tuple(dict.fromkeys(name for optimizer in dict.fromkeys(self.optimizers(m))
                                   for name in UPDATE_RULES[optimizer].state_names))

    def shared(self):
        """This configuration without what members of one stack may differ in: the stacks of
        configurations with the same ``shared()`` can be joined (L-BFGS, which trains one member
        at a time on every row, joins only L-BFGS)."""
        return replace(self, optimizer=LBFGS if self.optimizer == LBFGS else None,
                       architecture=replace(self.architecture, activation=None))

    def select(self, indices, m):
        """The configuration of the members at ``indices`` of a stack of ``m``."""
        activations, optimizers = self.architecture.activations(m), self.optimizers(m)
        return self._per_member([activations[i] for i in indices],
                                [optimizers[i] for i in indices])

    @staticmethod
    def join(parts):
        """The configuration of a stack of the members of ``parts``, ``[(config, m)]`` in order;
        they must share everything but the activation and the optimizer."""
        first = parts[0][0]
        if any(config.shared() != first.shared() for config, _ in parts):
            raise ValueError("only stacks that differ in nothing but the activation and the "
                             "optimizer can be joined")
        return first._per_member(
            [name for config, m in parts for name in config.architecture.activations(m)],
            [name for config, m in parts for name in config.optimizers(m)])

    def _per_member(self, activations, optimizers):
        def one_or_each(names):
            return names[0] if len(set(names)) == 1 else tuple(names)

        return replace(self, optimizer=one_or_each(optimizers), architecture=replace(
            self.architecture, activation=one_or_each(activations)))


@dataclass(frozen=True)
class MemberConfig:
    """One member's own hyperparameters (numeric ones become ``(M, 1)`` columns)."""

    seed: int
    lr: float = 1e-3
    momentum: float = 0.9
    beta1: float = 0.9
    beta2: float = 0.999
    rho: float = 0.99
    weight_decay: float = 0.0
    l1: float = 0.0
    dropout: float = 0.0
    noise_std: float = 0.0
    init: str = "auto"
    epsilon: float = 1e-8  # scikit-learn's Adam's (the 'sklearn_adam' rule)
    lr_schedule: str = "constant"
    lr_decay: float = 0.1
    lr_step: int = 10
    max_epochs: int = 200
    early_stopping: bool = False
    patience: int = 10
    tol: float = 1e-4
    restore_best_weights: bool = True
    shuffle: bool = True  # a new order of the rows each epoch; False: the rows' own order
    # What decides the best epoch and early stopping on validation rows: 'loss' (lower is
    # better) or 'score' (the stack's metric, higher is better; scikit-learn's MLP).
    watch: str = "loss"
    # True: a training loss a million times the first epoch's counts as divergence; False: only
    # a non-finite one (scikit-learn's MLP trains on).
    blow_up: bool = True
    max_fun: int = 15000  # L-BFGS: most loss evaluations


@dataclass
class MemberData:
    """Row indices into the shared X / Y, with optional per-row weights, for training and
    validation; optionally the order of the training rows each epoch and the starting weights.

    ``order``, when given, is called with each epoch the member trains (its ``epochs_done``) and
    returns that epoch's order of the training rows: a permutation of
    ``range(len(train_rows))``, positions into ``train_rows`` (scikit-learn's MLP's shuffles,
    drawn from its ``RandomState``); None: drawn from the member's seed, or the rows' own order
    (``shuffle=False``). ``initial_params``, when given, is the member's starting flat
    parameters (``Architecture.parameter_layout`` order, padding optional) instead of its
    initialiser's draw; it applies to a member that has not trained yet.
    """

    train_rows: np.ndarray
    train_weight: np.ndarray | None = None
    val_rows: np.ndarray | None = None
    val_weight: np.ndarray | None = None
    order: object = None
    initial_params: np.ndarray | None = None


_HYPER_COLUMNS = ("weight_decay", "l1", "dropout", "noise_std")  # per-element on the device
LBFGS = "lbfgs"  # the full-batch optimizer (scipy's L-BFGS-B, ._lbfgs), not a per-step rule
ADAPTIVE_MIN_LR = 1e-6  # the 'adaptive' schedule stops a member once its lr is at most this


def sharing_key(data, member):
    """A cheap key of what a member's epoch orders and gathers depend on, from its
    :class:`MemberData` and :class:`MemberConfig`: its rows (their count and ends), seed and
    shuffle. Members that share them have equal keys; equal keys are checked on the rows."""
    rows = np.asarray(data.train_rows)
    return len(rows), rows[:4].tobytes(), rows[-4:].tobytes(), member.seed, member.shuffle


def _row_groups(data, members, unit_weight):
    """``(M,)`` each member's row group: members with equal training rows and weights, the same
    seed and shuffle and no given order share one, and with it, in every epoch they start
    together, one order of their rows and one gather of them (the candidates of one fold, with
    the estimator's ``random_state``). ``unit_weight[i]``: member ``i``'s rows all weigh 1."""
    buckets, row_group = {}, np.empty(len(data), dtype=np.int64)
    n_groups = 0
    for i, (d, member) in enumerate(zip(data, members)):
        weight = None if unit_weight[i] else d.train_weight
        # members compared only within a bucket of equal keys
        key = ((i,) if d.order is not None else
               (*sharing_key(d, member), None if weight is None else len(weight)))
        bucket = buckets.setdefault(key, [])
        found = next((g for g, other in bucket
                      if _same(data[other].train_rows, d.train_rows)
                      and (weight is None or _same(data[other].train_weight, weight))), None)
        if found is None:
            found, n_groups = n_groups, n_groups + 1
            bucket.append((found, i))
        row_group[i] = found
    return row_group


def _same(a, b):
    return a is b or np.array_equal(a, b)


def _widened(rows, widen, m):
    """A set's rows ``(S, n, d)`` as each of ``m`` members' (``_run_epoch``'s ``widen``)."""
    if widen is None:
        return rows
    if isinstance(widen, str):  # one set: every member reads the same memory
        return rows.expand(m, *rows.shape[1:])
    return rows.index_select(0, widen)


def _padded(arrays, fill, dtype, device):
    """Stack ragged 1-D arrays into ``(M, n_max)`` plus each one's length."""
    lengths = np.array([len(a) for a in arrays], dtype=np.int64)
    out = np.full((len(arrays), max(1, lengths.max())), fill, dtype=dtype)
    for i, a in enumerate(arrays):
        out[i, : len(a)] = a
    return torch.as_tensor(out, device=device), lengths


class _EpochPlan(NamedTuple):
    """What every epoch of one ``fit`` call reads, built once per call."""

    X: torch.Tensor  # (n, d) the shared inputs
    Y: torch.Tensor  # (n, k) the shared targets
    rows: torch.Tensor  # (G, n_max) each row group's training rows, padded with row 0
    row_group: np.ndarray  # (M,) each member's row group (_row_groups)
    n_train: np.ndarray  # (M,) real training rows per member
    weights: torch.Tensor | None  # (G, n_max) sample weights, 0 on padding; None: all 1
    has_zero_weight: bool  # some real row weighs nothing: whole batches may weigh nothing
    dropout: rng.Dropout | None  # of the (M, 1, 1) rates, None when no member drops out
    noise: torch.Tensor | None  # (M, 1, 1) input noise std or None
    grad: torch.Tensor  # (M, P) the gradient the step writes
    step: TrainStep
    penalties: "_Penalties"
    validation: tuple | None  # (x, y, weights) per member, or None without validation rows
    monitor: object  # the ``monitor`` callable of ``fit``, or None
    in_order: np.ndarray  # (M,) members that keep their rows' order (shuffle=False)
    orders: list | None  # each member's MemberData.order (None: drawn); None: none has one
    columns: dict | None  # the column update's lr / hyper / decay tensors; None: grouped update
    static: "_StaticStep | None"  # the step on static buffers (CUDA graphs); None: eager steps
    gathered: dict  # flat buffers the epochs gather their rows into, "X" and "Y", reused


_STRUCTURED_ATTRIBUTES = ("config", "members", "tensors", "progress", "log", "interrupted")


class StackedTrainer:
    """Trains and holds M members of one stack.

    The live parameters keep training (``fit`` may be called again to continue, as successive
    halving and ``partial_fit`` do); ``final_parameters`` is what members predict with: the best
    validation epoch's weights where early stopping restores them, the live ones otherwise.

    Per-member state lives in two structures whose fields say their shapes: ``tensors``
    (:class:`MemberTensors`, on the device) and ``progress`` (:class:`MemberProgress`, on the
    host); each field is also an attribute of the trainer (``trainer.params``,
    ``trainer.epochs_done``, ...). ``log`` holds one dict of ``(M,)`` arrays per stack epoch:
    ``trained`` and the :data:`HISTORY_COLUMNS`.
    """

    # Every per-member field is also an attribute of the trainer: ``trainer.params`` is
    # ``trainer.tensors.params``, ``trainer.epochs_done`` is ``trainer.progress.epochs_done``
    # (test_engine checks that these name every field).
    seeds = _delegate("tensors", "seeds")
    params = _delegate("tensors", "params")
    buffers = _delegate("tensors", "buffers")
    best_params = _delegate("tensors", "best_params")
    best_buffers = _delegate("tensors", "best_buffers")
    steps = _delegate("tensors", "steps")
    state = _delegate("tensors", "state")
    epochs_done = _delegate("progress", "epochs_done")
    stopped = _delegate("progress", "stopped")
    diverged = _delegate("progress", "diverged")
    first_loss = _delegate("progress", "first_loss")
    best_value = _delegate("progress", "best_value")
    best_epoch = _delegate("progress", "best_epoch")
    wait = _delegate("progress", "wait")
    plateau_factor = _delegate("progress", "plateau_factor")
    plateau_best = _delegate("progress", "plateau_best")
    plateau_wait = _delegate("progress", "plateau_wait")
    loss_best = _delegate("progress", "loss_best")
    loss_wait = _delegate("progress", "loss_wait")
    schedule_start = _delegate("progress", "schedule_start")
    rows_seen = _delegate("progress", "rows_seen")
    lbfgs_results = _delegate("progress", "lbfgs_results")

    def __init__(self, config: StackConfig, members: list[MemberConfig]):
        members = list(members)
        m = len(members)
        arch, dtype, device = config.architecture, config.dtype, config.device
        seeds = torch.tensor([c.seed % 2**32 for c in members], device=device)
        params = initial_parameters(arch, seeds, [c.init for c in members], dtype, device)
        buffers = initial_buffers(arch, m, dtype, device)
        tensors = MemberTensors(
            seeds=seeds, params=params, buffers=buffers, best_params=params.clone(),
            best_buffers=buffers.clone(),
            steps=torch.zeros(m, 1, dtype=torch.float32, device=device),
            state={name: torch.zeros_like(params) for name in config.state_names(m)})
        self._assign(config, members, tensors, MemberProgress.fresh(m), [], False)

    def _assign(self, config, members, tensors, progress, log, interrupted):
        self.config = config
        self.members = members
        self.tensors = tensors
        self.progress = progress
        self.log = log
        self.interrupted = interrupted

    @classmethod
    def _from_parts(cls, *parts):
        new = object.__new__(cls)
        new._assign(*parts)
        return new

    # ----------------------------------------------------------------------------------------
    # configuration as tensors

    def _column(self, name):
        values = [float(getattr(c, name)) for c in self.members]
        return torch.tensor(values, dtype=self.config.dtype, device=self.config.device)[:, None]

    def _host(self, name):
        return np.array([getattr(c, name) for c in self.members])

    # ----------------------------------------------------------------------------------------
    # training

    def fit(self, X, Y, data: list[MemberData], n_epochs=None, on_epoch=None, monitor=None):
        """Train on ``X`` ``(n, d)`` / ``Y`` ``(n, k)`` device tensors.

        Each member trains until it has ``max_epochs`` epochs in total, stops early or diverges;
        with ``n_epochs`` it trains that many more epochs instead (``partial_fit``). ``on_epoch``
        is called after every epoch with the trainer. Ctrl-C ends training after the current
        step, keeps what was trained and sets ``interrupted``.

        ``monitor``, when given, is called after every epoch that has a validation set with the
        trainer (its live parameters, see ``predict(..., live=True)``) and the indices of the
        members that trained that epoch without diverging, and returns those members' validation
        scores, higher is better (NaN: no score). The scores replace the
        metric's in the ``val_score`` column and decide the best epoch and early stopping instead
        of the validation loss. Each member's score must depend on that member alone (fusion
        invariance).
        """
        self._set_initial_parameters(data)
        if n_epochs is None:
            target = self._host("max_epochs").astype(np.int64)
        else:
            target = self.epochs_done + n_epochs
        if self.config.optimizer == LBFGS:
            from ._lbfgs import fit_lbfgs  # scipy, imported where it is used

            fit_lbfgs(self, X, Y, data, target, on_epoch)
            return self
        plan = self._plan(X, Y, data, monitor)
        self.interrupted = False
        try:
            while True:
                training = (self.epochs_done < target) & ~self.stopped & ~self.diverged
                if not training.any():
                    break
                started = time.perf_counter()
                lr_now = self._learning_rates()
                update = _EpochUpdate(self, plan, training, lr_now)
                loss_sum, weight_sum = self._run_epoch(plan, training, update)
                self._end_epoch(plan, training, loss_sum, weight_sum, lr_now, started)
                if on_epoch is not None:
                    on_epoch(self)
        except KeyboardInterrupt:
            self.interrupted = True
        return self

    def _set_initial_parameters(self, data):
        """Start the untrained members whose data gives ``initial_params`` from them."""
        for i, d in enumerate(data):
            if d.initial_params is None or self.epochs_done[i] > 0:
                continue
            start = torch.as_tensor(np.asarray(d.initial_params), dtype=self.params.dtype)
            self.params[i].zero_()[:start.numel()].copy_(start.reshape(-1))
            self.best_params[i].copy_(self.params[i])

    def _plan(self, X, Y, data, monitor):
        """The :class:`_EpochPlan` of one ``fit`` call."""
        cfg = self.config
        device = cfg.device
        unit_weight = [d.train_weight is None or bool(np.all(d.train_weight == 1)) for d in data]
        # (sparse rows are gathered per member: a SparseBatch has no shared view)
        row_group = (_row_groups(data, self.members, unit_weight)
                     if isinstance(X, torch.Tensor) else np.arange(len(data)))
        firsts = [data[i] for i in np.unique(row_group, return_index=True)[1]]
        rows, _ = _padded([d.train_rows for d in firsts], 0, np.int64, device)
        n_train = np.array([len(d.train_rows) for d in data], dtype=np.int64)
        weights = None  # every real row weighs 1
        if not all(unit_weight):
            weights, _ = _padded(
                [np.ones(len(d.train_rows)) if d.train_weight is None else d.train_weight
                 for d in firsts], 0.0, np.float64, device)
            weights = weights.to(cfg.dtype)
        hyper = {name: self._column(name) for name in _HYPER_COLUMNS}
        used = {name: bool(np.any(self._host(name) > 0)) for name in _HYPER_COLUMNS}
        decay_mask = cfg.architecture.decay_mask(cfg.dtype, device)
        penalties = _Penalties(l2=hyper["weight_decay"] * decay_mask if used["weight_decay"] else None,
                               l1=hyper["l1"] * decay_mask if used["l1"] else None)
        # The step writes gradients into this matrix; params and state are updated in place.
        grad = torch.zeros_like(self.params)
        step = TrainStep(cfg.architecture, self.params, grad)
        dropout = rng.dropout_rates(hyper["dropout"][:, :, None]) if used["dropout"] else None
        noise = hyper["noise_std"][:, :, None] if used["noise_std"] else None
        mode = _step_mode(device)
        optimizers = [optimizer for optimizer, _ in cfg.optimizer_runs(len(self.members))]
        columns = None
        if mode != "eager" or _column_update(device) or not all(o.grouped_kernel
                                                                 for o in optimizers):
            # Written in place every epoch (a CUDA graph replays the tensors it captured).
            hyper_names = dict.fromkeys(name for o in optimizers for name in o.hyper_names)
            decoupled = any(o.decoupled_weight_decay for o in optimizers)
            columns = {"lr": torch.zeros(len(self.members), 1, dtype=cfg.dtype, device=device),
                       "hyper": {name: self._column(name) for name in hyper_names},
                       "decay": (torch.ones_like(self.params) if decoupled
                                 and penalties.l2 is not None else None)}
        return _EpochPlan(
            X=X, Y=Y, rows=rows, row_group=row_group, n_train=n_train, weights=weights,
            has_zero_weight=any(d.train_weight is not None and np.any(d.train_weight == 0)
                                for d in data),
            dropout=dropout, noise=noise, grad=grad, step=step, penalties=penalties,
            validation=self._validation_set(X, Y, data), monitor=monitor,
            in_order=np.array([not c.shuffle for c in self.members]),
            orders=[d.order for d in data] if any(d.order is not None for d in data) else None,
            columns=columns,
            static=None if mode == "eager" else _StaticStep(self, step, dropout, noise,
                                                            capture=mode == "graph"),
            gathered={})

    def _run_epoch(self, plan, training, update):
        """One epoch of every member marked in ``training``; ``(loss_sum, weight_sum)`` ``(M,)``."""
        cfg = self.config
        X, Y, n_train = plan.X, plan.Y, plan.n_train
        device, dtype, batch = cfg.device, cfg.dtype, cfg.batch_size
        m = len(n_train)
        epoch = torch.as_tensor(self.epochs_done, device=device)
        n_steps = math.ceil(int(n_train[training].max()) / batch)
        width = n_steps * batch
        batch_rows, of_member, batch_weight = self._epoch_rows(plan, epoch, width, training)
        # Members train on their set's rows (views, no copy, when each member has a set of its
        # own or one set is everyone's).
        n_sets = len(batch_rows)
        widen = (None if n_sets == m else "expand" if n_sets == 1
                 else torch.as_tensor(of_member, device=device))
        n_train_t = torch.as_tensor(n_train, device=device)[:, None]
        static, penalty = plan.static, cfg.batch_penalty
        # Which rows are real (not padding), and their weights, (M, width): made only where
        # every step reads them; else the padded last steps make their own columns' masks.
        real = None
        if batch_weight is not None or static is not None or penalty:
            real = torch.arange(width, device=device) < n_train_t
            batch_weight = real.to(dtype) if batch_weight is None else batch_weight.mul_(real)
        # Which members train in which step, known on the host: a member out of rows, or whose
        # batch weighs nothing (one read per epoch, only when some weights are zero), skips it.
        has_rows = n_train[:, None] > np.arange(n_steps)[None, :] * batch
        if plan.has_zero_weight:
            has_rows &= (batch_weight.view(m, n_steps, batch).sum(2) > 0).cpu().numpy()
        active_steps = training[:, None] & has_rows
        # Uploaded once per epoch (none of it when everyone trains every step, unless the static
        # step reads it): no host->device copy inside the epoch.
        active_steps_t = (None if active_steps.all() and static is None
                          else torch.as_tensor(active_steps, device=device))
        # The rows of a run of steps are gathered at once (batches are views into them).
        step_bytes = n_sets * batch * (X.shape[1] + Y.shape[1]) * X.element_size()
        steps_per_gather = max(1, min(n_steps, GATHER_BYTES // step_bytes))
        step_keys_base = rng.member_keys(self.seeds, epoch)
        n_min = int(n_train.min())
        loss_sum = torch.zeros(m, dtype=dtype, device=device)
        counters = torch.arange(n_steps, device=device)[:, None]
        n_hidden = len(cfg.architecture.hidden_layer_sizes)
        # Every step's dropout keys of every layer, at once: (n_steps, L, M).
        dropout_keys = (rng.layer_keys(rng.member_keys(step_keys_base, counters), n_hidden)
                        if plan.dropout is not None or static is not None else None)
        if static is None and dropout_keys is not None:
            dropout_keys = rng.as_int32(dropout_keys)
        if static is not None:
            # ... and the noise keys, drawn as the eager loop draws them: (n_steps, L + 1, M).
            static_keys = torch.cat([dropout_keys, rng.member_keys(
                step_keys_base, counters, rng.NOISE)[:, None]], 1)
            loss_sum = static.loss_sum.zero_()
        for s in range(n_steps):
            cols = slice(s * batch, (s + 1) * batch)
            if s % steps_per_gather == 0:
                X_run, Y_run = self._gather(plan, X, Y, batch_rows, s, steps_per_gather)
            within = slice((s % steps_per_gather) * batch, (s % steps_per_gather + 1) * batch)
            x, y = _widened(X_run[:, within], widen, m), _widened(Y_run[:, within], widen, m)
            if static is not None:  # static buffers hold dense rows
                static.load(dense_rows(x), y, batch_weight[:, cols, None], real[:, cols, None],
                            static_keys[s], active_steps_t[:, s, None])
                static.run(update)
                continue
            if plan.noise is not None:
                x = dense_rows(x) + plan.noise * rng.normal(rng.member_keys(step_keys_base, s, rng.NOISE),
                                                x.shape[1:], dtype)
            valid = weight = None
            if (s + 1) * batch > n_min:  # some member's rows end in this step
                valid = (real[:, cols] if real is not None else
                         torch.arange(cols.start, cols.stop, device=device) < n_train_t)
                valid = valid[..., None].to(dtype)
                weight = valid if batch_weight is None else batch_weight[:, cols, None]
            elif batch_weight is not None and plan.weights is not None:
                weight = batch_weight[:, cols, None]
            _, batch_loss, new_buffers = plan.step(
                self.buffers, x, y, weight, valid, plan.dropout,
                None if dropout_keys is None else dropout_keys[s])
            if penalty:
                batch_loss = update.batch_penalty(batch_loss, batch_weight[:, cols].sum(1),
                                                  real[:, cols].sum(1))
            self.buffers = update(active_steps[:, s],
                                  None if active_steps_t is None else active_steps_t[:, s, None],
                                  new_buffers)
            loss_sum.add_(batch_loss)
        # (the batch penalty's epoch loss is a mean over rows, whatever they weigh)
        if batch_weight is None:  # every real row weighs 1
            return loss_sum.clone(), n_train_t[:, 0].to(dtype)
        return loss_sum.clone(), (real.sum(1).to(dtype) if penalty else batch_weight.sum(1))

    def _gather(self, plan, X, Y, batch_rows, first, n_steps):
        """``(X, Y)`` rows of steps ``first`` to ``first + n_steps`` of this epoch, ``(M, n, d)``,
        gathered into the plan's buffers (made at the first gather, at its size)."""
        batch = self.config.batch_size
        idx = batch_rows[:, first * batch:(first + n_steps) * batch]
        gathered = []
        for name, source in (("X", X), ("Y", Y)):
            rows = gather_rows(source, idx, plan.gathered.get(name))
            if name not in plan.gathered and isinstance(rows, torch.Tensor):
                plan.gathered[name] = rows.view(-1)
            gathered.append(rows)
        return gathered

    def _epoch_rows(self, plan, epoch, width, training):
        """This epoch's rows in order: ``(batch_rows, of_member, batch_weight)``.

        The members of one row group (:func:`_row_groups`) at the same epoch draw the same
        order, so they share one *set* of rows: ``batch_rows`` ``(S, width)`` holds each set's
        rows in order, ``of_member`` ``(M,)`` the set each member trains on, and
        ``batch_weight`` ``(M, width)`` each member's row weights in its order (None when
        every row weighs 1). An order is a
        permutation of the rows (padding sorts last), padded with the first row's index to
        ``width``: drawn from the seed and epoch (one draw and sort for the sets of a chunk that
        share seed, epoch, row count and shuffle), or, for a member in ``training`` whose data
        gives an ``order``, that epoch's from it. Sets are sorted a few at a time: the sort's
        keys and temporaries are then a chunk's, not the stack's, the largest memory of an epoch.
        """
        device, dtype = self.config.device, self.config.dtype
        m, n_max = len(plan.n_train), plan.rows.shape[1]
        sets = {}
        of_member = np.array([sets.setdefault((plan.row_group[i], self.epochs_done[i]), len(sets))
                              for i in range(m)], dtype=np.int64)
        first = np.unique(of_member, return_index=True)[1]  # a member of each set
        keys = rng.member_keys(self.seeds, rng.PERMUTATION, epoch)
        position = torch.arange(n_max, device=device)
        batch_rows = torch.empty(len(first), width, dtype=plan.rows.dtype, device=device)
        set_weight = (None if plan.weights is None else
                      torch.empty(len(first), width, dtype=dtype, device=device))
        chunk = max(1, PERMUTATION_CHUNK // n_max)
        for start in range(0, len(first), chunk):
            part = slice(start, min(len(first), start + chunk))
            draws = {}
            draw_of_set = [draws.setdefault(self._draw_key(plan, i), len(draws))
                           for i in first[part]]
            drawn = first[part][np.unique(draw_of_set, return_index=True)[1]]  # one per draw
            drawn_t = torch.as_tensor(drawn, device=device)
            draw = rng.random_bits(keys[drawn_t], n_max)
            in_order = plan.in_order[drawn]
            if in_order.any():  # shuffle=False: batches in the rows' own order
                draw = torch.where(torch.as_tensor(in_order, device=device)[:, None], position,
                                   draw)
            n_train = torch.as_tensor(plan.n_train[drawn], device=device)[:, None]
            draw = torch.where(position < n_train, draw, 2**32 + position)
            order = torch.argsort(draw, dim=1, stable=True)
            del draw
            for j, i in enumerate(drawn) if plan.orders is not None else ():
                if plan.orders[i] is not None and training[i]:
                    given = np.asarray(plan.orders[i](int(self.epochs_done[i])))
                    order[j, :len(given)] = torch.as_tensor(given, device=device)
            order = torch.nn.functional.pad(order, (0, max(0, width - n_max)), value=0)[:, :width]
            if len(drawn) < len(draw_of_set):
                order = order[torch.as_tensor(draw_of_set, device=device)]
            groups = plan.row_group[first[part]]
            # the sets' groups: a view of consecutive ones, else their rows copied
            of_groups = (slice(groups[0], groups[-1] + 1)
                         if np.array_equal(groups, np.arange(groups[0], groups[0] + len(groups)))
                         else torch.as_tensor(groups, device=device))
            torch.gather(plan.rows[of_groups], 1, order, out=batch_rows[part])
            if set_weight is not None:
                torch.gather(plan.weights[of_groups], 1, order, out=set_weight[part])
        if set_weight is None:  # every row weighs 1
            return batch_rows, of_member, None
        return batch_rows, of_member, set_weight[torch.as_tensor(of_member, device=device)]

    def _draw_key(self, plan, i):
        """What member ``i``'s order this epoch depends on: members with the same draw the same."""
        if plan.orders is not None and plan.orders[i] is not None:
            return ("given", i)
        return (self.members[i].seed % 2**32, int(self.epochs_done[i]), int(plan.n_train[i]),
                bool(plan.in_order[i]))

    def _validation_set(self, X, Y, data):
        if all(d.val_rows is None or len(d.val_rows) == 0 for d in data):
            return None
        device, dtype = self.config.device, self.config.dtype
        rows, _ = _padded([np.zeros(0, np.int64) if d.val_rows is None else d.val_rows
                           for d in data], 0, np.int64, device)
        weights, _ = _padded(
            [np.zeros(0) if d.val_rows is None else
             np.ones(len(d.val_rows)) if d.val_weight is None else d.val_weight for d in data],
            0.0, np.float64, device)
        return gather_rows(X, rows), gather_rows(Y, rows), weights.to(dtype)

    def _evaluate(self, validation):
        x, y, w = validation
        out = forward_eval(self.config.architecture, self.params, self.buffers, x)
        loss, _ = LOSSES[self.config.architecture.loss].value_and_grad(out, y)
        total = w.sum(1)
        val_loss = (loss * w).sum(1) / total.clamp_min(torch.finfo(w.dtype).tiny)
        link = LOSSES[self.config.architecture.loss].link
        score = METRICS[self.config.metric](link(out), y, w)
        # A member without validation rows, padded beside members with them, has no score (not 0).
        missing = total <= 0
        return val_loss.masked_fill(missing, math.nan), score.masked_fill(missing, math.nan)

    def _learning_rates(self):
        """Each member's lr multiplier for its coming epoch.

        Evaluated one member at a time: numpy's vectorised cos / pow round differently from its
        scalar path, and a member's lr must not depend on the stack it trains in.
        """
        factor = np.ones(len(self.members))
        for i, member in enumerate(self.members):
            one = slice(i, i + 1)
            schedule = SCHEDULES[member.lr_schedule]
            epoch = self.epochs_done[one]
            since_start = epoch - self.schedule_start[one]
            if schedule.uses_max_epochs:
                # The horizon starts again with every warm fit (restart_schedule) and, for
                # partial_fit, every max_epochs epochs: never an lr of 0 for the epochs after.
                epoch = since_start % member.max_epochs
            factor[one] = schedule.factor(ScheduleInputs(
                epoch=epoch.astype(float),
                decay=np.array([float(member.lr_decay)]), step=np.array([float(member.lr_step)]),
                max_epochs=np.array([float(member.max_epochs)]),
                plateau=self.plateau_factor[one], since_start=since_start.astype(float),
                rows_seen=self.rows_seen[one].astype(float)))
        return factor

    def _end_epoch(self, plan, training, loss_sum, weight_sum, lr_now, started):
        """The host's once-per-epoch decisions for the members marked in ``training``."""
        train_loss = (loss_sum / weight_sum.clamp_min(torch.finfo(weight_sum.dtype).tiny))
        train_loss = train_loss.cpu().numpy().astype(np.float64)
        self.epochs_done[training] += 1
        self.rows_seen[training] += plan.n_train[training]
        newly_diverged = self._check_divergence(training, train_loss)
        ok = training & ~newly_diverged
        val_loss, val_score = self._validate(plan, ok)
        has_val = ~np.isnan(val_loss)
        # What decides the best epoch: the monitored score (higher is better), the val loss or
        # the metric's score (``watch``); without validation rows the training loss (convergence,
        # as scikit-learn's MLP).
        watch_score = self._host("watch") == "score"
        watched = -val_score if plan.monitor is not None else np.where(watch_score, -val_score,
                                                                       val_loss)
        self._track_best(ok, has_val, watched, train_loss,
                         lr_now * self._host("lr").astype(float))
        # Reduce-on-plateau watches validation loss when there is one, else training loss.
        self._track_plateau(ok, np.where(has_val, val_loss, train_loss))
        self._log_epoch(training, newly_diverged, train_loss, val_loss, val_score, lr_now,
                        time.perf_counter() - started)

    def _check_divergence(self, training, train_loss):
        """Freeze and return the members that diverged this epoch.

        Diverged: the loss is NaN / inf, or has grown a million-fold since the first epoch
        (float64 can take hundreds of epochs of blow-up before it overflows).
        """
        first = training & np.isnan(self.first_loss)
        self.first_loss[first] = train_loss[first]
        with np.errstate(invalid="ignore"):
            blown_up = self._host("blow_up").astype(bool) & (
                train_loss > DIVERGENCE_GROWTH * np.abs(self.first_loss))
        newly_diverged = training & (~np.isfinite(train_loss) | blown_up)
        self.diverged |= newly_diverged
        return newly_diverged

    def _validate(self, plan, ok):
        """``(val_loss, val_score)`` ``(M,)`` of the members in ``ok``, NaN elsewhere."""
        m = len(self.members)
        val_loss, val_score = np.full(m, np.nan), np.full(m, np.nan)
        if plan.validation is None:
            return val_loss, val_score
        val_loss_t, val_score_t = self._evaluate(plan.validation)
        val_loss[ok] = val_loss_t.cpu().numpy().astype(np.float64)[ok]
        val_score[ok] = val_score_t.cpu().numpy().astype(np.float64)[ok]
        if plan.monitor is not None:
            scored = np.flatnonzero(ok)
            val_score[scored] = np.asarray(plan.monitor(self, scored), dtype=np.float64)
        return val_loss, val_score

    def _track_best(self, ok, has_val, watched, train_loss, lr):
        """Best epoch, early stopping and convergence of the members in ``ok``.

        As in scikit-learn's MLP, any improvement of the validation value ``watched`` (lower is
        better; where there is one, ``has_val``) makes a new best epoch, while ``tol`` decides
        only patience: ``wait`` counts the epochs since the last improvement by more than
        ``tol``, and early stopping ends training after ``patience`` of them. A member without
        validation rows converges instead: it stops after ``patience`` epochs in which its
        training loss did not improve by ``tol``. A member on the 'adaptive' schedule whose lr
        (``lr``, this epoch's) is above ``ADAPTIVE_MIN_LR`` multiplies it by ``lr_decay`` and
        waits again instead of stopping (scikit-learn's 'adaptive' learning rate).
        """
        tol = self._host("tol").astype(float)
        patience = self._host("patience")
        validated = ok & has_val
        better = validated & (watched < self.best_value)
        by_tol = validated & (watched < self.best_value - tol)
        self.best_value[better] = watched[better]
        self.best_epoch[better] = self.epochs_done[better]
        self.wait[by_tol] = 0
        self.wait[validated & ~by_tol] += 1
        if better.any():
            mask = torch.as_tensor(better, device=self.config.device)[:, None]
            self.best_params = torch.where(mask, self.params, self.best_params)
            self.best_buffers = torch.where(mask, self.buffers, self.best_buffers)
        early = self._host("early_stopping").astype(bool)
        adaptive = np.array([SCHEDULES[c.lr_schedule].adaptive for c in self.members])
        cut = adaptive & (lr > ADAPTIVE_MIN_LR)

        unvalidated = ok & ~has_val
        improved = unvalidated & (train_loss < self.loss_best - tol)
        self.loss_wait[improved] = 0
        self.loss_wait[unvalidated & ~improved] += 1
        self.loss_best = np.where(unvalidated, np.minimum(self.loss_best, train_loss),
                                  self.loss_best)
        for wait, due in ((self.wait, validated & early), (self.loss_wait, unvalidated)):
            due = due & (wait >= patience)
            self.plateau_factor[due & cut] *= self._host("lr_decay")[due & cut].astype(float)
            wait[due & cut] = 0
            self.stopped |= due & ~cut

    def _track_plateau(self, ok, watched):
        """The reduce-on-plateau factor of the members in ``ok``; lower ``watched`` is better."""
        ok = ok & np.array([c.lr_schedule == "plateau" for c in self.members])
        tol = self._host("tol").astype(float)
        better = ok & (watched < self.plateau_best - tol)
        self.plateau_best[better] = watched[better]
        self.plateau_wait[better] = 0
        self.plateau_wait[ok & ~better] += 1
        cut = ok & (self.plateau_wait >= self._host("lr_step"))
        self.plateau_factor[cut] *= self._host("lr_decay")[cut].astype(float)
        self.plateau_wait[cut] = 0

    def _log_epoch(self, training, newly_diverged, train_loss, val_loss, val_score, lr_now,
                   seconds):
        m = len(self.members)
        self.log.append({
            "trained": training.copy(), "epoch": self.epochs_done.copy(),
            "train_loss": train_loss, "val_loss": val_loss, "val_score": val_score,
            "lr": lr_now * self._host("lr").astype(float), "seconds": np.full(m, seconds),
            "diverged": newly_diverged,
        })

    def reset_stopping(self):
        """Let early-stopped members train again (``warm_start``)."""
        self.stopped[:] = False
        self.wait[:] = 0
        self.loss_wait[:] = 0

    def reset_optimizer(self):
        """Start the optimizer afresh: zero state and step counts (scikit-learn's MLP makes a new
        optimizer for every ``fit``, warm or not)."""
        self.steps = torch.zeros_like(self.steps)
        self.state = {name: torch.zeros_like(value) for name, value in self.state.items()}

    def restart_schedule(self):
        """Start the horizon of a ``max_epochs`` schedule (cosine) again: a warm fit's epochs
        are its own ``max_epochs``, as its first fit's were."""
        self.schedule_start = self.epochs_done.copy()

    def reconfigure(self, config):
        """Continue under ``config``: the same network, device and dtype; a new batch size takes
        effect at the next epoch, and a new optimizer starts from its own fresh state."""
        kept = ("architecture", "dtype", "device")
        if any(getattr(config, name) != getattr(self.config, name) for name in kept):
            raise ValueError(f"reconfigure keeps the {', '.join(kept)}; {config} changes them.")
        if config.optimizer != self.config.optimizer:
            self.steps = torch.zeros_like(self.steps)
            self.state = {name: torch.zeros_like(self.params)
                          for name in config.state_names(len(self.members))}
        self.config = config

    # ----------------------------------------------------------------------------------------
    # results

    def _restore_mask(self):
        restore = np.array([c.early_stopping and c.restore_best_weights for c in self.members])
        restore &= self.best_epoch > 0
        return torch.as_tensor(restore, device=self.config.device)[:, None]

    def final_parameters(self):
        """``(params, buffers)`` the members predict with."""
        mask = self._restore_mask()
        return (torch.where(mask, self.best_params, self.params),
                torch.where(mask, self.best_buffers, self.buffers))

    def final_epoch(self):
        """Per member, the epoch whose weights ``final_parameters`` holds."""
        restore = self._restore_mask().cpu().numpy()[:, 0]
        return np.where(restore, self.best_epoch, self.epochs_done)

    def history(self, i):
        """Member ``i``'s epochs as a dict of the :data:`HISTORY_COLUMNS`.

        ``diverged`` is True on the epoch in which the member diverged (its last).
        """
        rows = [entry for entry in self.log if entry["trained"][i]]
        return {name: np.array([r[name][i] for r in rows]) for name in HISTORY_COLUMNS}

    @torch.no_grad()
    def predict_raw(self, X, live=False, members=None):
        """Raw outputs ``(M, n, k)`` of every member for one input ``X`` ``(n, d)``.

        ``live`` predicts with the parameters being trained instead of ``final_parameters``
        (what a validation ``monitor`` scores); ``members`` (indices) predicts only those.
        """
        params, buffers = (self.params, self.buffers) if live else self.final_parameters()
        arch = self.config.architecture
        if members is not None:
            idx = torch.as_tensor(np.asarray(members), device=params.device)
            params, buffers = params[idx], buffers[idx]
            arch = self.config.select(list(members), len(self.members)).architecture
        rows = PREDICT_CHUNK_ROWS["cpu" if params.device.type == "cpu" else "other"]
        chunks = [forward_eval(arch, params, buffers, X[None, start:start + rows])
                  for start in range(0, X.shape[0], rows)]
        return torch.cat(chunks, dim=1) if chunks else torch.zeros(
            params.shape[0], 0, arch.n_outputs, dtype=params.dtype, device=params.device)

    def predict(self, X, live=False, members=None, dtype=None):
        """Predictions after the loss's link (probabilities for softmax losses), the link
        computed in ``dtype`` (None: the model's): float64 probabilities of a float32 network
        sum to 1 to float64 precision."""
        raw = self.predict_raw(X, live, members)
        return LOSSES[self.config.architecture.loss].link(raw if dtype is None else raw.to(dtype))

    # ----------------------------------------------------------------------------------------
    # members in and out

    def select(self, indices):
        """A trainer holding only the members at ``indices``, sharing nothing mutable."""
        host_idx = np.asarray(indices)
        # One member (each fit of a fused search adopts one, per fit): a slice, which indexes a
        # tensor without building an index tensor for each field.
        take = (slice(int(host_idx[0]), int(host_idx[0]) + 1) if host_idx.shape == (1,)
                else host_idx)
        config = self.config.select(host_idx.tolist(), len(self.members))
        tensors = self.tensors.select(take)
        names = config.state_names(len(host_idx))
        if tuple(tensors.state) != names:  # a mixed stack's: only the optimizers selected
            tensors.state = {name: tensors.state[name] for name in names}
        return self._from_parts(
            config, [self.members[i] for i in host_idx], tensors,
            self.progress.select(take),
            [{name: column[take].copy() for name, column in entry.items()}
             for entry in self.log],
            self.interrupted)

    @classmethod
    def stack(cls, trainers):
        """One trainer holding the members of ``trainers`` (configurations that may differ only
        in the activation, :meth:`StackConfig.join`), in order.

        The inverse of :meth:`select`: a fused search stacks fresh members and members that
        continue from an earlier round into one stack. Logs are aligned by padding each trainer's
        log with epochs in which its members did not train.
        """
        if any(t.config.shared() != trainers[0].config.shared() for t in trainers):
            raise ValueError("only trainers of one stack configuration can be stacked")
        config = StackConfig.join([(t.config, len(t.members)) for t in trainers])
        names = config.state_names(sum(len(t.members) for t in trainers))
        parts = []
        for t in trainers:  # every part holds the state of every optimizer of the stack
            state = {name: t.state[name] if name in t.state else torch.zeros_like(t.params)
                     for name in names}
            parts.append(replace(t.tensors, state=state))
        return cls._from_parts(
            config, [m for t in trainers for m in t.members], MemberTensors.concat(parts),
            MemberProgress.concat([t.progress for t in trainers]),
            _stacked_logs(trainers), any(t.interrupted for t in trainers))

    def continued_as(self, member, device, dtype=None):
        """A copy of this single-member trainer on ``device`` (its network in ``dtype`` when
        given) that goes on training as ``member``: the trained state, ``member``'s
        hyperparameters from now on. The copy shares nothing with this trainer."""
        trainer = self.select([0]).to(device, dtype)
        trainer.members = [member]
        return trainer

    def to(self, device, dtype=None):
        """Move every tensor to ``device``, and the network to ``dtype`` when given (a model
        unpickled without its GPU; a loaded or unpickled model that continues training where its
        estimator's ``device`` resolves now)."""
        device = torch.device(device)
        dtype = self.config.dtype if dtype is None else dtype
        self.config = replace(self.config, device=device, dtype=dtype)
        self.tensors = self.tensors.to(device, dtype)
        return self

    def __getstate__(self):
        # One flat dict of the structures' fields (the layout of version 1 of the save format,
        # which reads it back field by field). Pickles hold CPU tensors so that a model trained
        # on a GPU loads anywhere.
        cpu = torch.device("cpu")
        # Attributes set on the trainer beside its structures travel as they are.
        extra = {k: v for k, v in vars(self).items() if k not in _STRUCTURED_ATTRIBUTES}
        return {**extra, "config": replace(self.config, device=cpu), "members": self.members,
                **self.tensors.to(cpu).as_dict(), **self.progress.as_dict(), "log": self.log,
                "interrupted": self.interrupted}

    def __setstate__(self, state):
        known = {"config", "members", "log", "interrupted",
                 *(f.name for f in fields(MemberTensors)), *(f.name for f in fields(MemberProgress))}
        vars(self).update({k: v for k, v in state.items() if k not in known})
        m = len(state["members"])  # states saved before convergence was tracked lack these
        state = {"loss_best": np.full(m, np.inf), "loss_wait": np.zeros(m, dtype=np.int64),
                 "schedule_start": np.zeros(m, dtype=np.int64),
                 "rows_seen": np.zeros(m, dtype=np.int64),
                 "lbfgs_results": np.full(m, None, dtype=object), **state}
        progress = MemberProgress.from_dict(state)
        self._assign(state["config"], list(state["members"]), MemberTensors.from_dict(state),
                     progress, _with_divergence_column(state["log"], progress.diverged),
                     state["interrupted"])


def _stacked_logs(trainers):
    """The logs of ``trainers`` side by side, each padded with epochs its members did not train."""
    length = max(len(t.log) for t in trainers)
    template = next((t.log[0] for t in trainers if t.log), None)
    log = []
    for i in range(length):
        entries = [t.log[i] if i < len(t.log) else _idle_entry(template, len(t.members))
                   for t in trainers]
        log.append({k: np.concatenate([e[k] for e in entries]) for k in entries[0]})
    return log


def _with_divergence_column(log, diverged):
    """``log`` with a ``diverged`` column in every entry.

    Logs written before the column existed get it from the members' ``diverged`` flags: a
    diverged member never trains again, so it diverged in the last epoch it trained.
    """
    if all("diverged" in entry for entry in log):
        return log
    last_trained = {}
    for position, entry in enumerate(log):
        for i in np.flatnonzero(entry["trained"]):
            last_trained[int(i)] = position
    log = [{**entry, "diverged": np.zeros(len(entry["trained"]), dtype=bool)} for entry in log]
    for i in np.flatnonzero(diverged):
        if int(i) in last_trained:
            log[last_trained[int(i)]]["diverged"][i] = True
    return log


class _Penalties(NamedTuple):
    """``(M, P)`` L2 and L1 coefficients (zero outside the weight matrices), None when unused."""

    l2: torch.Tensor | None
    l1: torch.Tensor | None


def _column_update(device):
    """Whether the optimizer update runs the column rules (else the grouped ones) on ``device``.

    On a GPU always: one launch per operation per step whatever the number of distinct
    hyperparameters (a random search gives every member its own lr).
    """
    return device.type != "cpu" or CPU_COLUMN_UPDATE


class _CudaGraphs:
    """Whether the training step may be captured as a CUDA graph in this process: once a capture
    has failed (``failure``, its reason), every later fit runs its steps eagerly."""

    def __init__(self):
        self.failure = None

    def give_up(self, reason):
        """Record a failed capture; warn about the first one."""
        if self.failure is None:
            warnings.warn(f"CUDA graph capture of the training step failed ({reason}); training "
                          f"runs eagerly (set {CUDA_GRAPHS_VARIABLE}=0 to skip the attempt).",
                          UserWarning, stacklevel=3)
        self.failure = reason


CUDA_GRAPHS = _CudaGraphs()


def _step_mode(device):
    """``'graph'`` (CUDA): the step on static buffers, captured in a CUDA graph; else
    ``'eager'``. (``'static'``, the static-buffer step run eagerly, is what tests and benchmarks
    select to check on the CPU what the graph replays.)"""
    if device.type != "cuda" or CUDA_GRAPHS.failure is not None:
        return "eager"
    return "eager" if os.environ.get(CUDA_GRAPHS_VARIABLE, "1").strip() == "0" else "graph"


# The CUDA calls of the graph step, one function each (tests replace them on the CPU).


def _side_stream(device):
    """A new stream on ``device`` that waits for the current one."""
    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    return side


def _run_on_stream(stream, device, body):
    """``body()`` on ``stream``; the current stream then waits for it."""
    with torch.cuda.device(device), torch.cuda.stream(stream):
        body()
    torch.cuda.current_stream(device).wait_stream(stream)


def _capture(device, body):
    """``body`` captured (not run) as a ``torch.cuda.CUDAGraph``; ``replay()`` runs it."""
    graph = torch.cuda.CUDAGraph()
    # The capture stream is the current device's: the stack's device made current. Stacks may
    # train in threads (one per GPU): only this thread's calls may break its capture.
    with torch.cuda.device(device), torch.cuda.graph(graph, capture_error_mode="thread_local"):
        body()
    return graph


class _EpochUpdate:
    """The optimizer update of one epoch, applied in place after every step.

    With the column rules (``plan.columns``), every member's lr and hyperparameters are ``(M, 1)``
    columns and members that do not train in a step are masked by the ``active`` column. With the
    grouped rules, members are grouped by their hyperparameters for this epoch (the lr changes
    with the schedule) so the optimizer's kernel runs once per group on lists of member rows;
    members that do not train in a step (frozen, out of rows, or a batch of zero weight) are
    left out of the lists. Either way their parameters, state, step count and BatchNorm
    statistics stay as they were.
    """

    def __init__(self, trainer, plan, training, lr_now):
        self.trainer, self.grad, self.penalties = trainer, plan.grad, plan.penalties
        self.columns = plan.columns
        self.l2_scale = None  # (M, 1) this step's L2 factor under the batch penalty
        configs = trainer.members
        lr = lr_now * np.array([c.lr for c in configs], dtype=float)
        params = trainer.params
        lr_t = torch.as_tensor(lr, dtype=params.dtype, device=params.device)[:, None]
        if self.columns is not None:
            self.columns["lr"].copy_(lr_t)
        # Per run of members with one optimizer (one run but in a mixed stack): the rule, its
        # members' rows, AdamW's decay factors and the grouped rule's groups.
        self.runs = []
        for optimizer, rows in trainer.config.optimizer_runs(len(configs)):
            decay = None
            if optimizer.decoupled_weight_decay and self.penalties.l2 is not None:
                # AdamW shrinks the weights by lr * weight_decay before its step, as torch.optim
                # does.
                decay = 1.0 - lr_t[rows] * self.penalties.l2[rows]
                if self.columns is not None:
                    decay = self.columns["decay"][rows].copy_(decay)
            groups = ([] if self.columns is not None
                      else self._groups(trainer, optimizer, rows, training, lr))
            self.runs.append((optimizer, rows, decay, groups))

    def _groups(self, trainer, optimizer, run, training, lr):
        """``[(lr, hyper, member indices, their rows of every matrix)]`` of the members of
        ``run`` (a slice), made once per epoch."""
        configs = trainer.members
        groups = {}
        for i in np.flatnonzero(training[run]) + run.start:
            key = (float(lr[i]), *(float(getattr(configs[i], name))
                                   for name in optimizer.hyper_names))
            groups.setdefault(key, []).append(int(i))
        rows = {"params": trainer.params.unbind(0), "grads": self.grad.unbind(0),
                "steps": trainer.steps.unbind(0)}
        rows.update({name: trainer.state[name].unbind(0) for name in optimizer.state_names})
        return [(key[0], dict(zip(optimizer.hyper_names, key[1:])), np.array(indices),
                 {name: [r[i] for i in indices] for name, r in rows.items()})
                for key, indices in groups.items()]

    def batch_penalty(self, batch_loss, weight_total, rows):
        """scikit-learn's objective (``StackConfig.batch_penalty``) for this step: its L2
        coefficient becomes weight_decay / ``weight_total`` (the batch's, ``(M,)``), and the
        batch loss ``batch_loss`` (a weighted sum, ``(M,)``) that batch's mean plus the penalty,
        times its ``rows``. Before the update: the penalty is of the weights the loss saw."""
        inverse = 1.0 / weight_total.clamp_min(torch.finfo(weight_total.dtype).tiny)
        self.l2_scale = inverse[:, None]
        if self.penalties.l2 is not None:
            params = self.trainer.params
            batch_loss = batch_loss + 0.5 * (self.penalties.l2 * params * params).sum(1)
        return batch_loss * rows * inverse

    def __call__(self, active, active_t, new_buffers):
        """Update the members marked in ``active`` (host bools, or None when only the device
        knows: the column rules then mask by ``active_t``, as a CUDA graph must); ``active_t``
        is the same as an ``(M, 1)`` device column, None when all are. Return the BatchNorm
        buffers."""
        trainer, grad, penalties = self.trainer, self.grad, self.penalties
        params, state = trainer.params, trainer.state
        l2 = penalties.l2
        if l2 is not None and self.l2_scale is not None:
            l2 = l2 * self.l2_scale
        for _, rows, decay, _ in self.runs:
            if l2 is not None and decay is None:
                grad[rows].addcmul_(l2[rows], params[rows])
        if penalties.l1 is not None:
            grad.addcmul_(penalties.l1, torch.sign(params))
        everyone = active is not None and bool(active.all())
        trainer.steps.add_(1.0 if everyone else active_t)
        for _, rows, decay, _ in self.runs:
            if decay is not None:
                params[rows].mul_(decay if everyone else torch.where(active_t[rows], decay, 1.0))
        for optimizer, rows, _, groups in self.runs:
            if self.columns is not None:
                optimizer.columns(
                    params[rows], grad[rows], {name: state[name][rows]
                                               for name in optimizer.state_names},
                    trainer.steps[rows], self.columns["lr"][rows],
                    {name: self.columns["hyper"][name][rows] for name in optimizer.hyper_names},
                    None if everyone else active_t[rows])
            for lr, hyper, indices, member_rows in groups:
                if not everyone:
                    keep = np.flatnonzero(active[indices])
                    if len(keep) == 0:
                        continue
                    member_rows = {name: [r[k] for k in keep] for name, r in member_rows.items()}
                optimizer.update(member_rows["params"], member_rows["grads"],
                                 {name: member_rows[name] for name in optimizer.state_names},
                                 member_rows["steps"], lr, hyper)
        if everyone or new_buffers.shape[1] == 0:
            return new_buffers
        return torch.where(active_t, new_buffers, trainer.buffers)


class _StaticStep:
    """One training step that reads only preallocated buffers, so a CUDA graph can replay it.

    Each step copies its batch (inputs, targets, sample weights, the valid-row mask), its dropout
    and noise keys and the active column into the same tensors; the step always takes the
    general form (weights, mask and active column given, the update masked on the device) and
    writes parameters, optimizer state, step counts, BatchNorm statistics and the loss sum in
    place. With ``capture`` (CUDA), the first step runs eagerly on a side stream (warm-up), the
    second is captured and every later one replays the graph; a capture that fails for any
    reason warns once and leaves the steps eager.
    """

    def __init__(self, trainer, step, dropout, noise, capture):
        self.trainer, self.step, self.dropout, self.noise = trainer, step, dropout, noise
        self.capture, self.warmed_up, self.graph = capture, False, None
        m, device = len(trainer.members), trainer.config.device
        self.loss_sum = torch.zeros(m, dtype=trainer.config.dtype, device=device)
        # x, y, weight, valid, keys (L + 1, M: dropout's per layer, then noise's), active (M, 1):
        # made on the first load
        self.inputs = None

    def load(self, x, y, weight, valid, keys, active):
        """Copy one step's inputs into the static buffers."""
        if self.inputs is None:
            self.inputs = [torch.empty_like(t, dtype=x.dtype if t is valid else t.dtype,
                                            memory_format=torch.contiguous_format)
                           for t in (x, y, weight, valid, keys, active)]
        for buffer, value in zip(self.inputs, (x, y, weight, valid, keys, active)):
            buffer.copy_(value)

    def run(self, update):
        """One step with the loaded inputs and this epoch's ``update``."""
        if self.graph is not None:
            self.graph.replay()
        elif self.capture and self.warmed_up:
            self.graph = self._captured(update)
            if self.graph is None:
                self._body(update)
            else:
                self.graph.replay()
        elif self.capture:
            self._warm_up(update)
            self.warmed_up = True
        else:
            self._body(update)

    def _body(self, update):
        trainer = self.trainer
        x, y, weight, valid, keys, active = self.inputs
        if self.noise is not None:
            x = x + self.noise * rng.normal(keys[-1], x.shape[1:], x.dtype)
        _, batch_loss, new_buffers = self.step(trainer.buffers, x, y, weight, valid, self.dropout,
                                               keys[:-1])
        if trainer.config.batch_penalty:
            batch_loss = update.batch_penalty(batch_loss, weight.sum((1, 2)), valid.sum((1, 2)))
        new_buffers = update(None, active, new_buffers)
        if new_buffers is not trainer.buffers:
            trainer.buffers.copy_(new_buffers)
        self.loss_sum.add_(batch_loss)

    def _warm_up(self, update):
        # The first step on a side stream, as CUDA graph capture wants (lazy initialisations
        # happen outside the capture); it is a real step.
        device = self.trainer.config.device
        try:
            side = _side_stream(device)
        except Exception as exc:  # any reason: warn and train eagerly
            self._give_up(exc)
            self._body(update)
            return
        _run_on_stream(side, device, lambda: self._body(update))

    def _captured(self, update):
        """The step captured as a CUDA graph (nothing runs), or None when capture failed."""
        try:
            return _capture(self.trainer.config.device, lambda: self._body(update))
        except Exception as exc:  # the warm-up ran this same step: not a bug of the step
            self._give_up(exc)
            return None

    def _give_up(self, exc):
        self.capture = False
        CUDA_GRAPHS.give_up(f"{type(exc).__name__}: {exc}")


def _idle_entry(template, m):
    """A log entry for ``m`` members that did not train that epoch: False / 0 / NaN columns."""
    return {k: np.zeros(m, dtype=v.dtype) if v.dtype.kind in "biu" else np.full(m, np.nan)
            for k, v in template.items()}
