"""Counter-based random numbers, one stream per member.

A member's numbers depend only on (its seed, the purpose, the counters, the element index), never on
how many other members train beside it. That is what makes a candidate trained alone and trained fused
with a thousand others draw exactly the same batches, dropout masks, noise and initial weights.
The hash is `lowbias32` (Chris Wellons), computed in int64 on 32-bit values so it runs on any device.
"""

import math

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


_index_hashes = {}


def _index_hash(n, device):
    """The hashed element indices ``0..n-1``, computed once per size and device."""
    key = (n, str(device))
    hashes = _index_hashes.get(key)  # one lookup: another thread's stack may clear the cache
    if hashes is None:
        if len(_index_hashes) > 64:
            _index_hashes.clear()
        index = torch.arange(n, device=device, dtype=torch.int64)
        hashes = _index_hashes[key] = _mix32((index * _GOLDEN) & _MASK32)
    return hashes


def random_bits(keys, n):
    """``(M, n)`` int64 values in ``[0, 2**32)``; element ``i`` depends only on its key and ``i``."""
    return _mix32(keys[:, None] ^ _index_hash(n, keys.device))


def uniform_threshold(p):
    """Integer threshold ``t`` with ``bits >= t`` exactly when ``uniform(bits) >= p``.

    ``uniform`` keeps the top 24 bits, ``u = (bits >> 8) / 2**24``; so ``u >= p`` is
    ``bits >= ceil(p * 2**24) << 8``. Comparing bits skips two float ops per element.
    """
    return torch.ceil(p * 2.0**24).to(torch.int64) << 8


def uniform(keys, shape, dtype):
    """``(M, *shape)`` uniform numbers in ``[0, 1)`` with 24 random bits."""
    bits = random_bits(keys, math.prod(shape))
    return ((bits >> 8).to(dtype) * 2.0**-24).reshape(len(keys), *shape)


def normal(keys, shape, dtype):
    """``(M, *shape)`` standard normal numbers (Box-Muller over two independent streams)."""
    n = math.prod(shape)
    bits = random_bits(keys, 2 * n)
    u1 = ((bits[:, :n] >> 8).to(dtype) + 0.5) * 2.0**-24
    u2 = (bits[:, n:] >> 8).to(dtype) * 2.0**-24
    z = torch.sqrt(-2.0 * torch.log(u1)) * torch.cos((2.0 * math.pi) * u2)
    return z.reshape(len(keys), *shape)
