"""The stacked MLP: M same-shaped networks whose parameters live in one ``(M, P)`` matrix.

Layer ``l`` has weights ``(M, in, out)`` and bias ``(M, 1, out)`` (views into the flat matrix), so a
layer of all members is one ``torch.baddbmm``. Hidden layers are Linear -> [BatchNorm] -> activation
-> [dropout]. Members may differ in their activation (``Architecture.activation`` a tuple, one
per member): each run of members with the same one is one call of its kernel on their rows. The
backward pass is written out (a few ``bmm``s per layer): on CPU autograd's per-op overhead costs
more than the arithmetic, and the same step is what a CUDA graph replays.
"""

import itertools
import math
from dataclasses import dataclass

import torch

from . import rng
from .activations import ACTIVATIONS
from .initializers import AUTO_INIT, BIAS_INITIALIZERS, INITIALIZERS
from .losses import LOSSES
from .sparse_rows import SparseBatch, first_layer

BN_EPS = 1e-5
BN_MOMENTUM = 0.1
# Every member's row of the flat matrix starts on a 64-byte boundary (16 float32 or 8 float64
# elements; 16 covers both): MKL's GEMM rounds differently for differently aligned outputs, and a
# member must train to the same bits alone (row at offset 0) or as the i-th row of a stack.
ROW_ALIGNMENT = 16


@dataclass(frozen=True)
class Architecture:
    """The shape of one member's network; members of a stack share it."""

    n_features: int
    hidden_layer_sizes: tuple
    n_outputs: int
    activation: str | tuple  # one for every member, or a tuple of each member's (a mixed stack)
    batch_norm: bool
    loss: str

    def activations(self, m):
        """The activation of each of ``m`` members."""
        return per_member(self.activation, m, "activations")

    @property
    def layer_sizes(self):
        return (self.n_features, *self.hidden_layer_sizes, self.n_outputs)

    def parameter_layout(self):
        """``[(name, layer, shape)]`` in flat order; ``shape`` excludes the member dimension."""
        layout = []
        sizes = self.layer_sizes
        for layer, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
            layout.append(("weight", layer, (fan_in, fan_out)))
            layout.append(("bias", layer, (1, fan_out)))
            if self.batch_norm and layer < len(sizes) - 2:
                layout.append(("bn_weight", layer, (1, fan_out)))
                layout.append(("bn_bias", layer, (1, fan_out)))
        return layout

    def n_parameters(self):
        """Trainable parameters of one member."""
        return sum(math.prod(shape) for _, _, shape in self.parameter_layout())

    def row_width(self):
        """Columns ``P`` of the flat ``(M, P)`` matrices: the parameters, then zero padding up to
        a multiple of ``ROW_ALIGNMENT`` (the padding has zero gradient and never changes)."""
        return -(-self.n_parameters() // ROW_ALIGNMENT) * ROW_ALIGNMENT

    def decay_mask(self, dtype, device):
        """``(1, P)``: 1 where weight decay / L1 apply (the weight matrices), 0 elsewhere."""
        mask = torch.zeros(1, self.row_width(), dtype=dtype, device=device)
        views = split_flat(mask, self.parameter_layout())
        for name, layer, _ in self.parameter_layout():
            if name == "weight":
                views[name, layer].fill_(1.0)
        return mask


def per_member(value, m, what):
    """A stack's setting for each of its ``m`` members: ``value`` for all of them, or a tuple
    of each member's (a mixed stack)."""
    if isinstance(value, str):
        return (value,) * m
    if len(value) != m:
        raise ValueError(f"{len(value)} {what} for {m} members")
    return value


def runs_of(names, registry):
    """``[(registry[name], slice of members)]``: the runs of consecutive members with the same
    ``names[i]`` (one run when they all have it)."""
    runs, start = [], 0
    for i in range(1, len(names) + 1):
        if i == len(names) or names[i] != names[start]:
            runs.append((registry[names[start]], slice(start, i)))
            start = i
    return runs


def activation_runs(arch, m):
    """``[(Activation, slice of members)]`` of a stack of ``m`` (:func:`runs_of`)."""
    return runs_of(arch.activations(m), ACTIVATIONS)


def _per_run(runs, function, *tensors):
    """``function(activation, *tensors)`` of each run's rows of the ``(M, ...)`` tensors, joined
    (the whole tensors at once when there is one run)."""
    if len(runs) == 1:
        return function(runs[0][0], *tensors)
    return torch.cat([function(act, *(t[rows] for t in tensors)) for act, rows in runs])


def split_flat(flat, layout):
    """Views of ``flat`` (M, P) as ``{(name, layer): (M, *shape)}``."""
    views, offset = {}, 0
    for name, layer, shape in layout:
        size = math.prod(shape)
        views[name, layer] = flat[:, offset : offset + size].view(flat.shape[0], *shape)
        offset += size
    return views


def initial_parameters(arch, seeds, inits, dtype, device):
    """Draw every member's initial flat parameters from its own seed and initialiser name."""
    m = len(seeds)
    flat = torch.zeros(m, arch.row_width(), dtype=dtype, device=device)
    views = split_flat(flat, arch.parameter_layout())
    activations = arch.activations(m)
    resolved = [AUTO_INIT[ACTIVATIONS[act].init_family] if init == "auto" else init
                for init, act in zip(inits, activations)]
    for name, layer, shape in arch.parameter_layout():
        if name == "bn_weight":
            views[name, layer].fill_(1.0)
        if name == "weight":
            registry, keys = INITIALIZERS, rng.member_keys(seeds, rng.INIT, layer)
        elif name == "bias":
            # a stream of its own, so that drawing biases leaves the weights' draws unchanged
            registry, keys = BIAS_INITIALIZERS, rng.member_keys(seeds, rng.INIT, layer, 1)
        else:
            continue
        fan_in, fan_out = arch.layer_sizes[layer], arch.layer_sizes[layer + 1]

        def draw(kind, keys=keys, shape=shape):
            return (rng.uniform if kind == "uniform" else rng.normal)(keys, shape, dtype)

        for init, act in set(zip(resolved, activations)):
            if init not in registry:
                continue
            rows = [i for i in range(m) if (resolved[i], activations[i]) == (init, act)]
            values = registry[init](draw, fan_in, fan_out, act)
            views[name, layer][rows] = values[rows]
    return flat


def n_bn_buffers(arch):
    return 2 * sum(arch.hidden_layer_sizes) if arch.batch_norm else 0


def initial_buffers(arch, m, dtype, device):
    """BatchNorm running statistics: per hidden layer a running mean (zeros) and variance (ones)."""
    parts = []
    for size in arch.hidden_layer_sizes if arch.batch_norm else ():
        parts += [torch.zeros(m, size), torch.ones(m, size)]
    if not parts:
        return torch.zeros(m, 0, dtype=dtype, device=device)
    return torch.cat(parts, dim=1).to(dtype=dtype, device=device)


def split_buffers(buffers, arch):
    views, offset = [], 0
    for size in arch.hidden_layer_sizes if arch.batch_norm else ():
        mean = buffers[:, offset : offset + size].view(-1, 1, size)
        var = buffers[:, offset + size : offset + 2 * size].view(-1, 1, size)
        views.append((mean, var))
        offset += 2 * size
    return views


def forward_eval(arch, flat, buffers, x):
    """Raw outputs ``(M, n, k)`` for inputs ``x`` ``(M, n, d)`` (or ``(1, n, d)`` broadcast)."""
    p = split_flat(flat, arch.parameter_layout())
    stats = split_buffers(buffers, arch)
    runs = activation_runs(arch, flat.shape[0])
    h = x.expand(flat.shape[0], -1, -1) if x.shape[0] != flat.shape[0] else x
    n_hidden = len(arch.hidden_layer_sizes)
    for layer in range(n_hidden):
        z = first_layer(h, p["weight", layer], p["bias", layer]) if layer == 0 else \
            torch.baddbmm(p["bias", layer], h, p["weight", layer])
        if arch.batch_norm:
            mean, var = stats[layer]
            z = (z - mean) * torch.rsqrt(var + BN_EPS) * p["bn_weight", layer] + p["bn_bias", layer]
        h = _per_run(runs, _forward, z)
    return first_layer(h, p["weight", n_hidden], p["bias", n_hidden]) if n_hidden == 0 else \
        torch.baddbmm(p["bias", n_hidden], h, p["weight", n_hidden])


def _forward(activation, z):
    return activation.forward(z)


def _backward(activation, g, z, a):
    return activation.backward(g, z, a)


class TrainStep:
    """Forward, loss and hand-written backward for one batch of every member.

    A step is bound to the trainer's parameter matrix ``params`` and gradient matrix ``grad``
    (both ``(M, P)``): the per-layer views are made once, and every gradient is written straight
    into its block of ``grad`` (no concatenation, no per-step allocation of the flat gradient).
    ``__call__`` returns ``(grad, loss_sum, new_buffers)``: the gradient of each member's
    weighted mean loss ``sum_i w_i l_i / sum_i w_i``, the weighted loss sum (for the epoch's
    average) and updated BatchNorm running statistics. ``valid`` marks real rows (the last batch
    of an epoch is padded): BatchNorm statistics use real rows only.

    ``traceable`` (True by default) computes each gradient block of a stack (a strided view of
    ``grad``: rows of ``P`` columns) into a contiguous temporary and copies it in; False writes
    with ``out=`` into the view. The copy is the same bits and faster: products written ``out=``
    into a strided view ran at one thread's speed (a 16-candidate x 3-fold search of 20-64-32-4:
    1.54 -> 1.30 s on 2 threads, 2.01 -> 1.96 s on one), and ``torch.compile`` cannot trace
    ``out=`` into strided views. A contiguous block (every block of a one-member stack: a plain
    fit) is written ``out=`` either way: no temporary, no copy (a 40-128-64-5 fit at batch 64,
    one thread, the two interleaved: 465 -> 452 µs per step).
    """

    traceable = True

    def __init__(self, arch, params, grad):
        self.arch = arch
        self.layout = arch.parameter_layout()
        self.runs = activation_runs(arch, params.shape[0])
        self.loss = LOSSES[arch.loss]
        self.grad = grad
        self.p = split_flat(params, self.layout)
        self.g = split_flat(grad, self.layout)
        n_hidden = len(arch.hidden_layer_sizes)
        self.weights_t = [self.p["weight", layer].transpose(1, 2) for layer in range(n_hidden + 1)]
        # A batch norm subtracts the batch mean: the bias before it has no gradient. Its block is
        # an exact 0, never written: the rounding noise of summing the gradient would become
        # full-size steps under Adam's and RMSprop's division by sqrt(v) (float32 on a GPU).
        for layer in range(n_hidden) if arch.batch_norm else ():
            self.g["bias", layer].zero_()

    def __call__(self, buffers, x, target, weight, valid, dropout, keys):
        """One batch.

        x (M, B, d), target (M, B, k), weight (M, B, 1) or None when every weight is 1, valid
        (M, B, 1) or None when every row is real, dropout a :class:`rng.Dropout` or None, keys
        (L, M) each hidden layer's per-member dropout keys for this step (:func:`rng.layer_keys`).
        """
        arch, p, grads = self.arch, self.p, self.g
        stats = split_buffers(buffers, arch)
        n_hidden = len(arch.hidden_layer_sizes)
        n_valid = None if valid is None else valid.sum(1, keepdim=True).clamp_min(1.0)
        new_stats = []
        inputs, pre_acts, outputs, masks, bn_cache = [], [], [], [], []
        h = x
        for layer in range(n_hidden):
            inputs.append(h)
            z = first_layer(h, p["weight", layer], p["bias", layer]) if layer == 0 else \
                torch.baddbmm(p["bias", layer], h, p["weight", layer])
            if arch.batch_norm:
                z, cache, running = self._batch_norm(z, p, layer, stats[layer], valid, n_valid)
                bn_cache.append(cache)
                new_stats += running
            a = _per_run(self.runs, _forward, z)
            pre_acts.append(z)
            outputs.append(a)
            if dropout is not None:
                # Keep a unit when its 24-bit uniform draw u satisfies u >= p, compared on the
                # integer bits (no float conversion on the hot path); kept units scale by
                # 1 / (1 - p), and the same factors scale the gradient back.
                mask = rng.keep_mask(keys[layer], a.shape[1] * a.shape[2], dropout.threshold,
                                     a.dtype).view(a.shape).mul_(dropout.scale)
                masks.append(mask)
                a = a * mask
            h = a
        inputs.append(h)
        out = first_layer(h, p["weight", n_hidden], p["bias", n_hidden]) if n_hidden == 0 else \
            torch.baddbmm(p["bias", n_hidden], h, p["weight", n_hidden])

        loss, grad_out = self.loss.value_and_grad(out, target)
        if weight is None:  # every row real, every weight 1: a plain mean
            loss_sum = loss.sum(1)
            g = grad_out.mul_(1.0 / out.shape[1])
        else:
            total_weight = weight.sum(1, keepdim=True)  # (M, 1, 1)
            scale = weight / total_weight.clamp_min(torch.finfo(out.dtype).tiny)
            loss_sum = (loss[..., None] * weight).sum((1, 2))
            g = grad_out.mul_(scale)

        for layer in range(n_hidden, -1, -1):
            if isinstance(inputs[layer], SparseBatch):  # sparse input rows: scattered back
                inputs[layer].weight_grad(g, out=grads["weight", layer])
            else:
                self._write(grads["weight", layer], torch.bmm, inputs[layer].transpose(1, 2), g)
            if not (arch.batch_norm and layer < n_hidden):  # (a batch norm's: 0, see __init__)
                self._write(grads["bias", layer], torch.sum, g, 1, keepdim=True)
            if layer == 0:
                break
            g = torch.bmm(g, self.weights_t[layer])
            if dropout is not None:
                g = g * masks[layer - 1]
            g = _per_run(self.runs, _backward, g, pre_acts[layer - 1], outputs[layer - 1])
            if arch.batch_norm:
                g = self._batch_norm_backward(g, p, layer - 1, bn_cache[layer - 1], grads, valid,
                                              self._write)
        new_buffers = torch.cat([s.reshape(out.shape[0], -1) for s in new_stats], dim=1) \
            if new_stats else buffers
        return self.grad, loss_sum, new_buffers

    @staticmethod
    def _batch_norm(z, p, layer, running, valid, n_valid):
        if valid is None:
            mean = z.mean(1, keepdim=True)
            centered = z - mean
            var = (centered * centered).mean(1, keepdim=True)
            count = z.shape[1]
        else:
            mean = (z * valid).sum(1, keepdim=True) / n_valid
            centered = z - mean
            var = (centered * centered * valid).sum(1, keepdim=True) / n_valid
            count = n_valid
        inv_std = torch.rsqrt(var + BN_EPS)
        normed = centered * inv_std
        out = normed * p["bn_weight", layer] + p["bn_bias", layer]
        # Running variance is unbiased, as in torch.nn.BatchNorm1d.
        # (A batch of one real row has no unbiased variance: both branches then use the biased one.)
        unbiased = var * (count / (max(count - 1.0, 1.0) if valid is None else (count - 1.0).clamp_min(1.0)))
        running_mean, running_var = running
        new_mean = (1.0 - BN_MOMENTUM) * running_mean + BN_MOMENTUM * mean
        new_var = (1.0 - BN_MOMENTUM) * running_var + BN_MOMENTUM * unbiased
        return out, (normed, inv_std), [new_mean, new_var]

    def _write(self, out, op, *args, **kwargs):
        """``op(*args, **kwargs)`` written into the gradient block ``out`` (see the class doc)."""
        if self.traceable and not out.is_contiguous():
            out.copy_(op(*args, **kwargs))
        else:
            op(*args, **kwargs, out=out)

    @staticmethod
    def _batch_norm_backward(g, p, layer, cache, grads, valid, write):
        normed, inv_std = cache
        write(grads["bn_weight", layer], torch.sum, g * normed, 1, keepdim=True)
        write(grads["bn_bias", layer], torch.sum, g, 1, keepdim=True)
        g_normed = g * p["bn_weight", layer]
        if valid is None:
            mean_g = g_normed.mean(1, keepdim=True)
            mean_gn = (g_normed * normed).mean(1, keepdim=True)
            return inv_std * (g_normed - mean_g - normed * mean_gn)
        n_valid = valid.sum(1, keepdim=True).clamp_min(1.0)
        mean_g = (g_normed * valid).sum(1, keepdim=True) / n_valid
        mean_gn = (g_normed * normed * valid).sum(1, keepdim=True) / n_valid
        return inv_std * (g_normed - mean_g - normed * mean_gn) * valid
