"""MLPClassifier: a multilayer perceptron classifier trained with PyTorch."""

import numpy as np
from scipy.sparse import issparse
from sklearn.base import ClassifierMixin
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import column_or_1d

from ._base import SHARED_ATTRIBUTES_DOC, SHARED_PARAMETERS_DOC, _BaseMLP
from ._sklearn_compat import StrOptions, _check_partial_fit_first_call, _fit_context

__all__ = ["MLPClassifier"]

# loss -> the engine's loss of a softmax over classes_, and of a sigmoid per label (multilabel y)
_LOSSES = {"log_loss": ("softmax_log_loss", "sigmoid_log_loss"),
           "squared_error": ("softmax_squared_error", "sigmoid_squared_error")}
_TARGET_KINDS = {False: "class labels", True: "a label indicator matrix (multilabel)"}


def _is_multilabel(y):
    return y.ndim == 2 and y.shape[1] > 1 and type_of_target(y) == "multilabel-indicator"


class MLPClassifier(ClassifierMixin, _BaseMLP):
    _min_classes = 2  # classes a fit needs
    _parameter_constraints: dict = {
        **_BaseMLP._parameter_constraints,
        "loss": [StrOptions(set(_LOSSES))],
        "class_weight": [dict, StrOptions({"balanced"}), None],
    }

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        loss="log_loss",
        class_weight=None,
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
        self.class_weight = class_weight

    def _engine_loss(self):
        softmax, sigmoid = _LOSSES[self.loss]
        return sigmoid if self.multilabel_ else softmax

    @property
    def _metric(self):
        # accuracy_score's: of the argmax class, or of every label at once (subset accuracy)
        return "subset_accuracy" if self.multilabel_ else "accuracy"

    def _encode_targets(self, y, reset, classes=None):
        multilabel = _is_multilabel(y)
        if reset:
            self.multilabel_ = multilabel
        elif multilabel != self.multilabel_:
            raise ValueError(f"{type(self).__name__} was fitted on {_TARGET_KINDS[self.multilabel_]}; "
                             f"y is {_TARGET_KINDS[multilabel]}.")
        if multilabel:
            return self._encode_indicator(y, reset, classes), None
        if y.ndim != 1:  # a column vector: warned about and flattened, as scikit-learn does
            y = column_or_1d(y, warn=True)
        # 1-D integers, booleans or strings are always binary or multiclass targets: sklearn's
        # check (type_of_target, a tenth of a millisecond or more) is for floats and objects.
        if y.dtype.kind not in "iubUS":
            check_classification_targets(y)
        codes = None
        if reset:
            if classes is None:  # the classes are y's own: every label is one of them
                self.classes_, codes = np.unique(y, return_inverse=True)
            else:
                self.classes_ = np.unique(classes)
            if len(self.classes_) < self._min_classes:
                raise ValueError(
                    f"{type(self).__name__} needs samples of at least 2 classes in the data, but "
                    f"the data contains only one class: {self.classes_[0]!r}.")
        if codes is None:
            unseen = np.setdiff1d(y, self.classes_)
            if len(unseen):
                raise ValueError(f"y contains labels {unseen.tolist()} that are not in classes_ "
                                 f"{self.classes_.tolist()}.")
            codes = np.searchsorted(self.classes_, y)
        return np.eye(len(self.classes_))[codes], codes

    def _encode_indicator(self, y, reset, classes):
        """The 0/1 target matrix of a multilabel ``y``; ``classes_`` are the label (column)
        indices, as scikit-learn's ``LabelBinarizer`` sets them."""
        labels = np.arange(y.shape[1])
        if reset:
            if classes is not None and not np.array_equal(np.unique(classes), labels):
                raise ValueError(
                    "For a multilabel y (a label indicator matrix), classes are the label "
                    f"indices np.arange(y.shape[1]) = {labels.tolist()}; got "
                    f"{np.asarray(classes).tolist()}.")
            self.classes_ = labels
        elif len(labels) != len(self.classes_):
            raise ValueError(f"y has {len(labels)} labels (columns); {type(self).__name__} was "
                             f"fitted on {len(self.classes_)}.")
        return (y.toarray() if issparse(y) else np.asarray(y)).astype(np.float64)

    def _check_warm_targets(self, y):
        # As scikit-learn's MLP: a warm fit sees exactly the fitted classes again (partial_fit
        # need not). A multilabel y's columns are checked when it is encoded.
        if self.multilabel_ or _is_multilabel(y):
            return
        labels = np.unique(column_or_1d(y, warn=True))
        if not np.array_equal(labels, self.classes_):
            raise ValueError(
                "warm_start can only be used where `y` has the same classes as in the previous "
                f"call to fit. Previously got {self.classes_}, `y` has {labels}")

    def _decode_targets(self, Y):
        if self.multilabel_:
            return (Y > 0.5).astype(np.int64)  # scikit-learn's MLP's threshold
        return self.classes_[np.argmax(Y, axis=1)]

    def _target_weight(self, codes):
        if self.class_weight is None:
            return None
        if self.multilabel_:
            raise ValueError("class_weight is not supported for multilabel y (a label indicator "
                             "matrix): weigh the samples with sample_weight instead.")
        present = np.unique(codes)
        weights = np.ones(len(self.classes_))
        weights[present] = compute_class_weight(self.class_weight, classes=self.classes_[present],
                                                y=self.classes_[codes])
        return weights[codes]

    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """Train for one epoch on ``X, y``, continuing from the current state.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            Labels, or a label indicator matrix (multilabel).
        classes : array-like of shape (n_classes,), default=None
            Every class that will ever appear (for a multilabel ``y``, the label indices
            ``np.arange(n_labels)``); required on the first call, ignored after.
        sample_weight : array-like of shape (n_samples,), default=None
            Per-sample weights.

        Returns
        -------
        self : object
            The estimator, trained one more epoch.
        """
        self._check_partial_fit()
        first_call = _check_partial_fit_first_call(self, classes)
        return self._fit(X, y, sample_weight, None, None, incremental=True,
                         classes=self.classes_ if first_call else None)

    def predict_proba(self, X):
        """Class probabilities.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Probability of each class in ``classes_`` order; rows sum to 1. For a multilabel
            model, the probability of each label on its own.
        """
        return self._predict_outputs(X)

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            Log-probability of each class.
        """
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        """Predicted class labels.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_labels)
            The most probable class of each sample, in the labels' original type; for a
            multilabel model the label indicator matrix of the labels whose probability exceeds
            0.5.
        """
        return self._decode_targets(self.predict_proba(X))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = True
        tags.classifier_tags.multi_label = True
        return tags


MLPClassifier.__doc__ = f"""Multilayer perceptron classifier trained with PyTorch.

    A softmax output layer over ``classes_`` on top of ``hidden_layer_sizes`` hidden layers, trained
    by mini-batch gradient descent on the CPU or a GPU. Labels may be strings, booleans or integers.
    A 2-D 0/1 label indicator matrix ``y`` trains a multilabel model instead: a sigmoid output per
    label, each label's own binary cross-entropy (summed over the labels), as scikit-learn's MLP.
    Every hyperparameter is a constructor argument, so :class:`~sklearn.model_selection.GridSearchCV`
    and :class:`~sknn_tune.FusedGridSearchCV` can tune it.

    Parameters
    ----------
{SHARED_PARAMETERS_DOC}    loss : {{'log_loss', 'squared_error'}}, default='log_loss'
        Cross-entropy of the softmax output, or half the mean squared error between the softmax
        output and the one-hot target (the comparison the Keras tutorials make). Multilabel: the
        binary cross-entropy of each label's sigmoid, summed over the labels, or half the mean
        squared error between the sigmoids and the indicator row.
    class_weight : dict, 'balanced' or None, default=None
        Multiplies each sample's weight by its class's weight; 'balanced' uses
        ``n_samples / (n_classes * count(class))``. Not for multilabel ``y``.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels; for multilabel ``y`` the label indices ``0 .. n_labels - 1``.
    multilabel_ : bool
        Whether ``y`` was a label indicator matrix (multilabel).
{SHARED_ATTRIBUTES_DOC}
    See Also
    --------
    MLPRegressor : The regressor on the same engine.
    sklearn.neural_network.MLPClassifier : scikit-learn's own MLP (no dropout, batch norm or GPU).
    skorch.NeuralNetClassifier : Wraps any PyTorch module as a classifier.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from sknn_tune import MLPClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = make_pipeline(StandardScaler(),
    ...                     MLPClassifier((32,), lr=1e-2, max_epochs=50, random_state=0))
    >>> clf.fit(X, y).score(X, y) > 0.9
    True
    >>> clf[-1].predict_proba(X[:2]).sum(axis=1).round(6)
    array([1., 1.])
    """
