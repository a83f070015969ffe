"""Training every candidate x fold of a batch together, before scikit-learn scores them.

scikit-learn's search asks for a batch of candidates; for each candidate x fold we do exactly what the
estimator's own ``fit`` would do up to the engine (``plan_fit``: validation, target encoding, seed,
validation split; see :mod:`sknn_tune._fit_protocol`), group the resulting plans into stacks of one
configuration, train each stack once, and register every member under its fit key. scikit-learn then
fits and scores as usual, and each ``fit`` adopts its pretrained member. Anything that cannot be
planned (another estimator, an unknown fit parameter, a parameter error) is simply not pretrained:
scikit-learn fits it itself.

Each stack is a self-contained :class:`StackJob` that :func:`train_stack` turns into trained members
without touching the search: it runs in this process (the default), in threads (``n_jobs``), or on
the workers of the active joblib backend (loky, dask, ray), and only this process registers what
comes back. Stacks whose estimator says ``device='auto'`` or ``'cuda'`` are spread round-robin over
the CUDA devices the worker sees (:func:`~sknn_tune._engine.device.available_devices`).
"""

import contextlib
import math
import os
from collections import defaultdict
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import NamedTuple

import numpy as np
import torch
from joblib import Parallel, delayed
from joblib.parallel import get_active_backend
from sklearn import get_config
from sklearn.base import clone
from sklearn.pipeline import Pipeline

from .._base import _as_tensor, _BaseMLP
from .._engine import SCHEDULES, MemberConfig, MemberData, StackConfig, StackedTrainer
from .._engine import device as engine_device
from .._engine.device import compute_dtype, resolve_device
from .._engine.rows import stack_rows
from .._fit_protocol import FitPlan, reusing_validation
from .._sklearn_compat import _check_method_params, _safe_split
from ._dask import dask_client, train_on_dask
from ._pretrained import Registry, array_digest, fit_key, plan_key

CPU_MEMORY_BUDGET = 2 * 2**30
GPU_MEMORY_SHARE = 0.5
# Most members a CPU stack gets from the memory estimate. Larger stacks train no faster per member
# (a 6-8-3 MLP: 0.20 ms per member-epoch at 256 members, 0.18 at 1024, 0.17 at 4096; a 40-128-64-5
# one slows from 14 ms at 64 to 17 at 256 and 28 at 1024), while a stack's training memory and a
# slice's members, which wait on the host until scikit-learn has scored them, grow with it.
CPU_MAX_MEMBERS = 512
# What one CPU stack's training step may touch (parameters, gradient and two optimizer states,
# one batch's activations): kept within the cache, the elementwise passes and the optimizer
# update stop waiting on memory. Measured on a 2-core EPYC (32 MiB L3), one thread, float64: a
# 40-128-64-5 search (16 candidates x 5 folds) took 6.2 s in stacks of 16 members (13 MiB each),
# 6.2 s at 32 and 7.0-8.8 s at 80; a 20-64-32-4 one (16 x 3) 2.0 s at 48 (15 MiB) and 2.2 s at
# 16 (per-step overhead, spread over fewer members). Budgets of 8 / 16 / 32 MiB for the first in
# float32: 3.0-3.3 / 3.1-3.4 / 3.5-4.1 s.
CPU_STACK_BYTES = 16 * 2**20
CPU_MIN_MEMBERS = 8
RESOURCE_PARAMETER = "max_epochs"
SPREAD_DEVICES = ("auto", "cuda")  # an estimator's device that lets its stacks go to any GPU


def split_estimator(estimator):
    """``(prefix, mlp)``: the steps before a final sknn_tune MLP (or None), and the MLP; or
    ``(None, None)`` when the estimator is not one the engine can fuse."""
    if isinstance(estimator, _BaseMLP):
        return None, estimator
    if isinstance(estimator, Pipeline) and isinstance(estimator.steps[-1][1], _BaseMLP):
        prefix = estimator[:-1] if len(estimator.steps) > 1 else None
        return prefix, estimator.steps[-1][1]
    return None, None


def spread_request(device):
    """An estimator's ``device`` when it lets its stacks go to any GPU ('auto', 'cuda'), else
    None ('cpu', 'cuda:1': exactly there)."""
    name = str(device)
    return name if name in SPREAD_DEVICES else None


class Planned(NamedTuple):
    """One candidate x fold the fused stacks can train."""

    key: str  # its fit key (parameters and data): where scikit-learn's fit finds it
    plan: FitPlan
    block: tuple  # identifies its training array: (fold, prefix parameters)
    resume_key: str | None  # where successive halving finds it again, None: never continued
    spread: str | None  # the estimator's device if it lets the stack go to any GPU, else None


@dataclass
class StackJob:
    """Everything one stack's training needs, picklable, and nothing of the search.

    ``X`` / ``Y`` are the distinct training arrays of the members (numpy, concatenated in order
    on the device); each member's ``data`` indexes that concatenation. ``starts[i]``, when not
    None, is a trained single-member trainer that member ``i`` continues (successive halving);
    it is copied, never changed. ``spread``: the stack goes to
    ``available_devices()[slot % n]`` of the process that trains it (``resolve_device(spread)``
    when it sees no GPU); None: to ``config.device``.
    """

    config: StackConfig
    members: list[MemberConfig]
    data: list[MemberData]
    X: list[np.ndarray]
    Y: list[np.ndarray]
    starts: list[StackedTrainer | None]
    scorers: list | None = None
    spread: str | None = None
    slot: int = 0


def train_stack(job):
    """Train one :class:`StackJob`: ``(members, member_epochs)``, one single-member trainer per
    member, in order, and the member-epochs trained. On CUDA out-of-memory the stack is trained
    in halves. Depends on ``job`` alone, so it runs in any worker; trainers that come back from
    another process hold CPU tensors (``StackedTrainer.__getstate__``)."""
    device = _stack_device(job)
    config = job.config
    if device != config.device:
        # Another kind of device: its default dtype (another GPU keeps the planned one).
        dtype = (config.dtype if device.type == config.device.type
                 else compute_dtype(device, job.X[0].dtype.name))
        config = replace(config, device=device, dtype=dtype)
    # The thread's current CUDA device too: anything not placed explicitly lands there.
    with torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext():
        X = stack_rows(job.X, config.dtype, device)
        Y = torch.cat([_as_tensor(y, config.dtype, device) for y in job.Y])
        return _train_members(job, config, X, Y, list(range(len(job.members))))


def _stack_device(job):
    if job.spread is None:
        return job.config.device
    devices = engine_device.available_devices()
    return devices[job.slot % len(devices)] if devices else resolve_device(job.spread)


def _train_members(job, config, X, Y, indices):
    """``(members, member_epochs)`` of the members at ``indices``; a member whose training
    raises comes back as None."""
    try:
        return _fit_members(job, config, X, Y, indices)
    except torch.cuda.OutOfMemoryError:
        if len(indices) == 1:
            raise
        out_of_memory = True
    except Exception:
        # One member's error (its validation scorer raising, say) must not fail the others: each
        # trains alone, and one that fails again is left to scikit-learn's own fit, which reports
        # it with error_score and FitFailedWarning as GridSearchCV does.
        if len(indices) == 1:
            return [None], 0
        out_of_memory = False
    if out_of_memory:
        # The failed stack's tensors died with the except block (its traceback holds their
        # frames while inside it); free the cache, then train the halves.
        torch.cuda.empty_cache()
        half = math.ceil(len(indices) / 2)
        parts = [indices[:half], indices[half:]]
    else:
        parts = [[i] for i in indices]
    members, epochs = [], 0
    for part in parts:
        part_members, part_epochs = _train_members(job, config, X, Y, part)
        members += part_members
        epochs += part_epochs
    return members, epochs


def _fit_members(job, config, X, Y, indices):
    # Fresh members next to each other start as one trainer: each member draws its own initial
    # weights from its seed either way, and one trainer per member costs ~1.5 ms each.
    starts, fresh = [], []
    for i in indices:
        if job.starts[i] is None:
            fresh.append(job.members[i])
            continue
        if fresh:
            starts.append(StackedTrainer(config, fresh))
            fresh = []
        start = job.starts[i].select([0]).to(config.device)  # a copy: the search keeps its own
        start.members = [job.members[i]]
        starts.append(start)
    if fresh:
        starts.append(StackedTrainer(config, fresh))
    trainer = StackedTrainer.stack(starts)
    before = int(trainer.epochs_done.sum())
    monitor = None
    if job.scorers is not None:  # a stack's members all have a scorer (see Fusion.train)
        scorers = [job.scorers[i] for i in indices]

        def monitor(trainer, members):
            return [scorers[i](trainer, i) for i in members]

    trainer.fit(X, Y, [job.data[i] for i in indices], monitor=monitor)
    members = [trainer.select([k]) for k in range(len(indices))]
    return members, int(trainer.epochs_done.sum()) - before


class Fusion:
    """Pretrains batches of candidates for one search ``fit`` and keeps what later rounds reuse.

    The stacks run under the joblib backend active when the fusion is made (a ``dask`` or ``ray``
    cluster, loky, ...) with ``n_jobs`` workers (None: the backend context's ``n_jobs``); without
    a backend context, in this process: on the CPU in ``n_jobs`` threads (None: as many as torch
    has intra-op threads), one stack each; on GPUs one stack after another, or in ``n_jobs``
    threads (one thread per device by default when stacks spread over several GPUs).
    """

    def __init__(self, estimator, X, y, fit_params, max_members=None, n_jobs=None, verbose=0,
                 continues=True):
        self.estimator = estimator
        self.X, self.y = X, y
        self.fit_params = fit_params
        self.max_members = max_members
        self.n_jobs = n_jobs
        self.verbose = verbose
        # Whether a later batch may continue this one's members (successive halving over
        # max_epochs, Optuna's pruning): only then are trained members kept after scoring.
        self.continues = continues
        # What Parallel(prefer="threads") would use here: an explicit backend, else threads; and
        # the n_jobs of the parallel_config / parallel_backend context, if any.
        self.backend = get_active_backend(prefer="threads")[0]
        self._context_n_jobs = get_active_backend()[1]
        self.registry = Registry()  # fit key -> trained member(s), for scikit-learn's pass
        self.resumable = {}  # resume key -> live single-member trainer (successive halving)
        self.epochs_trained = 0  # member-epochs, so tests can check nothing trains twice
        self._forget_folds()
        self.enabled = (split_estimator(estimator)[1] is not None
                        and self._weight_param_name(estimator) is not False)

    def _forget_folds(self):
        """Drop what planning keeps per fold number: fold rows, prefix outputs, validated inputs
        and data digests (a batch's splits give other rows under the same number)."""
        self._prefix_outputs, self._fold_rows, self._validated, self._digests = {}, {}, {}, {}

    def _weight_param_name(self, estimator):
        """The fit parameter that carries sample weights, None if absent, False if a fit
        parameter is present that fusion does not understand."""
        names = set(self.fit_params)
        if not names:
            return None
        allowed = {"sample_weight"}
        if isinstance(estimator, Pipeline):
            if get_config()["enable_metadata_routing"]:
                # Routed by the steps' requests: fusable when the network, and no step before
                # it, asks for the weights under their own name.
                requests = [step.get_metadata_routing().fit.requests.get("sample_weight")
                            if hasattr(step, "get_metadata_routing") else None
                            for _, step in estimator.steps if step not in (None, "passthrough")]
                if requests[-1] is not True or any(r for r in requests[:-1]):
                    return False
            else:
                allowed = {f"{estimator.steps[-1][0]}__sample_weight"}
        return names.pop() if names <= allowed and len(names) == 1 else False

    # ------------------------------------------------------------------------------------------

    def train(self, candidate_params, splits, in_slices=False):
        """Train every candidate x fold of this batch that fusion can, and register them.

        ``in_slices`` trains only the first candidates, as many as fill the stacks that train at
        once (one per worker or GPU; at least one candidate): the caller trains the others once
        scikit-learn has scored these, so that what waits to be scored does not grow with the
        number of candidates. Returns, per candidate trained, the fit keys registered for its
        folds (none where it is not fused).
        """
        if not self.enabled:
            return [[] for _ in candidate_params]
        # Per fold number: only valid for this batch's splits (successive halving over n_samples,
        # or an unseeded splitter, gives other rows under the same number).
        self._forget_folds()
        plans, copies, candidate_keys = [], {}, []
        slots = self._parallel_stacks() if in_slices else math.inf
        stack_sizes, filled = {}, 0  # stacks the planned members fill, each of its group's size
        for params in candidate_params:
            # A candidate whose folds would overfill the stacks waits for the next slice (an
            # overfilled slice trains an extra, part-empty stack).
            if candidate_keys and filled + Fraction(len(splits), min(
                    stack_sizes.values(), default=1)) > slots:
                break
            keys = []
            candidate_keys.append(keys)
            for fold, (train, _) in enumerate(splits):
                planned = self._plan(params, fold, train)
                if planned is None:
                    continue
                if _group(planned) not in stack_sizes:
                    stack_sizes[_group(planned)] = self._stack_capacity(planned)
                filled += Fraction(1, stack_sizes[_group(planned)])
                # Candidates that set the same parameters (overlapping grids) are one fit: train
                # it once, and give each of them its own copy.
                key = planned.key
                keys.append(key)
                if key in self.registry and key not in copies:
                    continue  # trained already, waiting for scikit-learn's fit
                if key in copies:
                    copies[key] += 1
                else:
                    copies[key] = 0
                    plans.append(planned)
        stacks = defaultdict(list)
        for planned in plans:
            stacks[_group(planned)].append(planned)
        chunks = [group[i:i + size] for group in stacks.values()
                  for size in [self._stack_size(group)] for i in range(0, len(group), size)]
        devices = engine_device.available_devices()
        if len(devices) > 1:
            chunks = _split_stacks(chunks, len(devices), lambda chunk: chunk[0].spread is not None)
        cpu_workers, stack_threads = self._cpu_threads(), None
        if cpu_workers > 1 and chunks:
            # One stack per core, each on its own thread. A stack is halved only while the halves
            # keep CPU_MIN_MEMBERS (smaller ones are per-step overhead, and their threads share
            # one interpreter lock); cores without a stack of their own go to the stacks' ops.
            chunks = _split_stacks(chunks, cpu_workers,
                                   lambda chunk: len(chunk) >= 2 * CPU_MIN_MEMBERS)
            stack_threads = max(1, cpu_workers // len(chunks))
            cpu_workers = min(cpu_workers, len(chunks))
        jobs, slot = [], 0
        for chunk in chunks:
            jobs.append(self._job(chunk, slot))
            slot += chunk[0].spread is not None
        if self.verbose:
            where = f" over {len(devices)} devices" if len(devices) > 1 and slot else ""
            print(f"Fused training of {len(plans)} fits in {len(chunks)} stack(s){where}")
        n_jobs = cpu_workers if cpu_workers > 1 else self._requested_jobs()
        if (self.n_jobs is None and getattr(self.backend, "uses_threads", False)
                and n_jobs in (None, 1) and len(devices) > 1 and slot > 1):
            n_jobs = min(len(devices), slot)  # one thread per device
        if dask_client(self.backend) is not None:  # see _dask: joblib hangs on lost workers
            results = train_on_dask(self.backend, train_stack, [job for job, _ in jobs])
        else:
            # Threads on the CPU share the cores out: one torch thread each when there are as
            # many stacks, or every op's thread pool competes with the other stacks' for the same
            # cores (n_jobs=2 ran six times slower than 1).
            with (_torch_threads(stack_threads) if stack_threads is not None
                  else contextlib.nullcontext()):
                results = Parallel(n_jobs=1 if n_jobs is None else n_jobs,
                                   backend=self.backend)(
                    delayed(train_stack)(job) for job, _ in jobs)
        # Register here: the workers may be threads, other processes or other machines.
        for chunk, (_, rows), (members, epochs) in zip(chunks, jobs, results):
            self.epochs_trained += epochs
            for planned, member_rows, member in zip(chunk, rows, members):
                if member is None:  # its training raised: scikit-learn's fit reports it
                    continue
                extra = [member.select([0]) for _ in range(copies[planned.key])]
                self.registry.register(planned.key, planned.plan,
                                       [member, *extra] if extra else member)
                if planned.resume_key is not None:
                    self.resumable[planned.resume_key] = (member, member_rows)
        return candidate_keys

    def _plan(self, params, fold, train):
        """A :class:`Planned` candidate x fold, or None if it cannot be fused."""
        estimator = clone(self.estimator).set_params(**params)
        prefix, mlp = split_estimator(estimator)
        if mlp is None:
            return None
        # The candidates share one copy of each fold's rows, targets and weights: the network
        # validates the same objects once (reusing_validation). A pipeline's steps may change
        # their input in place: each prefix fits on its own copy of the rows.
        weight_name = self._weight_param_name(estimator)
        if (fold, weight_name) not in self._fold_rows:
            X_train, y_train = _safe_split(estimator, self.X, self.y, train)
            sample_weight = None
            if weight_name:  # indexed as scikit-learn's _fit_and_score does (None stays None)
                sample_weight = _check_method_params(self.X, self.fit_params, train)[weight_name]
            self._fold_rows[fold, weight_name] = X_train, y_train, sample_weight
        X_train, y_train, sample_weight = self._fold_rows[fold, weight_name]
        try:  # a bad candidate is left to scikit-learn, which reports it with error_score
            block = (fold, repr(sorted(prefix.get_params().items())) if prefix else None)
            if prefix is not None:
                if block not in self._prefix_outputs:
                    X_copy = _safe_split(estimator, self.X, self.y, train)[0]
                    self._prefix_outputs[block] = clone(prefix).fit_transform(X_copy, y_train)
                X_train = self._prefix_outputs[block]
            with reusing_validation(self._validated):
                plan = mlp.plan_fit(X_train, y_train, sample_weight)
        except Exception:
            return None
        # The data hashed once for both keys, and once for the candidates that share it.
        arrays = (id(plan.X), id(plan.Y))
        if arrays not in self._digests:  # (holding the arrays: their ids stay theirs)
            self._digests[arrays] = (plan.X, plan.Y, array_digest(plan.X, plan.Y))
        data_digest = self._digests[arrays][2]
        resume_key = None
        # A schedule over max_epochs gives a longer run other lrs: no prefix of it to continue.
        if self.continues and not SCHEDULES[mlp.lr_schedule].uses_max_epochs:
            resume_params = {k: v for k, v in plan.params.items()
                             if k not in (RESOURCE_PARAMETER, "verbose")}
            resume_key = fit_key(resume_params, plan.X, plan.Y, replace(
                plan.data, train_rows=None, val_rows=None, val_weight=None), data_digest)
            if mlp.random_state is not None:  # else any seed and split will do
                resume_key += str((plan.data.train_rows.tobytes(), plan.member.seed))
        return Planned(plan_key(plan, data_digest), plan, block, resume_key,
                       spread_request(mlp.device))

    def _stack_size(self, group):
        """Members per stack for ``group`` (members that may share stacks): stacks of equal
        size, none over :meth:`_stack_capacity` (80 members at most 19 a stack train as 5 x 16,
        not 4 x 19 + 4)."""
        most = self._stack_capacity(group[0])
        if self.max_members is not None:
            return most
        return math.ceil(len(group) / math.ceil(len(group) / most))

    def _stack_capacity(self, planned):
        """The most members one stack of ``planned``'s configuration takes."""
        if self.max_members is not None:
            return self.max_members
        plan = planned.plan
        config = plan.config
        itemsize = torch.empty(0, dtype=config.dtype).element_size()
        arch = config.architecture
        n_rows = len(plan.data.train_rows) + (0 if plan.data.val_rows is None
                                              else len(plan.data.val_rows))
        activations = config.batch_size * (sum(arch.hidden_layer_sizes) * 4 + arch.n_features)
        per_member = itemsize * (8 * arch.n_parameters() + activations
                                 + 2 * n_rows * (arch.n_features + arch.n_outputs))
        if config.device.type == "cuda":
            # Stacks that train at once on this GPU share its free memory.
            share = GPU_MEMORY_SHARE / self._stacks_per_device(planned.spread is not None)
            return max(1, int(share * torch.cuda.mem_get_info(config.device)[0] // per_member))
        step_bytes = itemsize * (4 * arch.row_width() + config.batch_size * (
            4 * sum(arch.hidden_layer_sizes) + arch.n_features + arch.n_outputs))
        # (at least CPU_MIN_MEMBERS: below that the per-step overhead of a stack dominates)
        return max(1, min(CPU_MAX_MEMBERS, int(CPU_MEMORY_BUDGET // per_member),
                          max(CPU_MIN_MEMBERS, int(CPU_STACK_BYTES // step_bytes))))

    def _requested_jobs(self):
        """``n_jobs``, else the ``n_jobs`` of the backend context, else None."""
        return self.n_jobs if self.n_jobs is not None else self._context_n_jobs

    def _parallel_stacks(self):
        """How many stacks train at once: one per worker of the backend, CPU thread or GPU."""
        n_jobs = self._requested_jobs()
        workers = self.backend.effective_n_jobs(1 if n_jobs is None else n_jobs)
        return max(workers, self._cpu_threads(), len(engine_device.available_devices()), 1)

    def _stacks_per_device(self, spread):
        """How many stacks may train at once on one GPU: the concurrent stacks over the GPUs
        they are spread over (all on one device when the estimator names its device)."""
        devices = len(engine_device.available_devices()) if spread else 1
        return max(1, math.ceil(self._parallel_stacks() / max(1, devices)))

    def _cpu_threads(self):
        """Threads that train CPU stacks at once in this process, at most one per core: ``n_jobs``
        of the threading backend, and for ``n_jobs=None`` torch's intra-op threads (the cores
        one stack would use anyway); 1 elsewhere (processes, dask, GPUs place their own).

        Each thread trains its own stack, with one torch thread when there are as many stacks as
        threads (see :meth:`train`): on the 2-core EPYC, two stacks at once beat one stack on two
        intra-op threads (a 16-candidate x 3-fold search of
        20-64-32-4: 1.17 s against 1.31 s; a 40-128-64-5 one, 16 x 5: 3.8 s against 4.0 s).
        """
        if (not getattr(self.backend, "uses_threads", False) or engine_device.available_devices()
                or dask_client(self.backend) is not None):
            return 1
        n_jobs = self._requested_jobs()
        wanted = (torch.get_num_threads() if n_jobs is None
                  else self.backend.effective_n_jobs(n_jobs))
        return max(1, min(wanted, os.cpu_count() or 1))

    def _job(self, chunk, slot):
        """``(job, rows)``: the chunk's :class:`StackJob`, and each member's rows in its own
        training array (kept with the trained member for the next round)."""
        # Each distinct training array (fold x prefix parameters) goes to the device once.
        blocks, offsets, n = {}, [], 0
        for planned in chunk:
            if planned.block not in blocks:
                blocks[planned.block] = (n, planned.plan)
                n += planned.plan.X.shape[0]
            offsets.append(blocks[planned.block][0])
        members, data, starts, rows = [], [], [], []
        for planned, offset in zip(chunk, offsets):
            plan = planned.plan
            previous, member_rows = self.resumable.get(planned.resume_key, (None, None))
            if previous is not None and previous.epochs_done[0] <= plan.member.max_epochs:
                # Continue where the last round left off, with its seed and its rows.
                member = replace(plan.member, seed=previous.members[0].seed)
            else:
                previous, member_rows, member = None, plan.data, plan.member
            members.append(member)
            starts.append(previous)
            rows.append(member_rows)
            data.append(_shifted(member_rows, offset))
        scorers = None
        if chunk[0].plan.monitor is not None:
            scorers = [planned.plan.monitor for planned in chunk]
        job = StackJob(chunk[0].plan.config, members, data,
                       [plan.X for _, plan in blocks.values()],
                       [plan.Y for _, plan in blocks.values()], starts, scorers,
                       chunk[0].spread, slot)
        return job, rows


def _group(planned):
    """What a member shares with the others of its stack: the configuration; a validation
    scorer (members with one need a monitor: own stacks); the devices it may go to."""
    return planned.plan.config, planned.plan.monitor is not None, planned.spread


def _split_stacks(chunks, n_workers, splittable):
    """Halve the largest ``splittable`` stacks until there is one for each worker (a GPU, a CPU
    thread): members trained on several workers at once beat one larger stack on one."""
    chunks = list(chunks)
    while True:
        spreading = [i for i, chunk in enumerate(chunks) if splittable(chunk)]
        if not spreading or len(spreading) >= n_workers:
            return chunks
        largest = max(spreading, key=lambda i: len(chunks[i]))
        if len(chunks[largest]) < 2:
            return chunks
        half = math.ceil(len(chunks[largest]) / 2)
        chunks[largest:largest + 1] = [chunks[largest][:half], chunks[largest][half:]]


@contextlib.contextmanager
def _torch_threads(n):
    """torch's intra-op threads set to ``n`` within the context."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _shifted(data, offset):
    """``data`` with its row indices moved by ``offset`` (its block's place in the stacked X)."""
    return replace(data, train_rows=data.train_rows + offset,
                   val_rows=None if data.val_rows is None else data.val_rows + offset)


def same_splits(splits):
    """A CV object that yields exactly ``splits`` (so scoring uses the folds we trained on)."""
    from sklearn.model_selection import check_cv

    return check_cv([(np.asarray(train), np.asarray(test)) for train, test in splits])
