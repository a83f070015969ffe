"""How members are packed into stacks: a memory model, stack sizes and the grouping.

Pure functions of the members' configurations and sizes, so that they are tested without
training anything. A stack is a group of members that share one configuration (the structural
hyperparameters of :class:`~sknn_tune._engine.StackConfig`), a validation scorer or none, the
devices they may go to, and, when their training rows are large, one block of rows (members of
several small blocks share a stack on a concatenation of them; large blocks are never copied).
"""

import math
from collections import Counter
from dataclasses import dataclass

__all__ = [
    "CPU_MIN_MEMBERS",
    "MemoryModel",
    "group_key",
    "pack",
    "sharing_counts",
    "split_stacks",
    "stack_size",
]

# Most members a CPU stack gets. Larger stacks train no faster per member, while a stack's
# training memory and a slice's members, which wait on the host until scikit-learn has scored
# them, grow with it.
CPU_MAX_MEMBERS = 512
# What one CPU stack's training step may touch (parameters, gradient and two optimizer states,
# one batch's activations): kept within the cache, the elementwise passes and the optimizer
# update stop waiting on memory (benchmarks/results: the stack-size sweeps).
CPU_STACK_BYTES = 16 * 2**20
# Below this many members a stack's per-step overhead dominates; a stack is split across threads
# only while its halves keep it.
CPU_MIN_MEMBERS = 8
# The working memory of the stacks that train at once on the CPU: at least this, and otherwise
# the size of the rows they train on (one fit at a time holds a copy of its fold, so the fused
# layer may hold as much again), at most CPU_MEMORY_BUDGET.
CPU_MIN_WORKING_BYTES = 256 * 2**20
CPU_MEMORY_BUDGET = 2 * 2**30
# The share of a GPU's free memory its concurrent stacks may take.
GPU_MEMORY_SHARE = 0.5
# Blocks of rows at most this large are concatenated into one stack's input; larger ones are
# only ever indexed, by the stacks of their own members.
CONCAT_MAX_BYTES = 64 * 2**20
# The trained members a slice of candidates may leave waiting for scikit-learn's scoring pass
# beyond those that fill the stacks training at once (Session.train): small networks' slices take
# every candidate of a batch then, whose stacks pack and balance across the workers as a whole.
SLICE_BYTES = 64 * 2**20
# Per training row and member, the bytes of an epoch's bookkeeping: the row indices and weights,
# the permutation's sort keys and order, and the gathered batch rows and weights (int64 and
# compute-dtype arrays of one row per training row).
ROW_INDEX_BYTES = 6 * 8
ROW_VALUE_COPIES = 3


@dataclass(frozen=True)
class MemoryModel:
    """The bytes a member of a stack needs, from its configuration and rows."""

    @classmethod
    def of(cls, config, n_rows, sharing=1):
        """The model of a member of ``config`` (a StackConfig) with ``n_rows`` rows, one of
        ``sharing`` that share its rows and seed."""
        arch = config.architecture
        return cls(arch.n_parameters(), arch.row_width(), sum(arch.hidden_layer_sizes),
                   arch.n_features, arch.n_outputs, config.batch_size, config.dtype.itemsize,
                   n_rows, sharing)

    n_parameters: int  # of one member's network
    row_width: int  # its flat parameter row, padded (Architecture.row_width)
    hidden_units: int  # sum of the hidden layer sizes
    n_features: int
    n_outputs: int
    batch_size: int
    itemsize: int  # of the compute dtype
    n_rows: int  # training and validation rows of the member
    sharing: int = 1  # members whose epochs share this one's order of its rows (share_key)

    def member_bytes(self):
        """Parameters, gradient, optimizer state and activations of one batch, plus the
        member's part of the epoch's bookkeeping of its rows (its rows themselves are shared,
        and members that train on the same rows with the same seed share the bookkeeping)."""
        weights = 8 * self.n_parameters * self.itemsize
        activations = self.batch_size * (4 * self.hidden_units + self.n_features) * self.itemsize
        rows = self.n_rows * (ROW_INDEX_BYTES + ROW_VALUE_COPIES * self.itemsize)
        return weights + activations + rows // max(1, self.sharing)

    def kept_bytes(self):
        """What a trained member holds while it waits to be scored: its parameters, the best
        epoch's, its optimizer state (two tensors at most) and the gradient's worth of slack."""
        return 5 * self.row_width * self.itemsize

    def step_bytes(self):
        """What one training step touches per member: the cache-resident working set."""
        return self.itemsize * (4 * self.row_width + self.batch_size * (
            4 * self.hidden_units + self.n_features + self.n_outputs))


def cpu_capacity(model, data_bytes, concurrent_stacks, fixed=None):
    """The most members one CPU stack of ``model``'s members takes when ``concurrent_stacks``
    train at once on ``data_bytes`` of rows; ``fixed`` (the user's ``max_members``) wins."""
    if fixed is not None:
        return fixed
    working = min(CPU_MEMORY_BUDGET, max(CPU_MIN_WORKING_BYTES, data_bytes))
    by_memory = int(working / max(1, concurrent_stacks) // model.member_bytes())
    by_cache = max(CPU_MIN_MEMBERS, int(CPU_STACK_BYTES // model.step_bytes()))
    return max(1, min(CPU_MAX_MEMBERS, by_memory, by_cache))


def gpu_capacity(model, free_bytes, concurrent_stacks, fixed=None):
    """The most members one GPU stack takes when ``concurrent_stacks`` share ``free_bytes``."""
    if fixed is not None:
        return fixed
    share = GPU_MEMORY_SHARE * free_bytes / max(1, concurrent_stacks)
    return max(1, int(share // model.member_bytes()))


def stack_size(n_members, capacity, fixed=False, n_workers=1):
    """Members per stack for a group of ``n_members``: stacks of equal size, none over
    ``capacity`` (80 members at most 19 a stack train as 5 x 16, not 4 x 19 + 4), and a group of
    several stacks in a multiple of ``n_workers`` of them, which finish together (160 members at
    most 39 on 2 workers: 6 x 27, not 5 x 32 where one worker trains three); ``fixed`` (the user's
    ``max_members``) fills each stack to ``capacity``."""
    if fixed:
        return capacity
    pieces = math.ceil(n_members / capacity)
    if pieces > 1:
        pieces = min(n_members, math.ceil(pieces / n_workers) * n_workers)
    return math.ceil(n_members / pieces)


def group_key(config, has_monitor, spread, block_id, block_bytes):
    """What a member shares with the others of its stack: the configuration; a validation
    scorer (members with one need a monitor: own stacks); the devices it may go to; and its
    block of rows, when that is too large to copy into a concatenation."""
    return config, has_monitor, spread, block_id if block_bytes > CONCAT_MAX_BYTES else None


def sharing_counts(share_keys):
    """How many members have each member's share key (:func:`pack`)."""
    counts = Counter(share_keys)
    return [counts[key] for key in share_keys]


def pack(keys, capacity_of, fixed=False, n_workers=1, share_keys=None):
    """Stacks of member indices: members grouped by ``keys[i]`` (:func:`group_key`), in order,
    each group cut into :func:`stack_size` pieces of ``capacity_of(first member)`` for
    ``n_workers``. Members with equal ``share_keys[i]`` (the same training rows and seed: in a
    stack they share each epoch's order and gather of their rows) are side by side in their
    group, in the order their keys first appear, so that the cuts keep them together."""
    groups = {}
    for i, key in enumerate(keys):
        groups.setdefault(key, []).append(i)
    if share_keys is not None:
        first_seen = {}
        for key in share_keys:
            first_seen.setdefault(key, len(first_seen))
        groups = {key: sorted(members, key=lambda i: first_seen[share_keys[i]])
                  for key, members in groups.items()}
    stacks = []
    for members in groups.values():
        size = stack_size(len(members), capacity_of(members[0]), fixed, n_workers)
        stacks += [members[i:i + size] for i in range(0, len(members), size)]
    return stacks


def split_stacks(stacks, n_workers, splittable):
    """Halve the largest ``splittable`` stacks until there is one for each worker (a GPU, a CPU
    thread): members trained on several workers at once beat one larger stack on one."""
    stacks = list(stacks)
    while True:
        spreading = [i for i, stack in enumerate(stacks) if splittable(stack)]
        if not spreading or len(spreading) >= n_workers:
            return stacks
        largest = max(spreading, key=lambda i: len(stacks[i]))
        if len(stacks[largest]) < 2:
            return stacks
        half = math.ceil(len(stacks[largest]) / 2)
        stacks[largest:largest + 1] = [stacks[largest][:half], stacks[largest][half:]]
