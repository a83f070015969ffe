"""Trained members waiting for scikit-learn's fits, and the keys that find them.

The fused layer trains every fit of a batch together, then lets scikit-learn's own code fit and
score each one as usual; each ``fit`` plans itself and asks, through the fit protocol
(:mod:`sknn_tune._fit_protocol`), for a trained member of the same fit. Two plans are the same
fit when they have the same parameters and train on the same numbers in the same places: the
same input rows, targets, training and validation rows and weights.

The input is recognised without hashing it: a fused plan refers to the search's own ``X`` by
reference (its rows ``plan.rows``), where scikit-learn's fit gets a copy of those rows. Its
:func:`fit_key` reads the shape, dtype and ``SAMPLED_ROWS`` evenly spaced rows of the input,
and the whole of the (small) targets, rows and weights; a fit whose key matches is then compared
byte for byte with the planned rows, which the registry holds by reference (a comparison streams
through memory once; a hash of all of ``X`` per plan is what planning must not pay).
"""

import contextlib
import hashlib

import numpy as np
import scipy.sparse as sp

from .._fit_protocol import providing

__all__ = ["Registry", "array_digest", "fit_key", "resume_key", "same_bytes", "same_rows", "serving"]

SAMPLED_ROWS = 64


def array_digest(*arrays):
    """blake2b of the arrays' shapes, dtypes and bytes (None counts as a value)."""
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


def input_fingerprint(X, rows=None):
    """The shape, dtype and ``SAMPLED_ROWS`` evenly spaced rows of ``X[rows]`` (all of ``X``
    when ``rows`` is None), read without copying the rest."""
    n = X.shape[0] if rows is None else len(rows)
    positions = np.arange(0, n, max(1, n // SAMPLED_ROWS))
    picked = positions if rows is None else np.asarray(rows)[positions]
    sample = X[picked]
    if sp.issparse(sample):
        sample = sample.toarray()
    kind = X.format if sp.issparse(X) else "dense"
    return f"{(n, *X.shape[1:])}{X.dtype}{kind}".encode() + array_digest(sample)


def _params_text(params):
    # A RandomState's repr holds its address, which differs between clones: use its state.
    return repr(sorted((name, _state_digest(value) if isinstance(value, np.random.RandomState)
                        else value) for name, value in params.items())).encode()


def fit_key(plan, fingerprint=None, data_digest=None):
    """What identifies the fit ``plan`` (a :class:`~sknn_tune._fit_protocol.FitPlan`): its
    parameters, :func:`input_fingerprint` of its input (``fingerprint``, when computed already),
    its targets and its rows and weights (``data_digest``: :func:`data_digest`)."""
    digest = hashlib.blake2b(digest_size=20)
    digest.update(_params_text(plan.params))
    digest.update(input_fingerprint(plan.X, plan.rows) if fingerprint is None else fingerprint)
    digest.update(data_digest_of(plan) if data_digest is None else data_digest)
    return digest.hexdigest()


def data_digest_of(plan, digest=array_digest):
    """The digest of a plan's targets, rows and weights: of each array's ``digest`` (a planner
    passes one that remembers the arrays its plans share)."""
    data = plan.data
    return b"".join(digest(array) for array in (plan.Y, data.train_rows, data.train_weight,
                                                   data.val_rows, data.val_weight))


def resume_key(plan, params, fingerprint, seeded):
    """Where successive halving finds ``plan``'s member again in a later round: its ``params``
    without the resource, its input and targets; with its rows and seed when ``seeded`` (a fixed
    ``random_state``: the later round must draw the same), else any rows and seed will do."""
    digest = hashlib.blake2b(digest_size=20)
    digest.update(_params_text(params))
    digest.update(fingerprint)
    digest.update(array_digest(plan.Y))
    if seeded:
        data = plan.data
        digest.update(array_digest(data.train_rows, data.train_weight, data.val_rows,
                                   data.val_weight))
        digest.update(str(plan.member.seed).encode())
    return digest.hexdigest()


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


def same_rows(a, X, rows, chunk_bytes=2**24):
    """Whether ``a`` holds the same bytes as ``X[rows]`` (all of ``X`` where ``rows`` is None),
    gathered ``chunk_bytes`` at a time rather than copied whole."""
    n = X.shape[0] if rows is None else len(rows)
    if a.shape[0] != n or a.shape[1:] != X.shape[1:] or sp.issparse(a) != sp.issparse(X):
        return False
    if rows is None and a is X:
        return True
    row_bytes = max(1, a.nbytes // max(n, 1)) if not sp.issparse(a) else 8 * max(1, a.shape[1])
    step = max(1, chunk_bytes // row_bytes)
    for start in range(0, n, step):
        part = slice(start, start + step)
        expected = X[part] if rows is None else X[np.asarray(rows)[part]]
        if not same_bytes(a[part], expected):
            return False
    return True


class Registry(dict):
    """Trained members by :func:`fit_key` (a member, or a list of copies of it, one per search
    candidate that sets the same parameters), found for the plan of scikit-learn's fit."""

    def __init__(self):
        super().__init__()
        self.inputs = {}  # fit key -> (X, rows) of the planned input, by reference

    def register(self, key, plan, value):
        """Hold ``value`` under ``key``, the :func:`fit_key` of ``plan``; a fit finds it only
        if its input equals ``plan``'s byte for byte."""
        self[key] = value
        self.inputs[key] = (plan.X, plan.rows)

    def key_of(self, plan):
        """The fit key of ``plan`` among those registered, or None."""
        key = fit_key(plan)
        if key not in self:
            return None
        X, rows = self.inputs[key]
        if plan.X is X and _same_positions(plan.rows, rows):  # the planned rows, by reference
            return key
        mine = plan.X if plan.rows is None else plan.X[plan.rows]
        return key if same_rows(mine, X, rows) else None

    def take(self, key):
        """The trained member registered under ``key`` (removed from the registry), or None;
        each call takes one of a list of copies."""
        model = self.pop(key, None)
        if isinstance(model, list):
            model, *rest = model
            if rest:
                self[key] = rest
                return model
        self.inputs.pop(key, None)
        return model

    def peek(self, key):
        """The member ``take`` would give, left registered."""
        entry = self.get(key)
        return entry[0] if isinstance(entry, list) else entry

    def discard(self, key):
        """Forget ``key`` and every copy under it."""
        self.pop(key, None)
        self.inputs.pop(key, None)

    def clear(self):
        super().clear()
        self.inputs.clear()


@contextlib.contextmanager
def serving(registry, keep=False):
    """A context in which ``fit`` adopts the member ``registry`` holds for the fit it plans.
    ``keep`` leaves the members registered (for fits that only predict, before those that keep)."""

    def provide(plan):
        if not registry:
            return None
        key = registry.key_of(plan)
        if key is None:
            return None
        return registry.peek(key) if keep else registry.take(key)

    with providing(provide):
        yield registry


def _same_positions(a, b):
    """Whether two row selections (None: every row) pick the same rows."""
    if a is None or b is None:
        return a is b
    return a is b or np.array_equal(a, b)


def _state_digest(random_state):
    kind, keys, *rest = random_state.get_state()
    return f"RandomState({kind}, {hashlib.blake2b(keys.tobytes()).hexdigest()}, {rest})"
