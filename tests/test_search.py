"""Fused*SearchCV against scikit-learn's own searches: the same results, every fit trained once.

Every comparison runs the fused search and scikit-learn's search over the same sknn_tune estimator,
grid, cv and random_state: ``cv_results_`` must agree key by key (timings excepted) to 1e-6. Training
is counted by wrapping ``StackedTrainer.fit``: the fused stacks train every candidate x fold, the
scoring pass that scikit-learn runs afterwards must only adopt them, so the only plain fit left is
the refit.
"""

import os
import pickle
import subprocess
import sys
from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd
import pytest
from conftest import assert_same_training, training_tolerance
from scipy.stats import loguniform
from sklearn.base import clone
from sklearn.datasets import load_iris, make_classification, make_regression
from sklearn.exceptions import FitFailedWarning
from sklearn.experimental import enable_halving_search_cv  # noqa: F401
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import (
    GridSearchCV,
    GroupKFold,
    HalvingGridSearchCV,
    HalvingRandomSearchCV,
    KFold,
    ParameterGrid,
    RandomizedSearchCV,
)
from sklearn.neural_network import MLPClassifier as SklearnMLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sknn_tune import (
    FusedGridSearchCV,
    FusedHalvingGridSearchCV,
    FusedHalvingRandomSearchCV,
    FusedRandomizedSearchCV,
    MLPClassifier,
    MLPRegressor,
)
from sknn_tune._engine.trainer import StackedTrainer
from sknn_tune._fused.session import Session
from sknn_tune.exceptions import DivergenceError

# Fused against sequential: 1e-6 on the CPU, the design's tolerance on a GPU (--device cuda).
ATOL = training_tolerance(1e-6)
FUSION_MODULE = "sknn_tune._fused.jobs"
ESTIMATOR_MODULE = "sknn_tune._base"

# ----------------------------------------------------------------------------------------------
# data

_X_CLF, _Y_CLF = make_classification(240, 6, n_informative=4, n_redundant=0, n_classes=3,
                                     random_state=0)
_X_REG, _Y_REG_RAW = make_regression(210, 5, n_informative=4, noise=5.0, random_state=0)
_Y_REG = (_Y_REG_RAW - _Y_REG_RAW.mean()) / _Y_REG_RAW.std()
# Columns on different scales, so that a StandardScaler in front of the MLP matters.
_SCALES = np.array([1.0, 10.0, 0.1, 5.0, 1.0, 50.0])


def clf_data():
    return _X_CLF.copy(), _Y_CLF.copy()


def reg_data():
    return _X_REG.copy(), _Y_REG.copy()


BASE = {"hidden_layer_sizes": (8,), "max_epochs": 5, "batch_size": 64, "random_state": 0}


def clf(**params):
    return MLPClassifier(**{**BASE, **params})


def reg(**params):
    return MLPRegressor(**{**BASE, **params})


def pipe(**params):
    return make_pipeline(StandardScaler(), clf(**params))


# ----------------------------------------------------------------------------------------------
# counting training


@dataclass
class Training:
    """One call of ``StackedTrainer.fit``."""

    fused: bool  # from the fused search's stacks; else from an estimator's own fit
    members: int
    epochs: int  # member-epochs this call trained


class TrainingLog(list):
    def fused(self):
        return [t for t in self if t.fused]

    def plain(self):
        return [t for t in self if not t.fused]

    def since(self, start):
        return TrainingLog(self[start:])


@pytest.fixture
def trained(monkeypatch):
    """Every ``StackedTrainer.fit`` call, with who called it and what it trained."""
    log = TrainingLog()
    original = StackedTrainer.fit

    def fit(self, *args, **kwargs):
        caller = sys._getframe(1).f_globals["__name__"]
        assert caller in (FUSION_MODULE, ESTIMATOR_MODULE), caller
        before = int(self.epochs_done.sum())
        result = original(self, *args, **kwargs)
        log.append(Training(caller == FUSION_MODULE, len(self.members),
                            int(self.epochs_done.sum()) - before))
        return result

    monkeypatch.setattr(StackedTrainer, "fit", fit)
    return log


def fit_logged(search, log, X, y, **params):
    """Fit ``search`` and return the training it did."""
    start = len(log)
    search.fit(X, y, **params)
    return log.since(start)


def assert_trained_once(search, calls, refit=True):
    """The fused stacks trained every candidate x fold once; the scoring pass trained nothing;
    the refit is the only plain fit."""
    n_fits = len(search.cv_results_["params"]) * search.n_splits_
    assert sum(t.members for t in calls.fused()) == n_fits
    assert [t.members for t in calls.plain()] == ([1] if refit else [])
    assert search.n_member_epochs_ == sum(t.epochs for t in calls.fused())


# ----------------------------------------------------------------------------------------------
# comparing searches


def assert_same_search(fused, ref, X, atol=ATOL):
    a, b = fused.cv_results_, ref.cv_results_
    assert list(a) == list(b)
    for key in a:
        va, vb = a[key], b[key]
        assert type(va) is type(vb), key
        if key == "params":
            assert va == vb
            continue
        assert va.dtype == vb.dtype, key
        if key.endswith("_time"):
            continue
        if isinstance(va, np.ma.MaskedArray):
            mask = np.ma.getmaskarray(va)
            np.testing.assert_array_equal(mask, np.ma.getmaskarray(vb), err_msg=key)
            assert [v for v, m in zip(va.data, mask) if not m] == \
                [v for v, m in zip(vb.data, mask) if not m], key
        elif np.issubdtype(va.dtype, np.floating):
            np.testing.assert_allclose(va, vb, rtol=0, atol=atol, err_msg=key)
        else:
            np.testing.assert_array_equal(va, vb, err_msg=key)
    assert fused.n_splits_ == ref.n_splits_
    assert fused.multimetric_ == ref.multimetric_
    if ref.refit:
        assert fused.best_index_ == ref.best_index_
        assert fused.best_params_ == ref.best_params_
        assert fused.best_score_ == pytest.approx(ref.best_score_, abs=atol)
        # The two refits are two plain fits of the best candidate, the same training: bit for bit
        # on the CPU; on a GPU within the design's tolerance, so a classifier's labels (which a
        # near tie may flip) are compared through its probabilities only.
        if training_tolerance() == 0 or not hasattr(ref, "predict_proba"):
            assert_same_training(fused.predict(X), ref.predict(X))
        if hasattr(ref, "predict_proba"):
            np.testing.assert_allclose(fused.predict_proba(X), ref.predict_proba(X),
                                       rtol=0, atol=atol)


def assert_candidates_differ(search, key="mean_test_score"):
    """The candidates' scores are not all equal: a mix-up of members would show."""
    scores = np.asarray(search.cv_results_[key], dtype=float)
    assert np.nanmax(scores) - np.nanmin(scores) > 1e-3


# ----------------------------------------------------------------------------------------------
# 1. equivalence with scikit-learn's searches

# Lists of grids: many hyperparameters, few candidates. Each structural change (layers,
# optimizer, batch size, batch norm) is a stack of its own.
CLF_GRID = [
    {"lr": [3e-3]},
    {"hidden_layer_sizes": [(16, 8)], "activation": ["tanh"]},
    {"optimizer": ["sgd"], "lr": [0.05], "batch_size": [32]},
    {"optimizer": ["rmsprop"], "init": ["he_normal"]},
    {"batch_norm": [True], "dropout": [0.3]},
    {"class_weight": ["balanced"], "weight_decay": [1e-3], "dropout": [0.2]},
]
REG_GRID = [
    {"l1": [1e-3], "noise_std": [0.1]},
    {"optimizer": ["nesterov"], "lr": [0.01], "momentum": [0.5, 0.9], "batch_size": [16]},
    {"lr_schedule": ["step", "plateau"], "lr_step": [2], "lr_decay": [0.5], "lr": [1e-2]},
    {"lr_schedule": ["cosine"], "early_stopping": [True], "patience": [1],
     "validation_fraction": [0.2]},
]
PIPE_GRID = [
    {"standardscaler__with_mean": [True, False], "mlpclassifier__lr": [1e-2]},
    {"mlpclassifier__hidden_layer_sizes": [(16,)], "mlpclassifier__lr": [1e-3, 1e-2]},
]
LOG_SCALE = {"lr": loguniform(1e-4, 1e-1), "weight_decay": loguniform(1e-6, 1e-2),
             "activation": ["relu", "tanh"]}

CASES = {
    "classifier": (clf, clf_data, CLF_GRID, LOG_SCALE),
    "regressor": (reg, reg_data, REG_GRID, LOG_SCALE),
    "pipeline": (pipe, lambda: (_X_CLF * _SCALES, _Y_CLF.copy()), PIPE_GRID,
                 {f"mlpclassifier__{k}": v for k, v in LOG_SCALE.items()}),
}


@pytest.mark.parametrize("case", CASES)
def test_grid_search_equals_sklearn(case, trained):
    make, data, grid, _ = CASES[case]
    X, y = data()
    kwargs = dict(cv=3, return_train_score=True)
    fused = FusedGridSearchCV(make(), grid, **kwargs)
    calls = fit_logged(fused, trained, X, y)
    ref = GridSearchCV(make(), grid, **kwargs).fit(X, y)
    assert_same_search(fused, ref, X)
    assert_candidates_differ(fused)
    assert_trained_once(fused, calls)
    # Structural parameters split the candidates into several stacks.
    assert len(calls.fused()) > 1
    assert max(t.members for t in calls.fused()) > fused.n_splits_


@pytest.mark.parametrize("case", CASES)
def test_randomized_search_equals_sklearn(case, trained):
    make, data, _, distributions = CASES[case]
    X, y = data()
    kwargs = dict(n_iter=4, cv=3, random_state=0, return_train_score=True)
    fused = FusedRandomizedSearchCV(make(), distributions, **kwargs)
    calls = fit_logged(fused, trained, X, y)
    ref = RandomizedSearchCV(make(), distributions, **kwargs).fit(X, y)
    assert_same_search(fused, ref, X)
    assert_candidates_differ(fused)
    assert_trained_once(fused, calls)


def test_multimetric_scoring_equals_sklearn(trained):
    X, y = clf_data()
    grid = {"lr": [1e-3, 1e-2, 1e-1]}
    kwargs = dict(cv=3, scoring=["accuracy", "f1_macro"], refit="accuracy",
                  return_train_score=True)
    fused = FusedGridSearchCV(clf(), grid, **kwargs)
    calls = fit_logged(fused, trained, X, y)
    ref = GridSearchCV(clf(), grid, **kwargs).fit(X, y)
    assert {"mean_test_accuracy", "mean_test_f1_macro", "rank_test_f1_macro",
            "mean_train_f1_macro"} <= set(fused.cv_results_)
    assert_same_search(fused, ref, X)
    assert_candidates_differ(fused, "mean_test_f1_macro")
    assert_trained_once(fused, calls)


# ----------------------------------------------------------------------------------------------
# 3. nothing trained twice


def test_each_fit_trained_once_and_epochs_counted(trained):
    X, y = clf_data()
    grid = {"lr": [1e-3, 1e-2, 1e-1], "activation": ["relu", "tanh"]}
    search = FusedGridSearchCV(clf(max_epochs=7), grid, cv=3)
    calls = fit_logged(search, trained, X, y)
    assert_trained_once(search, calls)
    # One stack of 6 candidates x 3 folds: relu and tanh members train side by side.
    assert sorted(t.members for t in calls.fused()) == [18]
    assert search.n_member_epochs_ == 6 * 3 * 7
    assert calls.plain()[0].epochs == 7  # the refit

    no_refit = FusedGridSearchCV(clf(max_epochs=7), grid, cv=3, refit=False)
    calls = fit_logged(no_refit, trained, X, y)
    assert_trained_once(no_refit, calls, refit=False)
    assert_same_training(no_refit.cv_results_["mean_test_score"],
                         search.cv_results_["mean_test_score"])


def test_candidates_with_the_same_parameters_are_trained_once(trained):
    # Overlapping grids: {"lr": 1e-3, "dropout": 0.0} is the first candidate again (dropout=0.0
    # is the default), so one fit serves both; each adopts a copy of its own.
    X, y = clf_data()
    grid = [{"lr": [1e-3, 1e-2]}, {"lr": [1e-3], "dropout": [0.0]}, {"lr": [1e-2]}]
    search = FusedGridSearchCV(clf(), grid, cv=3, return_train_score=True)
    calls = fit_logged(search, trained, X, y)
    assert [t.members for t in calls.fused()] == [2 * 3]
    assert [t.members for t in calls.plain()] == [1]
    assert search.n_member_epochs_ == 2 * 3 * 5
    results = search.cv_results_
    for key in ("split0_test_score", "split2_test_score", "mean_train_score"):
        assert results[key][2] == results[key][0]
        assert results[key][3] == results[key][1]
    assert_candidates_differ(search)


def test_scoring_param_drives_fused_early_stopping(trained):
    # An MLP's own `scoring` decides its best epoch and early stopping on the validation rows;
    # fused members need the same monitor as a plain fit, and mix with unmonitored ones.
    X, y = clf_data()
    est = clf(max_epochs=8, early_stopping=True, patience=2, validation_fraction=0.3)
    grid = [{"scoring": ["accuracy", None], "lr": [3e-3, 3e-2]}, {"scoring": ["f1_macro"]}]
    fused = FusedGridSearchCV(est, grid, cv=3)
    calls = fit_logged(fused, trained, X, y)
    ref = GridSearchCV(est, grid, cv=3).fit(X, y)
    assert_same_search(fused, ref, X)
    assert_candidates_differ(fused)
    assert_trained_once(fused, calls)


def test_random_state_instance_is_fused(trained):
    # A RandomState's repr holds its address: the fit key must not, or no fit is ever adopted.
    X, y = clf_data()
    grid = {"lr": [1e-3, 1e-2]}
    fused = FusedGridSearchCV(clf().set_params(random_state=np.random.RandomState(3)), grid, cv=3)
    calls = fit_logged(fused, trained, X, y)
    ref = GridSearchCV(clf().set_params(random_state=np.random.RandomState(3)), grid,
                       cv=3).fit(X, y)
    assert_same_search(fused, ref, X)
    assert_trained_once(fused, calls)


# ----------------------------------------------------------------------------------------------
# 4. error_score


def _diverging_setup():
    # Unscaled targets (std ~190) and plain SGD at lr=1e6: the squared error overflows within a
    # few epochs, for any seed; lr=1e-2 trains fine.
    X, y = _X_REG.copy(), _Y_REG_RAW.copy()
    return X, y, reg(optimizer="sgd", max_epochs=6)


def test_diverging_estimator_raises_in_plain_fit():
    X, y, est = _diverging_setup()
    with pytest.raises(DivergenceError):
        est.set_params(lr=1e6).fit(X, y)
    est.set_params(lr=1e-2).fit(X, y)  # the good candidate does not diverge


@pytest.mark.filterwarnings("ignore:One or more of the t:UserWarning")
def test_diverging_candidate_gets_error_score(trained):
    X, y, est = _diverging_setup()
    grid = {"lr": [1e-2, 1e6, 1e-3]}
    fused = FusedGridSearchCV(est, grid, cv=3, return_train_score=True)
    with pytest.warns(FitFailedWarning, match="DivergenceError"):
        calls = fit_logged(fused, trained, X, y)
    results = fused.cv_results_
    assert np.all(np.isnan([results[f"split{i}_test_score"][1] for i in range(3)]))
    assert np.isnan(results["mean_test_score"][1])
    assert results["rank_test_score"][1] == 3
    # The diverging member shared its stack with the good ones and stopped there, alone.
    assert [t.members for t in calls.fused()] == [9]
    assert calls.fused()[0].epochs < 9 * 6
    assert [t.members for t in calls.plain()] == [1]

    with pytest.warns(FitFailedWarning):
        ref = GridSearchCV(est, grid, cv=3, return_train_score=True).fit(X, y)
    assert_same_search(fused, ref, X)

    # The others are unaffected by their diverging neighbour.
    alone = FusedGridSearchCV(est, {"lr": [1e-2, 1e-3]}, cv=3, return_train_score=True)
    alone.fit(X, y)
    for key in ("mean_test_score", "split0_test_score", "split2_train_score"):
        np.testing.assert_allclose(results[key][[0, 2]], alone.cv_results_[key],
                                   rtol=0, atol=ATOL)


@pytest.mark.filterwarnings("ignore:One or more of the t:UserWarning")
def test_invalid_candidate_gets_error_score(trained):
    # A parameter error is left to scikit-learn's own fit, which reports it with error_score.
    X, y = clf_data()
    grid = {"lr": [1e-2, -1.0]}
    fused = FusedGridSearchCV(clf(), grid, cv=3)
    with pytest.warns(FitFailedWarning, match="lr"):
        calls = fit_logged(fused, trained, X, y)
    assert np.isnan(fused.cv_results_["mean_test_score"][1])
    assert sum(t.members for t in calls.fused()) == 3
    with pytest.warns(FitFailedWarning):
        ref = GridSearchCV(clf(), grid, cv=3).fit(X, y)
    assert_same_search(fused, ref, X)


def test_error_score_raise():
    X, y, est = _diverging_setup()
    search = FusedGridSearchCV(est, {"lr": [1e-2, 1e6]}, cv=3, error_score="raise")
    with pytest.raises(DivergenceError):
        search.fit(X, y)


# ----------------------------------------------------------------------------------------------
# 5. successive halving


def _expected_continued_epochs(search, restarts=lambda params: False):
    """Member-epochs when each round continues its survivors: a candidate of round i trains
    r_i - r_{i-1} more epochs per fold (all r_i if ``restarts(params)``)."""
    results, resources = search.cv_results_, search.n_resources_
    total = 0
    for it, params in zip(results["iter"], results["params"]):
        previous = 0 if it == 0 or restarts(params) else resources[it - 1]
        total += search.n_splits_ * (resources[it] - previous)
    return total


@pytest.mark.parametrize("max_members", [None, 3], ids=["whole-rounds", "rounds-in-slices"])
def test_halving_over_max_epochs_continues_survivors(max_members, trained):
    X, y = clf_data()
    grid = {"lr": [1e-3, 3e-3, 1e-2, 3e-2]}
    kwargs = dict(resource="max_epochs", min_resources=2, max_resources=8, factor=2, cv=3)
    # max_members=3: one candidate's 3 folds per slice, each round trained and scored in slices.
    fused = FusedHalvingGridSearchCV(clf(), grid, max_members=max_members, **kwargs)
    calls = fit_logged(fused, trained, X, y)
    ref = HalvingGridSearchCV(clf(), grid, **kwargs).fit(X, y)
    assert_same_search(fused, ref, X)
    assert_candidates_differ(fused)
    assert fused.n_resources_ == [2, 4, 8]
    assert fused.n_candidates_ == [4, 2, 1]
    assert_trained_once(fused, calls)
    assert max(t.members for t in calls.fused()) <= (max_members or 12)

    continued = sum(n * fused.n_splits_ * (r - r_prev) for n, r, r_prev in
                    zip(fused.n_candidates_, fused.n_resources_, [0, *fused.n_resources_]))
    from_scratch = sum(n * fused.n_splits_ * r
                       for n, r in zip(fused.n_candidates_, fused.n_resources_))
    assert fused.n_member_epochs_ == continued == _expected_continued_epochs(fused) == 48
    assert from_scratch == 72
    assert calls.plain()[0].epochs == 8  # the refit trains the best from scratch


def test_halving_over_pipeline_max_epochs(trained):
    # In a pipeline; a cosine schedule depends on max_epochs, so those candidates restart.
    X, y = _X_CLF * _SCALES, _Y_CLF.copy()
    grid = {"mlpclassifier__lr": [3e-3, 3e-2], "mlpclassifier__lr_schedule": ["constant", "cosine"]}
    kwargs = dict(resource="mlpclassifier__max_epochs", min_resources=2, max_resources=8,
                  factor=2, cv=3, aggressive_elimination=False)
    # Early stopping with a patience it never runs out of: the best-epoch bookkeeping continues.
    est = pipe(early_stopping=True, patience=20, validation_fraction=0.2)
    fused = FusedHalvingGridSearchCV(est, grid, **kwargs)
    calls = fit_logged(fused, trained, X, y)
    ref = HalvingGridSearchCV(est, grid, **kwargs).fit(X, y)
    assert_same_search(fused, ref, X)
    assert_trained_once(fused, calls)

    def restarts(params):
        return params["mlpclassifier__lr_schedule"] == "cosine"

    assert fused.n_candidates_ == [4, 2, 1]
    assert fused.n_member_epochs_ == _expected_continued_epochs(fused, restarts)
    assert fused.n_member_epochs_ < _expected_continued_epochs(fused, lambda params: True)


def test_halving_random_search_over_n_samples(trained):
    # resource='n_samples': every round has other rows, so nothing continues; the pipeline's
    # scaler output must follow each round's rows.
    X, y = _X_CLF * _SCALES, _Y_CLF.copy()
    dist = {"mlpclassifier__lr": loguniform(1e-3, 1e-1)}
    kwargs = dict(n_candidates=4, factor=2, min_resources=60, cv=3, random_state=0)
    fused = FusedHalvingRandomSearchCV(pipe(), dist, **kwargs)
    calls = fit_logged(fused, trained, X, y)
    ref = HalvingRandomSearchCV(pipe(), dist, **kwargs).fit(X, y)
    assert fused.n_resources_ == [60, 120, 240]
    assert_same_search(fused, ref, X)
    assert_trained_once(fused, calls)
    assert fused.n_member_epochs_ == sum(fused.n_candidates_) * 3 * 5


# ----------------------------------------------------------------------------------------------
# 6. fallbacks: other estimators, fit parameters, groups


@pytest.mark.parametrize("estimator, grid", [
    (LogisticRegression(max_iter=200), {"C": [0.01, 1.0]}),
    (SklearnMLPClassifier((8,), max_iter=20, random_state=0), {"learning_rate_init": [1e-3, 3e-2]}),
], ids=["LogisticRegression", "sklearn-MLPClassifier"])
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_other_estimators_fall_back(estimator, grid, trained):
    X, y = clf_data()
    fused = FusedGridSearchCV(estimator, grid, cv=3, return_train_score=True)
    calls = fit_logged(fused, trained, X, y)
    ref = GridSearchCV(estimator, grid, cv=3, return_train_score=True).fit(X, y)
    assert_same_search(fused, ref, X)
    assert_candidates_differ(fused)
    assert calls == [] and not hasattr(fused, "n_member_epochs_")


def _scoring_process(estimator, X, y):
    """A scorer whose "score" is the process that fits and scores."""
    return os.getpid()


def test_what_is_not_fused_runs_on_the_workers_asked_for():
    # scikit-learn's search with n_jobs=2 fits in two worker processes: so does ours when it
    # has nothing to fuse.
    X, y = clf_data()
    search = FusedGridSearchCV(LogisticRegression(max_iter=200), {"C": [0.01, 0.1, 1.0, 10.0]},
                               cv=2, n_jobs=2, scoring=_scoring_process, refit=False).fit(X, y)
    processes = {search.cv_results_[f"split{i}_test_score"][c] for i in range(2) for c in range(4)}
    assert os.getpid() not in processes
    assert search.n_jobs == 2 and not hasattr(search, "n_member_epochs_")


class MLPWithExtra(MLPClassifier):
    """An sknn_tune MLP whose fit takes a parameter the fusion does not know."""

    def fit(self, X, y, sample_weight=None, extra=None):
        assert extra == "hello"
        return super().fit(X, y, sample_weight=sample_weight)


def test_unknown_fit_param_falls_back(trained):
    X, y = clf_data()
    grid = {"lr": [1e-3, 1e-2]}
    est = MLPWithExtra((8,), max_epochs=5, batch_size=64, random_state=0)
    fused = FusedGridSearchCV(est, grid, cv=3)
    calls = fit_logged(fused, trained, X, y, extra="hello")
    ref = GridSearchCV(clone(est), grid, cv=3).fit(X, y, extra="hello")
    assert_same_search(fused, ref, X)
    assert not hasattr(fused, "n_member_epochs_") and calls.fused() == []
    assert [t.members for t in calls.plain()] == [1] * (2 * 3 + 1)  # scikit-learn fitted all


@pytest.mark.parametrize("kind", ["bare", "pipeline"])
def test_sample_weight_is_fused(kind, trained):
    X, y = clf_data()
    weight = np.random.default_rng(0).uniform(0.1, 3.0, len(y))
    weight[::17] = 0.0
    if kind == "bare":
        est, grid, params = clf(), {"lr": [1e-3, 3e-2]}, {"sample_weight": weight}
    else:
        X = X * _SCALES
        est, grid = pipe(), {"mlpclassifier__lr": [1e-3, 3e-2]}
        params = {"mlpclassifier__sample_weight": weight}
    fused = FusedGridSearchCV(est, grid, cv=3, return_train_score=True)
    calls = fit_logged(fused, trained, X, y, **params)
    ref = GridSearchCV(est, grid, cv=3, return_train_score=True).fit(X, y, **params)
    assert_same_search(fused, ref, X)
    assert_trained_once(fused, calls)
    # The weights count: unweighted, the scores differ.
    unweighted = FusedGridSearchCV(est, grid, cv=3).fit(X, y)
    assert not np.allclose(unweighted.cv_results_["mean_test_score"],
                           fused.cv_results_["mean_test_score"], rtol=0, atol=ATOL)


def test_sample_weight_none_is_fused(trained):
    X, y = clf_data()
    grid = {"lr": [1e-3, 3e-2]}
    fused = FusedGridSearchCV(clf(), grid, cv=3)
    calls = fit_logged(fused, trained, X, y, sample_weight=None)
    assert_trained_once(fused, calls)
    ref = GridSearchCV(clf(), grid, cv=3).fit(X, y, sample_weight=None)
    assert_same_search(fused, ref, X)


def test_groups_with_group_kfold(trained):
    X, y = clf_data()
    groups = np.arange(len(y)) % 7
    grid = {"lr": [1e-3, 3e-2], "hidden_layer_sizes": [(8,), (16,)]}
    fused = FusedGridSearchCV(clf(), grid, cv=GroupKFold(3))
    calls = fit_logged(fused, trained, X, y, groups=groups)
    ref = GridSearchCV(clf(), grid, cv=GroupKFold(3)).fit(X, y, groups=groups)
    assert_same_search(fused, ref, X)
    assert_candidates_differ(fused)
    assert_trained_once(fused, calls)


# ----------------------------------------------------------------------------------------------
# 7. fusion invariance at search level; unseeded splitters

INVARIANCE_GRID = {"lr": [1e-3, 1e-1], "activation": ["relu", "tanh"], "dropout": [0.0, 0.2]}


def test_max_members_does_not_change_results(trained):
    X, y = clf_data()
    one = FusedGridSearchCV(clf(), INVARIANCE_GRID, cv=3, max_members=1,
                            return_train_score=True)
    calls_one = fit_logged(one, trained, X, y)
    assert [t.members for t in calls_one.fused()] == [1] * (8 * 3)
    many = FusedGridSearchCV(clf(), INVARIANCE_GRID, cv=3, return_train_score=True)
    calls_many = fit_logged(many, trained, X, y)
    # Both activations in one stack, each member as it trains alone.
    assert sorted(t.members for t in calls_many.fused()) == [24]
    assert_same_search(many, one, X)
    assert_candidates_differ(many)
    assert one.n_member_epochs_ == many.n_member_epochs_ == 8 * 3 * 5
    assert_trained_once(one, calls_one)
    assert_trained_once(many, calls_many)


class RecordingKFold(KFold):
    """A KFold that remembers every split it hands out."""

    def split(self, X, y=None, groups=None):
        splits = list(super().split(X, y, groups))
        self.recorded = [*getattr(self, "recorded", []), splits]
        yield from splits


def test_unseeded_shuffled_kfold_trains_and_scores_on_the_same_splits(trained):
    X, y = clf_data()
    cv = RecordingKFold(3, shuffle=True)  # no random_state: each split() call differs
    grid = {"lr": [1e-3, 3e-2]}
    search = FusedGridSearchCV(clf(), grid, cv=cv)
    calls = fit_logged(search, trained, X, y)
    assert_trained_once(search, calls)  # scoring found every member trained on its split
    assert len(cv.recorded) == 1  # split once, for training and scoring alike
    for fold, (train, test) in enumerate(cv.recorded[0]):
        for i, params in enumerate(search.cv_results_["params"]):
            score = clf(**params).fit(X[train], y[train]).score(X[test], y[test])
            assert search.cv_results_[f"split{fold}_test_score"][i] == pytest.approx(
                score, abs=ATOL)


# ----------------------------------------------------------------------------------------------
# 8. n_jobs, pickling, verbose


def _accuracy_in_process(estimator, X, y, pid):
    # The pretrained members live in the search's process: scoring elsewhere would retrain
    # them out of sight of the training log.
    assert os.getpid() == pid, "scored in another process"
    return float(np.mean(estimator.predict(X) == y))


def test_n_jobs_pickle_and_verbose(trained, capsys):
    X, y = clf_data()
    serial = FusedGridSearchCV(clf(), INVARIANCE_GRID, cv=3, return_train_score=True)
    serial.fit(X, y)
    capsys.readouterr()

    parallel = FusedGridSearchCV(clf(), INVARIANCE_GRID, cv=3, n_jobs=2, verbose=1,
                                 max_members=6, return_train_score=True, error_score="raise",
                                 scoring=partial(_accuracy_in_process, pid=os.getpid()))
    calls = fit_logged(parallel, trained, X, y)
    out = capsys.readouterr().out
    # Two workers, stacks of at most 6: the 24 fits go in slices of 2 x 6, two stacks each.
    assert out.count("Fused training of 12 fits in 2 stack(s)") == 2
    assert parallel.n_jobs == 2  # restored after fit
    assert_same_search(parallel, serial, X)
    assert_trained_once(parallel, calls)
    assert not hasattr(parallel, "_session")

    restored = pickle.loads(pickle.dumps(parallel))
    np.testing.assert_array_equal(restored.predict(X), parallel.predict(X))
    np.testing.assert_array_equal(restored.cv_results_["mean_test_score"],
                                  parallel.cv_results_["mean_test_score"])
    assert restored.best_params_ == parallel.best_params_
    assert restored.n_member_epochs_ == parallel.n_member_epochs_


# ----------------------------------------------------------------------------------------------
# 9. pandas input, string labels


@pytest.mark.parametrize("kind", ["bare", "pipeline"])
def test_dataframe_and_string_labels(kind, trained):
    iris = load_iris(as_frame=True)
    X = iris.data
    y = pd.Series(np.asarray(iris.target_names)[iris.target], name="species")
    assert isinstance(X, pd.DataFrame)
    if kind == "bare":
        est, grid = clf(max_epochs=8), {"lr": [1e-3, 3e-2]}
    else:
        est, grid = pipe(max_epochs=8), {"mlpclassifier__lr": [1e-3, 3e-2]}
    fused = FusedGridSearchCV(est, grid, cv=3)
    calls = fit_logged(fused, trained, X, y)
    ref = GridSearchCV(est, grid, cv=3).fit(X, y)
    assert_same_search(fused, ref, X)
    assert_candidates_differ(fused)
    assert_trained_once(fused, calls)
    np.testing.assert_array_equal(fused.feature_names_in_, X.columns)
    assert set(fused.predict(X)) <= set(iris.target_names)


# ----------------------------------------------------------------------------------------------
# 10. many candidates: a batch trained and scored in slices, memory bounded


class TaskRecorder:
    """A scikit-learn callback recording every task it sees as its path from the root task."""

    def __init__(self):
        self.tasks = []

    def setup(self, estimator, context):
        pass

    def on_fit_task_begin(self, estimator, context, **kwargs):
        path = []
        while context is not None:
            path.append((context.task_name, context.task_id))
            context = context.parent
        self.tasks.append(path[::-1])

    def on_fit_task_end(self, estimator, context, **kwargs):
        pass

    def teardown(self, estimator, context):
        pass


@pytest.mark.filterwarnings("ignore:One or more of the t:UserWarning")
def test_batch_in_slices_equals_sklearn(trained):
    # max_members=6 with 3 folds: slices of 2 candidates. The last slice's only candidate
    # diverges: evaluated alone, scikit-learn would raise "All the 3 fits failed"; it must be
    # scored with the candidate before it. Multimetric scores, train scores, and the callbacks'
    # task tree are those of one call.
    X, y, est = _diverging_setup()
    grid = {"lr": [1e-2, 1e6, 1e-3, 3e-3, 1e7]}
    kwargs = dict(cv=3, scoring=["r2", "neg_mean_absolute_error"], refit="r2",
                  return_train_score=True)
    fused, fused_tasks = FusedGridSearchCV(est, grid, max_members=6, **kwargs), TaskRecorder()
    with pytest.warns(FitFailedWarning, match="DivergenceError"):
        calls = fit_logged(fused.set_callbacks(fused_tasks), trained, X, y)
    ref, ref_tasks = GridSearchCV(est, grid, **kwargs), TaskRecorder()
    with pytest.warns(FitFailedWarning):
        ref.set_callbacks(ref_tasks).fit(X, y)
    # mean absolute errors of 10 to 60 in float32: on AMD EPYC the batched products of 6 members
    # and of 1 round differently in the last bit (1e-7 relative, 1.04e-6 absolute)
    assert_same_search(fused, ref, X, atol=1e-5)
    assert_candidates_differ(fused, "mean_test_r2")
    assert np.isnan(fused.cv_results_["mean_test_r2"][[1, 4]]).all()
    assert fused_tasks.tasks == ref_tasks.tasks
    assert len(fused_tasks.tasks) == 1 + 1 + 5 * 3 + 1  # the fit, the search, its fits, refit
    assert [t.members for t in calls.fused()] == [6, 6, 3]
    assert [t.members for t in calls.plain()] == [1]


def test_slices_filled_by_stack_size(trained, monkeypatch):
    # A slice holds the members that fill one stack (one worker): two candidates x 3 folds of the
    # small network, whose stacks hold 6, but one candidate of the larger one, whose hold 3.
    def capacity(self, member, sharing=1):
        return 6 if member.plan.config.architecture.hidden_layer_sizes == (8,) else 3

    monkeypatch.setattr(Session, "_capacity", capacity)
    X, y = clf_data()
    grid = {"hidden_layer_sizes": [(8,), (16, 8)], "lr": [1e-3, 1e-2, 3e-2, 1e-1]}
    fused = FusedGridSearchCV(clf(), grid, cv=3)
    calls = fit_logged(fused, trained, X, y)
    assert [t.members for t in calls.fused()] == [6, 6, 3, 3, 3, 3]
    assert_same_search(fused, GridSearchCV(clf(), grid, cv=3).fit(X, y), X)
    assert_trained_once(fused, calls)


def test_all_fits_failing_raises_as_sklearn():
    # Every fit of the batch fails: one error, as scikit-learn's, also when trained in slices.
    X, y, est = _diverging_setup()
    search = FusedGridSearchCV(est, {"lr": [1e6, 1e7, 1e8]}, cv=3, max_members=3)
    with pytest.raises(ValueError, match="All the 9 fits failed"):
        search.fit(X, y)


MANY_EPOCHS = 2


def _many_candidates_grid(n_lr):
    return {"lr": np.geomspace(1e-4, 3e-2, n_lr).tolist(),
            "weight_decay": [0.0, 1e-4, 1e-3, 1e-2, 1e-1]}


def _many_candidates_estimator():
    return reg(hidden_layer_sizes=(4,), max_epochs=MANY_EPOCHS, batch_size=128)


def _many_candidates_run(n_lr, max_members, path):
    """In a fresh interpreter (its peak RSS is this search's): FusedGridSearchCV over ``n_lr``
    x 5 candidates x 5 folds; pickles to ``path`` what the test checks."""
    import resource

    held, plain_fits = [0], [0]
    train, fit = Session.train, StackedTrainer.fit

    def train_counting_held(self, *args, **kwargs):
        keys = train(self, *args, **kwargs)
        held[0] = max(held[0], len(self.registry) + len(self.resumable))
        return keys

    def fit_counting_plain(self, *args, **kwargs):
        plain_fits[0] += sys._getframe(1).f_globals["__name__"] == ESTIMATOR_MODULE
        return fit(self, *args, **kwargs)

    Session.train, StackedTrainer.fit = train_counting_held, fit_counting_plain
    X, y = reg_data()
    est = _many_candidates_estimator()
    FusedGridSearchCV(est, {"lr": [1e-3, 1e-2]}, cv=5).fit(X, y)  # imports, first allocations
    plain_fits[0] = held[0] = 0
    kib = 1 if sys.platform != "darwin" else 1 / 1024  # ru_maxrss: KiB on Linux, bytes on macOS
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * kib
    search = FusedGridSearchCV(est, _many_candidates_grid(n_lr), cv=5, max_members=max_members)
    search.fit(X, y)
    growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * kib - before
    with open(path, "wb") as file:
        pickle.dump({"cv_results": search.cv_results_, "growth_mib": growth / 1024,
                     "held": held[0], "plain_fits": plain_fits[0],
                     "n_member_epochs": search.n_member_epochs_}, file)


def _many_candidates(n_lr, max_members, tmp_path):
    path = tmp_path / f"many_{n_lr}.pkl"
    code = (f"import sys; sys.path.insert(0, {os.path.dirname(__file__)!r}); "
            f"import test_search; test_search._many_candidates_run({n_lr}, {max_members}, "
            f"{str(path)!r})")
    subprocess.run([sys.executable, "-c", code], check=True,
                   env={**os.environ, "OMP_NUM_THREADS": "1"})
    with open(path, "rb") as file:
        return pickle.load(file)


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="peak memory from resource.getrusage")
def test_many_candidates_memory_stays_bounded(tmp_path):
    # 2000 candidates x 5 folds on CPU, in slices of 250 fits: at most one slice (and the
    # candidate carried to the next) is held at once, so peak memory stays that of a search of
    # 200 candidates, plus scikit-learn's own bookkeeping of 10000 fits (a few MiB).
    max_members = 250
    small = _many_candidates(40, max_members, tmp_path)
    large = _many_candidates(400, max_members, tmp_path)
    results = large["cv_results"]
    grid = _many_candidates_grid(400)
    assert results["params"] == list(ParameterGrid(grid))
    assert len(results["params"]) == 2000
    assert large["n_member_epochs"] == 2000 * 5 * MANY_EPOCHS  # every fit trained once...
    assert large["plain_fits"] == 1  # ...in the fused stacks: the scoring pass only adopts
    assert small["held"] == large["held"] <= max_members + 5
    assert large["growth_mib"] < small["growth_mib"] + 32, (small, large)

    # Candidates at the ends of slices (50 candidates each) against scikit-learn's search of
    # them alone; the ranks are those of the whole batch.
    chosen = [0, 49, 50, 51, 999, 1000, 1998, 1999]
    ref = GridSearchCV(_many_candidates_estimator(),
                       [{k: [v] for k, v in results["params"][i].items()} for i in chosen],
                       cv=5).fit(*reg_data())
    for key in ["mean_test_score", "std_test_score", *(f"split{k}_test_score" for k in range(5))]:
        np.testing.assert_allclose(results[key][chosen], ref.cv_results_[key], rtol=0,
                                   atol=ATOL, err_msg=key)
    means = results["mean_test_score"]
    np.testing.assert_array_equal(results["rank_test_score"],
                                  1 + (means[None, :] > means[:, None]).sum(axis=1))


def test_planning_validates_each_fold_once(monkeypatch):
    # The fused planning pass validates a fold's targets once for all candidates; scikit-learn's
    # pass then fits (validates) each candidate x fold as usual.
    encoded = []
    original = MLPClassifier._encode_targets

    def counted(self, *args, **kwargs):
        encoded.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(MLPClassifier, "_encode_targets", counted)
    X, y = make_classification(90, 4, random_state=0)
    network = MLPClassifier((4,), max_epochs=1, patience=None, random_state=0, device="cpu")
    FusedGridSearchCV(network, {"lr": [1e-3, 1e-2, 1e-1, 0.2]}, cv=3, refit=False).fit(X, y)
    assert len(encoded) == 3 + 4 * 3
