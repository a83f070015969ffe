"""How members are packed into stacks (sknn_tune._fused.packing): pure functions, no training."""

from dataclasses import replace

import pytest

from sknn_tune._fused import packing
from sknn_tune._fused.packing import (
    MemoryModel,
    cpu_capacity,
    gpu_capacity,
    group_key,
    pack,
    sharing_counts,
    split_stacks,
    stack_size,
)


def model(n_rows=1000, hidden=64, n_features=50, batch_size=512, itemsize=4):
    n_parameters = n_features * hidden + hidden + hidden * 3 + 3
    return MemoryModel(n_parameters, -(-n_parameters // 16) * 16, hidden, n_features, 3,
                       batch_size, itemsize, n_rows)


def test_member_bytes_grow_with_its_rows_not_with_the_data():
    # A member's rows are shared: what it adds per row is its bookkeeping, a few numbers, never
    # a row of X (50 features here).
    small, large = model(n_rows=1000), model(n_rows=101_000)
    per_row = (large.member_bytes() - small.member_bytes()) / 100_000
    assert per_row == packing.ROW_INDEX_BYTES + packing.ROW_VALUE_COPIES * 4
    assert per_row < 50 * 4
    assert model(itemsize=8).member_bytes() > model(itemsize=4).member_bytes()


def test_members_sharing_their_rows_share_the_bookkeeping():
    # Members that train on the same rows with the same seed share each epoch's order and gather:
    # each adds its part of that bookkeeping, so more of them fit in a stack's memory.
    alone, shared = model(n_rows=100_000), replace(model(n_rows=100_000), sharing=4)
    rows_alone = alone.member_bytes() - model(n_rows=0).member_bytes()
    assert shared.member_bytes() - model(n_rows=0).member_bytes() == rows_alone // 4
    assert cpu_capacity(shared, 2**28, 2) > cpu_capacity(alone, 2**28, 2)
    assert sharing_counts(["a", "b", "a", "a"]) == [3, 1, 3, 3]


def test_pack_puts_members_sharing_their_rows_side_by_side():
    # candidate-major (c0f0, c0f1, c0f2, c1f0, ...) as scikit-learn lists them; cut fold-major
    folds = [0, 1, 2] * 4
    stacks = pack(["g"] * 12, lambda i: 4, share_keys=folds)
    assert [[folds[i] for i in stack] for stack in stacks] == [[0] * 4, [1] * 4, [2] * 4]
    assert stacks[0] == [0, 3, 6, 9]
    # only within a group: members of other groups never join
    keys = ["a", "b"] * 3
    assert pack(keys, lambda i: 3, share_keys=[0, 0, 1, 1, 0, 0]) == [[0, 4, 2], [1, 5, 3]]


def test_cpu_capacity_keeps_the_step_in_cache_and_the_members_in_memory():
    narrow, wide = model(hidden=8), model(hidden=1024)
    assert cpu_capacity(narrow, 0, 1) > cpu_capacity(wide, 0, 1)
    # by the cache: never below the minimum for per-step overhead, at most the maximum
    assert cpu_capacity(wide, 0, 1) >= min(packing.CPU_MIN_MEMBERS, cpu_capacity(wide, 2**40, 1))
    assert cpu_capacity(model(hidden=1, n_features=1, batch_size=1, n_rows=1), 0, 1) \
        == packing.CPU_MAX_MEMBERS
    # by memory: many rows, fewer members; concurrent stacks share the working memory
    many_rows = model(n_rows=10_000_000)
    assert cpu_capacity(many_rows, 0, 1) < cpu_capacity(model(), 0, 1)
    assert cpu_capacity(many_rows, 0, 4) <= cpu_capacity(many_rows, 0, 1) // 4 + 1
    assert cpu_capacity(many_rows, 0, 1000) == 1  # never zero
    # the user's max_members wins
    assert cpu_capacity(many_rows, 0, 1, fixed=37) == 37


def test_gpu_capacity_shares_the_free_memory():
    m = model()
    alone = gpu_capacity(m, 2**32, 1)
    assert alone == int(packing.GPU_MEMORY_SHARE * 2**32 // m.member_bytes())
    assert gpu_capacity(m, 2**32, 4) == pytest.approx(alone / 4, abs=1)
    assert gpu_capacity(m, 1, 1) == 1
    assert gpu_capacity(m, 2**32, 1, fixed=5) == 5


@pytest.mark.parametrize("n, capacity, size", [(80, 19, 16), (9, 4, 3), (12, 512, 12),
                                               (7, 1, 1), (10, 5, 5)])
def test_stacks_are_equal_and_within_capacity(n, capacity, size):
    assert stack_size(n, capacity) == size
    assert stack_size(n, capacity, fixed=True) == capacity
    # On two workers a group of several stacks has an even number of them.
    assert stack_size(160, 39, n_workers=2) == 27 and stack_size(160, 40, n_workers=2) == 40
    assert stack_size(20, 39, n_workers=2) == 20 and stack_size(3, 1, n_workers=2) == 1


def test_pack_groups_by_key_in_order():
    keys = ["a", "b", "a", "a", "b", "a", "a"]
    stacks = pack(keys, lambda i: 3)
    assert stacks == [[0, 2, 3], [5, 6], [1, 4]]
    assert pack(keys, lambda i: 3, fixed=True) == [[0, 2, 3], [5, 6], [1, 4]]
    assert pack(keys, lambda i: 4) == [[0, 2, 3], [5, 6], [1, 4]]  # 5 at most 4: 3 + 2
    assert pack([], lambda i: 3) == []


def test_only_large_blocks_keep_their_members_apart():
    config = object()
    small = group_key(config, False, None, 1, packing.CONCAT_MAX_BYTES)
    assert small == group_key(config, False, None, 2, 10)  # concatenated into one stack
    large = [group_key(config, False, None, i, packing.CONCAT_MAX_BYTES + 1) for i in (1, 2)]
    assert large[0] != large[1]
    assert group_key(config, True, None, 1, 10) != small  # a monitor: its own stacks
    assert group_key(config, False, "auto", 1, 10) != small


def test_split_stacks_halves_the_largest_until_each_worker_has_one():
    stacks = [list(range(16)), list(range(16, 20))]
    split = split_stacks(stacks, 4, lambda stack: len(stack) >= 4)
    assert sorted(map(len, split)) == [4, 4, 4, 8]
    assert sorted(i for stack in split for i in stack) == list(range(20))  # none lost or repeated
    # a stack the rule says not to split stays whole
    assert split_stacks([list(range(6))], 4, lambda stack: len(stack) >= 8) == [list(range(6))]
    assert split_stacks([[0]], 4, lambda stack: True) == [[0]]
    assert split_stacks(stacks, 1, lambda stack: True) == stacks
