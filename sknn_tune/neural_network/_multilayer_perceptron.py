"""scikit-learn's MLPClassifier and MLPRegressor, trained by sknn_tune's engine."""

import numpy as np
from sklearn.utils.metaestimators import available_if

from .. import classifier, regressor
from .._sklearn_compat import (
    MLP_CLASSIFIER_CONSTRAINTS,
    MLP_REGRESSOR_CONSTRAINTS,
    _check_partial_fit_first_call,
    _fit_context,
)
from ._base import SklearnMLPMixin, sklearn_fitted_attributes_doc

__all__ = ["MLPClassifier", "MLPRegressor"]

_SHARED_PARAMETERS_DOC = """\
    hidden_layer_sizes : array-like of shape (n_layers - 2,), default=(100,)
        The ith element represents the number of neurons in the ith hidden layer.
    activation : {'identity', 'logistic', 'tanh', 'relu'}, default='relu'
        Activation function for the hidden layers.
    solver : {'lbfgs', 'sgd', 'adam'}, default='adam'
        The solver for weight optimization: 'lbfgs' (scipy's L-BFGS-B over every row, with the
        loss and gradient computed by sknn_tune's engine), 'sgd' or 'adam'.
    alpha : float, default=0.0001
        Strength of the L2 regularization term, divided by the sample size when added to the
        loss.
    batch_size : int, default='auto'
        Size of minibatches for stochastic optimizers; 'auto': ``min(200, n_samples)``.
    learning_rate : {'constant', 'invscaling', 'adaptive'}, default='constant'
        Learning rate schedule for weight updates (``solver='sgd'`` only): 'invscaling' divides
        by ``(t + 1) ** power_t`` (t: samples seen), 'adaptive' divides by 5 each time
        ``n_iter_no_change`` epochs pass without improvement, until it is below 1e-6.
    learning_rate_init : float, default=0.001
        The initial learning rate ('sgd' and 'adam').
    power_t : float, default=0.5
        The exponent of the inverse scaling learning rate.
    max_iter : int, default=200
        Maximum number of iterations: epochs for the stochastic solvers, iterations for
        'lbfgs'.
    shuffle : bool, default=True
        Whether to shuffle samples in each iteration ('sgd' and 'adam').
    random_state : int, RandomState instance, default=None
        The weight initialisation, the early-stopping split and the shuffles, drawn as
        scikit-learn's MLP draws them.
    tol : float, default=1e-4
        Tolerance for the optimization: improvements below it do not count.
    verbose : bool, default=False
        Whether to print progress messages to stdout.
    warm_start : bool, default=False
        Reuse the solution of the previous call to fit as initialization.
    momentum : float, default=0.9
        Momentum for gradient descent update ('sgd').
    nesterovs_momentum : bool, default=True
        Whether to use Nesterov's momentum ('sgd', ``momentum > 0``).
    early_stopping : bool, default=False
        Terminate training when the validation score is not improving by ``tol`` for
        ``n_iter_no_change`` epochs, on ``validation_fraction`` of the data, and keep the best
        weights.
    validation_fraction : float, default=0.1
        The proportion of training data to set aside for early stopping.
    beta_1 : float, default=0.9
        Exponential decay rate for estimates of first moment vector in adam.
    beta_2 : float, default=0.999
        Exponential decay rate for estimates of second moment vector in adam.
    epsilon : float, default=1e-8
        Value for numerical stability in adam.
    n_iter_no_change : int, default=10
        Maximum number of epochs to not meet ``tol`` improvement ('sgd' and 'adam');
        ``np.inf`` never stops.
    max_fun : int, default=15000
        Maximum number of loss function calls ('lbfgs').
    device : str or torch.device, default='auto'
        sknn_tune's: where to train ('auto': a GPU when there is one, else the CPU).
    dtype : {'float32', 'float64'}, default=None
        sknn_tune's: the compute dtype; None is scikit-learn's, the input's float dtype.
"""


class MLPClassifier(SklearnMLPMixin, classifier.MLPClassifier):
    _parameter_constraints = SklearnMLPMixin._sklearn_constraints(MLP_CLASSIFIER_CONSTRAINTS)

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        device="auto",
        dtype=None,
    ):
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes, activation=activation, solver=solver,
            alpha=alpha, batch_size=batch_size, learning_rate=learning_rate,
            learning_rate_init=learning_rate_init, power_t=power_t, max_iter=max_iter,
            shuffle=shuffle, random_state=random_state, tol=tol, verbose=verbose,
            warm_start=warm_start, momentum=momentum, nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping, validation_fraction=validation_fraction, beta_1=beta_1,
            beta_2=beta_2, epsilon=epsilon, n_iter_no_change=n_iter_no_change, max_fun=max_fun,
            device=device, dtype=dtype)

    _min_classes = 1  # scikit-learn's fits one class too (it then always predicts it)

    def _binary(self):
        # one logistic output: two classes, or one (whose target column is all 0, as
        # scikit-learn's LabelBinarizer makes it)
        return not self.multilabel_ and len(self.classes_) <= 2

    def _engine_loss(self):
        # scikit-learn's: one logistic output for two classes, a softmax over more
        return "sigmoid_log_loss" if self.multilabel_ or self._binary() else "softmax_log_loss"

    @property
    def _metric(self):
        # accuracy of the thresholded logistic output (one, or one per label), or of the argmax
        return "subset_accuracy" if self.multilabel_ or self._binary() else "accuracy"

    def _out_activation(self):
        return "logistic" if self.multilabel_ or self._binary() else "softmax"

    def _encode_targets(self, y, reset, classes=None):
        Y, codes = super()._encode_targets(y, reset, classes)
        if self._binary():
            # the positive class's column, as scikit-learn's LabelBinarizer gives it
            Y = Y[:, 1:] if Y.shape[1] == 2 else np.zeros_like(Y)
        return Y, codes

    def _decode_targets(self, Y):
        if self._binary() and Y.shape[1] == 1:
            positive = (Y[:, 0] > 0.5).astype(np.int64)
            return self.classes_[np.minimum(positive, len(self.classes_) - 1)]
        return super()._decode_targets(Y)

    def predict_proba(self, X):
        """Probability estimates.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y_prob : ndarray of shape (n_samples, n_classes)
            The predicted probability of the sample for each class in the model, where classes
            are ordered as they are in ``self.classes_``.
        """
        proba = self._predict_outputs(X)
        if self._binary():
            return np.hstack([1 - proba, proba])
        return proba

    def predict(self, X):
        """Predict using the multi-layer perceptron classifier.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y : ndarray, shape (n_samples,) or (n_samples, n_classes)
            The predicted classes.
        """
        return self._decode_targets(self._predict_outputs(X))

    @available_if(lambda est: est._check_solver())
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """Update the model with a single iteration over the given data.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.
        y : array-like of shape (n_samples,)
            The target values.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.
        classes : array of shape (n_classes,), default=None
            Classes across all calls to partial_fit; required for the first call.

        Returns
        -------
        self : object
            Trained MLP model.
        """
        self._check_partial_fit()
        first_call = _check_partial_fit_first_call(self, classes)
        return self._fit(X, y, sample_weight, None, None, incremental=True,
                         classes=self.classes_ if first_call else None)


class MLPRegressor(SklearnMLPMixin, regressor.MLPRegressor):
    _parameter_constraints = SklearnMLPMixin._sklearn_constraints(MLP_REGRESSOR_CONSTRAINTS)

    def __init__(
        self,
        loss="squared_error",
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        device="auto",
        dtype=None,
    ):
        self.loss = loss
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes, activation=activation, solver=solver,
            alpha=alpha, batch_size=batch_size, learning_rate=learning_rate,
            learning_rate_init=learning_rate_init, power_t=power_t, max_iter=max_iter,
            shuffle=shuffle, random_state=random_state, tol=tol, verbose=verbose,
            warm_start=warm_start, momentum=momentum, nesterovs_momentum=nesterovs_momentum,
            early_stopping=early_stopping, validation_fraction=validation_fraction, beta_1=beta_1,
            beta_2=beta_2, epsilon=epsilon, n_iter_no_change=n_iter_no_change, max_fun=max_fun,
            device=device, dtype=dtype)

    def _engine_loss(self):
        return "poisson" if self.loss == "poisson" else "sklearn_squared_error"

    def _out_activation(self):
        return "exp" if self.loss == "poisson" else "identity"

    def _encode_targets(self, y, reset, classes=None):
        if self.loss == "poisson" and np.any(np.asarray(y) < 0):
            raise ValueError("Some value(s) of y are negative which is not allowed for Poisson "
                             "regression.")
        return super()._encode_targets(y, reset, classes)

    # scikit-learn's regressor offers partial_fit for every solver
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None):
        """Update the model with a single iteration over the given data.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.
        y : ndarray of shape (n_samples,)
            The target values.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.

        Returns
        -------
        self : object
            Trained MLP model.
        """
        self._check_partial_fit()
        return self._fit(X, y, sample_weight, None, None, incremental=True)


MLPClassifier.__doc__ = f"""Multi-layer Perceptron classifier: scikit-learn's, trained by sknn_tune.

    :class:`sklearn.neural_network.MLPClassifier`'s constructor, parameters, defaults,
    validation, fitted attributes and numbers: on the CPU in float64 the same ``random_state``
    gives scikit-learn's fit (its initialisation, shuffles, early-stopping split, update rules,
    loss and stop counters), so changing the import switches. sknn_tune adds ``device`` (the
    GPU) and ``dtype``, and the fused searches (:class:`~sknn_tune.FusedGridSearchCV`, ...)
    train many of them at once.

    Parameters
    ----------
{_SHARED_PARAMETERS_DOC}
    Attributes
    ----------
    classes_ : ndarray or list of ndarray of shape (n_classes,)
        Class labels for each output.
{sklearn_fitted_attributes_doc("'logistic' for two classes and multilabel, else 'softmax'")}
    See Also
    --------
    sknn_tune.MLPClassifier : sknn_tune's own, with the tutorials' names and knobs.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from sklearn.neural_network import MLPClassifier as SklearnMLPClassifier
    >>> from sknn_tune.neural_network import MLPClassifier
    >>> X, y = make_classification(100, random_state=1)
    >>> params = dict(hidden_layer_sizes=(8,), max_iter=20, random_state=1)
    >>> import warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     ours = MLPClassifier(**params).fit(X, y)
    ...     theirs = SklearnMLPClassifier(**params).fit(X, y)
    >>> bool(abs(ours.coefs_[0] - theirs.coefs_[0]).max() < 1e-10)
    True
    >>> ours.n_iter_ == theirs.n_iter_
    True
    """

MLPRegressor.__doc__ = f"""Multi-layer Perceptron regressor: scikit-learn's, trained by sknn_tune.

    :class:`sklearn.neural_network.MLPRegressor`'s constructor, parameters, defaults,
    validation, fitted attributes and numbers (see :class:`MLPClassifier`), with sknn_tune's
    ``device`` and ``dtype``.

    Parameters
    ----------
    loss : {{'squared_error', 'poisson'}}, default='squared_error'
        The loss function: half the squared error, or the half Poisson deviance of an ``exp``
        output (``y >= 0``).
{_SHARED_PARAMETERS_DOC}
    Attributes
    ----------
{sklearn_fitted_attributes_doc("'identity', or 'exp' for loss='poisson'")}
    See Also
    --------
    sknn_tune.MLPRegressor : sknn_tune's own, with the tutorials' names and knobs.

    Examples
    --------
    >>> import warnings
    >>> from sklearn.datasets import make_regression
    >>> from sknn_tune.neural_network import MLPRegressor
    >>> X, y = make_regression(100, 5, random_state=1)
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     reg = MLPRegressor(hidden_layer_sizes=(16,), solver="lbfgs", random_state=1).fit(X, y)
    >>> round(reg.score(X, y), 2)
    1.0
    """
