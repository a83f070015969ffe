"""MLPRegressor as a scikit-learn citizen: 1-D and multi-output targets, inputs, errors,
reproducibility, pickling and meta-estimators, each checked against a reference.

Estimators run where ``device='auto'`` resolves (the run's ``--device``); two fits that must be the
same training are compared with ``assert_same_training`` (bit for bit on the CPU)."""

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import assert_same_training, training_tolerance
from sklearn.base import clone
from sklearn.compose import TransformedTargetRegressor
from sklearn.datasets import make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import r2_score
from sklearn.model_selection import KFold, cross_val_score, train_test_split
from sklearn.neural_network import MLPRegressor as SkMLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError

from sknn_tune import DivergenceError, MLPRegressor


@pytest.fixture(scope="module")
def data():
    X, Y = make_regression(n_samples=160, n_features=5, n_informative=4, n_targets=2, noise=5.0,
                           random_state=0)
    X = StandardScaler().fit_transform(X)
    return X, Y / Y.std(axis=0)


def small(**params):
    """A small, fast, seeded regressor."""
    defaults = dict(hidden_layer_sizes=(16,), lr=1e-2, batch_size=32, max_epochs=15,
                    random_state=0)
    return MLPRegressor(**{**defaults, **params})


def test_one_dimensional_target_gives_one_dimensional_predictions(data):
    X, Y = data
    y = Y[:, 0]
    reg = small().fit(X, y)
    assert reg.n_outputs_ == 1
    assert reg.predict(X).shape == (len(X),)
    # A column vector is the same single target (as in scikit-learn's MLPRegressor).
    column = small().fit(X, y[:, None])
    assert_same_training(column.predict(X), reg.predict(X))
    assert reg.score(X, y) == pytest.approx(r2_score(y, reg.predict(X)))
    assert reg.score(X, y) > 0.8


def test_multi_output(data):
    X, Y = data
    reg = small(max_epochs=25).fit(X, Y)
    assert reg.n_outputs_ == 2
    predicted = reg.predict(X)
    assert predicted.shape == Y.shape
    # Both outputs are learnt, and score is scikit-learn's uniform average of the R^2.
    assert r2_score(Y, predicted, multioutput="raw_values").min() > 0.8
    assert reg.score(X, Y) == pytest.approx(r2_score(Y, predicted))
    with pytest.raises(ValueError, match="y has 1 outputs"):
        clone(reg).set_params(warm_start=True).fit(X, Y).fit(X, Y[:, 0])


def test_int_float32_dataframe_and_series(data):
    X, Y = data

    def small(**params):
        return MLPRegressor((8,), batch_size=32, max_epochs=5, random_state=0, **params)

    y = Y[:, 0]
    y_int = np.round(y * 10).astype(np.int64)
    assert_same_training(small().fit(X, y_int).predict(X),
                         small().fit(X, y_int.astype(float)).predict(X))
    f32 = small().fit(X.astype(np.float32), y).predict(X.astype(np.float32))
    assert f32.dtype == np.float32
    np.testing.assert_allclose(f32, small().fit(X, y).predict(X), atol=1e-4)
    frame = pd.DataFrame(X, columns=list("abcde"))
    reg = small().fit(frame, pd.Series(y))
    np.testing.assert_array_equal(reg.feature_names_in_, list("abcde"))
    assert_same_training(reg.predict(frame), small().fit(X, y).predict(X))
    # A DataFrame of two targets is a multi-output target.
    multi = small().fit(frame, pd.DataFrame(Y, columns=["u", "v"]))
    assert_same_training(multi.predict(frame), small().fit(X, Y).predict(X))
    with pytest.raises(ValueError, match="feature names should match"):
        reg.predict(frame[list("edcba")])


def test_input_errors(data):
    X, Y = data
    y = Y[:, 0]
    with pytest.raises(ValueError, match="Input y contains NaN"):
        small().fit(X, np.where(np.arange(len(y)) == 4, np.nan, y))
    with pytest.raises(ValueError, match="Input X contains infinity"):
        small().fit(np.where(X > 2, np.inf, X), y)
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        small().fit(X, y[:-3])
    with pytest.raises(ValueError, match="needs numeric targets"):
        small().fit(X, np.array(["a", "b"] * (len(y) // 2)))
    with pytest.raises(ValueError, match="X has 2 features, but MLPRegressor is expecting 5"):
        small().fit(X, y).predict(X[:, :2])


@pytest.mark.parametrize("param, value, valid", [
    ("loss", "log_loss", "huber"),
    ("activation", "softplus", "gelu"),
    ("optimizer", "lion", "rmsprop"),
    ("noise_std", -1.0, "range"),
    ("scoring", "accuracy_typo", "neg_mean_absolute_error"),
])
def test_invalid_hyperparameters(data, param, value, valid):
    with pytest.raises(InvalidParameterError, match=f"'{param}' parameter of MLPRegressor") as err:
        small(**{param: value}).fit(data[0], data[1][:, 0])
    assert valid in str(err.value)


def test_divergence(data):
    X, Y = data
    with pytest.raises(DivergenceError, match=r"MLPRegressor diverged at epoch \d+") as err:
        small(optimizer="sgd", lr=1e4, max_epochs=30).fit(X * 1000, Y * 1000)
    assert "lr=1e+04" in str(err.value)
    assert not np.isfinite(err.value.history["train_loss"].iloc[-1])


def test_reproducible_and_pickles(data):
    X, Y = data
    params = dict(dropout=0.1, noise_std=0.1)
    a = small(random_state=1, **params).fit(X, Y)
    assert_same_training(a.predict(X), small(random_state=1, **params).fit(X, Y).predict(X))
    assert not np.allclose(a.predict(X), small(random_state=2, **params).fit(X, Y).predict(X))
    loaded = pickle.loads(pickle.dumps(a))
    # The same weights; a pickle holds CPU tensors, so on a GPU run the loaded model predicts on
    # the CPU: the same numbers to float32 rounding there, bit for bit on a CPU run.
    assert_same_training(loaded.predict(X), a.predict(X))


def test_cross_val_score_equals_a_loop_by_hand(data):
    X, Y = data
    y = Y[:, 1]
    reg = small(max_epochs=8)
    cv = KFold(3, shuffle=True, random_state=0)
    by_hand = [r2_score(y[test], clone(reg).fit(X[train], y[train]).predict(X[test]))
               for train, test in cv.split(X)]
    np.testing.assert_allclose(cross_val_score(reg, X, y, cv=cv), by_hand, atol=training_tolerance())


def test_transformed_target_regressor(data):
    X, Y = data
    y = Y[:, 0] * 300 + 1000  # far from standardised: the transformer matters
    pipe = make_pipeline(StandardScaler(), small(max_epochs=10))
    wrapped = TransformedTargetRegressor(pipe, transformer=StandardScaler()).fit(X, y)
    # The reference: scale y by hand, fit, and invert.
    scaler = StandardScaler().fit(y[:, None])
    fitted = clone(pipe).fit(X, scaler.transform(y[:, None]).ravel())
    expected = scaler.inverse_transform(fitted.predict(X)[:, None]).ravel()
    # (the same training: to 1e-12 on the CPU, within the design's tolerance on a GPU)
    np.testing.assert_allclose(wrapped.predict(X), expected, rtol=max(1e-12, training_tolerance()))
    assert wrapped.score(X, y) > 0.8


def test_r2_comparable_to_sklearn_mlp():
    X, y = make_regression(n_samples=600, n_features=10, n_informative=6, noise=10.0,
                           random_state=1)
    X_train, X_test, y_train, y_test = train_test_split(X, y / y.std(), random_state=0)
    # scikit-learn initialises with Glorot-uniform: the same configuration is init='xavier_uniform'.
    ours = MLPRegressor((32,), lr=1e-3, batch_size=32, max_epochs=20, init="xavier_uniform",
                        random_state=0)
    theirs = SkMLPRegressor(hidden_layer_sizes=(32,), learning_rate_init=1e-3, batch_size=32, max_iter=20,
                            random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        theirs.fit(X_train, y_train)
    ours_r2 = ours.fit(X_train, y_train).score(X_test, y_test)
    theirs_r2 = theirs.score(X_test, y_test)
    assert theirs_r2 > 0.8
    assert abs(ours_r2 - theirs_r2) < 0.05, (ours_r2, theirs_r2)
