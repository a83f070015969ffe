"""What the classifier and the regressor share: hyperparameters, validation, the call into the engine.

The estimators validate and translate; :mod:`sknn_tune._engine` trains tensors. Subclasses add only what
differs: how targets are encoded, which losses exist and the validation score.
"""

import contextlib
import functools
import warnings
from abc import ABCMeta, abstractmethod
from dataclasses import replace
from numbers import Integral, Real

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import get_scorer, get_scorer_names
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_consistent_length, check_is_fitted, validate_data
from tqdm.auto import tqdm

from ._defaults import AUTO_BATCH_SIZE
from ._engine import (
    ACTIVATIONS,
    INITIALIZERS,
    OPTIMIZERS,
    SCHEDULES,
    Architecture,
    MemberConfig,
    MemberData,
    StackConfig,
    StackedTrainer,
)
from ._engine.device import compute_dtype, continuing_placement, resolve_device, usable_device
from ._engine.network import split_flat
from ._engine.optimizers import UPDATE_RULES
from ._engine.sparse_rows import as_rows
from ._engine.trainer import LBFGS
from ._fit_protocol import INPUT_DTYPES, FitInputs, FitPlan, IndexedRows, provided_trainer
from ._sklearn_compat import Interval, StrOptions, _check_sample_weight, _fit_context
from ._summary import model_summary
from .exceptions import DivergenceError

FULL_BATCH_ROUNDING = 16
_NEVER = 2**62  # the engine's patience for patience=None: every epoch of max_epochs trains
# Hyperparameters named in a divergence error (with those the optimizer reads): the usual causes.
_DIVERGENCE_PARAMS = ("optimizer", "lr", "lr_schedule", "batch_size", "activation", "init",
                      "batch_norm", "loss")
# scikit-learn's MLP parameter names -> ours, for users who switch by changing the import.
SKLEARN_NAMES = {
    "max_iter": "max_epochs", "alpha": "weight_decay", "learning_rate_init": "lr",
    "learning_rate": "lr_schedule", "n_iter_no_change": "patience", "solver": "optimizer",
    "beta_1": "beta1", "beta_2": "beta2", "nesterovs_momentum": "optimizer='nesterov'",
    "power_t": "lr_decay (with lr_schedule='inverse')",
}
SKLEARN_VALUES = {("activation", "logistic"): "sigmoid"}


def _not_sklearn_names(cls, names):
    """Raise a TypeError naming our parameters for any of scikit-learn's MLP names in ``names``."""
    known = [name for name in names if name in SKLEARN_NAMES]
    if known:
        hints = ", ".join(f"{name} -> {SKLEARN_NAMES[name]}" for name in known)
        raise TypeError(f"{cls.__name__} got scikit-learn's MLP parameter name(s) {known}; "
                        f"sknn_tune calls them: {hints}.")


class SortedStrOptions(StrOptions):
    """:class:`StrOptions` whose error message lists the options sorted (a set's order varies
    from one process to the next)."""

    def __str__(self):
        return f"a str among {{{', '.join(repr(o) for o in sorted(self.options))}}}"


# Parameter sets that passed validation, by _plain_parameters_key.
_VALID_PARAMETERS = {}
VALID_PARAMETERS_KEPT = 4096
# Values whose validity depends on their type and value alone (exact types: no subclass).
_PLAIN_TYPES = frozenset({type(None), bool, int, float, str, np.bool_, np.int32, np.int64,
                          np.float32, np.float64})


def _plain_parameters_key(cls, params):
    """A hashable key of ``params`` for ``cls`` when every value is a plain scalar or string,
    or a tuple or list of them; None when any is something else (a scorer, an array, ...)."""
    items = []
    for name, value in params.items():
        if type(value) in (tuple, list):
            if not all(type(v) in _PLAIN_TYPES for v in value):
                return None
            value = (type(value), tuple((type(v), v) for v in value))
        elif type(value) not in _PLAIN_TYPES:
            return None
        items.append((name, type(value), value))
    return cls, tuple(items)


def engine_batch_size(batch, n_train):
    """The stack's batch size for ``batch`` rows a step of ``n_train``: at least ``n_train``
    trains one full batch an epoch, ``n_train`` rows wide rounded up to a multiple of
    ``FULL_BATCH_ROUNDING`` (padding rows weigh nothing), so that folds of 118 and 119 rows share
    a stack and a member trains the same bits alone or in it."""
    if batch >= n_train:
        batch = min(batch, -(-n_train // FULL_BATCH_ROUNDING) * FULL_BATCH_ROUNDING)
    return int(batch)


def _draw_seed(random_state):
    """``(seed, rs)``: the member's seed, drawn first from ``random_state``, and a function that
    returns the random state after that draw (for the validation split).

    An int's seed is remembered: seeding a ``RandomState`` costs more than the rest of a small
    fit's planning, and a search plans every candidate x fold with the same int.
    """
    if isinstance(random_state, Integral) and not isinstance(random_state, bool):
        return _int_seed(int(random_state)), lambda: _after_seed(random_state)[1]
    seed, rs = _after_seed(random_state)
    return seed, lambda: rs


def _after_seed(random_state):
    rs = check_random_state(random_state)
    return int(rs.randint(np.iinfo(np.int32).max)), rs


@functools.lru_cache(maxsize=1024)
def _int_seed(value):
    return _after_seed(value)[0]


class _BaseMLP(BaseEstimator, metaclass=ABCMeta):
    """Base class for the MLP estimators. Not for direct use."""

    # scikit-learn's parameter names and values get an error that names ours (False: a class
    # with scikit-learn's own signature, sknn_tune.neural_network)
    _rejects_sklearn_names = True
    epochs_parameter = "max_epochs"  # the parameter that sets the epochs of a fit

    def __new__(cls, *args, **kwargs):
        # scikit-learn's parameter names (max_iter, alpha, ...) get an error that names ours
        # instead of Python's bare "unexpected keyword argument". (Signatures come from __init__.)
        if cls._rejects_sklearn_names:
            _not_sklearn_names(cls, kwargs)
        return super().__new__(cls)

    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [SortedStrOptions(set(ACTIVATIONS))],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "batch_norm": ["boolean"],
        "init": [SortedStrOptions({"auto", *INITIALIZERS})],
        "optimizer": [SortedStrOptions({*OPTIMIZERS, LBFGS})],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "beta1": [Interval(Real, 0, 1, closed="left")],
        "beta2": [Interval(Real, 0, 1, closed="left")],
        "rho": [Interval(Real, 0, 1, closed="left")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "l1": [Interval(Real, 0, None, closed="left")],
        "noise_std": [Interval(Real, 0, None, closed="left")],
        "lr_schedule": [SortedStrOptions(set(SCHEDULES))],
        "lr_decay": [Interval(Real, 0, None, closed="neither")],
        "lr_step": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "patience": [Interval(Integral, 1, None, closed="left"), None],
        "tol": [Interval(Real, 0, None, closed="left")],
        "scoring": [SortedStrOptions(set(get_scorer_names())), callable, None],
        "restore_best_weights": ["boolean"],
        "warm_start": ["boolean"],
        "random_state": ["random_state"],
        "device": [str, torch.device],
        "dtype": [SortedStrOptions({"float32", "float64"}), None],
        "verbose": ["verbose"],
    }

    @abstractmethod
    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        loss,
        dropout=0.0,
        batch_norm=False,
        init="auto",
        optimizer="adam",
        lr=1e-3,
        momentum=0.9,
        beta1=0.9,
        beta2=0.999,
        rho=0.99,
        weight_decay=0.0,
        l1=0.0,
        noise_std=0.0,
        lr_schedule="constant",
        lr_decay=0.1,
        lr_step=10,
        batch_size="auto",
        shuffle=True,
        max_epochs=200,
        early_stopping=False,
        validation_fraction=0.1,
        patience=10,
        tol=1e-4,
        scoring=None,
        restore_best_weights=True,
        warm_start=False,
        random_state=None,
        device="auto",
        dtype=None,
        verbose=0,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.loss = loss
        self.dropout = dropout
        self.batch_norm = batch_norm
        self.init = init
        self.optimizer = optimizer
        self.lr = lr
        self.momentum = momentum
        self.beta1 = beta1
        self.beta2 = beta2
        self.rho = rho
        self.weight_decay = weight_decay
        self.l1 = l1
        self.noise_std = noise_std
        self.lr_schedule = lr_schedule
        self.lr_decay = lr_decay
        self.lr_step = lr_step
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.max_epochs = max_epochs
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.tol = tol
        self.scoring = scoring
        self.restore_best_weights = restore_best_weights
        self.warm_start = warm_start
        self.random_state = random_state
        self.device = device
        self.dtype = dtype
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True  # densified a batch of rows at a time
        return tags

    def set_params(self, **params):
        """Set the parameters of this estimator (see :meth:`sklearn.base.BaseEstimator.set_params`).

        scikit-learn's MLP parameter names (``max_iter``, ``alpha``, ...) get an error that
        names ours.
        """
        if self._rejects_sklearn_names:
            _not_sklearn_names(type(self), params)
        return super().set_params(**params)

    def _validate_params(self):
        # A search validates the same few parameter sets thousands of times (planning, then
        # scikit-learn's fit of each fold), at a few tenths of a millisecond each.
        key = _plain_parameters_key(type(self), self.get_params(deep=False))
        if key is not None and key in _VALID_PARAMETERS:
            return
        for (name, value), ours in SKLEARN_VALUES.items() if self._rejects_sklearn_names else ():
            if getattr(self, name, None) == value:
                raise ValueError(f"{name}={value!r} is scikit-learn's name; sknn_tune calls it "
                                 f"{name}={ours!r}.")
        super()._validate_params()
        if key is not None:
            if len(_VALID_PARAMETERS) >= VALID_PARAMETERS_KEPT:
                _VALID_PARAMETERS.clear()
            _VALID_PARAMETERS[key] = True

    @classmethod
    def _get_param_names(cls):
        # scikit-learn reads __init__'s signature on every get_params, set_params and clone
        # (a few tenths of a millisecond, about ten times per fit of a search): seconds over a
        # search of thousands of fits. The names change only with __init__ itself.
        return list(_init_param_names(cls, cls.__init__))

    # ------------------------------------------------------------------------------------------
    # what subclasses provide

    @abstractmethod
    def _encode_targets(self, y, reset, classes=None):
        """Validate ``y`` and return ``(Y, codes)``: the float target matrix ``(n, k)`` for the
        engine and the class codes (None for regression and multilabel). ``reset`` learns the encoding
        (``classes_`` / ``n_outputs_``; from ``classes`` when given, as ``partial_fit`` does);
        otherwise ``y`` must fit the one learnt."""

    @abstractmethod
    def _engine_loss(self):
        """The engine's name for ``self.loss``."""

    @abstractmethod
    def _decode_targets(self, Y):
        """The targets, as ``y`` was given, back from the engine's target matrix ``Y``."""

    _metric = None  # the engine's validation score, a key of METRICS ('accuracy', 'r2', ...)
    _y_numeric = False

    def _check_warm_targets(self, y):
        """Raise if a warm fit's targets ``y`` cannot continue the fitted model."""

    def _target_weight(self, codes):
        """Per-row weight factor that depends on the target (``class_weight``); None: none."""
        return None

    # ------------------------------------------------------------------------------------------
    # fitting

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None, *, X_val=None, y_val=None):
        """Train the network.

        Parameters
        ----------
{fit_parameters}
        Returns
        -------
        self : object
            The fitted estimator.
        """
        return self._fit(X, y, sample_weight, X_val, y_val, incremental=False)

    def _check_partial_fit(self):
        """Raise where ``partial_fit`` cannot train, as scikit-learn's MLP does."""
        if self.early_stopping:
            # An epoch at a time has no held-out split to stop on.
            raise ValueError("partial_fit does not support early_stopping=True")

    def _fit(self, X, y, sample_weight, X_val, y_val, incremental, classes=None):
        continuing = (self.warm_start or incremental) and hasattr(self, "model_")
        if isinstance(X, IndexedRows) and (continuing or incremental or X_val is not None):
            X = np.asarray(X)  # rows by reference serve fresh fits only
        # Input that fails validation leaves the estimator as it was: unfitted, or still
        # predicting with its previous model. partial_fit's first call has just set classes_ from
        # `classes`; that is not fitted state yet.
        before = {name: value for name, value in vars(self).items()
                  if _is_fitted_attribute(name) and not (classes is not None and name == "classes_")}
        try:
            inputs = self._fit_inputs(X, y, sample_weight, incremental=incremental,
                                      classes=classes, continuing=continuing)
            plan = self._plan(inputs, X_val, y_val, incremental, continuing)
            if continuing and plan.config.architecture != self.model_.config.architecture:
                raise ValueError(
                    "warm_start / partial_fit cannot change the network's structure: it was "
                    f"{self.model_.config.architecture}, the parameters now give "
                    f"{plan.config.architecture}. Fit a fresh estimator instead.")
        except Exception:
            self._restore_fitted(before)
            raise
        epochs_before = 0
        if continuing:
            # A copy: a fit that diverges leaves the previous model as it was.
            trainer = self.model_.continued_as(
                replace(plan.member, seed=int(self.model_.seeds[0])), plan.config.device,
                plan.config.dtype)
            self._continue(trainer, plan, incremental)
            epochs_before = int(trainer.epochs_done[0])
        else:
            trained = provided_trainer(plan)
            if trained is not None:
                return self.adopt(plan, trained)
            trainer = StackedTrainer(plan.config, [plan.member])
        X_t = (X.tensor(plan.config.dtype, plan.config.device) if isinstance(X, IndexedRows)
               else as_rows(plan.X, plan.config.dtype, plan.config.device))
        Y_t = as_rows(plan.Y, plan.config.dtype, plan.config.device)
        n_epochs = 1 if incremental else (plan.member.max_epochs if continuing else None)
        monitor = plan.monitor
        with self._progress(n_epochs or plan.member.max_epochs) as on_epoch:
            trainer.fit(X_t, Y_t, [plan.data], n_epochs=n_epochs, on_epoch=on_epoch,
                        monitor=None if monitor is None else
                        lambda trainer, members: [monitor(trainer, i) for i in members])
        try:
            return self._adopt(trainer, epochs_before, incremental)
        except DivergenceError:
            self._restore_fitted(before)  # never holding the diverged weights
            raise

    def _continue(self, trainer, plan, incremental):
        """Prepare ``trainer``, a copy of the fitted model, to continue as ``plan`` says."""
        # Changed hyperparameters take effect now, as in scikit-learn: the member's own already,
        # the optimizer and batch size here.
        trainer.reconfigure(plan.config)
        trainer.reset_stopping()
        if not incremental:
            trainer.restart_schedule()

    @contextlib.contextmanager
    def _progress(self, n_epochs):
        """``on_epoch(trainer)`` that reports a fit's epochs (a tqdm bar with ``verbose``)."""
        with tqdm(total=n_epochs, disable=not self.verbose, unit="epoch",
                  desc=type(self).__name__) as bar:
            yield lambda trainer: _report_epoch(bar, trainer)

    def _restore_fitted(self, before):
        """Put back the fitted attributes ``before`` held (none: unfitted)."""
        for name in [name for name in vars(self) if _is_fitted_attribute(name)]:
            delattr(self, name)
        vars(self).update(before)

    # ------------------------------------------------------------------------------------------
    # the fit protocol (see sknn_tune._fit_protocol): plan a fit, adopt a trained member

    def plan_fit(self, X, y, sample_weight=None, *, X_val=None, y_val=None):
        """Validate a fit's inputs and translate them, with the hyperparameters, for the engine.

        The first step of :meth:`fit`, for callers that train many fits together (the fused
        searches): they plan each fit, train the plans' members as one stacked model, and each
        fit then adopts its member (:meth:`adopt`). Like ``fit``, it validates the parameters and sets
        the fitted attributes that describe the data (``n_features_in_``, ``classes_``, ...).

        Parameters
        ----------
{fit_parameters}
        Returns
        -------
        plan : FitPlan
            The validated arrays, the rows and weights to train and validate on, the seed and
            the engine's configuration (see :class:`sknn_tune._fit_protocol.FitPlan`).
        """
        self._validate_params()
        return self._plan(self._fit_inputs(X, y, sample_weight), X_val, y_val)

    def fit_inputs(self, X, y, sample_weight=None, *, rows=None):
        """Validate a fit's inputs once, for planning any number of candidates on them.

        For callers that plan many fits on the same data (the fused layer): ``fit_inputs``
        validates ``X`` whole, by reference, and the targets and weights of the rows ``rows``
        the fit sees; :meth:`plan_from` then plans an estimator of this class on them, as
        ``plan_fit(X[rows], y[rows], sample_weight[rows])`` would, without copying ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data, whole.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets, one per row of ``X``.
        sample_weight : array-like of shape (n_samples,), default=None
            Per-sample weights, one per row of ``X``.
        rows : array-like of int, default=None
            The rows of ``X`` the fit trains on, in order; None: all of them.

        Returns
        -------
        inputs : FitInputs
            See :class:`sknn_tune._fit_protocol.FitInputs`.
        """
        return self._fit_inputs(X, y, sample_weight, rows=rows)

    def plan_from(self, inputs):
        """:meth:`plan_fit` on the validated ``inputs`` of :meth:`fit_inputs`.

        Validates the parameters, sets the fitted attributes validating set, and plans the fit.

        Parameters
        ----------
        inputs : FitInputs
            What :meth:`fit_inputs` of an estimator of this class returned.

        Returns
        -------
        plan : FitPlan
            As :meth:`plan_fit`'s; its ``X`` is ``inputs.X`` and its ``rows`` ``inputs.rows``.
        """
        self._validate_params()
        vars(self).update(inputs.attributes)
        return self._plan(inputs)

    def adopt(self, plan, trainer):
        """Take ``trainer``, a trained single-member engine trainer of ``plan``, as this
        estimator's model, and set the fitted attributes from it.

        The last step of :meth:`fit`; after :meth:`plan_fit` on the same estimator.

        Parameters
        ----------
        plan : FitPlan
            The plan the member was trained from.
        trainer : StackedTrainer
            The trained member.

        Returns
        -------
        self : object
            The fitted estimator.

        Raises
        ------
        DivergenceError
            If the member's training diverged.
        """
        if trainer.config.architecture != plan.config.architecture or len(trainer.members) != 1:
            raise ValueError("adopt takes the single trained member of this plan's network; got "
                             f"{len(trainer.members)} member(s) of {trainer.config.architecture}.")
        return self._adopt(trainer)

    def _adopt(self, trainer, epochs_before=0, incremental=False):
        self.model_ = trainer
        self._finish_fit(epochs_before, incremental)
        return self

    def _plan(self, inputs, X_val=None, y_val=None, incremental=False, continuing=False):
        """:meth:`plan_fit` for ``fit``, ``partial_fit`` (``incremental``: no validation split)
        and warm starts (``continuing``: the fitted device and dtype), from validated inputs."""
        X, Y, codes, sample_weight = inputs.X, inputs.Y, inputs.codes, inputs.sample_weight
        target_weight = self._target_weight(codes)
        if target_weight is not None:
            sample_weight = sample_weight * target_weight
        seed, rs = _draw_seed(self.random_state)
        n = inputs.n_rows
        rows, val_rows = inputs.all_rows, None
        if X_val is not None or y_val is not None:
            if X_val is None or y_val is None:
                raise ValueError("Pass both X_val and y_val, or neither.")
            X_val, y_val = validate_data(self, X_val, y_val, reset=False,
                                         accept_sparse=["csr", "csc"],
                                         dtype=list(INPUT_DTYPES), multi_output=True,
                                         y_numeric=self._y_numeric)
            Y_val, _ = self._encode_targets(y_val, reset=False)
            val_rows = np.arange(n, n + X_val.shape[0])
            X_val = X_val.astype(X.dtype)
            X = sp.vstack([X, X_val], format="csr") if sp.issparse(X) or sp.issparse(X_val) \
                else np.concatenate([X, X_val])
            Y = np.concatenate([Y, Y_val])
            sample_weight = np.concatenate([sample_weight, np.ones(X_val.shape[0])])
        elif self.early_stopping and not incremental:
            # Stratified by the labels themselves, so that errors name them.
            labels = None if codes is None else self.classes_[codes]
            rows, val_rows = self._validation_split(n, labels, rs())
        if self.scoring is not None and val_rows is None and not incremental:
            warnings.warn(
                f"scoring={self.scoring!r} scores a validation set, and this fit has none: it is "
                "ignored. Set early_stopping=True or pass X_val and y_val.", UserWarning,
                stacklevel=4)

        # Every row: the weights themselves, shared by the plans of one inputs (no copy each).
        data = MemberData(rows, sample_weight if rows is inputs.all_rows else sample_weight[rows],
                          val_rows, None if val_rows is None else sample_weight[val_rows])
        return self._fit_plan(inputs, X, Y, data, seed, incremental, continuing)

    def _placement(self, X, continuing):
        """``(device, dtype)`` a fit on ``X`` trains on."""
        if continuing:
            return continuing_placement(self.device, self.dtype, self.model_.config.device,
                                        self.model_.config.dtype)
        device = resolve_device(self.device)
        return device, compute_dtype(device, X.dtype.name, self.dtype)

    def _fit_plan(self, inputs, X, Y, data, seed, incremental, continuing):
        """The :class:`FitPlan` of a fit on ``X`` / ``Y`` with ``data``'s rows."""
        device, dtype = self._placement(X, continuing)
        plan = FitPlan(
            params=self.get_params(deep=False),
            config=self._stack_config(X.shape[1], Y.shape[1], len(data.train_rows), device,
                                      dtype),
            member=self._member_config(seed, incremental), data=data, X=X, Y=Y,
            rows=inputs.rows)
        plan.monitor = self._scoring_monitor(plan)
        return plan

    def _fit_inputs(self, X, y, sample_weight, incremental=False, classes=None,
                    continuing=False, rows=None):
        """The :class:`FitInputs` of a fit: the inputs validated, the targets of the fit's rows
        (``rows`` of ``X``, None: all) encoded. ``continuing`` checks them against the fitted
        encoding; ``classes`` is ``partial_fit``'s."""
        if isinstance(X, IndexedRows):
            # Rows of an array validated already: its columns checked, its rows by reference;
            # the targets and weights are those rows' already.
            validate_data(self, X.base, reset=not continuing, skip_check_array=True)
            y = validate_data(self, y=y, reset=False, multi_output=True,
                              y_numeric=self._y_numeric)
            check_consistent_length(X, y)
            sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64,
                                                 ensure_non_negative=True)
            X, rows = X.base, X.rows
        else:
            X, y = validate_data(self, X, y, reset=not continuing, accept_sparse=["csr", "csc"],
                                 dtype=list(INPUT_DTYPES),
                                 multi_output=True, y_numeric=self._y_numeric)
            sample_weight = _check_sample_weight(sample_weight, X, dtype=np.float64,
                                                 ensure_non_negative=True)
            if rows is not None:  # the caller's rows of X: their targets and weights
                rows = np.asarray(rows)
                y, sample_weight = y[rows], sample_weight[rows]
        if continuing and not incremental:
            self._check_warm_targets(y)
        Y, codes = self._encode_targets(y, reset=not continuing, classes=classes)
        attributes = {name: value for name, value in vars(self).items()
                      if _is_fitted_attribute(name)}
        return FitInputs(X, rows, y, Y, codes, sample_weight, attributes)

    def _validation_split(self, n, stratify, rs):
        n_val = int(np.ceil(self.validation_fraction * n))
        if n_val < 2 or n - n_val < 1:  # scikit-learn's MLP: fewer than 2 cannot be scored
            raise ValueError(
                "The validation set is too small. Increase 'validation_fraction' or the size of "
                f"your dataset (n_samples={n}, validation_fraction={self.validation_fraction}).")
        # Stratified for classifiers, as scikit-learn's MLP: a class with a single sample raises
        # scikit-learn's error; fewer validation rows than classes split without strata, as
        # scikit-learn's MLP fits then too.
        if stratify is not None and n_val < len(np.unique(stratify)):
            stratify = None
        train, val = train_test_split(np.arange(n), test_size=self.validation_fraction,
                                      random_state=rs, stratify=stratify)
        return np.sort(train), np.sort(val)

    def _stack_config(self, n_features, n_outputs, n_train, device, dtype):
        """What this estimator shares with others trained in the same stack."""
        hidden = self.hidden_layer_sizes
        hidden = (hidden,) if isinstance(hidden, Integral) else tuple(hidden)
        if not all(isinstance(h, Integral) and not isinstance(h, bool) and h >= 1
                   for h in hidden):
            raise ValueError(f"hidden_layer_sizes must be positive integers; got {hidden!r}.")
        hidden = tuple(int(h) for h in hidden)
        batch = AUTO_BATCH_SIZE if self.batch_size == "auto" else self.batch_size
        arch = Architecture(n_features, hidden, n_outputs, self.activation, bool(self.batch_norm),
                            self._engine_loss())
        return StackConfig(arch, self.optimizer, engine_batch_size(batch, n_train), self._metric,
                           dtype, device)

    def _check_lbfgs(self):
        """L-BFGS minimises one deterministic objective over every row: raise for what it
        cannot honour."""
        if self.optimizer != LBFGS:
            return
        unsupported = {"dropout": self.dropout > 0, "noise_std": self.noise_std > 0,
                       "batch_norm": bool(self.batch_norm), "early_stopping": self.early_stopping}
        named = [name for name, used in unsupported.items() if used]
        if named:
            raise ValueError(f"optimizer='lbfgs' minimises the loss over every row at once, "
                             f"without {', '.join(named)}: turn {'it' if len(named) == 1 else 'them'} "
                             "off, or use a stochastic optimizer.")

    def _member_config(self, seed, incremental=False):
        """This estimator's own hyperparameters, one member of a stack."""
        self._check_lbfgs()
        no_momentum = self.optimizer in ("sgd",)
        return MemberConfig(
            seed=seed, lr=self.lr, momentum=0.0 if no_momentum else self.momentum,
            beta1=self.beta1, beta2=self.beta2, rho=self.rho, weight_decay=self.weight_decay,
            l1=self.l1, dropout=self.dropout, noise_std=self.noise_std, init=self.init,
            lr_schedule=self.lr_schedule, lr_decay=self.lr_decay, lr_step=self.lr_step,
            max_epochs=self.max_epochs, early_stopping=self.early_stopping and not incremental,
            patience=_NEVER if self.patience is None else self.patience, tol=self.tol,
            restore_best_weights=self.restore_best_weights, shuffle=bool(self.shuffle))

    def _scoring_monitor(self, plan):
        """``monitor(trainer, member)``: the ``scoring`` scorer on ``plan``'s validation rows,
        predicting with that member's live (still training) weights; None without ``scoring`` or
        without validation rows (the validation loss decides)."""
        val_rows = plan.data.val_rows
        if self.scoring is None or val_rows is None or len(val_rows) == 0:
            return None
        scorer = get_scorer(self.scoring)
        X_val, y_val = plan.input_X(val_rows), self._decode_targets(plan.Y[val_rows])
        weight = plan.data.val_weight
        # Weighted like the validation loss; a custom callable gets (estimator, X, y) only.
        weighted = isinstance(self.scoring, str) and weight is not None and np.any(weight != 1)
        kwargs = {"sample_weight": weight} if weighted else {}
        # The scorer calls predict / predict_proba of a fitted-looking copy whose model is the
        # live member; X_val is validated already, so the copy forgets the feature names.
        view = object.__new__(type(self))
        view.__dict__.update(self.__dict__)
        view.__dict__.pop("feature_names_in_", None)

        def monitor(trainer, member):
            view.model_ = _LiveMember(trainer, member)
            return float(scorer(view, X_val, y_val, **kwargs))

        return monitor

    def _finish_fit(self, epochs_before=0, incremental=False):
        """Set the fitted attributes from ``model_``; raise if training diverged, warn if a
        ``fit`` ran out of epochs before it converged (as scikit-learn's MLP)."""
        trainer = self.model_
        self.n_iter_ = int(trainer.epochs_done[0]) - epochs_before  # this call's, as sklearn's
        self.best_epoch_ = int(trainer.final_epoch()[0])
        if trainer.diverged[0]:
            names = [*_DIVERGENCE_PARAMS, *UPDATE_RULES[self.optimizer].hyper_names]
            params = ", ".join(f"{name}={_for_people(getattr(self, name))}" for name in names)
            raise DivergenceError(
                f"{type(self).__name__} diverged at epoch {self.n_iter_}: the training loss "
                f"became {_for_people(self.history_['train_loss'].iloc[-1])} with {params}. "
                "Lower lr, use another optimizer or lr_schedule, or standardise the inputs.",
                history=self.history_)
        if trainer.interrupted:
            warnings.warn(
                f"Training interrupted at epoch {self.n_iter_}; keeping the model trained so far "
                f"(weights of epoch {self.best_epoch_}).", RuntimeWarning, stacklevel=3)
        elif self.optimizer == LBFGS and not trainer.stopped[0]:
            result = trainer.lbfgs_results[0]
            warnings.warn(
                f"L-BFGS stopped after {self.n_iter_} iterations without converging"
                + ("" if result is None else f" ({result.message})")
                + ". Raise max_epochs, or standardise the inputs.", ConvergenceWarning,
                stacklevel=3)
        elif (not incremental and self.patience is not None and not trainer.stopped[0]
              and self.n_iter_ >= self.max_epochs):
            warnings.warn(
                f"Stochastic Optimizer: Maximum epochs ({self.max_epochs}) reached and the "
                "optimization hasn't converged yet. Raise max_epochs, or set patience=None to "
                "train a fixed number of epochs.", ConvergenceWarning, stacklevel=3)

    @property
    def history_(self):
        # Made from model_'s log when first read, not in every fit: a table per fit costs a
        # search of small networks more than their training (and stays in step with model_).
        model = self.model_
        cached = vars(self).get("_history")
        if cached is None or cached[0] is not model or cached[1] != len(model.log):
            cached = (model, len(model.log), pd.DataFrame(model.history(0)))
            self._history = cached
        return cached[2]

    # ------------------------------------------------------------------------------------------
    # prediction

    def _predict_outputs(self, X):
        """Network outputs after the loss's link, as a numpy array ``(n, k)``."""
        check_is_fitted(self)
        if isinstance(X, IndexedRows):  # rows of a validated array, from its copy on the device
            validate_data(self, X.base, reset=False, skip_check_array=True)
        else:
            X = validate_data(self, X, reset=False, accept_sparse=["csr", "csc"],
                              dtype=list(INPUT_DTYPES))
        model = self.model_
        device = usable_device(model.config.device)
        if model.params.device != device:
            model = model.to(device)  # unpickled from a GPU machine; lives on CPU now
        rows = (X.tensor(model.config.dtype, device) if isinstance(X, IndexedRows)
                else as_rows(X, model.config.dtype, device))
        # scikit-learn's convention: outputs in the input's float dtype, whatever trained them.
        out_dtype = torch.float32 if X.dtype == np.float32 else torch.float64
        return model.predict(rows, dtype=out_dtype)[0].cpu().numpy()

    def to_torch(self, dtype=None):
        """The trained network as a :class:`torch.nn.Sequential` of ordinary layers.

        ``nn.Linear``, ``nn.BatchNorm1d`` (with the running statistics), the activation's module
        and ``nn.Dropout``, in eval mode; the outputs are raw: logits for a classifier, the
        predictions for a regressor. See :func:`sknn_tune.interop.to_torch`.

        Parameters
        ----------
        dtype : torch.dtype, default=None
            The module's dtype; None keeps the model's.

        Returns
        -------
        module : torch.nn.Sequential
            The network, on the model's device.

        Examples
        --------
        >>> import torch
        >>> from sklearn.datasets import load_diabetes
        >>> from sknn_tune import MLPRegressor
        >>> X, y = load_diabetes(return_X_y=True)
        >>> reg = MLPRegressor((16,), activation="tanh", max_epochs=3, random_state=0).fit(X, y)
        >>> net = reg.to_torch()
        >>> [type(layer).__name__ for layer in net]
        ['Linear', 'Tanh', 'Linear']
        >>> out = net(torch.as_tensor(X, dtype=torch.float32)).detach().numpy().ravel()
        >>> bool(abs(out - reg.predict(X)).max() < 1e-4)  # float32, the model's dtype
        True
        """
        from .interop import to_torch  # imports skorch: only when asked for

        return to_torch(self, dtype=dtype)

    def to_skorch(self, **params):
        """The trained network as an initialized skorch net, to go on training in skorch.

        Holds :meth:`to_torch`'s module with this estimator's lr, batch size, epochs, optimizer
        (and its state) and loss; ``predict`` (and ``predict_proba``) equal this estimator's, and
        ``partial_fit`` continues training with skorch's callbacks. See
        :func:`sknn_tune.interop.to_skorch` for what carries over.

        Parameters
        ----------
        **params
            skorch parameters that replace or add to the translated ones (``callbacks``,
            ``max_epochs``, ``verbose``, ...).

        Returns
        -------
        net : skorch.NeuralNetClassifier or skorch.NeuralNetRegressor
            A :class:`~sknn_tune.interop.SkorchMLPClassifier` or
            :class:`~sknn_tune.interop.SkorchMLPRegressor`.

        Examples
        --------
        >>> from sklearn.datasets import load_iris
        >>> from sknn_tune import MLPClassifier
        >>> X, y = load_iris(return_X_y=True)
        >>> clf = MLPClassifier((8,), max_epochs=3, random_state=0).fit(X, y)
        >>> net = clf.to_skorch(max_epochs=2)
        >>> bool(abs(net.predict_proba(X) - clf.predict_proba(X)).max() < 1e-6)
        True
        >>> len(net.fit(X, y).history)  # two epochs, starting from the fitted weights
        2
        """
        from .interop import to_skorch  # imports skorch: only when asked for

        return to_skorch(self, **params)

    @property
    def coefs_(self):
        """Weight matrices of the layers the model predicts with, input to output.

        A list of ndarrays of shape ``(fan_in, fan_out)``, as in scikit-learn's MLP.
        """
        return self._layer_parameters("weight")

    @property
    def intercepts_(self):
        """Bias vectors of the layers the model predicts with: ndarrays of shape ``(fan_out,)``."""
        return [bias.ravel() for bias in self._layer_parameters("bias")]

    def _layer_parameters(self, name):
        check_is_fitted(self)
        params, _ = self.model_.final_parameters()
        views = split_flat(params.detach().cpu(), self.model_.config.architecture.parameter_layout())
        return [views[key][0].numpy().copy() for key in sorted(views) if key[0] == name]

    def summary(self):
        """Keras-style table of the network's layers and parameter counts.

        Returns
        -------
        summary : str
            One row per layer (type, output shape, parameters) and the totals.
        """
        check_is_fitted(self)
        return model_summary(self.model_.config.architecture, type(self).__name__)


_FIT_PARAMETERS_DOC = """\
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Per-sample weights: each sample's loss counts this much in its batch's weighted mean.
        X_val, y_val : array-like, default=None
            An explicit validation set, used instead of splitting off ``validation_fraction`` of
            ``X``: its loss and score appear in ``history_`` and drive early stopping. In a
            :class:`~sklearn.pipeline.Pipeline` it reaches the network as given, without the
            earlier steps' transformation: transform it first.
"""
for _method in (_BaseMLP.fit, _BaseMLP.plan_fit):
    _method.__doc__ = _method.__doc__.replace("{fit_parameters}", _FIT_PARAMETERS_DOC)


@functools.cache
def _init_param_names(cls, init):
    return tuple(BaseEstimator._get_param_names.__func__(cls))


def _for_people(value):
    """A parameter value as a person writes it: 0.001 not 0.0010000000000000002, 1e+06."""
    if isinstance(value, float):
        return f"{value:.4g}"
    return repr(value)


def _is_fitted_attribute(name):
    """What :func:`~sklearn.utils.validation.check_is_fitted` takes for fitted state."""
    return name.endswith("_") and not name.startswith("__")


class _LiveMember:
    """One member of a stack that is still training, predicting with its live weights: the
    model of the copy a ``scoring`` monitor scores after each epoch."""

    def __init__(self, trainer, member):
        self.trainer, self.member = trainer, member
        self.config, self.params = trainer.config, trainer.params

    def predict(self, X, dtype=None):
        return self.trainer.predict(X, live=True, members=[self.member], dtype=dtype)


def _report_epoch(bar, trainer):
    entry = trainer.log[-1]
    postfix = {"loss": f"{entry['train_loss'][0]:.4g}"}
    if not np.isnan(entry["val_loss"][0]):
        postfix["val_loss"] = f"{entry['val_loss'][0]:.4g}"
    bar.set_postfix(postfix, refresh=False)
    bar.update(1)


def _options(names):
    """A numpydoc option set, in the registry's order: ``{'a', 'b'}``."""
    return "{" + ", ".join(repr(name) for name in names) + "}"


# The hyperparameters both estimators share, documented once; each class adds its own head. The
# option sets are the registries' keys.
SHARED_PARAMETERS_DOC = f"""\
    hidden_layer_sizes : int or tuple of int, default=(100,)
        Units of each hidden layer, input to output: ``(256, 128)`` is two hidden layers.
    activation : {_options(ACTIVATIONS)}, default='relu'
        Activation of the hidden layers. ReLU and its relatives train deep stacks best; sigmoid and
        tanh saturate and slow training down as layers are added.
    dropout : float in [0, 1), default=0.0
        Probability of zeroing each hidden unit at each training step (inverted dropout; nothing is
        dropped at predict). 0.2-0.5 are the usual values against overfitting.
    batch_norm : bool, default=False
        Batch normalisation after each hidden affine layer; running statistics are used at predict.
    init : {_options(["auto", *INITIALIZERS])}, default='auto'
        Initialiser. 'auto' is 'sklearn' for every activation: scikit-learn's MLP initialisation,
        weights and biases uniform in +-sqrt(6 / (fan_in + fan_out)) (+-sqrt(2 / ...) for
        'sigmoid'), with which the defaults cross-validate as well as scikit-learn's default MLP.
        'normal' draws from N(0, 0.05^2). The initialisers other than 'sklearn' start biases at zero.
    optimizer : {_options(OPTIMIZERS)}, default='adam'
        Update rule; each follows ``torch.optim`` exactly (SGD, SGD with momentum, SGD with
        Nesterov momentum, Adagrad, RMSprop, Adam, AdamW).
    lr : float, default=1e-3
        Learning rate. Too small trains slowly; too large oscillates or diverges (a
        :class:`~sknn_tune.DivergenceError` is raised).
    momentum : float in [0, 1], default=0.9
        Momentum of 'momentum' and 'nesterov'.
    beta1, beta2 : float in [0, 1), default=0.9, 0.999
        Decay rates of the first and second moment estimates of 'adam' and 'adamw'.
    rho : float in [0, 1), default=0.99
        Decay rate of the squared-gradient average of 'rmsprop' (``alpha`` in ``torch.optim``).
    weight_decay : float >= 0, default=0.0
        L2 penalty on the weight matrices (not biases). For 'adamw' it is decoupled weight decay.
    l1 : float >= 0, default=0.0
        L1 penalty on the weight matrices, pushing weights to exactly or nearly zero.
    noise_std : float >= 0, default=0.0
        Standard deviation of Gaussian noise added to the inputs at each training step only.
    lr_schedule : {_options(SCHEDULES)}, default='constant'
        Learning-rate decay per epoch ``t`` (from 0): 'step' multiplies by ``lr_decay`` every
        ``lr_step`` epochs, 'exponential' by ``lr_decay ** t``, 'inverse' is
        ``lr / (1 + lr_decay * t)``, 'cosine' anneals to 0 over ``max_epochs``, 'plateau' multiplies by
        ``lr_decay`` after ``lr_step`` epochs without improvement of the validation loss (the
        training loss when there is no validation set).
    lr_decay : float > 0, default=0.1
        Decay factor (or rate, for 'inverse') of ``lr_schedule``.
    lr_step : int >= 1, default=10
        Epochs between steps of 'step'; epochs without improvement before 'plateau' cuts.
    batch_size : int or 'auto', default='auto'
        Mini-batch size; 'auto' is ``min(200, n_samples)``.
    shuffle : bool, default=True
        Draw a new order of the training rows each epoch (from ``random_state``); False takes
        the batches in the rows' own order, as scikit-learn's MLP with ``shuffle=False``.
    max_epochs : int, default=200
        Most passes over the training data (fewer once training converges or early stopping
        ends it; see ``patience``).
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training data (stratified for classifiers) and stop
        when the validation loss (or the ``scoring`` score) has not improved by ``tol`` for
        ``patience`` epochs.
    validation_fraction : float in (0, 1), default=0.1
        Share of the training data held out when ``early_stopping`` is on.
    patience : int >= 1 or None, default=10
        Epochs without an improvement by ``tol`` before training ends: of the validation value
        with ``early_stopping``; of the training loss without a validation set (convergence, as
        scikit-learn's ``n_iter_no_change``; a fit that reaches ``max_epochs`` first warns with a
        :class:`~sklearn.exceptions.ConvergenceWarning`). None trains every one of
        ``max_epochs`` (keeping the best validation epoch's weights with ``early_stopping``).
    tol : float >= 0, default=1e-4
        Least decrease of the watched loss (increase of the ``scoring`` score) that resets
        ``patience``; any improvement makes a new best epoch.
    scoring : str, callable or None, default=None
        What picks the best epoch on the validation set (for early stopping and
        ``restore_best_weights``): None is the validation loss; a string names a scikit-learn
        scorer (any of ``sklearn.metrics.get_scorer_names()``, e.g. 'accuracy',
        'balanced_accuracy', 'f1_macro', 'neg_mean_absolute_error', 'r2'); a callable is a scorer
        ``scorer(estimator, X, y)``. Scores are greater-is-better, computed after every epoch on the
        validation rows with that epoch's weights (weighted by their sample weights, for named
        scorers), and are the ``val_score`` column of ``history_``.
    restore_best_weights : bool, default=True
        With early stopping, predict with the weights of the best validation epoch (lowest loss or
        highest ``scoring`` score) rather than the last one.
    warm_start : bool, default=False
        Continue from the previous fit's weights and optimizer state for another ``max_epochs``
        (from the last epoch's weights, also when early stopping restored the best ones for
        prediction).
    random_state : int, RandomState instance or None, default=None
        Seeds the initial weights, batch order, dropout masks, noise and validation split. An int
        gives identical fits on CPU.
    device : str or torch.device, default='auto'
        'auto' uses CUDA when available, else CPU; or 'cpu', 'cuda', 'cuda:N'. A fitted model
        pickles with CPU tensors and predicts on machines without a GPU.
    dtype : {'float32', 'float64'} or None, default=None
        The floating-point type the network trains and predicts in. None: float32, on every
        device (half the memory and about half the CPU time of float64, the same accuracy);
        'float64' on request. Outputs (``predict_proba``, a regressor's ``predict``) are in the
        input's float dtype either way, as scikit-learn's.
    verbose : int, default=0
        Show a progress bar over epochs with the current losses.
"""

SHARED_ATTRIBUTES_DOC = """\
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit, when ``X`` has string column names.
    history_ : pandas.DataFrame
        One row per epoch: ``epoch``, ``train_loss``, ``val_loss``, ``val_score``, ``lr``,
        ``seconds`` and ``diverged`` (True on the epoch training diverged). ``train_loss`` is
        the mean data loss over the epoch's batches as trained
        (with dropout and noise active, without the L1 / L2 penalties). ``val_score`` is the
        ``scoring`` scorer's value, or without ``scoring`` the accuracy (classifier) or R^2
        (regressor). Validation columns are NaN without a validation set (``early_stopping`` or
        ``X_val``) and in an epoch that diverged.
    n_iter_ : int
        Number of epochs the last ``fit`` (or ``partial_fit``) call trained, as in scikit-learn;
        ``history_`` holds every epoch.
    best_epoch_ : int
        Epoch whose weights the model predicts with (the best validation epoch when early stopping
        restores weights, else the last one).
    coefs_ : list of ndarray
        Weight matrices ``(fan_in, fan_out)`` of the layers the model predicts with.
    intercepts_ : list of ndarray
        Bias vectors of those layers.
    model_ : StackedTrainer
        The trained network, its optimizer state and its training log (one member of the engine).
"""
