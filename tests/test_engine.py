"""The stacked-member engine against independent references.

Hand-written gradients against torch autograd, optimizers against ``torch.optim``, schedules against
``torch.optim.lr_scheduler``, validation metrics against ``sklearn.metrics``, and fusion invariance:
a member trained beside others ends exactly where it ends trained alone. Every registry is
parametrized over its keys, so a new entry is tested (and must bring its reference) automatically.
Tensors only: no estimators here.

Everything runs on the run's device (``--device``): on a GPU, training in float32 and two trainings
of a member (stacked or alone, eager or static) agree within the design's tolerance
(``assert_same_training``); the ``cpu_only`` tests check CPU kernels bit for bit.
"""

import math
import pickle
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import CUDA_TRAINING_TOLERANCE, assert_same_training, run_device, training_tolerance
from sklearn.metrics import accuracy_score, r2_score
from sklearn.neural_network import _base as sklearn_nn_base

from sknn_tune._engine import rng
from sknn_tune._engine import trainer as trainer_module
from sknn_tune._engine.activations import ACTIVATIONS
from sknn_tune._engine.initializers import INITIALIZERS
from sknn_tune._engine.losses import LOSSES
from sknn_tune._engine.metrics import METRICS
from sknn_tune._engine.network import (
    ROW_ALIGNMENT,
    Architecture,
    TrainStep,
    forward_eval,
    initial_parameters,
    split_buffers,
    split_flat,
)
from sknn_tune._engine.optimizers import OPTIMIZERS
from sknn_tune._engine.schedules import SCHEDULES, ScheduleInputs
from sknn_tune._engine.trainer import MemberConfig, MemberData, StackConfig, StackedTrainer

DTYPE = torch.float64
CPU = torch.device("cpu")
TIGHT = {"rtol": 1e-10, "atol": 1e-10}
# This run's device (--device). The kernels' checks against autograd and torch run on it in
# float64 (DTYPE, to TIGHT); training runs in what the engine computes in there by default:
# float64 on the CPU (as scikit-learn's MLP), float32 on a GPU.
DEVICE = run_device()
ON_CPU = DEVICE.type == "cpu"
TRAIN_DTYPE = DTYPE if ON_CPU else torch.float32


def _reference_tolerance(rtol, atol):
    """Tolerance of a training against a torch reference (torch.optim, schedulers): ``rtol`` /
    ``atol`` in float64 on the CPU; in float32 on a GPU the design's tolerance."""
    if ON_CPU:
        return {"rtol": rtol, "atol": atol}
    return {"rtol": CUDA_TRAINING_TOLERANCE, "atol": CUDA_TRAINING_TOLERANCE}

# torch.nn.BatchNorm1d's defaults: the engine's batch norm must behave like it.
TORCH_BN_MOMENTUM = 0.1
TORCH_BN_EPS = 1e-5




@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Tensors here are tiny: intra-op threads only add wake-up latency (milliseconds per op on a
    # loaded 2-core machine).
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ------------------------------------------------------------------------------------------------
# references, one per registry entry


def _is_classification(loss):
    return loss.startswith("softmax_")


def _is_multilabel(loss):
    return loss.startswith("sigmoid_")


LOSS_REFERENCES = {
    "softmax_log_loss": lambda out, t: F.cross_entropy(out, t.argmax(-1), reduction="none"),
    "softmax_squared_error": lambda out, t: 0.5
    * F.mse_loss(torch.softmax(out, -1), t, reduction="none").mean(-1),
    # scikit-learn's multilabel MLP loss: each label's binary cross-entropy, summed over the labels
    "sigmoid_log_loss": lambda out, t: F.binary_cross_entropy_with_logits(out, t, reduction="none").sum(-1),
    "sigmoid_squared_error": lambda out, t: 0.5
    * F.mse_loss(torch.sigmoid(out), t, reduction="none").mean(-1),
    "squared_error": lambda out, t: 0.5 * F.mse_loss(out, t, reduction="none").mean(-1),
    "absolute_error": lambda out, t: F.l1_loss(out, t, reduction="none").mean(-1),
    "huber": lambda out, t: F.huber_loss(out, t, reduction="none", delta=1.0).mean(-1),
    # scikit-learn's MLPRegressor losses (sklearn.neural_network._base), one sample at a time
    "sklearn_squared_error": lambda out, t: _per_sample(sklearn_nn_base.squared_loss, out, t),
    "poisson": lambda out, t: _per_sample(sklearn_nn_base.poisson_loss, torch.exp(out), t),
}
# The gradient a loss steps along, where it is not its value's: scikit-learn's squared error
# reports half the mean over outputs and steps along the gradient of half their sum.
LOSS_GRADIENT_REFERENCES = {
    "sklearn_squared_error": lambda out, t: 0.5 * ((out - t) ** 2).sum(-1),
    "poisson": lambda out, t: (torch.exp(out) - t * out).sum(-1),
}


def _per_sample(sklearn_loss, prediction, target):
    """A scikit-learn loss of each row on its own, differentiable where it is torch arithmetic."""
    values = [sklearn_loss(t[None].detach().numpy(), p[None].detach().numpy())
              for p, t in zip(prediction, target)]
    return torch.tensor(values, dtype=prediction.dtype)

ACTIVATION_REFERENCES = {
    "relu": torch.nn.ReLU(),
    "leaky_relu": torch.nn.LeakyReLU(0.01),
    "elu": torch.nn.ELU(),
    "gelu": torch.nn.GELU(),
    "tanh": torch.nn.Tanh(),
    "sigmoid": torch.nn.Sigmoid(),
    "identity": torch.nn.Identity(),
}


def _param_groups(weights, biases, c):
    # The engine decays weight matrices only, never biases.
    return [{"params": weights, "weight_decay": c.weight_decay}, {"params": biases, "weight_decay": 0.0}]


def _torch_optimizer(name, weights, biases, c):
    """The ``torch.optim`` optimizer the registry entry names, for one member."""
    entry = OPTIMIZERS[name]
    return entry.torch_class(_param_groups(weights, biases, c), lr=c.lr, **entry.torch_kwargs(c))


def _torch_scheduler(kind, optimizer, c):
    """``torch.optim.lr_scheduler`` equivalent of each engine schedule (epochs counted from 0)."""
    sched = torch.optim.lr_scheduler
    return {
        "constant": lambda: sched.LambdaLR(optimizer, lambda e: 1.0),
        "step": lambda: sched.StepLR(optimizer, step_size=c.lr_step, gamma=c.lr_decay),
        "exponential": lambda: sched.ExponentialLR(optimizer, gamma=c.lr_decay),
        "inverse": lambda: sched.LambdaLR(optimizer, lambda e: 1.0 / (1.0 + c.lr_decay * e)),
        "cosine": lambda: sched.CosineAnnealingLR(optimizer, T_max=c.max_epochs),
        # The engine cuts after ``lr_step`` epochs without improvement; torch after more than
        # ``patience`` bad epochs.
        "plateau": lambda: sched.ReduceLROnPlateau(
            optimizer, factor=c.lr_decay, patience=c.lr_step - 1, threshold=c.tol, threshold_mode="abs"
        ),
        # scikit-learn's: lr_init the first epoch, then over (rows trained on + 1) ** power_t
        "invscaling": lambda: sched.LambdaLR(
            optimizer, lambda e: 1.0 if e == 0 else 1.0 / (e * SCHEDULE_ROWS + 1.0) ** c.lr_decay),
    }[kind]()


SCHEDULE_ROWS = 32  # the training rows of test_lr_schedule_matches_torch_scheduler


METRIC_REFERENCES = {
    "accuracy": lambda y, p, w: accuracy_score(y.argmax(1), p.argmax(1), sample_weight=w),
    "subset_accuracy": lambda y, p, w: accuracy_score(y > 0.5, p > 0.5, sample_weight=w),
    "r2": lambda y, p, w: r2_score(y, p, sample_weight=w, multioutput="uniform_average"),
}


def _torch_init(name, fan_in, fan_out):
    w = torch.empty(fan_out, fan_in, dtype=DTYPE)
    init = torch.nn.init
    {
        "xavier_uniform": lambda: init.xavier_uniform_(w),
        "sklearn": lambda: init.xavier_uniform_(w),  # Glorot uniform but for the sigmoid
        "xavier_normal": lambda: init.xavier_normal_(w),
        "he_uniform": lambda: init.kaiming_uniform_(w, nonlinearity="relu"),
        "he_normal": lambda: init.kaiming_normal_(w, nonlinearity="relu"),
        "normal": lambda: init.normal_(w, std=0.05),
    }[name]()
    return w.T


@pytest.mark.parametrize(
    ("registry", "references"),
    [
        (LOSSES, LOSS_REFERENCES),
        (ACTIVATIONS, ACTIVATION_REFERENCES),
        (METRICS, METRIC_REFERENCES),
        (INITIALIZERS, {k: None for k in ("sklearn", "xavier_uniform", "xavier_normal", "he_uniform",
                                          "he_normal", "normal")}),
        (SCHEDULES, {k: None for k in ("constant", "step", "exponential", "inverse", "cosine", "plateau",
                                       "invscaling", "adaptive")}),
    ],
    ids=["losses", "activations", "metrics", "initializers", "schedules"],
)
def test_every_registry_entry_has_a_reference(registry, references):
    # A new registry entry is tested automatically once its reference is added here.
    assert set(registry) == set(references)


# ------------------------------------------------------------------------------------------------
# registry entries on their own


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_matches_torch_and_its_backward_matches_autograd(name):
    z = torch.linspace(-4, 4, 101, dtype=DTYPE, device=DEVICE)[1::2]  # odd points: off the kink
    z = z.clone().requires_grad_(True)
    upstream = torch.linspace(-1, 2, z.numel(), dtype=DTYPE, device=DEVICE)
    act = ACTIVATIONS[name]
    a = act.forward(z)
    torch.testing.assert_close(a, ACTIVATION_REFERENCES[name](z), **TIGHT)
    (grad,) = torch.autograd.grad(a, z, upstream)
    torch.testing.assert_close(act.backward(upstream, z.detach(), a.detach()), grad, **TIGHT)
    assert act.init_family in ("he", "xavier")


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_loss_value_matches_torch_and_gradient_matches_autograd(name):
    gen = torch.Generator().manual_seed(0)
    out = _randn(gen, 2, 6, 3).requires_grad_(True)
    target = _targets(name, gen, 2, 6, 3)
    value, grad = LOSSES[name].value_and_grad(out, target)
    assert value.shape == (2, 6) and grad.shape == (2, 6, 3)
    reference = torch.stack([LOSS_REFERENCES[name](out[m], target[m]) for m in range(2)])
    torch.testing.assert_close(value, reference, **TIGHT)
    stepped = LOSS_GRADIENT_REFERENCES.get(name, LOSS_REFERENCES[name])
    (auto,) = torch.autograd.grad(torch.stack([stepped(out[m], target[m]) for m in range(2)]).sum(),
                                  out)
    torch.testing.assert_close(grad, auto, **TIGHT)
    link = LOSSES[name].link(out.detach())
    if _is_classification(name):
        torch.testing.assert_close(link, torch.softmax(out.detach(), -1), **TIGHT)
    elif _is_multilabel(name):
        torch.testing.assert_close(link, torch.sigmoid(out.detach()), **TIGHT)
    elif name == "poisson":
        torch.testing.assert_close(link, torch.exp(out.detach()), rtol=0, atol=0)
    else:
        torch.testing.assert_close(link, out.detach(), rtol=0, atol=0)


@pytest.mark.parametrize("name", sorted(INITIALIZERS))
def test_initializer_matches_torch_nn_init_scale(name):
    fan_in, fan_out = 60, 90
    arch = Architecture(fan_in, (fan_out,), 2, "relu", False, "squared_error")
    seeds = torch.tensor([1, 2, 3, 4], device=DEVICE)
    flat = initial_parameters(arch, seeds, [name] * 4, TRAIN_DTYPE, DEVICE)
    ours = split_flat(flat, arch.parameter_layout())["weight", 0]
    torch.manual_seed(0)
    theirs = torch.stack([_torch_init(name, fan_in, fan_out) for _ in range(4)])
    np.testing.assert_allclose(ours.std().item(), theirs.std().item(), rtol=0.03)
    assert abs(ours.mean().item()) < 0.05 * theirs.std().item()
    if name.endswith("uniform") or name == "sklearn":
        bound = theirs.abs().max().item()
        assert ours.abs().max().item() <= bound * (1 + 1e-3)
        assert ours.abs().max().item() >= 0.98 * bound


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid"])
def test_sklearn_init_draws_weights_and_biases_as_sklearn_mlp(activation):
    # scikit-learn's _init_coef: weights and biases U(-b, b), b = sqrt(6 / (fan_in + fan_out)),
    # sqrt(2 / ...) for the logistic sigmoid; init='auto' is this for every activation.
    arch = Architecture(30, (50,), 20, activation, False, "squared_error")
    seeds = torch.arange(16, device=DEVICE)
    for init in ("sklearn", "auto"):
        views = split_flat(initial_parameters(arch, seeds, [init] * 16, TRAIN_DTYPE, DEVICE),
                           arch.parameter_layout())
        for layer, (fan_in, fan_out) in enumerate([(30, 50), (50, 20)]):
            bound = np.sqrt((2.0 if activation == "sigmoid" else 6.0) / (fan_in + fan_out))
            for name in ("weight", "bias"):
                values = views[name, layer]
                # (the bound rounded to float32 may lie an ulp above the float64 one)
                assert values.abs().max().item() <= bound * (1 if ON_CPU else 1 + 1e-6)
                assert values.abs().max().item() >= 0.9 * bound
                np.testing.assert_allclose(values.std().item(), bound / np.sqrt(3), rtol=0.1)
    zero_bias = split_flat(initial_parameters(arch, seeds, ["xavier_uniform"] * 16, TRAIN_DTYPE,
                                              DEVICE),
                           arch.parameter_layout())["bias", 0]
    assert (zero_bias == 0).all()


def test_initial_parameters_per_member_independent_of_stack():
    arch = Architecture(5, (7, 4), 3, "tanh", True, "softmax_log_loss")
    seeds = torch.tensor([10, 20, 30], device=DEVICE)
    inits = ["auto", "he_normal", "normal"]
    fused = initial_parameters(arch, seeds, inits, TRAIN_DTYPE, DEVICE)
    for i in range(3):
        alone = initial_parameters(arch, seeds[i : i + 1], inits[i : i + 1], TRAIN_DTYPE, DEVICE)
        torch.testing.assert_close(fused[i : i + 1], alone, rtol=0, atol=0)
    views = split_flat(fused, arch.parameter_layout())
    for (name, _), value in views.items():
        if name == "bn_weight":
            assert torch.all(value == 1)
        elif name == "bias":  # drawn by 'auto' (member 0) only
            assert torch.all(value[1:] == 0) and torch.all(value[0] != 0)
        elif name != "weight":
            assert torch.all(value == 0)
    assert not torch.equal(views["weight", 0][0], views["weight", 0][1])
    # 'auto' is scikit-learn's Glorot uniform: within its bound.
    assert views["weight", 0][0].abs().max() <= math.sqrt(6.0 / (5 + 7))


# ------------------------------------------------------------------------------------------------
# rng


def test_rng_streams_do_not_depend_on_the_number_of_members():
    seeds = torch.tensor([0, 1, 12345, 2**32 - 1, 7], device=DEVICE)
    counters = torch.tensor([3, 0, 9, 1, 3], device=DEVICE)
    keys = rng.member_keys(seeds, rng.DROPOUT, counters, 5)
    u = rng.uniform(keys, (4, 6), TRAIN_DTYPE)
    z = rng.normal(keys, (3, 5), TRAIN_DTYPE)
    bits = rng.random_bits(keys, 50)
    assert keys.shape == (5,) and u.shape == (5, 4, 6) and z.shape == (5, 3, 5)
    for i in range(5):
        alone = rng.member_keys(seeds[i : i + 1], rng.DROPOUT, counters[i : i + 1], 5)
        assert torch.equal(alone, keys[i : i + 1])
        assert torch.equal(rng.uniform(alone, (4, 6), TRAIN_DTYPE), u[i : i + 1])
        assert torch.equal(rng.normal(alone, (3, 5), TRAIN_DTYPE), z[i : i + 1])
        # A prefix of a longer draw: what lets padded members permute their rows alike.
        assert torch.equal(rng.random_bits(alone, 20), bits[i : i + 1, :20])
    # An int counter and a tensor of that int are the same counter.
    assert torch.equal(rng.member_keys(seeds, 3),
                       rng.member_keys(seeds, torch.full((5,), 3, device=DEVICE)))


@pytest.mark.parametrize("n", [1, 7, 8, 33, 4099])
def test_rng_element_streams_are_the_int64_hash(n):
    # Element streams are hashed in int32 with wrapping products (vector lanes and the scalar
    # tail alike): the bits must be those of the int64 definition of lowbias32.
    keys = rng.member_keys(torch.tensor([0, 1, 2**31, 2**32 - 1, 99], device=DEVICE), 4, 2)
    index = torch.arange(n, device=DEVICE)
    expected = rng._mix32(keys[:, None] ^ rng._mix32((index * rng._GOLDEN) & rng._MASK32))
    assert torch.equal(rng.random_bits(keys, n), expected)
    for p in (0.0, 0.1, 0.5, 0.999):
        rates = torch.full((5, 1), p, dtype=DTYPE, device=DEVICE)
        expected_keep = expected >= rng.uniform_threshold(rates)
        threshold = rng.dropout_rates(rates).threshold
        assert torch.equal(rng.keep_mask(keys, n, threshold), expected_keep)
        assert torch.equal(rng.keep_mask(rng.as_int32(keys), n, threshold), expected_keep)
        assert torch.equal(rng.keep_mask(keys, n, threshold, DTYPE), expected_keep.to(DTYPE))
    assert torch.equal(rng.uniform(keys, (n,), DTYPE), (expected >> 8).to(DTYPE) * 2.0**-24)
    layers = rng.layer_keys(keys, 3)
    for layer in range(3):
        assert torch.equal(layers[layer], rng.member_keys(keys, rng.DROPOUT, layer))


def test_rng_distributions():
    keys = rng.member_keys(torch.tensor([3, 4], device=DEVICE), 17)
    u = rng.uniform(keys, (200_000,), TRAIN_DTYPE)
    assert u.min() >= 0.0 and u.max() < 1.0
    np.testing.assert_allclose(u.mean(1).cpu().numpy(), 0.5, atol=0.005)
    np.testing.assert_allclose(u.var(1).cpu().numpy(), 1 / 12, rtol=0.02)
    # 24 random bits: values lie on the 2**-24 grid.
    assert torch.equal(u * 2**24, torch.floor(u * 2**24))
    z = rng.normal(keys, (200_000,), TRAIN_DTYPE)
    assert torch.isfinite(z).all()
    np.testing.assert_allclose(z.mean(1).cpu().numpy(), 0.0, atol=0.01)
    np.testing.assert_allclose(z.std(1).cpu().numpy(), 1.0, rtol=0.01)
    np.testing.assert_allclose((z.abs() < 1.0).to(DTYPE).mean(1).cpu().numpy(), 0.6827, atol=0.005)
    # The two members' streams are uncorrelated.
    z = z.cpu().to(DTYPE)
    assert abs(np.corrcoef(z[0].numpy(), z[1].numpy())[0, 1]) < 0.01
    bits = rng.random_bits(keys, 100_000)
    assert bits.min() >= 0 and bits.max() < 2**32
    assert (bits[0] >= 2**31).to(DTYPE).mean().item() == pytest.approx(0.5, abs=0.01)


def test_rng_seeds_and_counters_give_different_numbers():
    base = rng.uniform(rng.member_keys(torch.tensor([1], device=DEVICE), 2, 3), (1000,), TRAIN_DTYPE)
    for seeds, counters in [([2], (2, 3)), ([1], (3, 2)), ([1], (2, 4)), ([1], (2,)), ([2**32 + 1], (2, 3))]:
        other = rng.uniform(rng.member_keys(torch.tensor(seeds, device=DEVICE), *counters), (1000,),
                            TRAIN_DTYPE)
        if seeds == [2**32 + 1]:
            assert torch.equal(other, base)  # seeds are taken modulo 2**32
        else:
            assert (other != base).float().mean() > 0.99
    keys = rng.member_keys(torch.arange(1000, device=DEVICE), 5)
    assert len(torch.unique(keys)) == 1000


# ------------------------------------------------------------------------------------------------
# the hand-written backward pass against autograd


def _randn(gen, *shape):
    """Normal draws from the CPU generator ``gen`` (the same numbers on every device), in float64
    on this run's device."""
    return torch.randn(*shape, generator=gen, dtype=DTYPE).to(DEVICE)


def _rand(gen, *shape):
    """Uniform draws from the CPU generator ``gen``, in float64 on this run's device."""
    return torch.rand(*shape, generator=gen, dtype=DTYPE).to(DEVICE)


def _targets(loss, gen, m, n, k):
    if _is_classification(loss):
        return F.one_hot(torch.randint(k, (m, n), generator=gen), k).to(DEVICE, DTYPE)
    if _is_multilabel(loss):
        return torch.randint(2, (m, n, k), generator=gen).to(DEVICE, DTYPE)
    if loss == "poisson":  # counts
        return torch.randint(4, (m, n, k), generator=gen).to(DEVICE, DTYPE)
    return _randn(gen, m, n, k)


def _reference_forward(arch, views, m, x, running, masks):
    """Member ``m``'s training-mode forward pass built from ``torch.nn.functional``."""
    n_hidden = len(arch.hidden_layer_sizes)
    act = ACTIVATIONS[arch.activation].forward
    h = x
    for layer in range(n_hidden):
        z = F.linear(h, views["weight", layer][m].T, views["bias", layer][m, 0])
        if arch.batch_norm:
            mean, var = running[layer]
            z = F.batch_norm(z, mean, var, views["bn_weight", layer][m, 0], views["bn_bias", layer][m, 0],
                             training=True, momentum=TORCH_BN_MOMENTUM, eps=TORCH_BN_EPS)
        h = act(z)
        if masks is not None:
            h = h * masks[layer]
    return F.linear(h, views["weight", n_hidden][m].T, views["bias", n_hidden][m, 0])


def _train_step(arch, flat, *batch):
    """The engine's step on ``flat``: (gradient, loss sum, new buffers), the gradient a copy."""
    grad = torch.full_like(flat, math.nan)  # every parameter's entry must be written by the step
    grad[:, arch.n_parameters():] = 0.0  # the row padding is not a parameter
    written, loss_sum, new_buffers = TrainStep(arch, flat, grad)(*batch)
    assert written is grad
    return grad.clone(), loss_sum, new_buffers


def _reference_step(arch, flat, buffers, x, target, weight, valid, dropout, keys):
    """Autograd on each member's real rows: gradient of sum_m (sum_i w_i l_i / sum_i w_i)."""
    flat = flat.detach().clone().requires_grad_(True)
    views = split_flat(flat, arch.parameter_layout())
    m_members, batch = x.shape[:2]
    total, loss_sums, new_buffers = 0.0, [], []
    for m in range(m_members):
        real = (torch.ones(batch, dtype=torch.bool, device=x.device) if valid is None
                else valid[m, :, 0] > 0)
        masks = None
        if dropout is not None:
            masks = []
            for layer, size in enumerate(arch.hidden_layer_sizes):
                u = rng.uniform(rng.member_keys(keys, rng.DROPOUT, layer), (batch, size), DTYPE)[m]
                p = dropout[m, 0, 0]
                masks.append(((u >= p).to(DTYPE) / (1.0 - p))[real])
        running = [(mean[m, 0].clone(), var[m, 0].clone()) for mean, var in split_buffers(buffers, arch)]
        out = _reference_forward(arch, views, m, x[m, real], running, masks)
        w = weight[m, real, 0]
        stepped = LOSS_GRADIENT_REFERENCES.get(arch.loss, LOSS_REFERENCES[arch.loss])
        total = total + (w * stepped(out, target[m, real])).sum() / w.sum()
        loss_sums.append((w * LOSS_REFERENCES[arch.loss](out, target[m, real])).sum().detach())
        new_buffers.append(torch.cat([t for pair in running for t in pair]) if running else buffers[m])
    total.backward()
    return flat.grad, torch.stack(loss_sums), torch.stack(new_buffers)


def _random_buffers(arch, m, gen):
    parts = []
    for size in arch.hidden_layer_sizes if arch.batch_norm else ():
        parts += [_randn(gen, m, size),
                  0.5 + _rand(gen, m, size)]
    return torch.cat(parts, 1) if parts else torch.zeros(m, 0, dtype=DTYPE, device=DEVICE)


def _random_params(arch, m, gen):
    flat = torch.zeros(m, arch.row_width(), dtype=DTYPE, device=DEVICE)
    flat[:, : arch.n_parameters()] = _randn(gen, m, arch.n_parameters()) * 0.7
    views = split_flat(flat, arch.parameter_layout())
    for (name, _), view in views.items():
        if name == "bn_weight":
            view.add_(1.0)  # keep the scales away from zero
    return flat


@pytest.mark.parametrize("batch_norm", [False, True], ids=["plain", "bn"])
@pytest.mark.parametrize("loss", sorted(LOSSES))
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize("variant", ["full", "masked_dropout"])
def test_train_step_gradient_matches_autograd(activation, loss, batch_norm, variant):
    m, batch, d, k = 3, 9, 4, 3
    arch = Architecture(d, (5, 6), k, activation, batch_norm, loss)
    gen = torch.Generator().manual_seed(hash((activation, loss, batch_norm)) % 2**31)
    flat = _random_params(arch, m, gen)
    buffers = _random_buffers(arch, m, gen)
    x = _randn(gen, m, batch, d)
    target = _targets(loss, gen, m, batch, k)
    weight = 0.5 + 1.5 * _rand(gen, m, batch, 1)
    valid = dropout = keys = None
    if variant == "masked_dropout":
        # Member 0 has every row, member 1 is padded after 6 rows, member 2 after 4; real rows may
        # weigh nothing (they still count in the batch statistics).
        valid = torch.ones(m, batch, 1, dtype=DTYPE, device=DEVICE)
        valid[1, 6:] = 0
        valid[2, 4:] = 0
        weight = weight * valid
        weight[0, 2] = 0.0
        weight[2, 1] = 0.0
        dropout = torch.tensor([0.2, 0.5, 0.0], dtype=DTYPE, device=DEVICE)[:, None, None]
        keys = rng.member_keys(torch.tensor([5, 6, 7], device=DEVICE), 3, 1)
    # The step takes each layer's keys at once; the reference derives them one layer at a time.
    layer_keys = None if keys is None else rng.layer_keys(keys, len(arch.hidden_layer_sizes))
    rates = None if dropout is None else rng.dropout_rates(dropout)
    grad, loss_sum, new_buffers = _train_step(arch, flat, buffers, x, target, weight, valid, rates,
                                              layer_keys)
    ref_grad, ref_loss_sum, ref_buffers = _reference_step(arch, flat, buffers, x, target, weight, valid,
                                                          dropout, keys)
    assert grad.shape == flat.shape
    # (absolute rounding grows with the gradient's scale: exp outputs of the Poisson loss)
    scale = max(1.0, float(ref_grad.abs().max()))
    torch.testing.assert_close(grad, ref_grad, rtol=TIGHT["rtol"], atol=TIGHT["atol"] * scale)
    torch.testing.assert_close(loss_sum, ref_loss_sum, **TIGHT)
    torch.testing.assert_close(new_buffers, ref_buffers, **TIGHT)
    if variant == "masked_dropout":
        # The dropout really drops: some hidden units of the p=0.5 member are zeroed.
        mask = rng.uniform(rng.member_keys(keys, rng.DROPOUT, 0), (batch, 5), DTYPE)
        assert 0 < (mask[1] < 0.5).sum() < batch * 5


@pytest.mark.parametrize("batch_norm", [False, True], ids=["plain", "bn"])
def test_traceable_train_step_writes_the_same_gradient(batch_norm, monkeypatch):
    # copy_ (the default: faster, and traceable by torch.compile) and out=: the same numbers in
    # every block of the gradient.
    arch = Architecture(4, (5, 3), 2, "relu", batch_norm, "squared_error")
    gen = torch.Generator().manual_seed(4)
    flat, buffers = _random_params(arch, 3, gen), _random_buffers(arch, 3, gen)
    batch = (buffers, _randn(gen, 3, 8, 4), _randn(gen, 3, 8, 2), _rand(gen, 3, 8, 1), None, None,
             None)
    monkeypatch.setattr(TrainStep, "traceable", False)
    out_views = _train_step(arch, flat, *batch)
    monkeypatch.setattr(TrainStep, "traceable", True)
    copied = _train_step(arch, flat, *batch)
    for left, right in zip(out_views, copied):
        assert_same_training(left, right)


@pytest.mark.parametrize("batch_norm", [False, True], ids=["plain", "bn"])
def test_one_member_step_writes_its_blocks_in_place_with_its_stacked_numbers(batch_norm):
    # A one-member stack's gradient blocks are contiguous: written out= directly, where a
    # stack's strided blocks are computed apart and copied in. Each member's gradient, loss and
    # statistics are the same either way (and every entry is written: _train_step's NaNs).
    arch = Architecture(7, (13, 5), 3, "relu", batch_norm, "softmax_log_loss")
    gen = torch.Generator().manual_seed(5)
    flat, buffers = _random_params(arch, 3, gen), _random_buffers(arch, 3, gen)
    x, y = _randn(gen, 3, 8, 7), _rand(gen, 3, 8, 3)
    stacked = _train_step(arch, flat, buffers, x, y, None, None, None, None)
    for i in range(3):
        alone = _train_step(arch, flat[i:i + 1].clone(), buffers[i:i + 1], x[i:i + 1],
                            y[i:i + 1], None, None, None, None)
        for left, right in zip(alone, stacked):
            assert_same_training(left[0], right[i], cpu_atol=1e-15)


@pytest.mark.parametrize("batch_norm", [False, True], ids=["plain", "bn"])
def test_train_step_all_valid_mask_equals_no_mask(batch_norm):
    arch = Architecture(4, (5, 3), 2, "elu", batch_norm, "squared_error")
    gen = torch.Generator().manual_seed(3)
    flat, buffers = _random_params(arch, 2, gen), _random_buffers(arch, 2, gen)
    x = _randn(gen, 2, 8, 4)
    y = _randn(gen, 2, 8, 2)
    w = _rand(gen, 2, 8, 1)
    a = _train_step(arch, flat, buffers, x, y, w, None, None, None)
    b = _train_step(arch, flat, buffers, x, y, w, torch.ones(2, 8, 1, dtype=DTYPE, device=DEVICE),
                    None, None)
    for left, right in zip(a, b):
        torch.testing.assert_close(left, right, rtol=1e-13, atol=training_tolerance(1e-14))


def test_batch_norm_batch_of_one_row():
    # torch refuses a training batch of one row; the engine normalises it to zero and keeps the
    # biased (zero) variance, the same whether the row is marked valid or not.
    arch = Architecture(3, (4,), 2, "tanh", True, "squared_error")
    gen = torch.Generator().manual_seed(0)
    flat, buffers = _random_params(arch, 1, gen), _random_buffers(arch, 1, gen)
    x, y = _randn(gen, 1, 1, 3), _randn(gen, 1, 1, 2)
    w = torch.ones(1, 1, 1, dtype=DTYPE, device=DEVICE)
    grad, loss, new_buffers = _train_step(arch, flat, buffers, x, y, w, None, None, None)
    masked = _train_step(arch, flat, buffers, x, y, w, torch.ones_like(w), None, None)
    assert torch.isfinite(grad).all() and torch.isfinite(new_buffers).all()
    for left, right in zip((grad, loss, new_buffers), masked):
        assert_same_training(left, right, cpu_atol=1e-15)
    views = split_flat(flat, arch.parameter_layout())
    z = x @ views["weight", 0] + views["bias", 0]
    ((mean, var),) = split_buffers(buffers, arch)
    ((new_mean, new_var),) = split_buffers(new_buffers, arch)
    torch.testing.assert_close(new_mean, 0.9 * mean + 0.1 * z, rtol=1e-14, atol=1e-15)
    torch.testing.assert_close(new_var, 0.9 * var, rtol=1e-14, atol=0)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_forward_eval_matches_torch_eval_mode_batch_norm(activation):
    m, n, d, k = 3, 7, 4, 2
    arch = Architecture(d, (6, 5), k, activation, True, "squared_error")
    gen = torch.Generator().manual_seed(1)
    flat, buffers = _random_params(arch, m, gen), _random_buffers(arch, m, gen)
    x = _randn(gen, m, n, d)
    out = forward_eval(arch, flat, buffers, x)
    views = split_flat(flat, arch.parameter_layout())
    act = ACTIVATION_REFERENCES[activation]
    for i in range(m):
        h = x[i]
        for layer, (mean, var) in enumerate(split_buffers(buffers, arch)):
            z = F.linear(h, views["weight", layer][i].T, views["bias", layer][i, 0])
            h = act(F.batch_norm(z, mean[i, 0], var[i, 0], views["bn_weight", layer][i, 0],
                                 views["bn_bias", layer][i, 0], training=False, eps=TORCH_BN_EPS))
        ref = F.linear(h, views["weight", 2][i].T, views["bias", 2][i, 0])
        torch.testing.assert_close(out[i], ref, **TIGHT)
    # One shared input broadcasts to every member.
    assert_same_training(forward_eval(arch, flat, buffers, x[:1]),
                         torch.stack([forward_eval(arch, flat[i:i + 1], buffers[i:i + 1], x[:1])[0]
                                      for i in range(m)]), cpu_atol=1e-15)


# ------------------------------------------------------------------------------------------------
# trainer helpers


def _on_device(*tensors):
    """``tensors`` on this run's device, in the dtype training computes in there."""
    return tuple(t.to(DEVICE, TRAIN_DTYPE) for t in tensors)


def _classification_data(n=64, d=4, k=3, seed=0, noise=0.5):
    # Drawn on the CPU in float64: the same data on every device.
    gen = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, generator=gen, dtype=DTYPE)
    scores = X @ torch.randn(d, k, generator=gen, dtype=DTYPE) + noise * torch.randn(
        n, k, generator=gen, dtype=DTYPE)
    return _on_device(X, F.one_hot(scores.argmax(1), k).to(DTYPE))


def _stack(optimizer="adam", batch_size=8, batch_norm=False, hidden=(6, 5), activation="tanh",
           loss="softmax_log_loss", metric="accuracy", d=4, k=3):
    arch = Architecture(d, hidden, k, activation, batch_norm, loss)
    return StackConfig(arch, optimizer, batch_size, metric, TRAIN_DTYPE, DEVICE)


def _history_equal(h1, h2, atol=1e-12):
    assert h1.keys() == h2.keys()
    for name in h1:
        if name == "seconds":
            assert len(h1[name]) == len(h2[name])
            continue
        assert_same_training(h1[name], h2[name], cpu_atol=atol, err_msg=name)


def _assert_same_member(a, i, b, j=0, atol=1e-12):
    """Member ``i`` of trainer ``a`` ended where member ``j`` of trainer ``b`` did: to ``atol`` on
    the CPU (0: bit for bit), within the design's tolerance on a GPU; the same steps, epochs and
    decisions everywhere."""
    def same(x, y, name):
        assert_same_training(x, y, cpu_atol=atol, err_msg=name)

    same(a.params[i], b.params[j], "params")
    same(a.buffers[i], b.buffers[j], "buffers")
    same(a.best_params[i], b.best_params[j], "best_params")
    same(a.best_buffers[i], b.best_buffers[j], "best_buffers")
    assert torch.equal(a.steps[i], b.steps[j])
    assert a.state.keys() == b.state.keys()
    for name in a.state:
        same(a.state[name][i], b.state[name][j], name)
    for name in ("epochs_done", "best_epoch", "stopped", "diverged", "wait", "plateau_wait"):
        assert getattr(a, name)[i] == getattr(b, name)[j], name
    for name in ("best_value", "plateau_factor", "plateau_best"):
        same(getattr(a, name)[i], getattr(b, name)[j], name)
    assert a.final_epoch()[i] == b.final_epoch()[j]
    for x, y in zip(a.final_parameters(), b.final_parameters()):
        same(x[i], y[j], "final_parameters")
    _history_equal(a.history(i), b.history(j), atol)


def _fusion_members():
    return [
        MemberConfig(seed=11, lr=0.05, dropout=0.2, noise_std=0.1, weight_decay=1e-3, lr_schedule="step",
                     lr_decay=0.5, lr_step=2, max_epochs=6, momentum=0.8, beta1=0.85, beta2=0.99, rho=0.9,
                     early_stopping=True, patience=2, tol=0.0),
        MemberConfig(seed=22, lr=0.02, l1=1e-3, lr_schedule="exponential", lr_decay=0.9, max_epochs=8,
                     early_stopping=True, patience=1, tol=1e-3, restore_best_weights=False),
        MemberConfig(seed=33, lr=0.1, dropout=0.5, lr_schedule="cosine", max_epochs=5, momentum=0.95,
                     beta1=0.7, beta2=0.9, rho=0.8, init="he_normal"),
        MemberConfig(seed=44, lr=0.03, lr_schedule="plateau", lr_decay=0.5, lr_step=1, tol=0.05, max_epochs=7,
                     noise_std=0.3, weight_decay=1e-2, l1=1e-4, init="normal"),
        MemberConfig(seed=55, lr=0.03, lr_schedule="inverse", lr_decay=0.5, max_epochs=4, dropout=0.1,
                     early_stopping=True, patience=1, tol=10.0),
    ]


def _fusion_data(n):
    """Folds of 30, 41, 24, 18 and 29 rows: 4, 6, 3, 3 and 4 batches of 8, some padded."""
    r = np.random.default_rng(0)
    sizes = [30, 41, 24, 18, 29]
    data = []
    for i, size in enumerate(sizes):
        perm = r.permutation(n)
        train, val = perm[:size], perm[size : size + 10]
        weight = r.uniform(0.5, 2.0, size) if i in (0, 1) else None
        if weight is not None:
            weight[r.choice(size, 4, replace=False)] = 0.0
        val_weight = r.uniform(0.5, 2.0, len(val)) if i == 1 else None
        if i == 3:
            val = None  # a member without validation rows beside members with them
        data.append(MemberData(train, weight, val, val_weight))
    return data


@pytest.mark.parametrize("batch_norm", [False, True], ids=["plain", "bn"])
@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_fusion_invariance(optimizer, batch_norm):
    X, Y = _classification_data()
    config = _stack(optimizer, batch_norm=batch_norm)
    members, data = _fusion_members(), _fusion_data(len(X))
    fused = StackedTrainer(config, members).fit(X, Y, data)
    # The scenario really varies: members end at different epochs, some stop early.
    assert len(set(fused.epochs_done)) >= 3 and fused.stopped.any() and not fused.diverged.any()
    for i in range(len(members)):
        alone = StackedTrainer(config, [members[i]]).fit(X, Y, [data[i]])
        _assert_same_member(fused, i, alone, 0)
        _assert_same_member(fused.select([i]), 0, alone, 0)
        assert_same_training(fused.predict(X)[i], alone.predict(X)[0], cpu_atol=1e-12)
    # A member without validation rows tracks no best epoch, even beside members that have them.
    assert np.isnan(fused.history(3)["val_loss"]).all() and fused.best_epoch[3] == 0


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_members_sharing_rows_and_seed_share_an_epoch_order(weighted, monkeypatch):
    # The candidates of a fold with the estimator's random_state: the same rows (one array, or
    # an equal copy of it), weights and seed, so one order and one gather per epoch serve them
    # all, and each still ends exactly where it ends alone. Mixed with members of another fold,
    # another seed, shuffle=False and members that stop early (sets split when epochs part).
    X, Y = _classification_data()
    r = np.random.default_rng(1)
    fold_a, fold_b = r.permutation(len(X))[:37], r.permutation(len(X))[:29]
    w_a = r.uniform(0.5, 2.0, len(fold_a)) if weighted else None
    base = dict(max_epochs=5, early_stopping=True, patience=1, tol=0.0)
    members = [MemberConfig(seed=7, lr=lr, **base) for lr in (0.01, 0.05, 0.2)]
    members += [MemberConfig(seed=7, lr=0.03, max_epochs=4),
                MemberConfig(seed=8, lr=0.03, max_epochs=4),
                MemberConfig(seed=7, lr=0.03, max_epochs=4, shuffle=False),
                MemberConfig(seed=7, lr=0.1, max_epochs=4)]
    val = np.arange(40, 64)
    data = [MemberData(fold_a, w_a, val), MemberData(fold_a, w_a, val),
            MemberData(fold_a.copy(), None if w_a is None else w_a.copy(), val),
            MemberData(fold_b), MemberData(fold_b), MemberData(fold_b), MemberData(fold_b)]
    sets = []
    epoch_rows = StackedTrainer._epoch_rows

    def spy(self, *args):
        out = epoch_rows(self, *args)
        sets.append(len(out[0]))
        return out

    monkeypatch.setattr(StackedTrainer, "_epoch_rows", spy)
    config = _stack()
    fused = StackedTrainer(config, members).fit(X, Y, data)
    # 7 members, 4 sets in the first epoch: fold a with seed 7 (three members), fold b with
    # seed 7 (two), fold b with seed 8, fold b in its own order.
    assert sets[0] == 4 and len(set(fused.epochs_done)) >= 2
    for i in range(len(members)):
        alone = StackedTrainer(config, [members[i]]).fit(X, Y, [data[i]])
        _assert_same_member(fused, i, alone, 0)


@pytest.mark.cpu_only  # a GPU always takes the column rules: test_fusion_invariance[bn] there
@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_fusion_invariance_of_the_column_update(optimizer, monkeypatch):
    # The column rules update every member in one op, frozen members masked (short folds, zero-
    # weight batches, early stopping): a member still ends exactly where it ends alone.
    monkeypatch.setattr(trainer_module, "CPU_COLUMN_UPDATE", True)
    X, Y = _classification_data()
    config = _stack(optimizer, batch_norm=True)
    members, data = _fusion_members(), _fusion_data(len(X))
    fused = StackedTrainer(config, members).fit(X, Y, data)
    assert len(set(fused.epochs_done)) >= 3 and fused.stopped.any()
    for i in range(len(members)):
        alone = StackedTrainer(config, [members[i]]).fit(X, Y, [data[i]])
        _assert_same_member(fused, i, alone, 0, atol=0)


@pytest.mark.parametrize("batch_norm", [False, True], ids=["plain", "bn"])
def test_members_of_different_activations_and_optimizers_share_a_stack(batch_norm, update_form):
    # A mixed stack: runs of members with their own activation (init='auto' resolves per member:
    # the sklearn init's gain depends on it) and their own optimizer (its own state, L2 added to
    # the gradient or AdamW's decoupled decay), each ends exactly where it ends alone; selecting
    # one gives its own configuration and state, and stacking them back the mixed ones.
    X, Y = _classification_data()
    activations = ("sigmoid", "relu", "relu", "tanh", "gelu")
    optimizers = ("adam", "sgd", "momentum", "adamw", "rmsprop")
    members, data = _fusion_members(), _fusion_data(len(X))
    shared = _stack("adam", batch_norm=batch_norm)

    def own(i):
        return replace(shared, optimizer=optimizers[i], architecture=replace(
            shared.architecture, activation=activations[i]))

    config = StackConfig.join([(own(i), 1) for i in range(5)])
    assert config.architecture.activation == activations and config.optimizer == optimizers
    fused = StackedTrainer(config, members).fit(X, Y, data)
    assert len(set(fused.epochs_done)) >= 3 and not fused.diverged.any()
    assert set(fused.state) == {"exp_avg", "exp_avg_sq", "momentum_buffer", "square_avg"}
    alone = []
    for i in range(5):
        alone.append(StackedTrainer(own(i), [members[i]]).fit(X, Y, [data[i]]))
        picked = fused.select([i])
        assert picked.config == own(i)
        _assert_same_member(picked, 0, alone[i], 0, atol=0)
        assert torch.equal(fused.predict(X)[i], alone[i].predict(X)[0])
        assert torch.equal(fused.predict(X, members=[i])[0], alone[i].predict(X)[0])
    restacked = StackedTrainer.stack(alone)
    assert restacked.config == config and set(restacked.state) == set(fused.state)
    assert fused.select([1, 2]).config.architecture.activation == "relu"
    with pytest.raises(ValueError, match="only trainers of one stack configuration"):
        StackedTrainer.stack([alone[0], StackedTrainer(_stack(batch_size=4), members[:1])])


@pytest.mark.parametrize("batch_norm", [False, True], ids=["plain", "bn"])
def test_batch_of_zero_weight_is_skipped(batch_norm, update_form):
    # One row of eight weighs anything: of the two batches of four per epoch, one weighs nothing
    # and must leave the member untouched (no step, no optimizer state, no BatchNorm update),
    # alone or beside a member that trains on every batch.
    X, Y = _classification_data(n=16)
    config = _stack("adam", batch_size=4, batch_norm=batch_norm)
    weight = np.zeros(8)
    weight[3] = 1.0
    lone = MemberData(np.arange(8), weight)
    full = MemberData(np.arange(8, 16))
    members = [MemberConfig(seed=1, lr=0.05, max_epochs=5), MemberConfig(seed=2, lr=0.01, max_epochs=5)]
    fused = StackedTrainer(config, members).fit(X, Y, [lone, full])
    alone = StackedTrainer(config, members[:1]).fit(X, Y, [lone])
    assert alone.steps[0, 0] == 5 and fused.steps[1, 0] == 10
    _assert_same_member(fused, 0, alone, 0, atol=0)


def test_select_keeps_order_and_shares_nothing():
    X, Y = _classification_data()
    members, data = _fusion_members()[:3], _fusion_data(len(X))[:3]
    fused = StackedTrainer(_stack("momentum"), members).fit(X, Y, data)
    picked = fused.select([2, 0])
    _assert_same_member(fused, 2, picked, 0, atol=0)
    _assert_same_member(fused, 0, picked, 1, atol=0)
    params, state = fused.params.clone(), fused.state["momentum_buffer"].clone()
    done = fused.epochs_done.copy()
    picked.params.add_(1.0)
    picked.state["momentum_buffer"].add_(1.0)
    picked.epochs_done += 1
    picked.log[0]["train_loss"][:] = 0.0
    assert torch.equal(fused.params, params) and torch.equal(fused.state["momentum_buffer"], state)
    np.testing.assert_array_equal(fused.epochs_done, done)
    assert (fused.log[0]["train_loss"] > 0).all()


# ------------------------------------------------------------------------------------------------
# optimizers against torch.optim


def _torch_layers(arch, flat):
    views = split_flat(flat, arch.parameter_layout())
    sizes = arch.layer_sizes
    layers = []
    for layer in range(len(sizes) - 1):
        linear = torch.nn.Linear(sizes[layer], sizes[layer + 1], dtype=flat.dtype, device=flat.device)
        with torch.no_grad():
            linear.weight.copy_(views["weight", layer][0].T)  # ours are (in, out)
            linear.bias.copy_(views["bias", layer][0, 0])
        layers.append(linear)
    return layers


def _flat_from_layers(arch, layers):
    parts = [(layers[layer].weight.T if name == "weight" else layers[layer].bias).reshape(-1)
             for name, layer, _ in arch.parameter_layout()]
    padding = torch.zeros(arch.row_width() - arch.n_parameters(), dtype=layers[0].weight.dtype,
                          device=layers[0].weight.device)
    return torch.cat([*parts, padding])[None].detach()


@pytest.fixture(params=["grouped", "column"])
def update_form(request, monkeypatch):
    """The optimizer update's form on the CPU: grouped rules (torch's fused kernels per group of
    equal hyperparameters) or column rules (per-member (M, 1) columns, as on a GPU)."""
    if request.param == "grouped" and not ON_CPU:
        pytest.skip("a GPU always takes the column rules")
    monkeypatch.setattr(trainer_module, "CPU_COLUMN_UPDATE", request.param == "column")
    return request.param


@pytest.mark.parametrize("regularization", ["none", "l2", "l1"])
@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_optimizer_matches_torch_optim(optimizer, regularization, update_form):
    X, Y = _classification_data(n=24, seed=4)
    n_epochs = 20
    member = MemberConfig(seed=3, lr=0.05, momentum=0.8, beta1=0.8, beta2=0.95, rho=0.9,
                          weight_decay=0.05 if regularization == "l2" else 0.0,
                          l1=0.01 if regularization == "l1" else 0.0, max_epochs=n_epochs)
    config = _stack(optimizer, batch_size=32)  # full batch: the row order does not matter
    trainer = StackedTrainer(config, [member])
    arch = config.architecture
    layers = _torch_layers(arch, trainer.params)
    weights, biases = [lin.weight for lin in layers], [lin.bias for lin in layers]
    opt = _torch_optimizer(optimizer, weights, biases, member)
    labels = Y.argmax(1)
    losses = []
    for _ in range(n_epochs):
        opt.zero_grad()
        h = X
        for lin in layers[:-1]:
            h = torch.tanh(lin(h))
        loss = F.cross_entropy(layers[-1](h), labels)
        losses.append(loss.item())
        if member.l1:
            loss = loss + member.l1 * sum(w.abs().sum() for w in weights)
        loss.backward()
        opt.step()
    trainer.fit(X, Y, [MemberData(np.arange(len(X)))])
    assert trainer.epochs_done[0] == n_epochs and trainer.steps[0, 0] == n_epochs
    np.testing.assert_allclose(trainer.history(0)["train_loss"], losses,
                               **_reference_tolerance(1e-10, 1e-12))
    reference = _flat_from_layers(arch, layers)
    assert not torch.allclose(reference, initial_parameters(arch, trainer.seeds, ["auto"], TRAIN_DTYPE,
                                                            DEVICE))
    torch.testing.assert_close(trainer.params, reference, **_reference_tolerance(1e-11, 1e-13))


# ------------------------------------------------------------------------------------------------
# divergence, early stopping, schedules


def test_divergence_freezes_only_the_diverged_member():
    gen = torch.Generator().manual_seed(2)
    X = torch.randn(40, 3, generator=gen, dtype=DTYPE)
    X, Y = _on_device(X, X @ torch.randn(3, 2, generator=gen, dtype=DTYPE))
    config = _stack("sgd", batch_size=10, activation="relu", hidden=(8,), loss="squared_error",
                    metric="r2", d=3, k=2)
    members = [MemberConfig(seed=1, lr=0.01, max_epochs=15), MemberConfig(seed=2, lr=1e8, max_epochs=15),
               MemberConfig(seed=3, lr=0.05, max_epochs=15, dropout=0.1)]
    data = [MemberData(np.arange(40), val_rows=np.arange(30, 40))] * 3
    snapshots = []
    fused = StackedTrainer(config, members).fit(
        X, Y, data, on_epoch=lambda t: snapshots.append(t.params.clone()))
    assert fused.diverged.tolist() == [False, True, False]
    assert not fused.stopped.any()
    history = fused.history(1)
    done = fused.epochs_done[1]
    assert done < 15 and len(history["train_loss"]) == done
    assert np.isfinite(history["train_loss"][:-1]).all() and not np.isfinite(history["train_loss"][-1])
    # Frozen from the epoch it diverged in.
    torch.testing.assert_close(fused.params[1], snapshots[done - 1][1], rtol=0, atol=0, equal_nan=True)
    for i in (0, 2):
        assert fused.epochs_done[i] == 15
        alone = StackedTrainer(config, [members[i]]).fit(X, Y, [data[i]])
        _assert_same_member(fused, i, alone, 0)
    # Training again does not wake the diverged member.
    fused.fit(X, Y, data, n_epochs=1)
    assert fused.epochs_done.tolist() == [16, done, 16]


def _reference_early_stopping(val_loss, patience, tol, max_epochs):
    """(best_epoch, epochs trained) of Keras-style early stopping on a validation-loss curve."""
    best, best_epoch, wait = np.inf, 0, 0
    for epoch, value in enumerate(val_loss, start=1):
        if value < best - tol:
            best, best_epoch, wait = value, epoch, 0
        else:
            wait += 1
        if wait >= patience:
            return best_epoch, epoch
    return best_epoch, max_epochs


@pytest.mark.parametrize("batch_norm", [False, True], ids=["plain", "bn"])
def test_early_stopping_and_best_weights(batch_norm):
    # Random labels: the network overfits and its validation loss turns up.
    gen = torch.Generator().manual_seed(5)
    X = torch.randn(60, 4, generator=gen, dtype=DTYPE)
    X, Y = _on_device(X, F.one_hot(torch.randint(3, (60,), generator=gen), 3))
    config = _stack("adam", batch_size=10, batch_norm=batch_norm, hidden=(32,))
    # the scenario (best epoch after the first) was built with Glorot weights and zero biases
    common = {"seed": 9, "lr": 0.05, "max_epochs": 40, "patience": 3, "tol": 1e-3,
              "init": "xavier_uniform"}
    members = [MemberConfig(early_stopping=True, restore_best_weights=True, **common),
               MemberConfig(early_stopping=True, restore_best_weights=False, **common),
               MemberConfig(early_stopping=False, **common)]
    data = [MemberData(np.arange(40), val_rows=np.arange(40, 60))] * 3
    snapshots = []
    trainer = StackedTrainer(config, members).fit(
        X, Y, data, on_epoch=lambda t: snapshots.append((t.params.clone(), t.buffers.clone())))
    history = trainer.history(0)
    best_epoch, stop_epoch = _reference_early_stopping(history["val_loss"], 3, 1e-3, 40)
    assert 1 < best_epoch < stop_epoch < 40, "the scenario must stop early"
    assert trainer.stopped.tolist() == [True, True, False]
    assert trainer.epochs_done.tolist() == [stop_epoch, stop_epoch, 40]
    assert stop_epoch == best_epoch + 3
    assert trainer.best_epoch[0] == trainer.best_epoch[1] == best_epoch
    np.testing.assert_array_equal(history["epoch"], np.arange(1, stop_epoch + 1))
    assert trainer.best_value[0] == history["val_loss"][best_epoch - 1]
    # The member that never stops tracks the best epoch of its whole run.
    assert trainer.best_epoch[2] == _reference_early_stopping(trainer.history(2)["val_loss"], 10**9,
                                                              1e-3, 40)[0]
    assert trainer.final_epoch().tolist() == [best_epoch, stop_epoch, 40]
    params, buffers = trainer.final_parameters()
    best_params, best_buffers = snapshots[best_epoch - 1]
    last_params, last_buffers = snapshots[stop_epoch - 1]
    torch.testing.assert_close(params[0], best_params[0], rtol=0, atol=0)
    torch.testing.assert_close(buffers[0], best_buffers[0], rtol=0, atol=0)
    torch.testing.assert_close(params[1], last_params[1], rtol=0, atol=0)
    torch.testing.assert_close(buffers[1], last_buffers[1], rtol=0, atol=0)
    torch.testing.assert_close(params[2], trainer.params[2], rtol=0, atol=0)
    assert not torch.equal(best_params[0], last_params[0])
    # Predictions come from the final parameters.
    expected = torch.softmax(forward_eval(config.architecture, params, buffers, X[None]), -1)
    torch.testing.assert_close(trainer.predict(X), expected, rtol=0, atol=0)


def _member_lr_reference(kind, c, history):
    param = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.SGD([param], lr=c.lr)
    scheduler = _torch_scheduler(kind, optimizer, c)
    watched = np.where(np.isnan(history["val_loss"]), history["train_loss"], history["val_loss"])
    lrs = []
    for value in watched:
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        if kind == "plateau":
            scheduler.step(float(value))
        else:
            scheduler.step()
    return np.array(lrs)


@pytest.mark.parametrize("kind", sorted(set(SCHEDULES) - {"adaptive"}))  # (adaptive: below)
def test_lr_schedule_matches_torch_scheduler(kind):
    X, Y = _classification_data(n=48, seed=6)
    common = {"seed": 4, "lr": 0.1, "lr_schedule": kind, "lr_decay": 0.7, "lr_step": 2, "max_epochs": 9,
              "tol": 0.1}
    members = [MemberConfig(**common), MemberConfig(**{**common, "seed": 5, "lr": 0.3})]
    rows = np.arange(SCHEDULE_ROWS)
    data = [MemberData(rows), MemberData(rows, val_rows=np.arange(32, 48))]
    trainer = StackedTrainer(_stack("sgd", batch_size=16), members).fit(X, Y, data)
    for i, c in enumerate(members):
        history = trainer.history(i)
        assert len(history["lr"]) == 9
        np.testing.assert_allclose(history["lr"], _member_lr_reference(kind, c, history), rtol=1e-12)
    if kind != "constant":
        for i in range(2):
            assert trainer.history(i)["lr"][-1] < members[i].lr * (1 - 1e-9), "the schedule must act"


def test_lr_schedule_formulas():
    epoch = np.arange(12.0)
    decay, step = np.full(12, 0.5), np.full(12, 3.0)
    max_epochs, plateau = np.full(12, 10.0), np.full(12, 0.25)
    expected = {
        "constant": np.ones(12),
        "step": 0.5 ** np.floor(epoch / 3),
        "exponential": 0.5**epoch,
        "inverse": 1 / (1 + 0.5 * epoch),
        "cosine": 0.5 * (1 + np.cos(np.pi * np.minimum(epoch, 10) / 10)),
        "plateau": np.full(12, 0.25),
        "adaptive": np.full(12, 0.25),
        "invscaling": np.r_[1.0, 1 / (100 * epoch[1:] + 1) ** 0.5],
    }
    assert expected.keys() == SCHEDULES.keys()
    inputs = ScheduleInputs(epoch=epoch, decay=decay, step=step, max_epochs=max_epochs, plateau=plateau,
                            since_start=epoch, rows_seen=100 * epoch)
    for kind, schedule in SCHEDULES.items():
        np.testing.assert_allclose(schedule.factor(inputs), expected[kind], rtol=1e-14, err_msg=kind)
        # The flags say which inputs a factor reads: changing the others changes nothing.
        other = inputs._replace(max_epochs=2 * max_epochs) if not schedule.uses_max_epochs else inputs
        other = other._replace(plateau=2 * plateau) if not schedule.uses_plateau else other
        np.testing.assert_array_equal(schedule.factor(other), schedule.factor(inputs), err_msg=kind)


def test_adaptive_schedule_cuts_and_stops_as_sklearns_sgd_optimizer():
    from sklearn.neural_network._stochastic_optimizers import SGDOptimizer

    X, Y = _classification_data(n=16)
    patience, tol = 2, 10.0  # a tol no epoch beats: every `patience` epochs a cut, then a stop
    member = MemberConfig(seed=1, lr=1e-5, lr_schedule="adaptive", lr_decay=0.2, patience=patience,
                          tol=tol, max_epochs=50)
    trainer = StackedTrainer(_stack("sgd", batch_size=16), [member]).fit(X, Y, [MemberData(np.arange(16))])
    history = trainer.history(0)
    reference = SGDOptimizer([np.zeros(1)], learning_rate_init=1e-5, lr_schedule="adaptive")
    best, count, lrs = np.inf, 0, []
    for loss in history["train_loss"]:  # scikit-learn's _fit_stochastic, on the engine's losses
        lrs.append(reference.learning_rate)
        count = count + 1 if loss > best - tol else 0
        best = min(best, loss)
        if count > patience - 1:
            if reference.trigger_stopping("", False):
                break
            count = 0
    assert len(lrs) == len(history["lr"]) == 7 and trainer.stopped[0]
    np.testing.assert_allclose(history["lr"], lrs, rtol=1e-12)


def test_plateau_reduces_lr_after_lr_step_epochs_without_improvement():
    # lr=0: the loss never changes, so after the first epoch it never improves.
    X, Y = _classification_data(n=16)
    member = MemberConfig(seed=1, lr=0.0, lr_schedule="plateau", lr_decay=0.5, lr_step=3, max_epochs=11)
    trainer = StackedTrainer(_stack("sgd", batch_size=16), [member]).fit(X, Y, [MemberData(np.arange(16))])
    # Epoch 1 sets the best; epochs 2-4 do not improve -> cut; 5-7 -> cut; 8-10 -> cut.
    np.testing.assert_array_equal(trainer.plateau_factor, [0.125])
    assert trainer.plateau_wait[0] == 1
    # (equal up to the summation order of each epoch's permutation: in float32 on a GPU)
    np.testing.assert_allclose(trainer.history(0)["train_loss"], trainer.history(0)["train_loss"][0],
                               rtol=1e-14 if ON_CPU else 1e-5)


# ------------------------------------------------------------------------------------------------
# validation metrics against sklearn


@pytest.mark.parametrize("targets", ["one_hot", "real"])
@pytest.mark.parametrize("name", sorted(METRICS))
def test_metric_matches_sklearn(name, targets):
    gen = torch.Generator().manual_seed(7)
    m, n, k = 3, 12, 3
    prediction = _rand(gen, m, n, k)
    if targets == "one_hot":
        target = F.one_hot(torch.randint(k, (m, n), generator=gen), k).to(DEVICE, DTYPE)
    else:
        target = _randn(gen, m, n, k)
        target[2, :, 1] = 0.75  # a constant output: sklearn's force_finite convention
        prediction[2, :, 1] = 0.75
        target[1, :, 2] = -0.5
    weight = 0.5 + _rand(gen, m, n)
    weight[0, 3] = 0.0
    lengths = [12, 9, 7]  # members 1 and 2 padded
    for i, length in enumerate(lengths):
        weight[i, length:] = 0.0
    scores = METRICS[name](prediction, target, weight)
    assert scores.shape == (m,)
    for i, length in enumerate(lengths):
        expected = METRIC_REFERENCES[name](target[i, :length].cpu().numpy(),
                                           prediction[i, :length].cpu().numpy(),
                                           weight[i, :length].cpu().numpy())
        np.testing.assert_allclose(scores[i].item(), expected, rtol=1e-12, atol=1e-12)


# ------------------------------------------------------------------------------------------------
# pickling and continuing


def _continuation_setup():
    X, Y = _classification_data(n=50, seed=8)
    config = _stack("adam", batch_size=8, batch_norm=True)
    members = [MemberConfig(seed=1, lr=0.05, dropout=0.2, noise_std=0.1, lr_schedule="cosine", max_epochs=5),
               MemberConfig(seed=2, lr=0.02, lr_schedule="plateau", lr_decay=0.5, lr_step=1, tol=0.05,
                            weight_decay=1e-3, max_epochs=5)]
    data = [MemberData(np.arange(35), val_rows=np.arange(35, 50)), MemberData(np.arange(5, 47))]
    return X, Y, config, members, data


def test_continuing_with_n_epochs_equals_training_at_once():
    X, Y, config, members, data = _continuation_setup()
    at_once = StackedTrainer(config, members).fit(X, Y, data)
    in_parts = StackedTrainer(config, members).fit(X, Y, data, n_epochs=3)
    assert in_parts.epochs_done.tolist() == [3, 3]
    in_parts.fit(X, Y, data, n_epochs=2)
    assert at_once.epochs_done.tolist() == in_parts.epochs_done.tolist() == [5, 5]
    for i in range(2):
        _assert_same_member(at_once, i, in_parts, i, atol=0)


def test_pickle_round_trip_predicts_and_trains_the_same():
    X, Y, config, members, data = _continuation_setup()
    trainer = StackedTrainer(config, members).fit(X, Y, data, n_epochs=3)
    restored = pickle.loads(pickle.dumps(trainer))
    # Pickles hold CPU tensors, so that a model trained on a GPU loads anywhere; back to the device.
    assert restored.config.device == CPU and restored.params.device == CPU
    restored.to(DEVICE)
    torch.testing.assert_close(restored.predict(X), trainer.predict(X), rtol=0, atol=0)
    torch.testing.assert_close(restored.predict_raw(X), trainer.predict_raw(X), rtol=0, atol=0)
    trainer.fit(X, Y, data)
    restored.fit(X, Y, data)
    for i in range(2):
        _assert_same_member(trainer, i, restored, i, atol=0)


@pytest.mark.cpu_only  # MKL's CPU GEMM kernels, bit for bit (a GPU: test_fusion_invariance, 1e-3)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_fusion_invariance_is_bitwise_for_blas_sized_layers(dtype):
    # Layers large enough for MKL's GEMM kernels: they round differently for differently aligned
    # outputs, so every member's row of the flat matrices must start on the same boundary alone
    # and in a stack (``ROW_ALIGNMENT``). This network's 13 829 parameters are not a multiple of it.
    gen = torch.Generator().manual_seed(3)
    n, d, k = 300, 40, 5
    X = torch.randn(n, d, generator=gen, dtype=dtype)
    Y = F.one_hot(torch.randint(0, k, (n,), generator=gen), k).to(dtype)
    arch = Architecture(d, (128, 64), k, "relu", False, "softmax_log_loss")
    assert arch.n_parameters() % ROW_ALIGNMENT != 0
    config = StackConfig(arch, "adam", 32, "accuracy", dtype, CPU)
    members = [MemberConfig(seed=i, lr=lr, weight_decay=1e-3, l1=1e-4, max_epochs=3)
               for i, lr in enumerate([0.05, 0.2, 0.01, 0.3, 0.1])]
    data = [MemberData(np.arange(n)[i % 3 :: 1 + i % 2]) for i in range(len(members))]
    fused = StackedTrainer(config, members).fit(X, Y, data)
    for i, member in enumerate(members):
        alone = StackedTrainer(config, [member]).fit(X, Y, [data[i]])
        assert torch.equal(alone.params[0], fused.params[i])


def test_predict_raw_chunks_and_empty_input(monkeypatch):
    X, Y, config, members, data = _continuation_setup()
    trainer = StackedTrainer(config, members).fit(X, Y, data, n_epochs=2)
    whole = trainer.predict_raw(X)
    monkeypatch.setattr("sknn_tune._engine.trainer.PREDICT_CHUNK_ROWS", {"cpu": 7, "other": 7})
    assert_same_training(trainer.predict_raw(X), whole, cpu_atol=1e-15)
    assert trainer.predict_raw(X[:0]).shape == (2, 0, 3)


@pytest.mark.cpu_only  # the CPU's vectorised and scalar rounding; chaotic training blows up 1e-3
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_fusion_invariance_is_bitwise_even_when_training_is_chaotic(dtype):
    # Near-divergent learning rates amplify any rounding difference between a member trained
    # alone and the same member in a stack (a vectorised pow or cos rounds differently from the
    # scalar path numpy/torch use for a single element). Members must match bit for bit.
    gen = torch.Generator().manual_seed(3)
    n, d, k = 157, 13, 4
    X = torch.randn(n, d, generator=gen, dtype=dtype)
    Y = F.one_hot(torch.randint(0, k, (n,), generator=gen), k).to(dtype)
    arch = Architecture(d, (16,), k, "tanh", False, "softmax_log_loss")
    config = StackConfig(arch, "adam", 8, "accuracy", dtype, CPU)
    # Ten members: torch and numpy vectorise only from 8 elements on.
    schedules = ["cosine", "exponential", "constant", "inverse", "step"] * 2
    members = [MemberConfig(seed=5, lr=lr, weight_decay=6e-3, max_epochs=8, lr_schedule=kind,
                            lr_decay=0.9, lr_step=3)
               for lr, kind in zip([0.9, 0.5, 0.3, 0.1, 0.7, 0.05, 1.5, 0.2, 0.6, 1.1], schedules)]
    rows = [np.arange(n)[i % 3 :: 1 + i % 2] for i in range(len(members))]
    data = [MemberData(r) for r in rows]
    fused = StackedTrainer(config, members).fit(X, Y, data)
    for i, member in enumerate(members):
        alone = StackedTrainer(config, [member]).fit(X, Y, [data[i]])
        assert torch.equal(alone.params[0], fused.params[i])
        np.testing.assert_array_equal(alone.history(0)["lr"], fused.history(i)["lr"])


# ------------------------------------------------------------------------------------------------
# the static-buffer step (what a CUDA graph captures), run eagerly on this run's device


@pytest.mark.parametrize("batch_norm", [False, True], ids=["plain", "bn"])
@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_static_buffer_step_equals_the_eager_step(optimizer, batch_norm, monkeypatch):
    # Dropout, input noise, sample weights (some zero: skipped batches), early stopping, folds of
    # different lengths (padded last batches), batch norm: the general-form step on copied-in
    # buffers, masked on the device, trains every member to the eager step's bits.
    X, Y = _classification_data()
    config = _stack(optimizer, batch_norm=batch_norm)
    members, data = _fusion_members(), _fusion_data(len(X))
    monkeypatch.setattr(trainer_module, "CPU_COLUMN_UPDATE", True)
    monkeypatch.setattr(trainer_module, "_step_mode", lambda device: "eager")  # no graph on a GPU
    eager = StackedTrainer(config, members).fit(X, Y, data)
    monkeypatch.setattr(trainer_module, "_step_mode", lambda device: "static")
    static = StackedTrainer(config, members)
    static.fit(X, Y, data, n_epochs=3)
    static.fit(X, Y, data)  # a second plan: new static buffers, same numbers
    assert len(set(static.epochs_done)) >= 3 and static.stopped.any()
    for i in range(len(members)):
        _assert_same_member(static, i, eager, i, atol=0)
    # Against today's CPU default, the grouped fused kernels (a GPU: the column rules again):
    # equal to float rounding.
    monkeypatch.setattr(trainer_module, "CPU_COLUMN_UPDATE", False)
    monkeypatch.setattr(trainer_module, "_step_mode", lambda device: "eager")
    grouped = StackedTrainer(config, members).fit(X, Y, data)
    np.testing.assert_array_equal(static.epochs_done, grouped.epochs_done)
    torch.testing.assert_close(static.params, grouped.params, **_reference_tolerance(1e-7, 1e-8))


@pytest.mark.parametrize("failing", [
    # (on a GPU the side stream is made: the warm-up fails only where CUDA calls fail)
    pytest.param("warm_up", marks=pytest.mark.cpu_only), "capture"])
def test_failed_graph_capture_warns_once_and_trains_eagerly(failing, monkeypatch):
    # warm_up: on a CPU stack every CUDA call fails, the first step cannot make its side stream;
    # capture: the warm-up runs, the capture of the second step raises.
    X, Y = _classification_data()
    config = _stack("adam", batch_norm=True)
    members, data = _fusion_members(), _fusion_data(len(X))
    monkeypatch.setattr(trainer_module, "_step_mode", lambda device: "static")
    static = StackedTrainer(config, members).fit(X, Y, data)
    monkeypatch.setattr(trainer_module.CUDA_GRAPHS, "failure", None)
    monkeypatch.setattr(trainer_module, "_step_mode", lambda device: "graph")
    if failing == "capture":
        def capture(device, body):
            raise RuntimeError("operation not permitted when stream is capturing")

        monkeypatch.setattr(trainer_module, "_side_stream", lambda device: None)
        monkeypatch.setattr(trainer_module, "_run_on_stream", lambda stream, device, body: body())
        monkeypatch.setattr(trainer_module, "_capture", capture)
    with pytest.warns(UserWarning, match="CUDA graph capture of the training step failed") as caught:
        graphed = StackedTrainer(config, members).fit(X, Y, data)
        StackedTrainer(config, members).fit(X, Y, data)
    assert len([w for w in caught if "CUDA graph" in str(w.message)]) == 1
    assert trainer_module.CUDA_GRAPHS.failure is not None
    for i in range(len(members)):
        _assert_same_member(graphed, i, static, i, atol=0)


class _ReplayedBody:
    """A stand-in for a CUDA graph on the CPU: capturing records the step, replaying runs it."""

    captures = 0

    def __init__(self, device, body):
        type(self).captures += 1
        self.replay = body


@pytest.mark.parametrize("optimizer", ["adamw", "momentum"])
def test_graph_step_warms_up_captures_once_and_replays(optimizer, monkeypatch):
    # The graph's control flow with the CUDA calls replaced: step 1 warms up (runs), step 2 is
    # captured (runs nothing) and replayed, every later step of every epoch replays the step
    # captured in the first epoch. Replaying a stale epoch's update must still see each epoch's
    # lr (schedules), decay and active members: the same bits as the static step run eagerly.
    X, Y = _classification_data()
    config = _stack(optimizer, batch_norm=True)
    members, data = _fusion_members(), _fusion_data(len(X))
    monkeypatch.setattr(trainer_module, "_step_mode", lambda device: "static")
    static = StackedTrainer(config, members).fit(X, Y, data)
    monkeypatch.setattr(trainer_module, "_step_mode", lambda device: "graph")
    monkeypatch.setattr(trainer_module, "_side_stream", lambda device: None)
    monkeypatch.setattr(trainer_module, "_run_on_stream", lambda stream, device, body: body())
    monkeypatch.setattr(trainer_module, "_capture", _ReplayedBody)
    monkeypatch.setattr(_ReplayedBody, "captures", 0)
    graphed = StackedTrainer(config, members)
    graphed.fit(X, Y, data, n_epochs=2)
    graphed.fit(X, Y, data)  # a second fit: a new plan, captured again
    assert _ReplayedBody.captures == 2
    for i in range(len(members)):
        _assert_same_member(graphed, i, static, i, atol=0)


def test_cuda_graph_switch(monkeypatch):
    monkeypatch.setattr(trainer_module.CUDA_GRAPHS, "failure", None)
    monkeypatch.delenv(trainer_module.CUDA_GRAPHS_VARIABLE, raising=False)
    cuda = torch.device("cuda")
    assert trainer_module._step_mode(cuda) == "graph"
    assert trainer_module._step_mode(CPU) == "eager"
    monkeypatch.setenv(trainer_module.CUDA_GRAPHS_VARIABLE, "0")
    assert trainer_module._step_mode(cuda) == "eager"
    monkeypatch.setenv(trainer_module.CUDA_GRAPHS_VARIABLE, "1")
    monkeypatch.setattr(trainer_module.CUDA_GRAPHS, "failure", "RuntimeError: earlier")
    assert trainer_module._step_mode(cuda) == "eager"
    # A GPU always takes the column update; the CPU what was measured faster.
    assert trainer_module._column_update(cuda)
    assert trainer_module._column_update(CPU) == trainer_module.CPU_COLUMN_UPDATE


@pytest.mark.parametrize("optimizer", ["adam", "rmsprop"])
def test_bias_before_a_batch_norm_stays_put_and_float32_trainings_agree(optimizer, monkeypatch):
    # A batch norm subtracts the batch mean, so the bias before it has no gradient: an exact 0,
    # not the rounding noise that Adam / RMSprop (dividing by sqrt(v)) would turn into full steps.
    # Two float32 trainings that round differently (grouped and column update forms) then agree
    # to float32 precision, as fused and sequential GPU trainings must.
    X, Y = _classification_data()
    arch = Architecture(4, (6, 5), 3, "tanh", True, "softmax_log_loss")
    config = StackConfig(arch, optimizer, 8, "accuracy", torch.float32, DEVICE)
    members = [MemberConfig(seed=s, lr=0.05, max_epochs=6) for s in (1, 2)]
    data = [MemberData(np.arange(48), None, np.arange(48, 64), None)] * 2
    X32, Y32 = X.to(torch.float32), Y.to(torch.float32)
    trained = {}
    for form in (False, True):
        monkeypatch.setattr(trainer_module, "CPU_COLUMN_UPDATE", form)
        trainer = StackedTrainer(config, members)
        start = trainer.params.clone()
        trained[form] = trainer.fit(X32, Y32, data)
        views, initial = (split_flat(t, arch.parameter_layout()) for t in (trainer.params, start))
        for layer in range(2):
            torch.testing.assert_close(views["bias", layer], initial["bias", layer], rtol=0, atol=0)
        assert not torch.equal(views["bias", 2], initial["bias", 2])  # the output layer's trains
    torch.testing.assert_close(trained[False].params, trained[True].params, rtol=0, atol=1e-4)


def test_every_per_member_field_is_a_trainer_attribute():
    # The trainer's properties read and write its containers' fields in place; a field added to
    # a container without its property would be reachable only through the container.
    from dataclasses import fields

    from sknn_tune._engine.state import MemberProgress, MemberTensors

    for part, structure in (("tensors", MemberTensors), ("progress", MemberProgress)):
        for field in fields(structure):
            prop = vars(StackedTrainer).get(field.name)
            assert isinstance(prop, property), field.name
            assert prop.__doc__ == f"``{part}.{field.name}``, read and written in place."


@pytest.mark.parametrize("batch_penalty", [False, True])
def test_lbfgs_matches_scipy_on_the_autograd_objective(batch_penalty):
    # Each member is minimised alone: the same scipy call on an objective built from
    # torch.nn.functional (autograd), from the same start, ends at the same weights.
    import scipy.optimize

    X, Y = _classification_data(n=40, seed=3)
    config = replace(_stack("lbfgs"), batch_penalty=batch_penalty)
    members = [MemberConfig(seed=s, weight_decay=wd, max_epochs=25, tol=1e-9)
               for s, wd in ((1, 0.0), (2, 0.05))]
    weight = np.linspace(0.5, 1.5, 30)
    data = [MemberData(np.arange(30)), MemberData(np.arange(5, 35), train_weight=weight)]
    trainer = StackedTrainer(config, members)
    start = trainer.params.clone()
    trainer.fit(X, Y, data)
    arch = config.architecture
    n = arch.n_parameters()
    for i, (member, d) in enumerate(zip(members, data)):
        w = torch.ones(30, dtype=DTYPE) if d.train_weight is None else torch.tensor(d.train_weight)
        x, y = X[d.train_rows].cpu(), Y[d.train_rows].cpu()
        l2 = member.weight_decay / (float(w.sum()) if batch_penalty else 1.0)

        def objective(theta, x=x, y=y, w=w, l2=l2):
            flat = torch.zeros(1, arch.row_width(), dtype=DTYPE)
            flat[0, :n] = torch.from_numpy(theta)
            flat.requires_grad_(True)
            views = split_flat(flat, arch.parameter_layout())
            out = _reference_forward(arch, views, 0, x, [], None)
            loss = (w * LOSS_REFERENCES[arch.loss](out, y)).sum() / w.sum()
            loss = loss + 0.5 * l2 * sum((views["weight", k] ** 2).sum() for k in range(3))
            (grad,) = torch.autograd.grad(loss, flat)
            return float(loss.detach()), grad[0, :n].numpy()

        reference = scipy.optimize.minimize(
            objective, start[i, :n].cpu().numpy(), method="L-BFGS-B", jac=True,
            options={"maxiter": 25, "maxfun": member.max_fun, "gtol": 1e-9})
        np.testing.assert_allclose(trainer.params[i, :n].cpu().numpy(), reference.x, rtol=1e-7,
                                   atol=1e-9)
        assert trainer.epochs_done[i] == trainer.lbfgs_results[i].n_iter == reference.nit
        np.testing.assert_allclose(trainer.history(i)["train_loss"][-1], reference.fun, rtol=1e-10)
