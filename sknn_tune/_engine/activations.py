"""Activation registry: each entry is a function and its backward pass.

The engine's backward pass is written by hand, so every activation brings ``backward(g, z, a)``:
the upstream gradient ``g`` times ``da/dz``, given the pre-activation ``z`` and the output ``a``.
Each uses ATen's own fused backward kernel where torch has it (one op instead of three on the hot
path; see :mod:`._compat`, which holds the public fallbacks), and names the
``torch.nn`` module that computes the same function (what :func:`sknn_tune.interop.to_torch` builds).
Adding an activation touches this file only; the tests check every entry against autograd and its
module.
"""

from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from . import _compat

LEAKY_SLOPE = 0.01


class Activation(NamedTuple):
    forward: Callable
    backward: Callable  # (g, z, a) -> g * da/dz
    init_family: str  # which initialiser 'auto' picks: 'he' or 'xavier'
    module: Callable  # () -> the equivalent torch.nn.Module


ACTIVATIONS = {
    "relu": Activation(torch.relu, lambda g, z, a: _compat.relu_backward(g, z), "he", nn.ReLU),
    "leaky_relu": Activation(
        lambda z: F.leaky_relu(z, LEAKY_SLOPE),
        lambda g, z, a: _compat.leaky_relu_backward(g, z, LEAKY_SLOPE),
        "he",
        lambda: nn.LeakyReLU(LEAKY_SLOPE),
    ),
    "elu": Activation(F.elu, lambda g, z, a: _compat.elu_backward(g, a), "he",
                      nn.ELU),
    "gelu": Activation(F.gelu, lambda g, z, a: _compat.gelu_backward(g, z), "he", nn.GELU),
    "tanh": Activation(torch.tanh, lambda g, z, a: _compat.tanh_backward(g, a), "xavier", nn.Tanh),
    "sigmoid": Activation(torch.sigmoid, lambda g, z, a: _compat.sigmoid_backward(g, a), "xavier",
                          nn.Sigmoid),
    "identity": Activation(lambda z: z, lambda g, z, a: g, "xavier", nn.Identity),
}
