"""The public-API fallbacks of ``_engine._compat`` against its private-torch fast paths.

Parametrized over the registries: a new activation or optimizer is checked automatically.
"""

import numpy as np
import pytest
import torch

from sknn_tune._engine import _compat
from sknn_tune._engine.activations import ACTIVATIONS
from sknn_tune._engine.network import Architecture
from sknn_tune._engine.optimizers import OPTIMIZERS
from sknn_tune._engine.trainer import MemberConfig, MemberData, StackConfig, StackedTrainer

DTYPE = torch.float64


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_backward_fallback_matches_fast_path(name):
    z = torch.linspace(-4, 4, 101, dtype=DTYPE)[1::2]
    g = torch.linspace(-1, 2, z.numel(), dtype=DTYPE)
    act = ACTIVATIONS[name]
    a = act.forward(z)
    fast = act.backward(g, z, a)
    with _compat.forced_fallback():
        public = act.backward(g, z, a)
    torch.testing.assert_close(public, fast, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_optimizer_fallback_trajectory_matches_fast_path(optimizer):
    gen = torch.Generator().manual_seed(0)
    X = torch.randn(40, 4, generator=gen, dtype=DTYPE)
    Y = torch.nn.functional.one_hot(torch.randint(3, (40,), generator=gen), 3).to(DTYPE)
    config = StackConfig(Architecture(4, (6,), 3, "tanh", False, "softmax_log_loss"), optimizer, 8,
                         "accuracy", DTYPE, torch.device("cpu"))
    members = [MemberConfig(seed=1, lr=0.05, momentum=0.8, max_epochs=6),
               MemberConfig(seed=2, lr=0.01, weight_decay=1e-3, max_epochs=6)]
    data = [MemberData(np.arange(40))] * 2
    fast = StackedTrainer(config, members).fit(X, Y, data)
    with _compat.forced_fallback():
        assert _compat.fallback_forced()
        public = StackedTrainer(config, members).fit(X, Y, data)
    assert not _compat.fallback_forced()
    torch.testing.assert_close(public.params, fast.params, rtol=1e-10, atol=1e-12)
    for name in fast.state:
        torch.testing.assert_close(public.state[name], fast.state[name], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_column_update_trajectory_matches_fast_path(optimizer, monkeypatch):
    # The column rules (public tensor ops over the whole stack, as on a GPU) against the grouped
    # private kernels: members with distinct lr and hyperparameters, one batch of zero weight.
    from sknn_tune._engine import trainer

    gen = torch.Generator().manual_seed(1)
    X = torch.randn(40, 4, generator=gen, dtype=DTYPE)
    Y = torch.nn.functional.one_hot(torch.randint(3, (40,), generator=gen), 3).to(DTYPE)
    config = StackConfig(Architecture(4, (6,), 3, "tanh", False, "softmax_log_loss"), optimizer, 8,
                         "accuracy", DTYPE, torch.device("cpu"))
    members = [MemberConfig(seed=1, lr=0.05, momentum=0.8, beta1=0.8, rho=0.9, max_epochs=6),
               MemberConfig(seed=2, lr=0.01, weight_decay=1e-3, beta2=0.99, max_epochs=6),
               MemberConfig(seed=3, lr=0.02, l1=1e-3, momentum=0.5, max_epochs=4)]
    weight = np.ones(40)
    weight[8:16] = 0.0
    data = [MemberData(np.arange(40)), MemberData(np.arange(40), weight), MemberData(np.arange(29))]
    fast = StackedTrainer(config, members).fit(X, Y, data)
    monkeypatch.setattr(trainer, "CPU_COLUMN_UPDATE", True)
    column = StackedTrainer(config, members).fit(X, Y, data)
    torch.testing.assert_close(column.steps, fast.steps, rtol=0, atol=0)
    torch.testing.assert_close(column.params, fast.params, rtol=1e-10, atol=1e-12)
    for name in fast.state:
        torch.testing.assert_close(column.state[name], fast.state[name], rtol=1e-10, atol=1e-12)
