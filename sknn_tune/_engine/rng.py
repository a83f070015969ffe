"""Counter-based random numbers, one stream per member.

A member's numbers depend only on (its seed, the purpose, the counters, the element index), never on
how many other members train beside it. That is what makes a candidate trained alone and trained fused
with a thousand others draw exactly the same batches, dropout masks, noise and initial weights.
The hash is `lowbias32` (Chris Wellons). Keys (a few numbers per member) are hashed in int64 on
32-bit values; the streams of elements (dropout masks, permutations, initial weights) in int32
with wrapping products and masked shifts, the same bits at half the memory traffic and with the
CPU's vector multiply (AVX2 has none for int64): 2.7x faster for a stack's dropout masks.
"""

import math
from typing import NamedTuple

import torch

_MASK32 = 0xFFFFFFFF
_GOLDEN = 0x9E3779B9

# Purposes: each draws from its own stream.
INIT = 1
PERMUTATION = 2
DROPOUT = 3
NOISE = 4


def _mix32(x):
    x = x ^ (x >> 16)
    x = (x * 0x7FEB352D) & _MASK32
    x = x ^ (x >> 15)
    x = (x * 0x846CA68B) & _MASK32
    return x ^ (x >> 16)


def member_keys(seeds, *counters):
    """Fold integer counters into each member's 32-bit key: ``(M,)`` int64 in, ``(M,)`` out."""
    keys = _mix32(seeds & _MASK32)
    for counter in counters:
        # counter: a Python int, or an (M,) tensor when members count differently
        keys = _mix32(keys ^ ((counter * _GOLDEN + 0x632BE5AB) & _MASK32))
    return keys


# lowbias32's multipliers as int32 (the second one wrapped): a product's low 32 bits are the same.
_MUL1 = 0x7FEB352D
_MUL2 = 0x846CA68B - 2**32


_INT32_CONSTANTS = {"mul1": _MUL1, "mul2": _MUL2, "low16": 0xFFFF, "low17": 0x1FFFF,
                    "shift15": 15, "shift16": 16, "top": -2**31}
_cpu_constants = {name: torch.tensor(value, dtype=torch.int32)
                  for name, value in _INT32_CONSTANTS.items()}


def _int32_constants(device):
    """The element hash's constants for int32 tensors on ``device``: on the CPU as int32 0-dim
    tensors (a Python int costs every op a conversion of its own, a quarter of a small mask's
    time), elsewhere the Python ints."""
    return _cpu_constants if device.type == "cpu" else _INT32_CONSTANTS


def _mix32_int32_(x):
    """:func:`_mix32` in place on int32 ``x`` holding the 32-bit values (two's complement):
    the products wrap, and each shift is masked to the logical shift of the unsigned value."""
    c = _int32_constants(x.device)
    t = torch.bitwise_right_shift(x, c["shift16"]).bitwise_and_(c["low16"])
    x.bitwise_xor_(t).mul_(c["mul1"])
    x.bitwise_xor_(torch.bitwise_right_shift(x, c["shift15"], out=t).bitwise_and_(c["low17"]))
    x.mul_(c["mul2"])
    return x.bitwise_xor_(torch.bitwise_right_shift(x, c["shift16"], out=t)
                          .bitwise_and_(c["low16"]))


def as_int32(values):
    """32-bit values held in int64 (keys) as the int32 of the same bits: the form
    :func:`keep_mask` takes without converting."""
    return (values - ((values & 0x80000000) << 1)).to(torch.int32)


_index_hashes = {}


def _index_hash(n, device):
    """The hashed element indices ``0..n-1``, computed once per size and device."""
    key = (n, str(device))
    hashes = _index_hashes.get(key)  # one lookup: another thread's stack may clear the cache
    if hashes is None:
        if len(_index_hashes) > 64:
            _index_hashes.clear()
        index = torch.arange(n, device=device, dtype=torch.int64)
        hashes = _index_hashes[key] = as_int32(_mix32((index * _GOLDEN) & _MASK32))
    return hashes


def _signed_bits(keys, n):
    """``(*keys.shape, n)`` int32: the bits of :func:`random_bits`, as two's complement, for
    int64 keys or their :func:`as_int32` form."""
    if keys.dtype != torch.int32:
        keys = as_int32(keys)
    return _mix32_int32_(keys[..., None] ^ _index_hash(n, keys.device))


def random_bits(keys, n):
    """``(M, n)`` int64 values in ``[0, 2**32)``; element ``i`` depends only on its key and ``i``."""
    return _signed_bits(keys, n).to(torch.int64).bitwise_and_(_MASK32)


class Dropout(NamedTuple):
    """Per-member dropout rates ``p`` (``(M, 1, 1)``) as a step uses them."""

    threshold: torch.Tensor  # (M, 1) int32: uniform_threshold(p) - 2**31, see keep_mask
    scale: torch.Tensor  # 1 / (1 - p), in the compute dtype


def dropout_rates(p):
    """The :class:`Dropout` of rates ``p``, made once per fit."""
    threshold = (uniform_threshold(p) - 2**31).to(torch.int32).reshape(len(p), 1)
    return Dropout(threshold, 1.0 / (1.0 - p))


def keep_mask(keys, n, threshold, dtype=None):
    """``random_bits(keys, n) >= t`` for ``threshold`` = ``t - 2**31`` as int32 (a
    :class:`Dropout`'s), without widening the bits: unsigned order is the signed order of the
    values with their top bit flipped. ``keys``: int64 32-bit values, or their int32 form.
    With ``dtype``, the mask as 1.0 / 0.0 in that dtype, written by the comparison itself (a
    bool mask converted afterwards costs 3x as much)."""
    bits = _signed_bits(keys, n)
    bits.bitwise_xor_(_int32_constants(bits.device)["top"])
    if dtype is None:
        return bits >= threshold
    return torch.ge(bits, threshold, out=torch.empty(bits.shape, dtype=dtype, device=bits.device))


def layer_keys(step_keys, n_layers):
    """``(..., n_layers, M)``: each layer's dropout keys from the step keys ``(..., M)``, one
    :func:`member_keys` over all layers (and steps) at once."""
    layers = torch.arange(n_layers, device=step_keys.device)[:, None]
    return member_keys(step_keys[..., None, :], DROPOUT, layers)


def uniform_threshold(p):
    """Integer threshold ``t`` with ``bits >= t`` exactly when ``uniform(bits) >= p``.

    ``uniform`` keeps the top 24 bits, ``u = (bits >> 8) / 2**24``; so ``u >= p`` is
    ``bits >= ceil(p * 2**24) << 8``. Comparing bits skips two float ops per element.
    """
    return torch.ceil(p * 2.0**24).to(torch.int64) << 8


def uniform(keys, shape, dtype):
    """``(M, *shape)`` uniform numbers in ``[0, 1)`` with 24 random bits."""
    bits = _signed_bits(keys, math.prod(shape))
    return ((bits >> 8).bitwise_and_(0xFFFFFF).to(dtype) * 2.0**-24).reshape(len(keys), *shape)


def normal(keys, shape, dtype):
    """``(M, *shape)`` standard normal numbers (Box-Muller over two independent streams)."""
    n = math.prod(shape)
    top = (_signed_bits(keys, 2 * n) >> 8).bitwise_and_(0xFFFFFF)
    u1 = (top[:, :n].to(dtype) + 0.5) * 2.0**-24
    u2 = top[:, n:].to(dtype) * 2.0**-24
    z = torch.sqrt(-2.0 * torch.log(u1)) * torch.cos((2.0 * math.pi) * u2)
    return z.reshape(len(keys), *shape)
