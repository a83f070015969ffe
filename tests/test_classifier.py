"""MLPClassifier as a scikit-learn citizen: inputs, labels, errors, reproducibility, pickling, and
the meta-estimators it must work inside. Every assertion has a reference on the other side: a second
fit, scikit-learn's own metric or MLP, or the same computation done by hand.

Estimators run where ``device='auto'`` resolves (the run's ``--device``). Two fits that must be the
same training are compared with ``assert_same_training``: bit for bit on the CPU, within the
design's tolerance on a GPU (float32)."""

import os
import pickle
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import assert_same_training, run_device, training_tolerance
from sklearn.base import clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.datasets import load_digits, make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score
from sklearn.model_selection import (
    GridSearchCV,
    StratifiedKFold,
    cross_val_score,
    train_test_split,
)
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError

from sknn_tune import DivergenceError, MLPClassifier


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(n_samples=150, n_features=6, n_informative=4, n_redundant=0,
                               n_classes=3, n_clusters_per_class=1, random_state=0)
    return StandardScaler().fit_transform(X), y


def small(**params):
    """A small, fast, seeded classifier."""
    defaults = dict(hidden_layer_sizes=(16,), lr=1e-2, batch_size=32, max_epochs=15, random_state=0)
    return MLPClassifier(**{**defaults, **params})


# ---------------------------------------------------------------------------------------------
# inputs


def test_int_float32_and_float64_inputs(data):
    X, y = data
    X_int = np.round(X * 3).astype(np.int64)
    from_int = small().fit(X_int, y)
    from_float = small().fit(X_int.astype(np.float64), y)
    # Integers are converted to float64: the very same model.
    assert_same_training(from_int.predict_proba(X_int),
                         from_float.predict_proba(X_int.astype(np.float64)))
    # float32 trains in float32 (as scikit-learn's MLP does) to nearly the same model.
    from_f32 = small().fit(X.astype(np.float32), y)
    proba_f32 = from_f32.predict_proba(X.astype(np.float32))
    assert proba_f32.dtype == np.float32
    # float64 on the CPU; a GPU computes in float32 whatever the input (compute_dtype).
    proba_f64 = small().fit(X, y).predict_proba(X)
    assert proba_f64.dtype == (np.float64 if run_device().type == "cpu" else np.float32)
    np.testing.assert_allclose(proba_f32, proba_f64, atol=1e-4)


def test_dataframe_and_series(data):
    X, y = data
    columns = [f"f{i}" for i in range(X.shape[1])]
    frame, series = pd.DataFrame(X, columns=columns), pd.Series(y, name="target")
    clf = small().fit(frame, series)
    np.testing.assert_array_equal(clf.feature_names_in_, columns)
    assert clf.n_features_in_ == X.shape[1]
    assert_same_training(clf.predict_proba(frame), small().fit(X, y).predict_proba(X))
    # Other column names: scikit-learn's error; a bare array: scikit-learn's warning.
    with pytest.raises(ValueError, match="feature names should match"):
        clf.predict(frame.rename(columns={"f0": "other"}))
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        clf.predict(X)
    # Fitted on an array, the estimator has no feature names.
    assert not hasattr(small().fit(X, y), "feature_names_in_")


@pytest.mark.parametrize("labels", [
    np.array(["ant", "bee", "cat"]),
    np.array([-7, 3, 40]),
    np.array(["no", "yes", "maybe"], dtype=object),
], ids=["str", "int", "object"])
def test_labels_come_back_as_given(data, labels):
    X, y = data
    # Sorted labels keep the class order of the codes 0, 1, 2: the same network must come out.
    y_labels = np.sort(labels)[y]
    clf = small().fit(X, y_labels)
    reference = small().fit(X, y)
    np.testing.assert_array_equal(clf.classes_, np.sort(labels))
    proba = clf.predict_proba(X)
    assert_same_training(proba, reference.predict_proba(X))
    predicted = clf.predict(X)
    assert predicted.dtype == y_labels.dtype
    # (decoded from this model's own probabilities: two trainings on a GPU agree to 1e-3 only)
    np.testing.assert_array_equal(predicted, np.sort(labels)[proba.argmax(axis=1)])


def test_bool_labels_and_string_series(data):
    X, y = data
    binary = y == 1
    clf = small().fit(X, binary)
    assert clf.predict(X).dtype == bool
    np.testing.assert_array_equal(clf.classes_, [False, True])
    # The same network as with the labels 0 and 1; the labels decoded from its own probabilities.
    proba = clf.predict_proba(X)
    assert_same_training(proba, small().fit(X, binary.astype(int)).predict_proba(X))
    np.testing.assert_array_equal(clf.predict(X), proba.argmax(axis=1) == 1)
    # A pandas string Series (pandas' own string dtype) gives the labels back as its values.
    names = pd.Series(np.array(["a", "b", "c"])[y])
    by_name = small().fit(X, names)
    proba = by_name.predict_proba(X)
    assert_same_training(proba, small().fit(X, y).predict_proba(X))
    np.testing.assert_array_equal(by_name.predict(X), np.array(["a", "b", "c"])[proba.argmax(axis=1)])


def test_predict_proba_sums_to_one_and_argmax_is_predict(data):
    X, y = data
    clf = small().fit(X, y)
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-12 if proba.dtype == np.float64 else 1e-6)
    np.testing.assert_array_equal(clf.classes_[proba.argmax(axis=1)], clf.predict(X))
    np.testing.assert_allclose(clf.predict_log_proba(X), np.log(proba))
    assert clf.score(X, y) == accuracy_score(y, clf.predict(X))


# ---------------------------------------------------------------------------------------------
# errors


@pytest.mark.parametrize("bad, message", [(np.nan, "Input X contains NaN"),
                                          (np.inf, "Input X contains infinity")])
def test_non_finite_inputs_are_rejected(data, bad, message):
    X, y = data
    X = X.copy()
    X[3, 2] = bad
    with pytest.raises(ValueError, match=message):
        small().fit(X, y)
    with pytest.raises(ValueError, match=message):
        small().fit(data[0], y).predict(X)


def test_shape_errors(data):
    X, y = data
    clf = small().fit(X, y)
    with pytest.raises(ValueError, match="X has 4 features, but MLPClassifier is expecting 6"):
        clf.predict(X[:, :4])
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        small().fit(X, y[:-1])
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        small().fit(X[:-1], y)
    with pytest.raises(ValueError, match=r"sample_weight\.shape"):
        small().fit(X, y, sample_weight=np.ones(len(y) - 1))
    with pytest.raises(ValueError, match="Unknown label type"):
        small().fit(X, np.linspace(0, 1, len(y)))
    with pytest.raises(ValueError, match="at least 2 classes"):
        small().fit(X, np.zeros(len(y)))


@pytest.mark.parametrize("param, value, valid", [
    ("activation", "foo", "relu"),
    ("optimizer", "bar", "adam"),
    ("dropout", 1.5, "range"),
    ("lr", -1.0, "range"),
    ("loss", "hinge", "log_loss"),
    ("class_weight", "weird", "balanced"),
    ("lr_schedule", "linear", "cosine"),
    ("init", "zeros", "he_normal"),
    ("batch_size", 0, "auto"),
    ("scoring", "no_such_scorer", "accuracy"),
])
def test_invalid_hyperparameters_name_the_valid_options(data, param, value, valid):
    X, y = data
    with pytest.raises(InvalidParameterError, match=f"'{param}' parameter of MLPClassifier") as err:
        small(**{param: value}).fit(X, y)
    assert valid in str(err.value)


def test_bad_hidden_layer_sizes(data):
    with pytest.raises(ValueError, match="hidden_layer_sizes must be positive"):
        small(hidden_layer_sizes=(8, 0)).fit(*data)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_requested_without_cuda(data):
    with pytest.raises(ValueError, match="CUDA is not available"):
        small(device="cuda").fit(*data)


def test_invalid_device_string(data):
    with pytest.raises(ValueError, match="not a valid torch device"):
        small(device="abacus").fit(*data)


def test_divergence_raises_with_epoch_hyperparameters_and_history(data):
    X, y = data
    # Unscaled float32 inputs and a huge SGD step overflow within a few epochs.
    clf = small(optimizer="sgd", lr=1e4, max_epochs=30)
    with pytest.raises(DivergenceError, match=r"diverged at epoch (\d+)") as err:
        clf.fit(X.astype(np.float32) * 1000, y)
    message = str(err.value)
    epoch = int(err.value.args[0].split("epoch ")[1].split(":")[0])
    assert "lr=1e+04" in message and "optimizer='sgd'" in message
    # Only the hyperparameters plain SGD uses; the estimator is left unfitted.
    assert "momentum" not in message and "beta1" not in message
    assert not hasattr(clf, "model_") and not hasattr(clf, "history_")
    history = err.value.history
    assert isinstance(history, pd.DataFrame)
    assert len(history) == epoch == history["epoch"].iloc[-1]
    assert not np.isfinite(history["train_loss"].iloc[-1])
    assert np.isfinite(history["train_loss"].iloc[:-1]).all()
    assert isinstance(err.value, FloatingPointError)


# ---------------------------------------------------------------------------------------------
# reproducibility and persistence


def test_random_state_reproducible_and_seeds_differ(data):
    X, y = data
    params = dict(dropout=0.2, early_stopping=True, validation_fraction=0.2, max_epochs=5)
    first = small(random_state=3, **params).fit(X, y).predict_proba(X)
    assert_same_training(first, small(random_state=3, **params).fit(X, y).predict_proba(X))
    other = small(random_state=4, **params).fit(X, y).predict_proba(X)
    assert np.abs(first - other).max() > 1e-3
    # A RandomState instance is consumed like scikit-learn's: equal states give equal fits.
    a = small(random_state=np.random.RandomState(5), **params).fit(X, y).predict_proba(X)
    b = small(random_state=np.random.RandomState(5), **params).fit(X, y).predict_proba(X)
    assert_same_training(a, b)


def test_pickle_round_trip(data):
    X, y = data
    clf = small(batch_norm=True, early_stopping=True).fit(X, y)
    loaded = pickle.loads(pickle.dumps(clf))
    # The same weights; a pickle holds CPU tensors, so on a GPU run the loaded model predicts on
    # the CPU: the same numbers to float32 rounding there, bit for bit on a CPU run.
    assert_same_training(loaded.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))
    pd.testing.assert_frame_equal(loaded.history_, clf.history_)
    assert loaded.summary() == clf.summary()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_model_unpickles_on_a_machine_without_gpu(data, tmp_path):
    X, y = data
    clf = small(device="cuda").fit(X, y)
    assert clf.model_.params.device.type == "cuda"
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(clf))
    np.save(tmp_path / "X.npy", X)
    script = ("import pickle, numpy as np, torch; assert not torch.cuda.is_available();"
              f"clf = pickle.load(open({str(path)!r}, 'rb'));"
              f"proba = clf.predict_proba(np.load({str(tmp_path / 'X.npy')!r}));"
              f"np.save({str(tmp_path / 'proba.npy')!r}, proba)")
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    subprocess.run([sys.executable, "-c", script], check=True, env=env)
    np.testing.assert_allclose(np.load(tmp_path / "proba.npy"), clf.predict_proba(X), atol=1e-5)


# ---------------------------------------------------------------------------------------------
# inside scikit-learn's meta-estimators


def test_cross_val_score_and_grid_search_in_a_pipeline(data):
    X, y = data
    X = X * 10 + 3  # the pipeline's scaler has work to do
    pipe = make_pipeline(StandardScaler(), small(max_epochs=10))
    cv = StratifiedKFold(3)
    # The reference: each fold by hand.
    manual = {}
    for lr in (1e-3, 3e-2):
        folds = []
        for train, test in cv.split(X, y):
            fitted = clone(pipe).set_params(mlpclassifier__lr=lr).fit(X[train], y[train])
            folds.append(accuracy_score(y[test], fitted.predict(X[test])))
        manual[lr] = folds
        scores = cross_val_score(clone(pipe).set_params(mlpclassifier__lr=lr), X, y, cv=cv)
        np.testing.assert_allclose(scores, folds, atol=training_tolerance())
    search = GridSearchCV(pipe, {"mlpclassifier__lr": [1e-3, 3e-2]}, cv=cv, n_jobs=2).fit(X, y)
    np.testing.assert_allclose(search.cv_results_["mean_test_score"],
                               [np.mean(manual[1e-3]), np.mean(manual[3e-2])],
                               atol=training_tolerance())
    best = max(manual, key=lambda lr: np.mean(manual[lr]))
    assert search.best_params_ == {"mlpclassifier__lr": best}
    refit = clone(pipe).set_params(mlpclassifier__lr=best).fit(X, y)
    assert_same_training(search.predict_proba(X), refit.predict_proba(X))


def test_calibrated_classifier_cv(data):
    X, y = data
    clf = small(max_epochs=10)
    calibrated = CalibratedClassifierCV(clf, cv=3, method="sigmoid").fit(X, y)
    # Each calibrated member wraps our classifier fitted on its fold, exactly as a fit by hand.
    for member, (train, _) in zip(calibrated.calibrated_classifiers_,
                                  StratifiedKFold(3).split(X, y)):
        assert_same_training(member.estimator.predict_proba(X),
                             clone(clf).fit(X[train], y[train]).predict_proba(X))
    proba = calibrated.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert accuracy_score(y, calibrated.predict(X)) > 0.8


def test_accuracy_comparable_to_sklearn_mlp():
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.3, random_state=0,
                                                        stratify=y)
    scaler = StandardScaler().fit(X_train)
    X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    ours = MLPClassifier((32,), lr=1e-3, max_epochs=20, batch_size=64, random_state=0)
    theirs = SkMLPClassifier((32,), learning_rate_init=1e-3, max_iter=20, batch_size=64,
                             random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        theirs.fit(X_train, y_train)
    ours_acc = ours.fit(X_train, y_train).score(X_test, y_test)
    theirs_acc = theirs.score(X_test, y_test)
    assert theirs_acc > 0.9
    assert abs(ours_acc - theirs_acc) < 0.04, (ours_acc, theirs_acc)
