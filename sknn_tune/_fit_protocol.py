"""The fit protocol: what an estimator's ``fit`` hands the engine, and who trains it.

An estimator's ``fit`` is three steps:

1. ``plan = estimator.plan_fit(X, y, sample_weight)`` validates the parameters and the inputs,
   encodes the targets, draws the seed and the validation split, and returns a :class:`FitPlan`:
   everything the engine needs to train this one fit, and nothing of scikit-learn;
2. the plan is trained: a :class:`~sknn_tune._engine.StackedTrainer` of one member;
3. ``estimator.adopt(plan, trainer)`` takes the trained member as the fitted model.

Code that trains many fits at once (the fused layer, :mod:`sknn_tune._fused`) splits step 1 in
two: ``inputs = estimator.fit_inputs(X, y, sample_weight, rows=train)`` validates and encodes
once what a fit of rows ``train`` of ``X`` sees (:class:`FitInputs`; ``X`` is kept whole, by
reference), and ``estimator.plan_from(inputs)`` plans one candidate's fit from them, as many
times as there are candidates. It trains the plans' members together in stacks, and then lets
scikit-learn call ``fit`` as usual while :func:`providing` trained members: within that context,
step 2 asks the provider for the plan's trainer first and trains only when it has none. The
estimator knows nothing of who provides, nor why.
"""

import contextlib
import contextvars
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from ._engine import MemberConfig, MemberData, StackConfig

_provider = contextvars.ContextVar("sknn_tune_trained_provider", default=None)

# The float dtypes an estimator's fit takes its input in (others are converted to the first).
INPUT_DTYPES = (np.float64, np.float32)


class IndexedRows:
    """Rows ``rows`` of a validated 2-D array ``base`` (None: all of them), not copied.

    What a fused search hands scikit-learn's own fits and scorers for a bare estimator, in place
    of ``X``: indexing it by rows, as scikit-learn splits a fold (``X[indices, ...]``), gives the
    rows of ``base`` those positions pick, by reference; an estimator of this package fits and
    predicts on them from one shared copy of ``base`` on the device (``tensors(dtype, device)``)
    and skips validating ``base`` again (an estimator's own validation returned it). Anything
    else reads it as the array it stands for: ``np.asarray`` copies the rows out.
    """

    def __init__(self, base, rows=None, tensors=None):
        self.base, self.rows = base, rows
        self._tensors = tensors  # (dtype, device) -> base on the device; shared by the views

    @property
    def shape(self):
        return (self.base.shape[0] if self.rows is None else len(self.rows), *self.base.shape[1:])

    @property
    def dtype(self):
        return self.base.dtype

    @property
    def ndim(self):
        return self.base.ndim

    def __len__(self):
        return self.shape[0]

    def __getitem__(self, key):
        if isinstance(key, tuple) and len(key) == 2 and key[1] is Ellipsis:
            key = key[0]  # scikit-learn's _safe_indexing: X[indices, ...]
        picks = key if isinstance(key, slice) else np.asarray(key)
        if isinstance(picks, slice) or (picks.ndim == 1 and picks.dtype.kind in "iub"):
            positions = np.arange(len(self))[picks]
            return IndexedRows(self.base, positions if self.rows is None else self.rows[positions],
                               self._tensors)
        return np.asarray(self)[key]

    def __array__(self, dtype=None, copy=None):
        rows = self.base if self.rows is None else self.base[self.rows]
        return rows if dtype is None else rows.astype(dtype, copy=False)

    def tensor(self, dtype, device):
        """These rows on ``device`` in ``dtype``, gathered from the shared copy of ``base``."""
        whole = self._tensors(dtype, device)
        if self.rows is None:
            return whole
        return whole.index_select(0, torch.as_tensor(self.rows, device=whole.device))


@dataclass
class FitInputs:
    """A fit's validated inputs, for planning any number of candidates on them.

    ``X`` is the validated input, whole; the fit sees its rows ``rows`` (None: all of them), in
    that order. ``y``, ``Y``, ``codes`` and ``sample_weight`` are the fit's own, one entry per
    row it sees: the validated targets, their encoding for the engine ``(n, k)``, the class codes
    (None for regression and multilabel) and the weights. ``attributes`` are the fitted
    attributes validating set (``n_features_in_``, ``classes_``, ...), which a plan sets.
    """

    X: object
    rows: np.ndarray | None
    y: np.ndarray
    Y: np.ndarray
    codes: np.ndarray | None
    sample_weight: np.ndarray
    attributes: dict
    all_rows: np.ndarray = field(init=False, repr=False)

    def __post_init__(self):
        # Every row of the fit, shared by the plans without a validation split.
        self.all_rows = np.arange(len(self.Y))

    @property
    def n_rows(self):
        """The rows the fit sees."""
        return len(self.Y)


@dataclass
class FitPlan:
    """One fit, translated for the engine: what to train, on which rows of which arrays.

    The fit's input is ``X`` (the validated input) or, when ``rows`` is not None, its rows
    ``rows``: the fused layer plans on the whole ``X`` by reference rather than on a copy of a
    fold. ``Y`` holds the encoded targets of the fit's input rows (an explicit validation set
    appended), and ``data`` picks the training and validation rows among them, with their weights
    (positions in the fit's input, not in ``X``: :meth:`input_rows` translates). ``monitor``,
    when the estimator scores its validation rows with a ``scoring`` scorer, is
    ``monitor(trainer, member) -> float``: that member's score with its live weights, which the
    engine calls after each epoch. ``params`` are the estimator's parameters
    (``get_params(deep=False)``), which with the data identify the fit.
    """

    params: dict
    config: StackConfig
    member: MemberConfig
    data: MemberData
    X: object
    Y: np.ndarray
    monitor: Callable | None = None
    rows: np.ndarray | None = None

    def input_rows(self, positions):
        """The rows of ``X`` at ``positions`` of the fit's input."""
        return positions if self.rows is None else self.rows[positions]

    def input_X(self, positions):
        """The fit's input rows at ``positions`` (a copy of those rows of ``X``)."""
        return self.X[self.input_rows(positions)]


def provided_trainer(plan):
    """The trained single-member trainer the active provider holds for ``plan``, or None."""
    provider = _provider.get()
    return None if provider is None else provider(plan)


@contextlib.contextmanager
def providing(provider):
    """Within this context, ``fit`` adopts ``provider(plan)`` (a trained single-member
    :class:`~sknn_tune._engine.StackedTrainer`) instead of training, unless it returns None."""
    token = _provider.set(provider)
    try:
        yield provider
    finally:
        _provider.reset(token)
