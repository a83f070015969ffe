"""Bad input: each case raises a clear scikit-learn-style error, and nothing half-fitted is left
behind. A fresh estimator stays unfitted; a fitted one keeps predicting with its previous model,
as if the failed call had not happened."""

import copy

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.exceptions import NotFittedError
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from sknn_tune import MLPClassifier, MLPRegressor

RNG = np.random.RandomState(0)
X = RNG.randn(40, 4)
Y_CLF = np.array(["a", "b", "c"])[np.argmax(X[:, :3], axis=1)]
Y_REG = np.c_[X[:, 0] - X[:, 1], X[:, 2]]
ONES = np.ones(len(X))


def clf(**params):
    return MLPClassifier((8,), lr=1e-2, batch_size=16, max_epochs=2, random_state=0, **params)


def reg(**params):
    return MLPRegressor((8,), lr=1e-2, batch_size=16, max_epochs=2, random_state=0, **params)


def reg_early_stopping():
    return reg(early_stopping=True)


def with_value(array, value):
    """A float copy of ``array`` with one entry set to ``value``."""
    array = array.astype(float)
    array.reshape(len(array), -1)[3, -1] = value
    return array


def fitted_attributes(est):
    return {name: value for name, value in vars(est).items()
            if name.endswith("_") and not name.startswith("__")}


# (estimator, fit arguments, error, match) for fit calls that must fail.
BAD_FITS = [
    pytest.param(clf, dict(X=X[:0], y=Y_CLF[:0]), ValueError, r"0 sample\(s\)", id="clf-empty"),
    pytest.param(reg, dict(X=X[:0], y=Y_REG[:0]), ValueError, r"0 sample\(s\)", id="reg-empty"),
    pytest.param(clf, dict(X=X[:1], y=Y_CLF[:1]), ValueError, "at least 2 classes",
                 id="clf-one-sample"),
    pytest.param(reg_early_stopping, dict(X=X[:1], y=Y_REG[:1]), ValueError,
                 "The validation set is too small",  # scikit-learn's MLP's words
                 id="reg-one-sample-early-stopping"),
    pytest.param(clf, dict(X=X, y=np.full(len(X), "a")), ValueError,
                 "needs samples of at least 2 classes.*only one class", id="clf-one-class"),
    pytest.param(clf, dict(X=with_value(X, np.nan), y=Y_CLF), ValueError, "Input X contains NaN",
                 id="clf-nan-X"),
    pytest.param(reg, dict(X=with_value(X, np.nan), y=Y_REG), ValueError, "Input X contains NaN",
                 id="reg-nan-X"),
    pytest.param(clf, dict(X=with_value(X, np.inf), y=Y_CLF), ValueError,
                 "Input X contains infinity", id="clf-inf-X"),
    pytest.param(reg, dict(X=with_value(X, -np.inf), y=Y_REG), ValueError,
                 "Input X contains infinity", id="reg-inf-X"),
    pytest.param(reg, dict(X=X, y=with_value(Y_REG, np.nan)), ValueError, "Input y contains NaN",
                 id="reg-nan-y"),
    pytest.param(reg, dict(X=X, y=with_value(Y_REG[:, 0], np.inf)), ValueError,
                 "Input y contains infinity", id="reg-inf-y"),
    pytest.param(clf, dict(X=X, y=with_value(np.arange(len(X)) % 2, np.nan)), ValueError,
                 "Input y contains NaN", id="clf-nan-y"),
    pytest.param(clf, dict(X=sp.csr_matrix(with_value(X, np.nan)), y=Y_CLF), ValueError,
                 "Input X contains NaN", id="clf-sparse-csr-matrix-nan"),
    pytest.param(reg, dict(X=sp.csr_array(with_value(X, np.inf)), y=Y_REG), ValueError,
                 "Input X contains infinity", id="reg-sparse-csr-array-inf"),
    pytest.param(clf, dict(X=np.array([["x", "y", "z", "w"]] * 40, dtype=object), y=Y_CLF),
                 ValueError, "could not convert string to float", id="clf-object-strings"),
    pytest.param(reg, dict(X=X.astype(str).astype(object) + "kg", y=Y_REG), ValueError,
                 "could not convert string to float", id="reg-string-features"),
    pytest.param(clf, dict(X=X, y=Y_CLF[:-1]), ValueError,
                 r"inconsistent numbers of samples: \[40, 39\]", id="clf-mismatched-lengths"),
    pytest.param(reg, dict(X=X[:-3], y=Y_REG), ValueError,
                 r"inconsistent numbers of samples: \[37, 40\]", id="reg-mismatched-lengths"),
    pytest.param(clf, dict(X=X, y=X[:, 0]), ValueError, "Unknown label type: continuous",
                 id="clf-continuous-y"),
    pytest.param(clf, dict(X=X.reshape(40, 2, 2), y=Y_CLF), ValueError, "Found array with dim 3",
                 id="clf-3d-X"),
    pytest.param(reg, dict(X=X.reshape(40, 2, 2), y=Y_REG), ValueError, "Found array with dim 3",
                 id="reg-3d-X"),
    pytest.param(reg, dict(X=X, y=Y_REG.reshape(40, 2, 1)), ValueError, "Found array with dim 3",
                 id="reg-3d-y"),
    pytest.param(clf, dict(X=X[:, 0], y=Y_CLF), ValueError, "Expected 2D array, got 1D array",
                 id="clf-1d-X"),
    pytest.param(clf, dict(X=X, y=Y_CLF, sample_weight=with_value(ONES, -1.0)), ValueError,
                 "Negative values in data passed to `sample_weight`", id="clf-negative-weight"),
    pytest.param(reg, dict(X=X, y=Y_REG, sample_weight=with_value(ONES, -0.5)), ValueError,
                 "Negative values in data passed to `sample_weight`", id="reg-negative-weight"),
    pytest.param(clf, dict(X=X, y=Y_CLF, sample_weight=with_value(ONES, np.nan)), ValueError,
                 "sample_weight contains NaN", id="clf-nan-weight"),
    pytest.param(reg, dict(X=X, y=Y_REG, sample_weight=with_value(ONES, np.inf)), ValueError,
                 "sample_weight contains infinity", id="reg-inf-weight"),
    pytest.param(clf, dict(X=X, y=Y_CLF, sample_weight=np.zeros(len(X))), ValueError,
                 "Sample weights must contain at least one non-zero number", id="clf-zero-weights"),
    pytest.param(reg, dict(X=X, y=Y_REG, sample_weight=np.zeros(len(X))), ValueError,
                 "Sample weights must contain at least one non-zero number", id="reg-zero-weights"),
    pytest.param(reg, dict(X=X, y=Y_REG, sample_weight=ONES[:-1]), ValueError,
                 r"sample_weight.shape == \(39,\), expected \(40,\)", id="reg-short-weights"),
    pytest.param(clf, dict(X=X, y=Y_CLF, X_val=X[:5]), ValueError, "Pass both X_val and y_val",
                 id="clf-X_val-alone"),
    pytest.param(clf, dict(X=X, y=Y_CLF, X_val=X[:5, :3], y_val=Y_CLF[:5]), ValueError,
                 "X has 3 features, but MLPClassifier is expecting 4", id="clf-X_val-features"),
    pytest.param(clf, dict(X=X, y=Y_CLF, X_val=X[:2], y_val=np.array(["a", "q"])), ValueError,
                 r"labels \['q'\] that are not in classes_", id="clf-y_val-unseen-label"),
    pytest.param(reg, dict(X=X, y=Y_REG, X_val=X[:5], y_val=Y_REG[:5, 0]), ValueError,
                 "y has 1 outputs, but MLPRegressor was fitted with 2", id="reg-y_val-outputs"),
]


@pytest.fixture(scope="module")
def fitted():
    return {clf: clf().fit(X, Y_CLF), reg: reg().fit(X, Y_REG)}


def _fitted_like(fitted, make):
    """A fitted copy of the estimator ``make`` builds (the same kind, fitted on good data)."""
    kind = clf if isinstance(make(), MLPClassifier) else reg
    est = copy.deepcopy(fitted[kind])
    est.set_params(**make().get_params())
    return est


@pytest.mark.parametrize(("make", "args", "error", "match"), BAD_FITS)
def test_bad_fit_raises_and_leaves_fresh_estimator_unfitted(make, args, error, match):
    est = make()
    with pytest.raises(error, match=match):
        est.fit(**args)
    with pytest.raises(NotFittedError):
        check_is_fitted(est)
    assert fitted_attributes(est) == {}


@pytest.mark.parametrize(("make", "args", "error", "match"), BAD_FITS)
def test_bad_refit_keeps_previous_model(fitted, make, args, error, match):
    est = _fitted_like(fitted, make)
    before = fitted_attributes(est)
    predictions = est.predict(X)
    with pytest.raises(error, match=match):
        est.fit(**args)
    after = fitted_attributes(est)
    assert after.keys() == before.keys()
    assert all(after[name] is before[name] for name in before)
    np.testing.assert_array_equal(est.predict(X), predictions)


def test_failed_refit_with_other_features_keeps_feature_count_and_classes(fitted):
    # validate_data would have reset n_features_in_ to 2 and classes_ to ['a'] before the
    # one-class check; both must come back.
    est = copy.deepcopy(fitted[clf])
    proba = est.predict_proba(X)
    with pytest.raises(ValueError, match="at least 2 classes"):
        est.fit(X[:, :2], np.full(len(X), "a"))
    assert est.n_features_in_ == 4
    np.testing.assert_array_equal(est.classes_, ["a", "b", "c"])
    np.testing.assert_array_equal(est.predict_proba(X), proba)


def test_failed_refit_keeps_feature_names():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(X, columns=list("pqrs"))
    est = reg().fit(frame, Y_REG)
    predictions = est.predict(frame)
    with pytest.raises(ValueError, match="Input y contains NaN"):
        est.fit(X, with_value(Y_REG, np.nan))  # no names: validation dropped feature_names_in_
    np.testing.assert_array_equal(est.feature_names_in_, list("pqrs"))
    np.testing.assert_array_equal(est.predict(frame), predictions)


def test_failed_warm_start_fit_keeps_model_and_continues_after(fitted):
    est = copy.deepcopy(fitted[reg]).set_params(warm_start=True)
    params = est.model_.params.clone()
    with pytest.raises(ValueError, match="Input X contains NaN"):
        est.fit(with_value(X, np.nan), Y_REG)
    with pytest.raises(ValueError, match="X has 3 features, but MLPRegressor is expecting 4"):
        est.fit(X[:, :3], Y_REG)
    assert est.n_iter_ == 2 and est.model_.params.equal(params)
    est.fit(X, Y_REG)
    assert est.n_iter_ == 2 and len(est.history_) == 4


# -------------------------------------------------------------------------------------------------
# partial_fit


def test_partial_fit_unseen_label_after_classes_given():
    est = clf().partial_fit(X, Y_CLF, classes=["a", "b", "c", "d"])
    proba, n_iter = est.predict_proba(X), est.n_iter_
    with pytest.raises(ValueError, match=r"labels \['e'\] that are not in classes_"):
        est.partial_fit(X[:2], np.array(["a", "e"]))
    assert est.n_iter_ == n_iter
    np.testing.assert_array_equal(est.predict_proba(X), proba)
    np.testing.assert_array_equal(est.classes_, ["a", "b", "c", "d"])


def test_partial_fit_classes_errors():
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        clf().partial_fit(X, Y_CLF)
    est = clf().partial_fit(X, Y_CLF, classes=["a", "b", "c"])
    with pytest.raises(ValueError, match="is not the same as on last call to partial_fit"):
        est.partial_fit(X, Y_CLF, classes=["a", "b", "c", "d"])
    with pytest.raises(ValueError, match=r"labels \['b'\] that are not in classes_"):
        clf().partial_fit(X, Y_CLF, classes=["a", "c"])


def test_failed_first_partial_fit_leaves_nothing_behind():
    est = clf()
    with pytest.raises(ValueError, match="Input X contains NaN"):
        est.partial_fit(with_value(X, np.nan), Y_CLF, classes=["a", "b", "c"])
    assert fitted_attributes(est) == {}  # not even the classes_ that partial_fit set first
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        est.partial_fit(X, Y_CLF)
    est.partial_fit(X, Y_CLF, classes=["a", "b", "c", "d"])
    np.testing.assert_array_equal(est.classes_, ["a", "b", "c", "d"])


@pytest.mark.parametrize(("args", "match"), [
    (dict(X=X[:, :3], y=Y_REG), "X has 3 features, but MLPRegressor is expecting 4"),
    (dict(X=X, y=Y_REG[:, 0]), "y has 1 outputs, but MLPRegressor was fitted with 2"),
    (dict(X=sp.csr_matrix(X[:, :3]), y=Y_REG), "X has 3 features, but MLPRegressor is expecting 4"),
    (dict(X=X, y=Y_REG, sample_weight=-ONES), "Negative values"),
])
def test_failed_partial_fit_keeps_regressor_state(fitted, args, match):
    est = copy.deepcopy(fitted[reg])
    predictions, n_iter = est.predict(X), est.n_iter_
    with pytest.raises((ValueError, TypeError), match=match):
        est.partial_fit(**args)
    assert est.n_iter_ == n_iter
    np.testing.assert_array_equal(est.predict(X), predictions)


# -------------------------------------------------------------------------------------------------
# predict


@pytest.mark.parametrize("kind", ["clf", "reg"])
@pytest.mark.parametrize(("X_bad", "error", "match"), [
    (X[:, :3], ValueError, "X has 3 features, but MLP(Classifier|Regressor) is expecting 4"),
    (np.c_[X, X[:, 0]], ValueError, "X has 5 features"),
    (X[:0], ValueError, r"0 sample\(s\)"),
    (with_value(X, np.nan), ValueError, "Input X contains NaN"),
    (with_value(X, np.inf), ValueError, "Input X contains infinity"),
    (sp.csr_matrix(with_value(X, np.nan)), ValueError, "Input X contains NaN"),
    (X.reshape(40, 2, 2), ValueError, "Found array with dim 3"),
    (np.array([["x", "y", "z", "w"]], dtype=object), ValueError, "could not convert string"),
])
def test_bad_predict_input(fitted, kind, X_bad, error, match):
    est = fitted[{"clf": clf, "reg": reg}[kind]]
    methods = ["predict", "predict_proba"] if kind == "clf" else ["predict"]
    for method in methods:
        with pytest.raises(error, match=match):
            getattr(est, method)(X_bad)


@pytest.mark.parametrize("make", [clf, reg])
def test_predict_before_fit_raises_not_fitted(make):
    with pytest.raises(NotFittedError, match="not fitted yet"):
        make().predict(X)


_TARGET_KINDS = {
    "int": np.arange(30) % 3,
    "uint8": (np.arange(30) % 2).astype(np.uint8),
    "bool": np.arange(30) % 2 == 0,
    "str": np.array(["a", "b", "c"])[np.arange(30) % 3],
    "object str": np.array(["a", "b"], dtype=object)[np.arange(30) % 2],
    "float integral": (np.arange(30) % 3).astype(float),
    "float continuous": np.linspace(0.0, 1.0, 30),
    "object mixed": np.array([1, "a", 2.5] * 10, dtype=object),
}


@pytest.mark.parametrize("kind", sorted(_TARGET_KINDS))
def test_classifier_accepts_the_targets_scikit_learn_accepts(kind):
    # The classifier skips scikit-learn's target check where it cannot fail (1-D ints, bools,
    # strings): it must still accept and refuse exactly what that check does.
    y = _TARGET_KINDS[kind]
    X = np.random.default_rng(0).normal(size=(len(y), 3))
    try:
        check_classification_targets(y)
    except ValueError as expected:
        with pytest.raises(ValueError, match="Unknown label type") as raised:
            MLPClassifier((2,), max_epochs=1, patience=None).fit(X, y)
        assert str(raised.value) == str(expected)
    else:
        fitted = MLPClassifier((2,), max_epochs=1, patience=None).fit(X, y)
        np.testing.assert_array_equal(fitted.classes_, np.unique(y))


@pytest.mark.parametrize("valid, invalid", [
    ({"lr": 0.01}, {"lr": "0.01"}),  # the same value, another type
    ({"lr": 0.01}, {"lr": -0.01}),
    ({"hidden_layer_sizes": [8]}, {"hidden_layer_sizes": "8"}),
    ({"batch_size": 16}, {"batch_size": 16.0}),
    ({"early_stopping": True}, {"early_stopping": 1.5}),
])
def test_a_parameter_set_validated_before_does_not_let_another_through(valid, invalid):
    # Valid parameter sets are remembered (a search validates each thousands of times); one that
    # differs in a value or only in its type is validated afresh.
    clf().set_params(**valid).fit(X, Y_CLF)
    clf().set_params(**valid).fit(X, Y_CLF)
    with pytest.raises(ValueError, match="must be"):
        clf().set_params(**invalid).fit(X, Y_CLF)


def test_a_parameter_that_is_not_a_plain_value_is_validated_every_time():
    from sknn_tune._base import _plain_parameters_key

    params = clf().get_params()
    assert _plain_parameters_key(MLPClassifier, params) is not None
    assert _plain_parameters_key(MLPClassifier, {**params, "scoring": len}) is None
    assert _plain_parameters_key(MLPClassifier, {**params, "class_weight": {"a": 2.0}}) is None
    with pytest.raises(ValueError, match="scoring"):
        clf(scoring=3).fit(X, Y_CLF)
