"""Activation registry: each entry is a function and its backward pass.

The engine's backward pass is written by hand, so every activation brings ``backward(g, z, a)``:
the upstream gradient ``g`` times ``da/dz``, given the pre-activation ``z`` and the output ``a``.
Each uses ATen's own fused backward kernel (one op instead of three on the hot path). Adding an
activation touches this file only; the tests check every entry against autograd.
"""

from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F

LEAKY_SLOPE = 0.01
aten = torch.ops.aten


class Activation(NamedTuple):
    forward: Callable
    backward: Callable  # (g, z, a) -> g * da/dz
    init_family: str  # which initialiser 'auto' picks: 'he' or 'xavier'


ACTIVATIONS = {
    "relu": Activation(torch.relu, lambda g, z, a: aten.threshold_backward(g, z, 0), "he"),
    "leaky_relu": Activation(
        lambda z: F.leaky_relu(z, LEAKY_SLOPE),
        lambda g, z, a: aten.leaky_relu_backward(g, z, LEAKY_SLOPE, False),
        "he",
    ),
    "elu": Activation(F.elu, lambda g, z, a: aten.elu_backward(g, 1.0, 1, 1, True, a), "he"),
    "gelu": Activation(F.gelu, lambda g, z, a: aten.gelu_backward(g, z), "he"),
    "tanh": Activation(torch.tanh, lambda g, z, a: aten.tanh_backward(g, a), "xavier"),
    "sigmoid": Activation(torch.sigmoid, lambda g, z, a: aten.sigmoid_backward(g, a), "xavier"),
    "identity": Activation(lambda z: z, lambda g, z, a: g, "xavier"),
}
