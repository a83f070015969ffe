"""FusedBagging* against scikit-learn's Bagging* over the same MLP: the same draws, the same members,
the same predictions, and every member trained once, in the fused stacks.

The fused and scikit-learn's members are two trainings of each member: 1e-6 apart on the CPU, within
the design's tolerance on a GPU (``--device cuda``).
"""

import numpy as np
import pytest
import sklearn
from conftest import assert_same_model, training_tolerance
from sklearn.base import clone
from sklearn.datasets import make_classification, make_regression
from sklearn.ensemble import BaggingClassifier, BaggingRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier

from sknn_tune import MLPClassifier, MLPRegressor
from sknn_tune.ensemble import FusedBaggingClassifier, FusedBaggingRegressor

# Fused against scikit-learn's fits: 1e-6 (and numpy's default rtol) on the CPU, the design's
# tolerance on a GPU.
ATOL = training_tolerance(1e-6)
RTOL = max(1e-7, training_tolerance())

_X_CLF, _Y_CLF = make_classification(150, 6, n_informative=4, n_redundant=0, n_classes=3,
                                     random_state=0)
_X_REG, _Y_REG = make_regression(120, 5, n_informative=3, noise=5.0, random_state=0)
_Y_REG = (_Y_REG - _Y_REG.mean()) / _Y_REG.std()
_Y_REG2 = np.column_stack([_Y_REG, -0.5 * _Y_REG + 0.1])

BASE = {"hidden_layer_sizes": (6,), "max_epochs": 3, "batch_size": 32, "random_state": 0}


def clf(**params):
    return MLPClassifier(**{**BASE, **params})


def reg(**params):
    return MLPRegressor(**{**BASE, **params})




def fit_both(fused_class, sklearn_class, X, y, fit_kwargs=None, **params):
    """``(ours, theirs)`` fitted on the same data with the same parameters."""
    fit_kwargs = fit_kwargs or {}
    ours = fused_class(**params).fit(X, y, **fit_kwargs)
    theirs = sklearn_class(**params).fit(X, y, **fit_kwargs)
    return ours, theirs


def assert_same_ensemble(ours, theirs, X):
    assert len(ours.estimators_) == len(theirs.estimators_)
    for a, b in zip(ours.estimators_samples_, theirs.estimators_samples_):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(ours.estimators_features_, theirs.estimators_features_):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(ours.estimators_, theirs.estimators_):
        assert repr(a) == repr(b)  # the same member parameters (its random_state included)
    methods = ["predict"] + (["predict_proba"] if hasattr(theirs, "predict_proba") else [])
    for method in methods:
        expected = getattr(theirs, method)(X)
        if expected.dtype.kind in "fc":
            np.testing.assert_allclose(getattr(ours, method)(X), expected, rtol=RTOL, atol=ATOL)
        elif training_tolerance() == 0 or not hasattr(theirs, "predict_proba"):
            np.testing.assert_array_equal(getattr(ours, method)(X), expected)
        # (else: on a GPU a near tie may flip a label of the two trainings; predict_proba is
        # compared instead)


# ----------------------------------------------------------------------------------------------
# the same ensemble as scikit-learn's


@pytest.mark.parametrize("params", [
    {},
    {"max_samples": 0.6, "max_features": 0.5},
    {"bootstrap_features": True, "max_features": 4},
    {"bootstrap": False, "max_samples": 100},
    {"estimator": clf(early_stopping=True, patience=1, max_epochs=6, lr=0.05)},
    pytest.param({"oob_score": True}, marks=pytest.mark.filterwarnings(
        "ignore:Some inputs do not have OOB", "ignore:invalid value encountered")),
], ids=["default", "subsets", "bootstrap_features", "pasting", "early_stopping", "oob"])
def test_classifier_matches_sklearn(params, trained):
    params = {"estimator": clf(), "n_estimators": 5, "random_state": 0, **params}
    del trained[:]
    ours = FusedBaggingClassifier(**params).fit(_X_CLF, _Y_CLF)
    assert trained.fused() == 5 and trained.plain() == 0
    assert ours.n_member_epochs_ == sum(est.n_iter_ for est in ours.estimators_)
    theirs = BaggingClassifier(**params).fit(_X_CLF, _Y_CLF)
    assert_same_ensemble(ours, theirs, _X_CLF)
    if params.get("oob_score"):
        assert ours.oob_score_ == pytest.approx(theirs.oob_score_, abs=ATOL)
        np.testing.assert_allclose(ours.oob_decision_function_, theirs.oob_decision_function_,
                                   rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("y", [_Y_REG, _Y_REG2], ids=["1d", "2d"])
def test_regressor_matches_sklearn(y, trained):
    params = {"estimator": reg(), "n_estimators": 4, "random_state": 1, "max_features": 0.8}
    del trained[:]
    ours = FusedBaggingRegressor(**params).fit(_X_REG, y)
    assert trained.fused() == 4 and trained.plain() == 0
    theirs = BaggingRegressor(**params).fit(_X_REG, y)
    assert_same_ensemble(ours, theirs, _X_REG)
    assert ours.score(_X_REG, y) == pytest.approx(theirs.score(_X_REG, y), abs=ATOL)


def test_sample_weight_draws_and_string_labels(trained):
    """sample_weight is what the rows are drawn by; labels are encoded by the bagging."""
    weight = np.random.RandomState(0).uniform(0.1, 3.0, len(_Y_CLF))
    labels = np.array(["a", "b", "c"])[_Y_CLF]
    params = {"estimator": clf(), "n_estimators": 4, "random_state": 2, "max_samples": 0.8}
    del trained[:]
    ours, theirs = fit_both(FusedBaggingClassifier, BaggingClassifier, _X_CLF, labels,
                            {"sample_weight": weight}, **params)
    assert trained.fused() == 4 and trained.plain() == 4  # theirs trains its own 4
    assert_same_ensemble(ours, theirs, _X_CLF)
    assert set(ours.predict(_X_CLF)) <= {"a", "b", "c"}


def test_pipeline_member(trained):
    """A pipeline has no sample_weight in fit: scikit-learn indexes the drawn rows, and so do we
    (the scaler fitted on each member's rows)."""
    member = make_pipeline(StandardScaler(), clf())
    params = {"estimator": member, "n_estimators": 3, "random_state": 0, "max_features": 0.7}
    del trained[:]
    ours = FusedBaggingClassifier(**params).fit(_X_CLF * 10, _Y_CLF)
    assert trained.fused() == 3 and trained.plain() == 0
    theirs = BaggingClassifier(**params).fit(_X_CLF * 10, _Y_CLF)
    assert_same_ensemble(ours, theirs, _X_CLF * 10)


@pytest.mark.parametrize("random_state", ["instance", None])
def test_random_state_advances_as_sklearn(random_state, trained):
    """The planning draws from random_state what scikit-learn's fit draws again: it is left as
    scikit-learn's fit leaves it (a RandomState instance, or the global one for None)."""
    params = {"estimator": clf(), "n_estimators": 3}

    def fit(cls):
        if random_state is None:
            np.random.seed(7)  # noqa: NPY002 (the global state random_state=None uses)
        rs = None if random_state is None else np.random.RandomState(7)
        model = cls(**params, random_state=rs).fit(_X_CLF, _Y_CLF)
        return model, (np.random if rs is None else rs).randint(10**9)

    del trained[:]
    ours, next_ours = fit(FusedBaggingClassifier)
    assert trained.fused() == 3 and trained.plain() == 0
    theirs, next_theirs = fit(BaggingClassifier)
    assert next_ours == next_theirs
    assert_same_ensemble(ours, theirs, _X_CLF)


def test_warm_start_adds_members(trained):
    params = {"estimator": clf(), "n_estimators": 2, "random_state": 0, "warm_start": True}
    ours = FusedBaggingClassifier(**params).fit(_X_CLF, _Y_CLF)
    theirs = BaggingClassifier(**params).fit(_X_CLF, _Y_CLF)
    del trained[:]
    ours.set_params(n_estimators=4).fit(_X_CLF, _Y_CLF)
    assert trained.fused() == 2 and trained.plain() == 0  # only the two new members
    theirs.set_params(n_estimators=4).fit(_X_CLF, _Y_CLF)
    assert_same_ensemble(ours, theirs, _X_CLF)


def test_n_jobs_drives_the_stacks(trained):
    params = {"estimator": reg(), "n_estimators": 4, "random_state": 0, "max_features": 0.6,
              "bootstrap_features": True}
    del trained[:]
    ours = FusedBaggingRegressor(**params, n_jobs=2, max_members=2).fit(_X_REG, _Y_REG)
    assert [t.members for t in trained] == [2, 2]
    assert ours.n_jobs == 2
    theirs = BaggingRegressor(**params).fit(_X_REG, _Y_REG)
    assert_same_ensemble(ours, theirs, _X_REG)


# ----------------------------------------------------------------------------------------------
# seed ensembles and the spread


def test_seed_ensemble_members_differ_by_seed_only(trained):
    del trained[:]
    seeds = FusedBaggingRegressor(reg(), n_estimators=4, bootstrap=False,
                                  random_state=0).fit(_X_REG, _Y_REG)
    assert trained.fused() == 4 and trained.plain() == 0
    assert all(len(rows) == len(_Y_REG) and len(set(rows)) == len(_Y_REG)
               for rows in seeds.estimators_samples_)
    member_states = {est.random_state for est in seeds.estimators_}
    assert len(member_states) == 4
    predictions = np.stack([est.predict(_X_REG) for est in seeds.estimators_])
    assert np.ptp(predictions, axis=0).min() > 0  # the members differ
    # Each member is exactly its estimator fitted alone on all rows.
    alone = clone(seeds.estimators_[0]).fit(_X_REG, _Y_REG)
    np.testing.assert_allclose(alone.predict(_X_REG), predictions[0], rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("y", [_Y_REG, _Y_REG2], ids=["1d", "2d"])
def test_return_std(y):
    model = FusedBaggingRegressor(reg(), n_estimators=4, max_features=0.8,
                                  random_state=0).fit(_X_REG, y)
    mean, std = model.predict(_X_REG[:10], return_std=True)
    members = np.stack([est.predict(_X_REG[:10, features]) for est, features
                        in zip(model.estimators_, model.estimators_features_)])
    np.testing.assert_allclose(mean, model.predict(_X_REG[:10]), atol=0)
    # (the same members' predictions: float32 rounding on a GPU)
    assert_same_model(mean, members.mean(axis=0), cpu_rtol=1e-7, cpu_atol=1e-6)
    assert_same_model(std, members.std(axis=0), cpu_rtol=1e-7, cpu_atol=1e-6)
    assert std.shape == mean.shape and (std > 0).all()


def test_default_estimator_is_ours():
    assert isinstance(FusedBaggingClassifier()._get_estimator(), MLPClassifier)
    assert isinstance(FusedBaggingRegressor()._get_estimator(), MLPRegressor)
    model = FusedBaggingClassifier(n_estimators=2, random_state=0).set_params(
        estimator=None).fit(_X_CLF[:40], _Y_CLF[:40])
    assert all(isinstance(est, MLPClassifier) for est in model.estimators_)


# ----------------------------------------------------------------------------------------------
# what is not fused: scikit-learn's bagging as it is


def test_other_estimator_falls_back(trained):
    params = {"estimator": DecisionTreeClassifier(), "n_estimators": 3, "random_state": 0}
    ours, theirs = fit_both(FusedBaggingClassifier, BaggingClassifier, _X_CLF, _Y_CLF,
                            **params)
    assert len(trained) == 0 and not hasattr(ours, "n_member_epochs_")
    assert_same_ensemble(ours, theirs, _X_CLF)


def test_metadata_routing_falls_back(trained):
    params = {"estimator": clf(), "n_estimators": 2, "random_state": 0}
    with sklearn.config_context(enable_metadata_routing=True):
        del trained[:]
        ours = FusedBaggingClassifier(**params).fit(_X_CLF, _Y_CLF)
        assert trained.fused() == 0 and trained.plain() == 2
        theirs = BaggingClassifier(**params).fit(_X_CLF, _Y_CLF)
        assert_same_ensemble(ours, theirs, _X_CLF)


def test_invalid_parameters_are_reported_by_sklearn():
    with pytest.raises(ValueError, match="max_features must be <= n_features"):
        FusedBaggingClassifier(clf(), max_features=10).fit(_X_CLF, _Y_CLF)
    with pytest.raises(ValueError, match="Out of bag estimation only available"):
        FusedBaggingClassifier(clf(), bootstrap=False, oob_score=True).fit(_X_CLF, _Y_CLF)
    with pytest.raises(ValueError, match="n_estimators"):
        FusedBaggingClassifier(clf(), n_estimators=0).fit(_X_CLF, _Y_CLF)


def test_same_parameters_as_sklearn():
    ours = set(FusedBaggingClassifier().get_params()) - {"max_members"}
    assert ours == set(BaggingClassifier().get_params())
    assert set(FusedBaggingRegressor().get_params()) - {"max_members"} == set(
        BaggingRegressor().get_params())
