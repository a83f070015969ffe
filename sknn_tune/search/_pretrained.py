"""Fits a fused search has already trained, waiting for scikit-learn to ask for them.

The fused search trains every candidate x fold together, then lets scikit-learn's own search code
fit and score each one as usual. While it does, :func:`serving` provides the trained members to
the estimators' ``fit`` (see :mod:`sknn_tune._fit_protocol`): a fit whose plan has the parameters
and the training data of a trained member adopts that member instead of training again.
"""

import hashlib

import numpy as np
import scipy.sparse as sp

from .._fit_protocol import providing


def array_digest(*arrays):
    """blake2b of the arrays' shapes, dtypes and bytes (None counts as a value): one pass over
    the data, at GB/s."""
    digest = hashlib.blake2b(digest_size=20)
    for array in arrays:
        if array is None:
            digest.update(b"None")
            continue
        if sp.issparse(array):  # its shape, format and CSR arrays
            array = array.tocsr()
            digest.update(f"sparse{array.shape}".encode())
            digest.update(array_digest(array.data, array.indices, array.indptr))
            continue
        array = np.ascontiguousarray(array)
        digest.update(f"{array.shape}{array.dtype}".encode())
        digest.update(memoryview(array).cast("B"))
    return digest.digest()


def fit_key(params, X, Y, data, data_digest=None):
    """A digest of an estimator's parameters and its validated arrays: the bytes of ``X`` and
    ``Y`` and of the rows and weights of ``data`` (a :class:`~sknn_tune._engine.MemberData`).

    Equal keys mean equal fits: the same parameters trained on the same numbers in the same
    places. ``data_digest``, when given, is ``array_digest(X, Y)`` computed already (a plan's
    several keys hash its data once).
    """
    digest = hashlib.blake2b(digest_size=20)
    # A RandomState's repr holds its address, which differs between clones: use its state.
    params = {name: _state_digest(value) if isinstance(value, np.random.RandomState) else value
              for name, value in params.items()}
    digest.update(repr(sorted(params.items())).encode())
    digest.update(array_digest(X, Y) if data_digest is None else data_digest)
    digest.update(array_digest(data.train_rows, data.train_weight, data.val_rows,
                               data.val_weight))
    return digest.hexdigest()


def plan_key(plan, data_digest=None):
    """The :func:`fit_key` of a :class:`~sknn_tune._fit_protocol.FitPlan`."""
    return fit_key(plan.params, plan.X, plan.Y, plan.data, data_digest)


def _state_digest(random_state):
    kind, keys, *rest = random_state.get_state()
    return f"RandomState({kind}, {hashlib.blake2b(keys.tobytes()).hexdigest()}, {rest})"


def _take(registry, key):
    """The trained member registered under ``key`` (removed from the registry), or None.

    A key may hold a list of members (one per search candidate that sets the same parameters):
    each call takes one of them.
    """
    model = registry.pop(key, None)
    if isinstance(model, list):
        model, *rest = model
        if rest:
            registry[key] = rest
    return model


def serving(registry, keep=False):
    """A context in which ``fit`` adopts the members of ``registry`` (a dict fit key -> trained
    single-member trainer, or a list of them) whose plans it makes. ``keep`` leaves them
    registered (for fits that only predict, before the fits that keep them)."""
    def provide(plan):
        if not registry:
            return None
        if keep:
            entry = registry.get(plan_key(plan))
            return entry[0] if isinstance(entry, list) else entry
        return _take(registry, plan_key(plan))

    return providing(provide)
