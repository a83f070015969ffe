"""Where a user of scikit-learn's MLP expects the same behaviour (issue: sklearn parity)."""

import re

import numpy as np
import pytest
from sklearn.datasets import make_classification, make_regression
from sklearn.neural_network import MLPClassifier as SklearnMLPClassifier

from sknn_tune import MLPClassifier, MLPRegressor
from sknn_tune._base import SKLEARN_NAMES
from sknn_tune.exceptions import DivergenceError

X, Y = make_classification(90, 5, n_informative=3, n_redundant=0, n_classes=3, random_state=0)


def clf(**params):
    return MLPClassifier(**{"hidden_layer_sizes": (8,), "max_epochs": 3, "random_state": 0,
                            "device": "cpu", **params})


@pytest.mark.parametrize("name", sorted(SKLEARN_NAMES))
def test_sklearn_parameter_names_are_answered_with_ours(name):
    assert name in SklearnMLPClassifier().get_params()  # really scikit-learn's name
    hint = re.escape(f"{name} -> {SKLEARN_NAMES[name]}")
    with pytest.raises(TypeError, match=hint):
        MLPClassifier(**{name: 1})
    with pytest.raises(TypeError, match=hint):
        MLPRegressor().set_params(**{name: 1})


def test_logistic_activation_names_sigmoid():
    with pytest.raises(ValueError, match="activation='sigmoid'"):
        clf(activation="logistic").fit(X, Y)


def test_option_sets_in_errors_are_sorted():
    with pytest.raises(ValueError) as err:
        clf(optimizer="lion").fit(X, Y)
    options = str(err.value).split("{")[1].split("}")[0].replace("'", "").split(", ")
    assert options == sorted(options) and "adam" in options


@pytest.mark.parametrize("sizes", [(64.5,), (8, 2.0), (True,), ("8",)])
def test_hidden_layer_sizes_must_be_integers(sizes):
    with pytest.raises(ValueError, match="hidden_layer_sizes must be positive integers"):
        clf(hidden_layer_sizes=sizes).fit(X, Y)


def test_regressor_rejects_string_targets_as_sklearn_does():
    X_reg, y = make_regression(40, 3, random_state=0)
    strings = y.round(2).astype(str)
    with pytest.raises(Exception):  # noqa: B017 - scikit-learn raises a numpy ufunc error
        __import__("sklearn.neural_network").neural_network.MLPRegressor(max_iter=2).fit(
            X_reg, strings)
    with pytest.raises(ValueError, match="needs numeric targets"):
        MLPRegressor(max_epochs=2).fit(X_reg, strings)


def test_warm_fit_needs_every_class_partial_fit_does_not():
    est = clf(warm_start=True).fit(X, Y)
    two = Y != 2
    with pytest.raises(ValueError, match="same classes as in the previous call"):
        est.fit(X[two], Y[two])
    reference = SklearnMLPClassifier((8,), max_iter=3, warm_start=True).fit(X, Y)
    with pytest.raises(ValueError, match="same classes as in the previous call"):
        reference.fit(X[two], Y[two])
    clf().partial_fit(X, Y, classes=[0, 1, 2]).partial_fit(X[two], Y[two])


def test_divergence_under_warm_start_keeps_the_previous_model():
    est = clf(warm_start=True, optimizer="sgd", lr=1e-3, patience=None).fit(X, Y)
    proba, history = est.predict_proba(X), est.history_.copy()
    est.set_params(lr=1e7)
    with pytest.raises(DivergenceError):
        est.fit(X * 1e3, Y)
    np.testing.assert_array_equal(est.predict_proba(X), proba)
    assert est.history_.equals(history) and est.n_iter_ == 3
    # and it goes on training from there
    est.set_params(lr=1e-3).fit(X, Y)
    assert est.n_iter_ == 3 and len(est.history_) == 6


def test_early_stopping_split_fails_as_sklearns():
    # Binary labels, one sample of a class: the stratified split raises scikit-learn's error.
    binary = X, np.r_[1, np.zeros(len(X) - 1, dtype=int)]
    for est in (clf(early_stopping=True), SklearnMLPClassifier(early_stopping=True)):
        with pytest.raises(ValueError, match=r"least populated class.*only 1 member"):
            est.fit(*binary)
    # A validation set of one sample cannot be scored.
    for est in (clf(early_stopping=True), SklearnMLPClassifier(early_stopping=True)):
        with pytest.raises(ValueError, match="The validation set is too small"):
            est.fit(X[:10], Y[:10])
    # Fewer validation rows than classes: both fit (ours without strata).
    clf(early_stopping=True, validation_fraction=0.1).fit(X[:12], Y[:12])
    SklearnMLPClassifier(early_stopping=True, validation_fraction=0.1, max_iter=2).fit(
        X[:12], Y[:12])


def test_scoring_without_a_validation_set_warns():
    with pytest.warns(UserWarning, match="scoring='accuracy' scores a validation set"):
        clf(scoring="accuracy").fit(X, Y)
