"""Validation score registry, computed on the device for every member at once.

``metric(prediction, target, weight)`` takes ``(M, n, k)`` predictions (after the loss's link) and
targets and ``(M, n)`` weights (zero on padding) and returns ``(M,)`` scores, higher is better; they
agree with ``sklearn.metrics.accuracy_score`` (on class labels; on label indicator matrices for
'subset_accuracy') and ``r2_score`` with ``sample_weight``.
"""

import torch


def _weighted_mean(hit, weight):
    hit = hit.to(weight.dtype)
    return (hit * weight).sum(1) / weight.sum(1).clamp_min(torch.finfo(weight.dtype).tiny)


def _accuracy(prediction, target, weight):
    return _weighted_mean(prediction.argmax(-1) == target.argmax(-1), weight)


def _subset_accuracy(prediction, target, weight):
    # Multilabel: a row counts when every label is right, a label predicted when its probability
    # exceeds 0.5 (scikit-learn's MLP and accuracy_score on indicator matrices).
    return _weighted_mean(((prediction > 0.5) == (target > 0.5)).all(-1), weight)


def _r2(prediction, target, weight):
    w = weight[..., None]
    total = w.sum(1, keepdim=True).clamp_min(torch.finfo(weight.dtype).tiny)
    mean = (w * target).sum(1, keepdim=True) / total
    residual = (w * (target - prediction) ** 2).sum(1)
    spread = (w * (target - mean) ** 2).sum(1)
    # sklearn's convention for a constant target: 1 for a perfect fit, else 0.
    per_output = torch.where(spread > 0, 1.0 - residual / spread.clamp_min(1e-300),
                             (residual == 0).to(weight.dtype))
    return per_output.mean(-1)


METRICS = {"accuracy": _accuracy, "subset_accuracy": _subset_accuracy, "r2": _r2}
