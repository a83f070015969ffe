"""MLPRegressor: a multilayer perceptron regressor trained with PyTorch."""

import numpy as np
from sklearn.base import RegressorMixin

from ._base import SHARED_ATTRIBUTES_DOC, SHARED_PARAMETERS_DOC, _BaseMLP
from ._sklearn_compat import StrOptions, _fit_context

__all__ = ["MLPRegressor"]

_LOSSES = {"squared_error": "squared_error", "absolute_error": "absolute_error",
           "huber": "huber"}


class MLPRegressor(RegressorMixin, _BaseMLP):
    _parameter_constraints: dict = {
        **_BaseMLP._parameter_constraints,
        "loss": [StrOptions(set(_LOSSES))],
    }
    _metric = "r2"
    _y_numeric = True

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        loss="squared_error",
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
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes, activation=activation, loss=loss,
            dropout=dropout, batch_norm=batch_norm, init=init, optimizer=optimizer, lr=lr,
            momentum=momentum, beta1=beta1, beta2=beta2, rho=rho, weight_decay=weight_decay,
            l1=l1, noise_std=noise_std, lr_schedule=lr_schedule, lr_decay=lr_decay,
            lr_step=lr_step, batch_size=batch_size, shuffle=shuffle, max_epochs=max_epochs,
            early_stopping=early_stopping, validation_fraction=validation_fraction,
            patience=patience, tol=tol, scoring=scoring, restore_best_weights=restore_best_weights,
            warm_start=warm_start, random_state=random_state, device=device, dtype=dtype,
            verbose=verbose)

    def _engine_loss(self):
        return _LOSSES[self.loss]

    def _encode_targets(self, y, reset, classes=None):
        # Strings pass validate_data's y_numeric (it converts only object arrays): fail clearly
        # here, as scikit-learn's MLPRegressor fails on them, even on numeric strings.
        if np.asarray(y).dtype.kind in "USO":
            raise ValueError(f"{type(self).__name__} needs numeric targets; y holds strings "
                             f"(dtype {np.asarray(y).dtype}). Convert them with y.astype(float), "
                             "or use MLPClassifier for labels.")
        Y = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
        if reset:
            self.n_outputs_ = Y.shape[1]
        elif Y.shape[1] != self.n_outputs_:
            raise ValueError(f"y has {Y.shape[1]} outputs, but {type(self).__name__} was fitted "
                             f"with {self.n_outputs_}.")
        return Y, None

    def _decode_targets(self, Y):
        return Y.ravel() if self.n_outputs_ == 1 else Y

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None):
        """Train for one epoch on ``X, y``, continuing from the current state.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Per-sample weights.

        Returns
        -------
        self : object
            The estimator, trained one more epoch.
        """
        self._check_partial_fit()
        return self._fit(X, y, sample_weight, None, None, incremental=True)

    def predict(self, X):
        """Predicted targets.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            Predictions; 1-D when the model has a single output.
        """
        out = self._predict_outputs(X)
        return out.ravel() if self.n_outputs_ == 1 else out

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


MLPRegressor.__doc__ = f"""Multilayer perceptron regressor trained with PyTorch.

    A linear output layer (one unit per target) on top of ``hidden_layer_sizes`` hidden layers,
    trained by mini-batch gradient descent on the CPU or a GPU. Accepts 1-D and multi-output
    targets. ``score`` is the coefficient of determination R^2.

    Parameters
    ----------
{SHARED_PARAMETERS_DOC}    loss : {{'squared_error', 'absolute_error', 'huber'}}, default='squared_error'
        Half the mean squared error, the mean absolute error, or the Huber loss (delta 1), averaged
        over outputs.

    Attributes
    ----------
    n_outputs_ : int
        Number of targets.
{SHARED_ATTRIBUTES_DOC}
    See Also
    --------
    MLPClassifier : The classifier on the same engine.
    sklearn.neural_network.MLPRegressor : scikit-learn's own MLP regressor.

    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from sklearn.compose import TransformedTargetRegressor
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from sknn_tune import MLPRegressor
    >>> X, y = load_diabetes(return_X_y=True)
    >>> reg = TransformedTargetRegressor(
    ...     make_pipeline(StandardScaler(), MLPRegressor((64,), lr=1e-2, max_epochs=50,
    ...                                                  random_state=0)),
    ...     transformer=StandardScaler())
    >>> reg.fit(X, y).score(X, y) > 0.5
    True
    """
