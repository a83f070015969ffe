"""Training every candidate x fold of a batch together, before scikit-learn scores them.

scikit-learn's search asks for a batch of candidates; for each candidate x fold we do exactly what the
estimator's own ``fit`` would do up to the engine (``_plan_fit``: validation, target encoding, seed,
validation split), group the resulting plans into stacks of one configuration, train each stack
once, and register every member under its fit key. scikit-learn then fits and scores as usual, and
each ``fit`` adopts its pretrained member. Anything that cannot be planned (another estimator, an
unknown fit parameter, a parameter error) is simply not pretrained: scikit-learn fits it itself.
"""

import math
from collections import defaultdict
from dataclasses import replace

import numpy as np
import torch
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.pipeline import Pipeline
from sklearn.utils.metaestimators import _safe_split
from sklearn.utils.validation import _check_method_params

from .._base import _as_tensor, _BaseMLP
from .._engine import StackedTrainer
from .._pretrained import fit_key

CPU_MEMORY_BUDGET = 2 * 2**30
GPU_MEMORY_SHARE = 0.5
RESOURCE_PARAMETER = "max_epochs"


def split_estimator(estimator):
    """``(prefix, mlp)``: the steps before a final sknn_tune MLP (or None), and the MLP; or
    ``(None, None)`` when the estimator is not one the engine can fuse."""
    if isinstance(estimator, _BaseMLP):
        return None, estimator
    if isinstance(estimator, Pipeline) and isinstance(estimator.steps[-1][1], _BaseMLP):
        prefix = estimator[:-1] if len(estimator.steps) > 1 else None
        return prefix, estimator.steps[-1][1]
    return None, None


class Fusion:
    """Pretrains batches of candidates for one search ``fit`` and keeps what later rounds reuse."""

    def __init__(self, estimator, X, y, fit_params, max_members=None, n_jobs=None, verbose=0):
        self.estimator = estimator
        self.X, self.y = X, y
        self.fit_params = fit_params
        self.max_members = max_members
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.registry = {}  # fit key -> trained single-member trainer(s), for scikit-learn's pass
        self.resumable = {}  # resume key -> live single-member trainer (successive halving)
        self.epochs_trained = 0  # member-epochs, so tests can check nothing trains twice
        self._prefix_outputs = {}
        self.enabled = (split_estimator(estimator)[1] is not None
                        and self._weight_param_name(estimator) is not False)

    def _weight_param_name(self, estimator):
        """The fit parameter that carries sample weights, None if absent, False if a fit
        parameter is present that fusion does not understand."""
        names = set(self.fit_params)
        if not names:
            return None
        allowed = {"sample_weight"}
        if isinstance(estimator, Pipeline):
            allowed = {f"{estimator.steps[-1][0]}__sample_weight"}
        return names.pop() if names <= allowed and len(names) == 1 else False

    # ------------------------------------------------------------------------------------------

    def train(self, candidate_params, splits):
        """Train every candidate x fold of this batch that fusion can, and register them."""
        if not self.enabled:
            return
        # Prefix outputs are keyed by fold number: only valid for this batch's splits (successive
        # halving over n_samples, or an unseeded splitter, gives other rows under the same number).
        self._prefix_outputs = {}
        plans, self._copies = [], {}
        for params in candidate_params:
            for fold, (train, _) in enumerate(splits):
                planned = self._plan(params, fold, train)
                if planned is None:
                    continue
                # Candidates that set the same parameters (overlapping grids) are one fit: train
                # it once, and give each of them its own copy.
                key = planned[0].key
                if key in self._copies:
                    self._copies[key] += 1
                else:
                    self._copies[key] = 0
                    plans.append(planned)
        stacks = defaultdict(list)
        for planned in plans:  # members with a validation scorer need a monitor: own stacks
            stacks[planned[0].config, planned[3] is not None].append(planned)
        chunks = [group[i:i + size] for group in stacks.values()
                  for size in [self._stack_size(group)] for i in range(0, len(group), size)]
        if self.verbose:
            print(f"Fused training of {len(plans)} fits in {len(chunks)} stack(s)")
        n_jobs = 1 if self.n_jobs is None else self.n_jobs
        Parallel(n_jobs=n_jobs, backend="threading")(
            delayed(self._train_stack)(chunk, i, len(chunks)) for i, chunk in enumerate(chunks))

    def _plan(self, params, fold, train):
        """``(plan, block, resume_key, scorer)`` for one candidate x fold, or None if it cannot be
        fused; ``scorer`` scores the member on its validation rows when the MLP has ``scoring``."""
        estimator = clone(self.estimator).set_params(**params)
        prefix, mlp = split_estimator(estimator)
        if mlp is None:
            return None
        X_train, y_train = _safe_split(estimator, self.X, self.y, train)
        weight_name = self._weight_param_name(estimator)
        sample_weight = None
        if weight_name:  # indexed as scikit-learn's _fit_and_score does (None stays None)
            sample_weight = _check_method_params(self.X, self.fit_params, train)[weight_name]
        try:  # a bad candidate is left to scikit-learn, which reports it with error_score
            mlp._validate_params()
            block = (fold, repr(sorted(prefix.get_params().items())) if prefix else None)
            if prefix is not None:
                if block not in self._prefix_outputs:
                    self._prefix_outputs[block] = clone(prefix).fit_transform(X_train, y_train)
                X_train = self._prefix_outputs[block]
            plan = mlp._plan_fit(X_train, y_train, sample_weight)
            scorer = mlp._live_scorer(plan)  # as fit's monitor does
        except Exception:
            return None
        resume_params = {k: v for k, v in mlp.get_params(deep=False).items()
                         if k not in (RESOURCE_PARAMETER, "verbose")}
        resume_key = None
        if mlp.lr_schedule != "cosine":  # cosine depends on max_epochs: no prefix of a longer run
            resume_key = fit_key(resume_params, plan.X, plan.Y, plan.data.train_weight)
            if mlp.random_state is not None:  # else any seed and split will do
                resume_key += str((plan.data.train_rows.tobytes(), plan.member.seed))
        return plan, block, resume_key, scorer

    def _stack_size(self, group):
        if self.max_members is not None:
            return self.max_members
        plan = group[0][0]
        config = plan.config
        itemsize = torch.empty(0, dtype=config.dtype).element_size()
        arch = config.architecture
        n_rows = len(plan.data.train_rows) + (0 if plan.data.val_rows is None
                                              else len(plan.data.val_rows))
        activations = config.batch_size * (sum(arch.hidden_layer_sizes) * 4 + arch.n_features)
        per_member = itemsize * (8 * arch.n_parameters() + activations
                                 + 2 * n_rows * (arch.n_features + arch.n_outputs))
        if config.device.type == "cuda":
            budget = GPU_MEMORY_SHARE * torch.cuda.mem_get_info(config.device)[0]
        else:
            budget = CPU_MEMORY_BUDGET
        return max(1, int(budget // per_member))

    def _train_stack(self, chunk, index, n_stacks):
        """Train one stack; on CUDA out-of-memory, train it in halves."""
        try:
            self._train_members(chunk)
        except torch.cuda.OutOfMemoryError:
            if len(chunk) == 1:
                raise
            torch.cuda.empty_cache()
            half = math.ceil(len(chunk) / 2)
            self._train_stack(chunk[:half], index, n_stacks)
            self._train_stack(chunk[half:], index, n_stacks)

    def _train_members(self, chunk):
        config = chunk[0][0].config
        # Each distinct training array (fold x prefix parameters) goes to the device once.
        blocks, offsets, starts, n = {}, [], [], 0
        for plan, block, *_ in chunk:
            if block not in blocks:
                blocks[block] = (n, plan)
                n += plan.X.shape[0]
            offsets.append(blocks[block][0])
        X = torch.cat([_as_tensor(p.X, config.dtype, config.device) for _, p in blocks.values()])
        Y = torch.cat([_as_tensor(p.Y, config.dtype, config.device) for _, p in blocks.values()])
        data = []
        for (plan, _, resume_key, _), offset in zip(chunk, offsets):
            previous, rows = self.resumable.get(resume_key, (None, None))
            if previous is not None and previous.epochs_done[0] <= plan.member.max_epochs:
                # Continue where the last round left off, with its seed and its rows.
                trainer = previous.select([0])
                trainer.members = [replace(plan.member, seed=previous.members[0].seed)]
            else:
                trainer, rows = StackedTrainer(config, [plan.member]), plan.data
            starts.append(trainer)
            data.append(_shifted(rows, offset))
        trainer = StackedTrainer.stack(starts)
        before = trainer.epochs_done.sum()
        scorers = [scorer for *_, scorer in chunk]
        monitor = None
        if scorers[0] is not None:  # the stack's members all have a scorer (see train)
            def monitor(trainer, members):
                return [scorers[i](trainer, i) for i in members]
        trainer.fit(X, Y, data, monitor=monitor)
        self.epochs_trained += int(trainer.epochs_done.sum() - before)
        for i, ((plan, _, resume_key, _), rows) in enumerate(zip(chunk, data)):
            member = trainer.select([i])
            copies = [trainer.select([i]) for _ in range(self._copies.get(plan.key, 0))]
            self.registry[plan.key] = [member, *copies] if copies else member
            if resume_key is not None:
                self.resumable[resume_key] = (member, _shifted(rows, -offsets[i]))


def _shifted(data, offset):
    """``data`` with its row indices moved by ``offset`` (its block's place in the stacked X)."""
    return replace(data, train_rows=data.train_rows + offset,
                   val_rows=None if data.val_rows is None else data.val_rows + offset)


def same_splits(splits):
    """A CV object that yields exactly ``splits`` (so scoring uses the folds we trained on)."""
    from sklearn.model_selection import check_cv

    return check_cv([(np.asarray(train), np.asarray(test)) for train, test in splits])
