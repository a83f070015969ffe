"""Fits that a fused search has already trained, waiting for scikit-learn to ask for them.

The fused search trains every candidate x fold together, then lets scikit-learn's own search code
fit and score each one as usual. An estimator's ``fit`` first looks here: when the same parameters
and the same training data were trained already, it adopts that member instead of training again.
The registry is context-local and only filled inside a fused search's ``fit``.
"""

import contextlib
import contextvars
import hashlib
from dataclasses import dataclass

import numpy as np

from ._engine import MemberConfig, MemberData, StackConfig

_registry = contextvars.ContextVar("sknn_tune_pretrained", default=None)


@dataclass
class FitPlan:
    """One fit, translated for the engine: what to train, on which rows of which arrays."""

    config: StackConfig
    member: MemberConfig
    data: MemberData
    X: np.ndarray
    Y: np.ndarray
    key: str | None  # identifies the parameters and the training data (None: not needed)


def fit_key(params, X, Y, sample_weight):
    """A digest of the estimator's parameters and its (validated) training arrays.

    The arrays enter through row sums and a weighted row sum, which change with any change of
    rows, values or column order, and cost one pass over ``X`` instead of hashing its bytes.
    """
    digest = hashlib.blake2b(digest_size=20)
    # A RandomState's repr holds its address, which differs between clones: use its state.
    params = {name: _state_digest(value) if isinstance(value, np.random.RandomState) else value
              for name, value in params.items()}
    digest.update(repr(sorted(params.items())).encode())
    column_weights = 1.0 + np.arange(X.shape[1]) / max(1, X.shape[1])
    for array in (X.sum(axis=1), (X * column_weights).sum(axis=1), Y, sample_weight):
        array = np.ascontiguousarray(array)
        digest.update(f"{array.shape}{array.dtype}".encode())
        digest.update(array.tobytes())
    digest.update(f"{X.shape}{X.dtype}".encode())
    return digest.hexdigest()


def _state_digest(random_state):
    kind, keys, *rest = random_state.get_state()
    return f"RandomState({kind}, {hashlib.blake2b(keys.tobytes()).hexdigest()}, {rest})"


def serving_active():
    """Whether a fused search is serving pretrained fits here (only then are fit keys needed)."""
    return _registry.get() is not None


def pretrained_model(key):
    """The trained model registered under ``key`` (removed from the registry), or None.

    A key may hold a list of models (one per search candidate that sets the same parameters):
    each call takes one of them.
    """
    registry = _registry.get()
    if registry is None:
        return None
    model = registry.pop(key, None)
    if isinstance(model, list):
        model, *rest = model
        if rest:
            registry[key] = rest
    return model


@contextlib.contextmanager
def serving(registry):
    """Make ``registry`` (a dict key -> trained single-member model, or a list of them) visible
    to ``fit``."""
    token = _registry.set(registry)
    try:
        yield registry
    finally:
        _registry.reset(token)
