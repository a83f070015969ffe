"""The fit protocol: what an estimator's ``fit`` hands the engine, and who trains it.

An estimator's ``fit`` is three steps:

1. ``plan = estimator.plan_fit(X, y, sample_weight)`` validates the parameters and the inputs,
   encodes the targets, draws the seed and the validation split, and returns a :class:`FitPlan`:
   everything the engine needs to train this one fit, and nothing of scikit-learn;
2. the plan is trained: a :class:`~sknn_tune._engine.StackedTrainer` of one member;
3. ``estimator.adopt(plan, trainer)`` takes the trained member as the fitted model.

Code that trains many fits at once (the fused searches, fused cross-validation) plans each of them
with ``plan_fit``, trains their members together in stacks, and then lets scikit-learn call ``fit``
as usual while :func:`providing` trained members: within that context, step 2 asks the provider for
the plan's trainer first and trains only when it has none. The estimator knows nothing of who
provides, nor why.
"""

import contextlib
import contextvars
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ._engine import MemberConfig, MemberData, StackConfig

_provider = contextvars.ContextVar("sknn_tune_trained_provider", default=None)
_validated = contextvars.ContextVar("sknn_tune_validated_inputs", default=None)


@dataclass
class FitPlan:
    """One fit, translated for the engine: what to train, on which rows of which arrays.

    ``X`` / ``Y`` are the validated inputs and the encoded targets (an explicit validation set
    appended); ``data`` picks the training and validation rows and their weights. ``monitor``,
    when the estimator scores its validation rows with a ``scoring`` scorer, is
    ``monitor(trainer, member) -> float``: that member's score with its live weights, which the
    engine calls after each epoch. ``params`` are the estimator's parameters
    (``get_params(deep=False)``), which with the data identify the fit.
    """

    params: dict
    config: StackConfig
    member: MemberConfig
    data: MemberData
    X: np.ndarray
    Y: np.ndarray
    monitor: Callable | None = None


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


@contextlib.contextmanager
def reusing_validation(store):
    """Within this context, ``plan_fit`` of a fresh estimator remembers in ``store`` (a dict) what
    validating and encoding its inputs gave, and a later ``plan_fit`` of a fresh estimator of the
    same class on the very same ``X``, ``y`` and ``sample_weight`` objects reuses it.

    For code that plans many candidates on the same fold (the fused searches): their inputs are
    its own copies, unchanged while it plans. ``store`` keeps the input objects alive, so that
    their ids are not reused.
    """
    token = _validated.set(store)
    try:
        yield store
    finally:
        _validated.reset(token)


def validation_store():
    """The ``store`` of the active :func:`reusing_validation`, or None."""
    return _validated.get()
