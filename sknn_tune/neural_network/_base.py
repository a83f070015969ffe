"""scikit-learn's MLP signature over sknn_tune's engine: what the classifier and regressor share.

:class:`SklearnMLPMixin` sits before sknn_tune's own estimator in the bases and replaces its
translation: scikit-learn's parameters become the engine's stack and member configurations
(scikit-learn's update rules, its loss and L2 scaling, its schedules and stop counters), and a
fit draws what scikit-learn's draws, from the same ``RandomState`` in the same order: the initial
weights (its Glorot bounds), the early-stopping split, then each epoch's shuffle. Everything else
(validation of inputs, the engine call, prediction, the fused search protocol) is sknn_tune's.
"""

import contextlib
import itertools
import warnings

import numpy as np
import torch
from sklearn.base import is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state, shuffle
from sklearn.utils.validation import check_is_fitted

from .._base import _NEVER, engine_batch_size
from .._engine import MemberConfig, MemberData, StackConfig
from .._engine.device import resolve_device
from .._engine.network import Architecture, split_flat
from .._sklearn_compat import StrOptions, _fit_context

__all__ = ["SampleOrder", "SklearnMLPMixin"]

# scikit-learn's activation names -> the engine's
_ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}
_STOCHASTIC_SOLVERS = ("sgd", "adam")
ADAPTIVE_DIVISOR = 5.0  # scikit-learn's 'adaptive' learning rate divides by 5
AUTO_BATCH_ROWS = 200  # batch_size='auto': min(200, n_samples)


class SampleOrder:
    """The order scikit-learn's MLP visits its training rows in each epoch of one ``fit``.

    scikit-learn shuffles its index array at the start of every epoch with
    ``sklearn.utils.shuffle(sample_idx, random_state=rs)``, each epoch shuffling the previous
    epoch's order, from the ``RandomState`` its initialisation and validation split drew from.
    This replays that sequence from a snapshot of the state (``rs.get_state()`` when the fit's
    epochs start), so the epoch a member trains, not the number of calls, gives the order; the
    latest epoch is kept, and the next one is one shuffle away. ``first_epoch`` is the member's
    epoch count when this fit started (a warm fit or ``partial_fit`` draws afresh, as
    scikit-learn's do).
    """

    def __init__(self, state, n_rows, first_epoch=0):
        self.state, self.n_rows, self.first_epoch = state, n_rows, first_epoch
        self._latest = None  # (epoch, RandomState after it, its order)

    def __call__(self, epoch):
        k = epoch - self.first_epoch
        if self._latest is None or self._latest[0] > k:
            rs = np.random.RandomState()
            rs.set_state(self.state)
            self._latest = (-1, rs, np.arange(self.n_rows))
        done, rs, order = self._latest
        for _ in range(k - done):
            order = shuffle(order, random_state=rs)
        self._latest = (k, rs, order)
        return order

    def __getstate__(self):
        return {"state": self.state, "n_rows": self.n_rows, "first_epoch": self.first_epoch}

    def __setstate__(self, state):
        self.__init__(state["state"], state["n_rows"], state["first_epoch"])


class _Attribute:
    """A plain instance attribute that shadows a property of a base class (``coefs_``)."""

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        try:
            return obj.__dict__[self.name]
        except KeyError:
            raise AttributeError(self.name) from None

    def __set__(self, obj, value):
        obj.__dict__[self.name] = value

    def __delete__(self, obj):
        del obj.__dict__[self.name]


class _OptimizerView:
    """What scikit-learn's ``_optimizer`` tells: the learning rate of the coming epoch."""

    def __init__(self, learning_rate):
        self.learning_rate = learning_rate


class SklearnMLPMixin:
    """scikit-learn's MLP parameters and fitted attributes over an sknn_tune estimator."""

    _rejects_sklearn_names = False
    epochs_parameter = "max_iter"
    # scikit-learn's MLP has neither: the engine reads them
    scoring = None
    class_weight = None

    coefs_ = _Attribute()
    intercepts_ = _Attribute()

    def __init__(
            self, hidden_layer_sizes, activation, *, solver, alpha, batch_size, learning_rate,
            learning_rate_init, power_t, max_iter, shuffle, random_state, tol, verbose, warm_start,
            momentum, nesterovs_momentum, early_stopping, validation_fraction, beta_1, beta_2,
            epsilon, n_iter_no_change, max_fun, device, dtype,
    ):
        # scikit-learn's BaseMultilayerPerceptron: every shared parameter, assigned as given
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.device = device
        self.dtype = dtype

    @staticmethod
    def _sklearn_constraints(constraints):
        """scikit-learn's ``constraints``, and sknn_tune's ``device`` and ``dtype``."""
        return {**constraints, "device": [str, torch.device],
                "dtype": [StrOptions({"float32", "float64"}), None]}

    # ------------------------------------------------------------------------------------------
    # fitting

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the model to data matrix X and target(s) y.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            The target values (class labels in classification, real numbers in regression).
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.

        Returns
        -------
        self : object
            Returns a trained MLP model.
        """
        return self._fit(X, y, sample_weight, None, None, incremental=False)

    def _check_solver(self):
        if self.solver not in _STOCHASTIC_SOLVERS:
            raise AttributeError("partial_fit is only available for stochastic optimizers. "
                                 f"{self.solver} is not stochastic.")
        return True

    def _check_partial_fit(self):
        if self.early_stopping:
            raise ValueError("partial_fit does not support early_stopping=True")

    def _first_pass(self, incremental):
        return not hasattr(self, "coefs_") or (not self.warm_start and not incremental)

    def _plan(self, inputs, X_val=None, y_val=None, incremental=False, continuing=False):
        X, Y, sample_weight = inputs.X, inputs.Y, inputs.sample_weight
        rs = check_random_state(self.random_state)  # every fit, as scikit-learn's
        hidden = self._hidden_layer_sizes()
        initial = None
        if self._first_pass(incremental):
            initial = self._initial_parameters(rs, (X.shape[1], *hidden, Y.shape[1]), X.dtype)
        elif not hasattr(self, "model_"):  # coefs_ set by hand: the fit starts from them
            initial = self._packed_coefs()
        rows = inputs.all_rows
        val_rows = None
        if self.early_stopping and not incremental:
            stratify = Y.astype(bool) if is_classifier(self) and Y.shape[1] == 1 else None
            rows, val_rows = train_test_split(rows, random_state=rs,
                                              test_size=self.validation_fraction,
                                              stratify=stratify)
            if len(val_rows) < 2:
                raise ValueError("The validation set is too small. Increase "
                                 "'validation_fraction' or the size of your dataset.")
        epochs_before = int(self.model_.epochs_done[0]) if continuing else 0
        order = SampleOrder(rs.get_state(), len(rows), epochs_before) if self.shuffle else None
        data = MemberData(rows, sample_weight[rows], val_rows,
                          None if val_rows is None else sample_weight[val_rows], order=order,
                          initial_params=initial)
        return self._fit_plan(inputs, X, Y, data, 0, incremental, continuing)

    def _hidden_layer_sizes(self):
        hidden = self.hidden_layer_sizes
        hidden = list(hidden) if hasattr(hidden, "__iter__") else [hidden]
        if np.any(np.array(hidden) <= 0):
            raise ValueError(f"hidden_layer_sizes must be > 0, got {hidden}.")
        return tuple(int(h) for h in hidden)

    def _initial_parameters(self, rs, layer_units, dtype):
        """scikit-learn's ``_init_coef`` of every layer, in order, as one flat row."""
        factor = 2.0 if self.activation == "logistic" else 6.0
        parts = []
        for fan_in, fan_out in itertools.pairwise(layer_units):
            bound = np.sqrt(factor / (fan_in + fan_out))
            parts.append(rs.uniform(-bound, bound, (fan_in, fan_out)).astype(dtype, copy=False))
            parts.append(rs.uniform(-bound, bound, fan_out).astype(dtype, copy=False))
        return np.concatenate([p.ravel() for p in parts])

    def _packed_coefs(self):
        """``coefs_`` and ``intercepts_`` as the engine's flat row (layer by layer)."""
        return np.concatenate([part for coef, intercept in zip(self.coefs_, self.intercepts_)
                               for part in (np.ravel(coef), np.ravel(intercept))])

    def _placement(self, X, continuing):
        if continuing:
            return super()._placement(X, continuing)
        device = resolve_device(self.device)
        # dtype=None is scikit-learn's: the input's float dtype
        return device, getattr(torch, self.dtype or X.dtype.name)

    def _stack_config(self, n_features, n_outputs, n_train, device, dtype):
        hidden = self._hidden_layer_sizes()
        if self.batch_size == "auto":
            batch = min(AUTO_BATCH_ROWS, n_train)
        else:
            if self.batch_size > n_train:
                warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is "
                              "going to be clipped", stacklevel=5)
            batch = int(np.clip(self.batch_size, 1, n_train))
        arch = Architecture(n_features, hidden, n_outputs, _ACTIVATIONS[self.activation], False,
                            self._engine_loss())
        if self.solver == "lbfgs":
            optimizer = "lbfgs"
        elif self.solver == "adam":
            optimizer = "sklearn_adam"
        else:
            optimizer = "sklearn_nesterov" if self.nesterovs_momentum else "sklearn_sgd"
        return StackConfig(arch, optimizer, engine_batch_size(batch, n_train), self._metric,
                           dtype, device, batch_penalty=True)

    def _member_config(self, seed, incremental=False):
        schedule = self.learning_rate if self.solver == "sgd" else "constant"
        decay = {"invscaling": self.power_t, "adaptive": 1.0 / ADAPTIVE_DIVISOR}.get(schedule,
                                                                                    0.1)
        patience = (_NEVER if self.n_iter_no_change == np.inf
                    else int(self.n_iter_no_change) + 1)  # scikit-learn: count > n_iter_no_change
        return MemberConfig(
            seed=seed, lr=self.learning_rate_init, momentum=self.momentum, beta1=self.beta_1,
            beta2=self.beta_2, epsilon=self.epsilon, weight_decay=self.alpha, init="sklearn",
            lr_schedule=schedule, lr_decay=decay, max_epochs=self.max_iter,
            early_stopping=self.early_stopping and not incremental, patience=patience,
            tol=self.tol, shuffle=bool(self.shuffle), watch="score", blow_up=False,
            max_fun=self.max_fun)

    def _continue(self, trainer, plan, incremental):
        super()._continue(trainer, plan, incremental)
        if not incremental:  # scikit-learn makes a new optimizer for every fit
            trainer.reset_optimizer()
        # coefs_ are the weights scikit-learn continues from (and a user may have set them)
        start = torch.as_tensor(self._packed_coefs(), dtype=trainer.params.dtype)
        trainer.params[0, :start.numel()].copy_(start)

    @contextlib.contextmanager
    def _progress(self, n_epochs):
        def report(trainer):
            if self.verbose:
                entry = trainer.log[-1]
                print(f"Iteration {int(entry['epoch'][0])}, loss = {entry['train_loss'][0]:.8f}")
                if self.early_stopping and not np.isnan(entry["val_score"][0]):
                    print(f"Validation score: {entry['val_score'][0]:f}")

        yield report

    def _finish_fit(self, epochs_before=0, incremental=False):
        """scikit-learn's fitted attributes and warnings, from ``model_``."""
        trainer = self.model_
        params, _ = trainer.final_parameters()
        trainer.params.copy_(params)  # scikit-learn continues from the weights it keeps
        arch = trainer.config.architecture
        views = split_flat(params.detach().cpu(), arch.parameter_layout())
        n_layers = len(arch.hidden_layer_sizes) + 1
        dtype = np.float32 if params.dtype == torch.float32 else np.float64
        self.coefs_ = [views["weight", i][0].numpy().astype(dtype) for i in range(n_layers)]
        self.intercepts_ = [views["bias", i][0, 0].numpy().astype(dtype)
                            for i in range(n_layers)]
        self.n_iter_ = int(trainer.epochs_done[0]) - epochs_before
        # samples the stochastic solvers saw (scikit-learn's L-BFGS leaves it 0)
        self.t_ = 0 if trainer.config.optimizer == "lbfgs" else int(trainer.rows_seen[0])
        self.n_layers_ = n_layers + 1
        self.n_outputs_ = arch.n_outputs
        self.out_activation_ = self._out_activation()
        history = self.history_
        if trainer.config.optimizer == "lbfgs":
            self.loss_ = float(history["train_loss"].iloc[-1]) if len(history) else np.nan
            self._warn_lbfgs(trainer)
        else:
            self._stochastic_attributes(history, incremental)
        if not all(np.isfinite(w).all() for w in self.coefs_ + self.intercepts_):
            raise ValueError("Solver produced non-finite parameter weights. The input data may "
                             "contain large values and need to be preprocessed.")

    def _stochastic_attributes(self, history, incremental):
        trainer = self.model_
        self.loss_ = float(history["train_loss"].iloc[-1])
        self.loss_curve_ = history["train_loss"].tolist()
        if self.early_stopping and not incremental:
            self.validation_scores_ = history["val_score"].tolist()[-self.n_iter_:]
            self.best_validation_score_ = max(self.validation_scores_)
            self.best_loss_ = None
        else:
            self.best_loss_ = min(self.loss_curve_)
            self.validation_scores_ = None
            self.best_validation_score_ = None
        if trainer.interrupted:
            warnings.warn("Training interrupted by user.", stacklevel=4)
        elif not incremental and not trainer.stopped[0] and self.n_iter_ == self.max_iter:
            warnings.warn(f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached "
                          "and the optimization hasn't converged yet.", ConvergenceWarning,
                          stacklevel=4)

    def _warn_lbfgs(self, trainer):
        result = trainer.lbfgs_results[0]
        if result is None or result.status == 0:
            return
        message = (f"lbfgs failed to converge after {result.n_iter} iteration(s) "
                   f"(status={result.status}):\n{result.message}\n")
        if result.n_iter == self.max_iter:
            message += ("\nIncrease the number of iterations to improve the convergence "
                        f"(max_iter={self.max_iter}).")
        warnings.warn(message + "\nYou might also want to scale the data as shown in:\n"
                      "    https://scikit-learn.org/stable/modules/preprocessing.html",
                      ConvergenceWarning, stacklevel=4)

    # ------------------------------------------------------------------------------------------
    # scikit-learn's private state that its own tests read

    @property
    def _no_improvement_count(self):
        """Epochs since the last improvement by ``tol`` (what stops the fit)."""
        if not hasattr(self, "model_"):
            return vars(self).get("_set_no_improvement_count", 0)
        trainer = self.model_
        return int(trainer.wait[0] if self.early_stopping else trainer.loss_wait[0])

    @_no_improvement_count.setter
    def _no_improvement_count(self, value):
        # (scikit-learn's tests set it before a partial_fit from hand-set weights; a fit counts
        # afresh)
        self._set_no_improvement_count = value

    @property
    def _optimizer(self):
        """The learning rate of the coming epoch, as scikit-learn's optimizer holds it."""
        check_is_fitted(self)
        trainer = self.model_
        if self.solver == "sgd" and self.learning_rate == "invscaling" and self.t_:
            return _OptimizerView(float(self.learning_rate_init) / (self.t_ + 1) ** self.power_t)
        return _OptimizerView(float(trainer._learning_rates()[0] * trainer.members[0].lr))

    # ------------------------------------------------------------------------------------------
    # prediction

    def _predict_outputs(self, X):
        check_is_fitted(self)
        # coefs_ are what scikit-learn predicts with (a user may have changed them)
        start = torch.as_tensor(self._packed_coefs(), dtype=self.model_.params.dtype)
        for params in (self.model_.params, self.model_.best_params):
            params[0, :start.numel()].copy_(start)
        return super()._predict_outputs(X)



def sklearn_fitted_attributes_doc(out_activation):
    """The attributes section both classes share (scikit-learn's words, our ``history_``)."""
    return f"""\
    loss_ : float
        The current loss computed with the loss function.
    best_loss_ : float or None
        The minimum loss reached by the solver throughout fitting; None with
        ``early_stopping=True`` (see ``best_validation_score_``). Stochastic solvers only.
    loss_curve_ : list of shape (`n_iter_`,)
        The loss at the end of each training step. Stochastic solvers only.
    validation_scores_ : list of shape (`n_iter_`,) or None
        The score at each iteration on a held-out validation set; None without early stopping.
    best_validation_score_ : float or None
        The best validation score (the weights kept); None without early stopping.
    t_ : int
        The number of training samples seen by the solver during fitting.
    coefs_ : list of shape (n_layers - 1,)
        The ith element is the weight matrix of layer i, ``(fan_in, fan_out)``.
    intercepts_ : list of shape (n_layers - 1,)
        The ith element is the bias vector of layer i + 1.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit (only when X has string column names).
    n_iter_ : int
        The number of iterations the solver has run (in this call of fit).
    n_layers_ : int
        Number of layers.
    n_outputs_ : int
        Number of outputs.
    out_activation_ : str
        Name of the output activation function ({out_activation}).
    model_ : sknn_tune engine trainer
        The trained network (sknn_tune's): ``history_`` has a row per iteration.
"""

