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
    places. ``data_digest``, when given, stands for ``X`` and ``Y``: ``array_digest(X, Y)``
    computed already (a plan's several keys hash its data once), or what :func:`sampled_key`
    reads of them.
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


SAMPLED_ROWS = 64


def sampled_key(plan):
    """A :func:`plan_key` that reads only ``SAMPLED_ROWS`` evenly spaced rows of ``plan.X``
    (and its shape and dtype): equal for every fit with equal parameters, targets and rows on the
    same ``X``, and cheap; equal keys do not prove equal ``X`` (:class:`Registry` checks)."""
    X = plan.X
    if sp.issparse(X):  # its row pointers, and every step-th stored value and its column
        step = max(1, X.nnz // (SAMPLED_ROWS * 16))
        sample = (X.indptr, X.data[::step], X.indices[::step])
    else:
        sample = (X[::max(1, X.shape[0] // SAMPLED_ROWS)],)
    header = f"{X.shape}{X.dtype}{X.format if sp.issparse(X) else 'dense'}".encode()
    return fit_key(plan.params, None, None, plan.data, header + array_digest(*sample, plan.Y))


def same_bytes(a, b):
    """Whether two validated inputs hold the same numbers bit for bit (dense or CSR / CSC)."""
    if sp.issparse(a) or sp.issparse(b):
        if not (sp.issparse(a) and sp.issparse(b)) or a.shape != b.shape:
            return False
        a, b = a.tocsr(), b.tocsr()
        return all(same_bytes(x, y) for x, y in ((a.data, b.data), (a.indices, b.indices),
                                                 (a.indptr, b.indptr)))
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    # Compared as raw bytes (-0.0 and 0.0, or two NaNs, are different inputs here), 8 at a time.
    a, b = (np.ascontiguousarray(x).reshape(-1).view(np.uint8) for x in (a, b))
    if a.size % 8 == 0:
        a, b = a.view(np.uint64), b.view(np.uint64)
    return np.array_equal(a, b)


class Registry(dict):
    """Trained members by fit key (a member, or a list of them), found for a fit's plan without
    hashing all of its ``X``: :meth:`key_of` looks up the :func:`sampled_key` and compares ``X``
    with the planned one byte for byte (a memory-speed pass, where hashing reads it at about
    1 GB/s, once per scikit-learn fit)."""

    def __init__(self):
        super().__init__()
        self.planned_inputs = {}  # sampled key -> [(fit key, the planned X)]

    def register(self, key, plan, value):
        """Hold ``value`` under ``key``, the :func:`plan_key` of ``plan``."""
        self[key] = value
        candidates = self.planned_inputs.setdefault(sampled_key(plan), [])
        if all(known != key for known, _ in candidates):
            candidates.append((key, plan.X))

    def key_of(self, plan):
        """The fit key of ``plan`` among those registered, or None."""
        for key, X in self.planned_inputs.get(sampled_key(plan), ()):
            if same_bytes(plan.X, X):
                return key
        return None

    def clear(self):
        super().clear()
        self.planned_inputs.clear()


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
    """A context in which ``fit`` adopts the members of ``registry`` (a :class:`Registry`: fit
    key -> trained single-member trainer, or a list of them) whose plans it makes. ``keep`` leaves
    them registered (for fits that only predict, before the fits that keep them)."""
    def provide(plan):
        if not registry:
            return None
        key = registry.key_of(plan)
        if keep:
            entry = registry.get(key)
            return entry[0] if isinstance(entry, list) else entry
        return _take(registry, key)

    return providing(provide)
