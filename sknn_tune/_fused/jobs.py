"""One stack's training as a self-contained job: what it needs, and the function that trains it.

A :class:`StackJob` holds the stack's configuration, its members and their rows, the blocks of
rows they index and the trained members some of them continue, and nothing of the search:
:func:`train_stack` turns it into trained members in this process, a thread, a loky worker or a
dask worker alike, and only the session registers what comes back.
"""

import contextlib
import math
from dataclasses import dataclass, replace

import torch

from .._engine import MemberConfig, MemberData, StackConfig, StackedTrainer
from .._engine import device as engine_device
from .._engine.device import resolve_device
from .._engine.sparse_rows import stack_rows

__all__ = ["StackJob", "build_job", "describe_job", "train_stack", "untrained"]


@dataclass
class StackJob:
    """Everything one stack's training needs, picklable, and nothing of the search.

    ``blocks`` are the distinct blocks of rows of the members (:class:`~.planners.Block`: their
    ``X`` and aligned ``Y``), one below the other on the device (a single block is indexed where
    it is, without a copy); each member's ``data`` indexes that. ``starts[i]``, when not None, is a
    trained single-member trainer that member ``i`` continues (successive halving); it is copied,
    never changed. ``spread``: the stack goes to ``available_devices()[slot % n]`` of the process
    that trains it (``resolve_device(spread)`` when it sees no GPU); None: to ``config.device``.
    """

    config: StackConfig
    members: list[MemberConfig]
    data: list[MemberData]
    blocks: list
    starts: list[StackedTrainer | None]
    scorers: list | None = None
    spread: str | None = None
    slot: int = 0


def build_job(chunk, slot, resumable):
    """``(job, rows)``: the :class:`StackJob` of ``chunk`` (a list of
    :class:`~.planners.Planned`), and each member's rows in its fit's input (kept with the
    trained member for the next round). ``resumable`` maps resume keys to ``(member, rows)``
    trained by an earlier round."""
    blocks, offsets, n = {}, [], 0
    for planned in chunk:
        if id(planned.block) not in blocks:
            blocks[id(planned.block)] = (n, planned.block)
            n += planned.block.n_rows
        offsets.append(blocks[id(planned.block)][0])
    members, data, starts, rows = [], [], [], []
    mapped = {}  # the same rows of the same plan rows map once (shared arrays stay shared)
    for planned, offset in zip(chunk, offsets):
        plan = planned.plan
        previous, member_rows = resumable.get(planned.resume_key, (None, None))
        if previous is not None and previous.epochs_done[0] <= plan.member.max_epochs:
            # Continue where the last round left off, with its seed and its rows.
            member = replace(plan.member, seed=previous.members[0].seed)
        else:
            previous, member_rows, member = None, plan.data, plan.member
        members.append(member)
        starts.append(previous)
        rows.append(member_rows)
        data.append(_in_block(member_rows, plan, offset, mapped))
    scorers = None
    if chunk[0].plan.monitor is not None:
        scorers = [planned.plan.monitor for planned in chunk]
    config = StackConfig.join([(planned.plan.config, 1) for planned in chunk])
    job = StackJob(config, members, data, [block for _, block in blocks.values()], starts,
                   scorers, chunk[0].spread, slot)
    return job, rows


def _in_block(data, plan, offset, mapped):
    """``data`` (positions in ``plan``'s fit input) as rows of the stacked blocks: through
    ``plan.rows`` into its block, moved by the block's ``offset``."""
    def rows_of(positions):
        if positions is None:
            return None
        key = (id(positions), id(plan.rows), offset)
        if key not in mapped:
            rows = plan.input_rows(positions)
            mapped[key] = (positions, rows + offset if offset else rows)
        return mapped[key][1]

    return replace(data, train_rows=rows_of(data.train_rows), val_rows=rows_of(data.val_rows))


def train_stack(job):
    """Train one :class:`StackJob`: ``(members, member_epochs)``, one single-member trainer per
    member, in order, and the member-epochs trained. On CUDA out-of-memory the stack is trained
    in halves. Depends on ``job`` alone, so it runs in any worker; trainers that come back from
    another process hold CPU tensors (``StackedTrainer.__getstate__``)."""
    device = _stack_device(job)
    config = job.config
    if device != config.device:  # the planned dtype holds on every device
        config = replace(config, device=device)
    # The thread's current CUDA device too: anything not placed explicitly lands there.
    with torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext():
        X, Y = _stacked_inputs(job.blocks, config.dtype, device)
        return _train_members(job, config, X, Y, list(range(len(job.members))))


def untrained(job):
    """What :func:`train_stack` returns for a stack that never trained because training was
    interrupted (Ctrl-C): each member as initialised, marked interrupted."""
    members = []
    for i, member in enumerate(job.members):
        trainer = (StackedTrainer(job.config.select([i], len(job.members)), [member])
                   if job.starts[i] is None
                   else job.starts[i].continued_as(member, job.config.device))
        trainer.interrupted = True
        members.append(trainer)
    return members, 0


def describe_job(job):
    """``"6 candidate x fold fits: hidden_layer_sizes=..., batch_size=32"``: what an error
    about a stack names."""
    arch = job.config.architecture
    return (f"{len(job.members)} candidate x fold fits: "
            f"hidden_layer_sizes={arch.hidden_layer_sizes}, activation={arch.activation!r}, "
            f"batch_norm={arch.batch_norm}, optimizer={job.config.optimizer!r}, "
            f"batch_size={job.config.batch_size}")


def _stacked_inputs(blocks, dtype, device):
    """The blocks' rows and targets on ``device``: a single block's shared copy, or the blocks
    one below the other."""
    if len(blocks) == 1:
        return blocks[0].tensors(dtype, device)
    return (stack_rows([block.X for block in blocks], dtype, device),
            stack_rows([block.Y for block in blocks], dtype, device))


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
    # weights from its seed either way, and a trainer per member costs more than its setup.
    starts, fresh = [], []

    def start_fresh():
        if fresh:
            starts.append(StackedTrainer(config.select(fresh, len(job.members)),
                                         [job.members[i] for i in fresh]))
            fresh.clear()

    for i in indices:
        if job.starts[i] is None:
            fresh.append(i)
            continue
        start_fresh()
        # A copy: the search keeps its own.
        starts.append(job.starts[i].continued_as(job.members[i], config.device))
    start_fresh()
    trainer = StackedTrainer.stack(starts)
    before = int(trainer.epochs_done.sum())
    monitor = None
    if job.scorers is not None:  # a stack's members all have a scorer (see packing.group_key)
        scorers = [job.scorers[i] for i in indices]

        def monitor(trainer, members):
            return [scorers[i](trainer, i) for i in members]

    trainer.fit(X, Y, [job.data[i] for i in indices], monitor=monitor)
    members = [trainer.select([k]) for k in range(len(indices))]
    return members, int(trainer.epochs_done.sum()) - before
