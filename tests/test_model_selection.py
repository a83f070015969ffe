"""sknn_tune.model_selection against sklearn.model_selection: the same results, every fit trained once.

Each test calls our function and scikit-learn's on the same estimator, data, cv and random_state:
the results must agree to 1e-6 (timings excepted; on a GPU, ``--device cuda``, to the design's
tolerance: the fused and the plain fits are two trainings). Training is counted by wrapping
``StackedTrainer.fit``: the fused stacks train every fold x value x size once; the scikit-learn pass
that follows only adopts them.
"""

import numpy as np
import pytest
import sklearn
from conftest import training_tolerance
from sklearn import model_selection as sk
from sklearn.datasets import make_classification, make_regression
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold, KFold, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from sknn_tune import MLPClassifier, MLPRegressor
from sknn_tune import model_selection as ms

# Fused against plain fits: 1e-6 (and numpy's default rtol) on the CPU, the design's tolerance on
# a GPU.
ATOL = training_tolerance(1e-6)
RTOL = max(1e-7, training_tolerance())
TIMES = ("fit_time", "score_time")

# ----------------------------------------------------------------------------------------------
# data and estimators

_X_CLF, _Y_CLF = make_classification(150, 5, n_informative=4, n_redundant=0, n_classes=3,
                                     random_state=0)
_X_CLF = _X_CLF * np.array([1.0, 10.0, 0.1, 5.0, 1.0])  # scales a StandardScaler changes
_X_REG, _Y_REG = make_regression(120, 4, n_informative=3, noise=5.0, random_state=0)
_Y_REG = (_Y_REG - _Y_REG.mean()) / _Y_REG.std()
_GROUPS = np.arange(150) % 5

BASE = {"hidden_layer_sizes": (6,), "max_epochs": 3, "batch_size": 32, "random_state": 0}


def clf(**params):
    return MLPClassifier(**{**BASE, **params})


def reg(**params):
    return MLPRegressor(**{**BASE, **params})


def pipe(**params):
    return make_pipeline(StandardScaler(), clf(**params))


CASES = {
    "classifier": (clf, _X_CLF, _Y_CLF),
    "regressor": (reg, _X_REG, _Y_REG),
    "pipeline": (pipe, _X_CLF, _Y_CLF),
}


def case(name):
    make, X, y = CASES[name]
    return make(), X.copy(), y.copy()


# ----------------------------------------------------------------------------------------------
# counting training




# ----------------------------------------------------------------------------------------------
# comparing


def assert_same(ours, theirs):
    """Results of a model_selection function equal, timings excepted; fitted estimators equal
    in their predictions."""
    if isinstance(theirs, dict):
        assert sorted(ours) == sorted(theirs)
        for key in theirs:
            if key not in TIMES:
                assert_same(ours[key], theirs[key])
    elif isinstance(theirs, tuple):
        assert len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            assert_same(a, b)
    elif isinstance(theirs, list) and theirs and hasattr(theirs[0], "fit"):
        assert len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            assert type(a) is type(b)
            assert repr(a) == repr(b)
            X = _X_REG if isinstance(b, MLPRegressor) else _X_CLF
            np.testing.assert_allclose(a.predict(X), b.predict(X), rtol=RTOL, atol=ATOL)
    elif isinstance(theirs, dict | list) or (isinstance(theirs, np.ndarray) and theirs.dtype == object):
        for a, b in zip(ours, theirs, strict=True):
            assert_same(a, b)
    else:
        np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), rtol=RTOL, atol=ATOL)


def both(name, *args, **kwargs):
    """``(ours, scikit-learn's)`` results of the function ``name``."""
    return getattr(ms, name)(*args, **kwargs), getattr(sk, name)(*args, **kwargs)


def fused_only(trained, n_fits, call):
    """Run ``call`` and check that the fused stacks trained its ``n_fits`` fits, nothing else."""
    del trained[:]
    result = call()
    assert trained.fused() == n_fits
    assert trained.plain() == 0
    return result


# ----------------------------------------------------------------------------------------------
# cross_validate / cross_val_score


@pytest.mark.parametrize("name", sorted(CASES))
def test_cross_validate_matches_sklearn(name, trained):
    estimator, X, y = case(name)
    scoring = "r2" if name == "regressor" else ["accuracy", "neg_log_loss"]
    kwargs = dict(cv=3, scoring=scoring, return_train_score=True, return_estimator=True,
                  return_indices=True)
    ours = fused_only(trained, 3, lambda: ms.cross_validate(estimator, X, y, **kwargs))
    assert_same(ours, sk.cross_validate(estimator, X, y, **kwargs))
    assert all(hasattr(est[-1] if name == "pipeline" else est, "history_")
               for est in ours["estimator"])


def test_cross_validate_groups_and_sample_weight(trained):
    estimator, X, y = case("pipeline")
    weight = np.random.RandomState(0).uniform(0.5, 2.0, len(y))
    kwargs = dict(groups=_GROUPS, cv=GroupKFold(5),
                  scoring={"acc": "accuracy", "nll": "neg_log_loss"},
                  params={"mlpclassifier__sample_weight": weight}, return_train_score=True)
    ours = fused_only(trained, 5, lambda: ms.cross_validate(estimator, X, y, **kwargs))
    theirs = sk.cross_validate(estimator, X, y, **kwargs)
    assert_same(ours, theirs)
    # The weights matter: without them the scores differ.
    unweighted = ms.cross_validate(estimator, X, y, **{**kwargs, "params": None})
    assert not np.allclose(unweighted["train_nll"], theirs["train_nll"])


def test_cross_val_score_matches_sklearn(trained):
    estimator, X, y = case("classifier")
    weight = np.random.RandomState(1).uniform(0.5, 2.0, len(y))
    kwargs = dict(cv=StratifiedKFold(4, shuffle=True, random_state=0), scoring="f1_macro",
                  params={"sample_weight": weight})
    ours = fused_only(trained, 4, lambda: ms.cross_val_score(estimator, X, y, **kwargs))
    assert ours.shape == (4,)
    assert_same(ours, sk.cross_val_score(estimator, X, y, **kwargs))


def test_unseeded_splitter_trains_each_fold_once(trained):
    """An unseeded shuffling splitter gives other folds on every split: the folds are fixed once,
    so scikit-learn's pass finds every member."""
    estimator, X, y = case("classifier")
    scores = fused_only(trained, 3, lambda: ms.cross_val_score(
        estimator, X, y, cv=KFold(3, shuffle=True)))
    assert scores.shape == (3,)


def test_n_jobs_drives_the_stacks(trained):
    estimator, X, y = case("regressor")
    ours = fused_only(trained, 3, lambda: ms.cross_validate(
        estimator, X, y, cv=3, n_jobs=2, return_train_score=True))
    assert_same(ours, sk.cross_validate(estimator, X, y, cv=3, return_train_score=True))


# ----------------------------------------------------------------------------------------------
# cross_val_predict


@pytest.mark.parametrize("method", ["predict", "predict_proba"])
def test_cross_val_predict_matches_sklearn(method, trained):
    estimator, X, y = case("pipeline")
    labels = np.array(["cat", "dog", "emu"])[y]  # string labels: encoded for predict_proba
    ours = fused_only(trained, 3, lambda: ms.cross_val_predict(
        estimator, X, labels, cv=3, method=method))
    theirs = sk.cross_val_predict(estimator, X, labels, cv=3, method=method)
    if method == "predict":
        # Every label on the CPU; two trainings on a GPU agree to 1e-3, where a near tie may flip
        # a label or two of the 150.
        assert ours.shape == theirs.shape
        assert np.sum(ours != theirs) <= (0 if training_tolerance() == 0 else 2)
    else:
        np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=ATOL)


def test_cross_val_predict_regressor(trained):
    estimator, X, y = case("regressor")
    ours = fused_only(trained, 4, lambda: ms.cross_val_predict(estimator, X, y, cv=4))
    np.testing.assert_allclose(ours, sk.cross_val_predict(estimator, X, y, cv=4), rtol=RTOL,
                               atol=ATOL)


# ----------------------------------------------------------------------------------------------
# validation_curve / learning_curve


@pytest.mark.parametrize("name, param_name, param_range", [
    ("classifier", "lr", [1e-3, 1e-2, 1e-1]),
    ("regressor", "hidden_layer_sizes", [(4,), (8,)]),  # two structures: two stacks
    ("pipeline", "standardscaler__with_mean", [True, False]),  # the prefix per value
])
def test_validation_curve_matches_sklearn(name, param_name, param_range, trained):
    estimator, X, y = case(name)
    kwargs = dict(param_name=param_name, param_range=param_range, cv=3)
    ours = fused_only(trained, 3 * len(param_range),
                      lambda: ms.validation_curve(estimator, X, y, **kwargs))
    assert ours[0].shape == (len(param_range), 3)
    assert_same(ours, sk.validation_curve(estimator, X, y, **kwargs))


def test_validation_curve_repeated_value(trained):
    """A value given twice is one fit per fold, trained once, adopted by both."""
    estimator, X, y = case("classifier")
    kwargs = dict(param_name="dropout", param_range=[0.0, 0.2, 0.0], cv=2)
    ours = fused_only(trained, 4, lambda: ms.validation_curve(estimator, X, y, **kwargs))
    assert_same(ours, sk.validation_curve(estimator, X, y, **kwargs))


@pytest.mark.parametrize("shuffle", [False, True])
def test_learning_curve_matches_sklearn(shuffle, trained):
    estimator, X, y = case("classifier")
    kwargs = dict(train_sizes=[0.4, 0.7, 1.0], cv=3, shuffle=shuffle, random_state=0,
                  return_times=True)
    # Unshuffled, folds 2 and 3 begin with the same 40 rows: one fit, trained once.
    n_fits = 9 if shuffle else 8
    ours = fused_only(trained, n_fits, lambda: ms.learning_curve(estimator, X, y, **kwargs))
    theirs = sk.learning_curve(estimator, X, y, **kwargs)
    assert_same(ours[:3], theirs[:3])
    assert [a.shape for a in ours] == [a.shape for a in theirs]


def test_learning_curve_random_state_instance(trained):
    """A RandomState passed in gives the same subsets and advances as scikit-learn's does."""
    estimator, X, y = case("regressor")
    ours_rs, theirs_rs = np.random.RandomState(3), np.random.RandomState(3)
    kwargs = dict(train_sizes=[30, 60], cv=KFold(3), shuffle=True)
    ours = fused_only(trained, 6, lambda: ms.learning_curve(
        estimator, X, y, random_state=ours_rs, **kwargs))
    theirs = sk.learning_curve(estimator, X, y, random_state=theirs_rs, **kwargs)
    assert_same(ours, theirs)
    assert ours_rs.randint(10**9) == theirs_rs.randint(10**9)


# ----------------------------------------------------------------------------------------------
# what is not fused: scikit-learn's function as it is


def test_other_estimator_falls_back(trained):
    X, y = _X_CLF, _Y_CLF
    estimator = LogisticRegression(max_iter=200)
    assert_same(ms.cross_validate(estimator, X, y, cv=3, return_train_score=True),
                sk.cross_validate(estimator, X, y, cv=3, return_train_score=True))
    assert_same(*both("validation_curve", estimator, X, y, param_name="C",
                      param_range=[0.1, 1.0], cv=3))
    assert len(trained) == 0


@pytest.mark.parametrize("function", ["cross_validate", "cross_val_score", "cross_val_predict",
                                      "validation_curve", "learning_curve"])
@pytest.mark.parametrize("fused", [True, False], ids=["ours", "svc"])
def test_an_iterable_of_splits_reaches_whoever_fits(function, fused, trained):
    """``cv`` as a generator of splits, which scikit-learn accepts: drawn once, and handed on
    as drawn, whether the stacks train the fits or scikit-learn does (an SVC, not fusable)."""
    X, y = _X_CLF, _Y_CLF
    estimator = case("classifier")[0] if fused else make_pipeline(StandardScaler(), SVC())
    kwargs = {"validation_curve": dict(param_name="lr" if fused else "svc__C",
                                       param_range=[1e-2, 1e-1] if fused else [0.5, 1.0]),
              "learning_curve": dict(train_sizes=[0.5, 1.0])}.get(function, {})
    del trained[:]
    ours = getattr(ms, function)(estimator, X, y, cv=KFold(3).split(X), **kwargs)
    assert (trained.fused() > 0) == fused and trained.plain() == 0
    theirs = getattr(sk, function)(estimator, X, y, cv=KFold(3).split(X), **kwargs)
    assert_same(ours, theirs)


def test_unknown_fit_parameter_falls_back(trained):
    """X_val/y_val is a fit parameter fusion does not plan: scikit-learn fits each fold."""
    estimator, X, y = case("classifier")
    params = {"X_val": X[:20], "y_val": y[:20]}
    del trained[:]
    scores = ms.cross_val_score(estimator, X, y, cv=3, params=params)
    assert trained.fused() == 0 and trained.plain() == 3
    assert_same(scores, sk.cross_val_score(estimator, X, y, cv=3, params=params))


def test_incremental_learning_curve_falls_back(trained):
    estimator, X, y = case("classifier")
    kwargs = dict(train_sizes=[0.5, 1.0], cv=2, exploit_incremental_learning=True)
    ours = ms.learning_curve(estimator, X, y, **kwargs)
    assert trained.fused() == 0
    assert_same(ours, sk.learning_curve(estimator, X, y, **kwargs))


def test_metadata_routing_falls_back(trained):
    estimator, X, y = case("classifier")
    with sklearn.config_context(enable_metadata_routing=True):
        ours = ms.cross_val_score(estimator, X, y, cv=2)
        theirs = sk.cross_val_score(estimator, X, y, cv=2)
    assert trained.fused() == 0
    assert_same(ours, theirs)


def test_invalid_arguments_are_reported_by_sklearn():
    estimator, X, y = case("classifier")
    with pytest.raises(ValueError, match="cross_val_predict only works for partitions"):
        ms.cross_val_predict(estimator, X, y, cv=[(np.arange(50), np.arange(50, 100))])
    with pytest.raises(ValueError) as ours:
        ms.learning_curve(estimator, X, y, train_sizes=[0.0, 2.0], cv=2)
    with pytest.raises(ValueError) as theirs:
        sk.learning_curve(estimator, X, y, train_sizes=[0.0, 2.0], cv=2)
    assert str(ours.value) == str(theirs.value)


def test_signatures_are_sklearn():
    import inspect

    for name in ms.__all__:
        assert str(inspect.signature(getattr(ms, name))) == str(inspect.signature(getattr(sk, name)))


@pytest.mark.parametrize("scoring", [None, "accuracy"])
def test_early_stopping_members(scoring, trained):
    """Each fold's own validation split and early stopping (by loss, or by a scorer that the
    stacks call on live members): planned as fit plans them."""
    estimator = clf(early_stopping=True, patience=1, max_epochs=6, lr=0.05, scoring=scoring)
    X, y = _X_CLF, _Y_CLF
    ours = fused_only(trained, 3, lambda: ms.cross_validate(estimator, X, y, cv=3,
                                                            return_estimator=True))
    theirs = sk.cross_validate(estimator, X, y, cv=3, return_estimator=True)
    assert_same(ours, theirs)
    assert [est.n_iter_ for est in ours["estimator"]] == [est.n_iter_ for est in theirs["estimator"]]
