"""A fused session: plan -> pack -> run -> register, then serve the members to scikit-learn.

One :class:`Session` lives for one ``fit`` of a fused search (or one fused cross-validation,
curve or bagging fit). For each batch of candidates scikit-learn asks for, :meth:`Session.train`
plans every candidate x fold (its planner), packs the plans into stacks
(:mod:`.packing`), trains the stacks on the workers (:mod:`.workers`) and registers every
trained member under its fit key (:mod:`.registry`). scikit-learn then fits and scores as
usual within :meth:`Session.serving`, where each ``fit`` adopts its member instead of training.
"""

import math
from fractions import Fraction
from numbers import Integral

import torch

from .._engine import device as engine_device
from .._engine import sharing_key
from .._sklearn_compat import Interval
from . import packing
from .jobs import build_job
from .memory import return_free_memory
from .registry import Registry, serving
from .workers import Workers

__all__ = ["MAX_MEMBERS_CONSTRAINT", "Session"]

# The parameter constraint of the ``max_members`` that every fused estimator passes to its session.
MAX_MEMBERS_CONSTRAINT = {"max_members": [Interval(Integral, 1, None, closed="left"), None]}


class Session:
    """Trains batches of fits for one ``fit`` of a search, cross-validation or ensemble, and
    keeps what later rounds reuse.

    ``planner``: a :class:`~.planners.CVPlanner` or :class:`~.planners.BaggingPlanner`.
    ``max_members``: the user's stack size, None: from the memory model. ``n_jobs``: the
    workers (see :class:`~.workers.Workers`).
    """

    def __init__(self, planner, max_members=None, n_jobs=None, verbose=0):
        self.planner = planner
        self.max_members = max_members
        self.workers = Workers(n_jobs)
        self.verbose = verbose
        self.registry = Registry()  # fit key -> trained member(s), for scikit-learn's pass
        self.resumable = {}  # resume key -> (live single-member trainer, its rows)
        self.epochs_trained = 0  # member-epochs, so tests can check nothing trains twice

    @property
    def enabled(self):
        """Whether the planner can fuse the estimator at all."""
        return self.planner.enabled

    def serving(self, keep=False):
        """A context in which ``fit`` adopts the registered member of the fit it plans
        (:func:`~.registry.serving`)."""
        return serving(self.registry, keep)

    def train(self, candidate_params, splits, in_slices=False):
        """Train every candidate x fold of this batch that can be fused, and register them.

        ``in_slices`` trains only the first candidates, as many as fill the stacks that train at
        once (one per worker or GPU; at least one candidate): the caller trains the others once
        scikit-learn has scored these, so that what waits to be scored does not grow with the
        number of candidates. Returns, per candidate trained, the fit keys registered for its
        folds (none where it is not fused).
        """
        if not self.enabled:
            return [[] for _ in candidate_params]
        planned, copies, candidate_keys = self._plan(candidate_params, splits, in_slices)
        stacks = self._pack(planned)
        jobs, trained = self._run(stacks)
        # Every stack of this batch has trained: its data copies go before scikit-learn's pass
        # splits the data again to score.
        for block in {id(member.block): member.block for stack in stacks for member in stack
                      }.values():
            block.release()
        return_free_memory()
        # Register here: the workers may be threads, other processes or other machines.
        for stack, (_, rows), (members, epochs) in zip(stacks, jobs, trained):
            self.epochs_trained += epochs
            for member_planned, member_rows, member in zip(stack, rows, members):
                if member is None:  # its training raised: scikit-learn's fit reports it
                    continue
                extra = [member.select([0]) for _ in range(copies[member_planned.key])]
                self.registry.register(member_planned.key, member_planned.plan,
                                       [member, *extra] if extra else member)
                if member_planned.resume_key is not None:
                    self.resumable[member_planned.resume_key] = (member, member_rows)
        return candidate_keys

    # ------------------------------------------------------------------------------------------
    # plan

    def _plan(self, candidate_params, splits, in_slices):
        """``(planned, copies, candidate_keys)``: the distinct fits to train, how many extra
        copies of each candidates share, and each candidate's fit keys."""
        # Per fold number: only valid for this batch's splits.
        self.planner.new_batch()
        planned, copies, candidate_keys = [], {}, []
        slots = self.workers.parallel_stacks() if in_slices else math.inf
        # With the stack size the user's (max_members), slices are exactly the stacks that fill.
        budget = packing.SLICE_BYTES if in_slices and self.max_members is None else 0
        capacities, filled = {}, 0  # stacks the planned members fill, each of its group's size
        kept, kept_bytes = {}, 0  # what a trained member of each group holds, and all of them
        for params in candidate_params:
            # A candidate whose folds would overfill the stacks waits for the next slice (an
            # overfilled slice trains an extra, part-empty stack), unless what waits to be
            # scored stays within the budget.
            if (candidate_keys and filled + Fraction(len(splits), min(
                    capacities.values(), default=1)) > slots
                    and kept_bytes + len(splits) * max(kept.values(), default=0) > budget):
                break
            keys = []
            candidate_keys.append(keys)
            for fold, (train, _) in enumerate(splits):
                member = self.planner.plan(params, fold, train)
                if member is None:
                    continue
                group = self._group_key(member)
                if group not in capacities:
                    capacities[group] = self._capacity(member)
                    kept[group] = packing.MemoryModel.of(member.plan.config, 0).kept_bytes()
                filled += Fraction(1, capacities[group])
                kept_bytes += kept[group]
                # Candidates that set the same parameters (overlapping grids) are one fit: train
                # it once, and give each of them its own copy.
                keys.append(member.key)
                if member.key in self.registry and member.key not in copies:
                    continue  # trained already, waiting for scikit-learn's fit
                if member.key in copies:
                    copies[member.key] += 1
                else:
                    copies[member.key] = 0
                    planned.append(member)
        return planned, copies, candidate_keys

    # ------------------------------------------------------------------------------------------
    # pack

    def _group_key(self, member):
        plan = member.plan
        return packing.group_key(plan.config.shared(), plan.monitor is not None, member.spread,
                                 id(member.block), member.block.nbytes)

    @staticmethod
    def _share_key(member):
        """Members with equal keys train on the same rows with the same seed (in one stack they
        share each epoch's order and gather of the rows): the engine's cheap key, as this one
        only orders the packing (the trainer finds the sharing members exactly)."""
        plan = member.plan
        return (id(member.block), *sharing_key(plan.data, plan.member),
                plan.data.order is None)

    def _capacity(self, member, sharing=1):
        """The most members one stack of ``member``'s group takes (``sharing`` of them train
        on its rows with its seed)."""
        plan = member.plan
        config = plan.config
        n_rows = len(plan.data.train_rows) + (0 if plan.data.val_rows is None
                                              else len(plan.data.val_rows))
        model = packing.MemoryModel.of(config, n_rows, sharing)
        if config.device.type == "cuda":
            # Stacks that train at once on this GPU share its free memory.
            return packing.gpu_capacity(
                model, torch.cuda.mem_get_info(config.device)[0],
                self.workers.stacks_per_device(member.spread is not None), self.max_members)
        return packing.cpu_capacity(model, member.block.nbytes, self.workers.cpu_threads(),
                                    self.max_members)

    def _pack(self, planned):
        """The stacks (lists of planned members) of this batch, split for the workers."""
        keys = [self._group_key(member) for member in planned]
        share_keys = [self._share_key(member) for member in planned]
        sharing = packing.sharing_counts(share_keys)
        # Members of one activation and optimizer side by side: each run of them is one kernel
        # call a layer, one update rule a step.
        stacks = [sorted((planned[i] for i in stack),
                         key=lambda member: (member.plan.config.architecture.activation,
                                             member.plan.config.optimizer))
                  for stack in packing.pack(
                      keys, lambda i: self._capacity(planned[i], sharing[i]),
                      self.max_members is not None, self.workers.cpu_threads(), share_keys)]
        devices = engine_device.available_devices()
        if len(devices) > 1:
            stacks = packing.split_stacks(stacks, len(devices),
                                          lambda stack: stack[0].spread is not None)
        cpu_workers = self.workers.cpu_threads()
        if cpu_workers > 1 and stacks:
            # One stack per core, each on its own thread. A stack is halved only while the halves
            # keep CPU_MIN_MEMBERS (smaller ones are per-step overhead, and their threads share
            # one interpreter lock).
            stacks = packing.split_stacks(
                stacks, cpu_workers, lambda stack: len(stack) >= 2 * packing.CPU_MIN_MEMBERS)
        return stacks

    # ------------------------------------------------------------------------------------------
    # run

    def _run(self, stacks):
        """``(jobs, results)`` of training ``stacks``."""
        jobs, slot = [], 0
        for stack in stacks:
            jobs.append(build_job(stack, slot, self.resumable))
            slot += stack[0].spread is not None
        devices = engine_device.available_devices()
        if self.verbose:
            where = f" over {len(devices)} devices" if len(devices) > 1 and slot else ""
            n_fits = sum(len(stack) for stack in stacks)
            print(f"Fused training of {n_fits} fits in {len(stacks)} stack(s){where}")
        cpu_workers, stack_threads = self.workers.cpu_threads(), None
        if cpu_workers > 1 and stacks:
            # Cores without a stack of their own go to the stacks' ops.
            stack_threads = max(1, cpu_workers // len(stacks))
            cpu_workers = min(cpu_workers, len(stacks))
        n_jobs = cpu_workers if cpu_workers > 1 else self.workers.requested_jobs()
        if (self.workers.n_jobs is None and getattr(self.workers.backend, "uses_threads", False)
                and n_jobs in (None, 1) and len(devices) > 1 and slot > 1):
            n_jobs = min(len(devices), slot)  # one thread per device
        results = self.workers.run([job for job, _ in jobs], n_jobs, stack_threads)
        return jobs, results
