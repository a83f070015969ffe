"""Activation registry: each entry is a function and its derivative.

The engine's backward pass is written by hand, so every activation brings ``derivative(z, a)``: the
elementwise ``da/dz`` given the pre-activation ``z`` and the output ``a``. Adding an activation touches
this file only; the tests check every entry against autograd.
"""

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F

LEAKY_SLOPE = 0.01


class Activation(NamedTuple):
    forward: Callable
    derivative: Callable
    init_family: str  # which initialiser 'auto' picks: 'he' or 'xavier'


def _gelu_derivative(z, a):
    cdf = 0.5 * (1.0 + torch.erf(z * (1.0 / math.sqrt(2.0))))
    pdf = torch.exp(-0.5 * z * z) * (1.0 / math.sqrt(2.0 * math.pi))
    return cdf + z * pdf


ACTIVATIONS = {
    "relu": Activation(torch.relu, lambda z, a: (z > 0).to(z.dtype), "he"),
    "leaky_relu": Activation(
        lambda z: F.leaky_relu(z, LEAKY_SLOPE),
        # ones_like keeps z's dtype: two Python scalars would make a float32 slope.
        lambda z, a: torch.where(z > 0, torch.ones_like(z), LEAKY_SLOPE),
        "he",
    ),
    "elu": Activation(F.elu, lambda z, a: torch.where(z > 0, 1.0, a + 1.0).to(z.dtype), "he"),
    "gelu": Activation(F.gelu, _gelu_derivative, "he"),
    "tanh": Activation(torch.tanh, lambda z, a: 1.0 - a * a, "xavier"),
    "sigmoid": Activation(torch.sigmoid, lambda z, a: a * (1.0 - a), "xavier"),
    "identity": Activation(lambda z: z, lambda z, a: torch.ones_like(z), "xavier"),
}
