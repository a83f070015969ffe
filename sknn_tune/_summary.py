"""Keras-style model summary."""

import itertools

import pandas as pd

from ._engine.network import Architecture


def summary_table(arch: Architecture):
    """One row per layer: name, output shape, trainable and non-trainable parameter counts."""
    rows = []
    sizes = arch.layer_sizes
    rows.append(("input", f"(None, {sizes[0]})", 0, 0))
    for layer, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
        last = layer == len(sizes) - 2
        rows.append((f"linear_{layer}" if not last else "output", f"(None, {fan_out})",
                     fan_in * fan_out + fan_out, 0))
        if not last:
            if arch.batch_norm:
                # gamma and beta train; the running mean and variance do not.
                rows.append((f"batch_norm_{layer}", f"(None, {fan_out})", 2 * fan_out, 2 * fan_out))
            rows.append((f"{arch.activation}_{layer}", f"(None, {fan_out})", 0, 0))
    return pd.DataFrame(rows, columns=["layer", "output_shape", "trainable", "non_trainable"])


def model_summary(arch: Architecture, title):
    table = summary_table(arch)
    body = table.rename(columns={"output_shape": "output shape", "trainable": "params"})
    body["params"] = body["params"] + body.pop("non_trainable")
    trainable, frozen = int(table["trainable"].sum()), int(table["non_trainable"].sum())
    text = body.to_string(index=False)
    width = max(len(line) for line in text.splitlines())
    rule = "=" * width
    return "\n".join([
        f'Model: "{title}"', rule, text, rule,
        f"Total params: {trainable + frozen:,}",
        f"Trainable params: {trainable:,}",
        f"Non-trainable params: {frozen:,}",
    ])
