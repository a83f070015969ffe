"""Optuna on sknn_tune: FusedOptunaSearchCV against cross_val_score, pruning, failures; and
optuna_integration.OptunaSearchCV (pruning through partial_fit) on the estimators.

Every trial's scores must be scikit-learn's scores of that candidate, to 1e-6. Training is counted by
wrapping ``StackedTrainer.fit`` (as tests/test_search.py does): the fused stacks train every
candidate x fold once, the scoring pass only adopts the members, the refit is the only plain fit.
"""

import pickle
import sys

import numpy as np
import pytest

optuna = pytest.importorskip("optuna")

from optuna.distributions import (  # noqa: E402
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import TrialState  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.datasets import make_classification, make_regression  # noqa: E402
from sklearn.exceptions import FitFailedWarning  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.model_selection import cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils._param_validation import InvalidParameterError  # noqa: E402

from sknn_tune import FusedOptunaSearchCV, MLPClassifier, MLPRegressor  # noqa: E402
from sknn_tune._engine.trainer import StackedTrainer  # noqa: E402
from sknn_tune.exceptions import DivergenceError  # noqa: E402

ATOL = 1e-6
CV = 3
FUSION_MODULE = "sknn_tune._fused.jobs"

optuna.logging.set_verbosity(optuna.logging.WARNING)

_X, _Y = make_classification(240, 6, n_informative=4, n_redundant=0, n_classes=3, random_state=0)
_SCALES = np.array([1.0, 10.0, 0.1, 5.0, 1.0, 50.0])
LR = FloatDistribution(1e-4, 1e-1, log=True)


def data():
    return _X.copy(), _Y.copy()


def clf(**params):
    return MLPClassifier(**{"hidden_layer_sizes": (8,), "max_epochs": 5, "batch_size": 64,
                            "random_state": 0, **params})


def median_study(*enqueued):
    """A study with a median pruner that starts after two completed trials; ``enqueued`` lrs
    are its first trials, in that order."""
    study = optuna.create_study(direction="maximize",
                                sampler=optuna.samplers.TPESampler(seed=0),
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=2))
    for params in enqueued:
        study.enqueue_trial(params)
    return study


@pytest.fixture
def trained(monkeypatch):
    """``[(fused, members, member-epochs)]`` for every ``StackedTrainer.fit`` call."""
    log = []
    original = StackedTrainer.fit

    def fit(self, *args, **kwargs):
        fused = sys._getframe(1).f_globals["__name__"] == FUSION_MODULE
        before = int(self.epochs_done.sum())
        result = original(self, *args, **kwargs)
        log.append((fused, len(self.members), int(self.epochs_done.sum()) - before))
        return result

    monkeypatch.setattr(StackedTrainer, "fit", fit)
    return log


def assert_scores_are_sklearns(search, X, y, estimator):
    """Every row of ``cv_results_`` holds ``cross_val_score`` of its candidate, and the study
    was told their means."""
    results = search.cv_results_
    trials = {t.number: t for t in search.trials_}
    for i, params in enumerate(results["params"]):
        expected = cross_val_score(clone(estimator).set_params(**params), X, y, cv=CV)
        got = [results[f"split{k}_test_score"][i] for k in range(CV)]
        np.testing.assert_allclose(got, expected, rtol=0, atol=ATOL, err_msg=str(params))
        trial = trials[results["trial_number"][i]]
        assert trial.state == TrialState.COMPLETE
        assert trial.params == params
        assert trial.value == pytest.approx(results["mean_test_score"][i], abs=1e-12)


# ----------------------------------------------------------------------------------------------


def test_trials_score_as_cross_val_score_and_train_once(trained):
    X, y = data()
    est = clf()
    dists = {"lr": LR, "activation": CategoricalDistribution(["relu", "tanh"]),
             "dropout": FloatDistribution(0.0, 0.3)}
    search = FusedOptunaSearchCV(est, dists, n_trials=8, batch_size=4, cv=CV,
                                 sampler=optuna.samplers.TPESampler(seed=0))
    search.fit(X, y)
    calls = list(trained)
    assert search.n_trials_ == 8 == len(search.trials_) == len(search.cv_results_["params"])
    assert [t.number for t in search.trials_] == list(range(8))
    assert_scores_are_sklearns(search, X, y, est)
    scores = search.cv_results_["mean_test_score"]
    assert scores.max() - scores.min() > 1e-3  # candidates differ: a mix-up would show

    fused = [(members, epochs) for is_fused, members, epochs in calls if is_fused]
    plain = [members for is_fused, members, _ in calls if not is_fused]
    assert sum(members for members, _ in fused) == 8 * CV  # every trial x fold once
    assert plain == [1]  # the refit
    assert search.n_member_epochs_ == sum(e for _, e in fused) == 8 * CV * est.max_epochs
    # No pruner: nothing was reported, every trial ran all epochs.
    assert all(t.intermediate_values == {} and t.user_attrs["n_epochs"] == 5
               for t in search.trials_)
    assert set(search.cv_results_) >= {
        "params", "param_lr", "param_activation", "param_dropout", "split0_test_score",
        "mean_test_score", "std_test_score", "rank_test_score", "mean_fit_time", "trial_number"}


@pytest.mark.parametrize("batch_size", [1, 4])
def test_batch_sizes(trained, batch_size):
    # TPE's first trials are random draws from its seeded generator: the same candidates, told in
    # batches of one or of four, give the same results.
    X, y = data()
    search = FusedOptunaSearchCV(clf(), {"lr": LR}, n_trials=4, batch_size=batch_size, cv=CV,
                                 random_state=0).fit(X, y)
    fused_calls = [members for is_fused, members, _ in trained if is_fused]
    assert_scores_are_sklearns(search, X, y, clf())
    assert fused_calls == [CV] * 4 if batch_size == 1 else fused_calls == [4 * CV]
    reference = FusedOptunaSearchCV(clf(), {"lr": LR}, n_trials=4, batch_size=3, cv=CV,
                                    random_state=0).fit(X, y)
    np.testing.assert_allclose(search.cv_results_["mean_test_score"],
                               reference.cv_results_["mean_test_score"], rtol=0, atol=ATOL)
    assert search.best_params_ == reference.best_params_


def test_pruning_stops_bad_learning_rates_early(trained):
    X, y = data()
    est = clf(max_epochs=8, init="he_uniform")  # the scenario's scores were chosen under He init
    # Two good lrs complete first; then tiny lrs (chance level) fall below the median of the
    # completed trials at the first chunk of epochs and are pruned; a good one survives.
    lrs = [0.1, 0.05, 1e-5, 0.08, 2e-6, 5e-6]
    study = median_study(*({"lr": lr} for lr in lrs))
    search = FusedOptunaSearchCV(est, {"lr": FloatDistribution(1e-6, 1.0, log=True)},
                                 n_trials=6, batch_size=2, cv=CV, study=study)
    search.fit(X, y)
    fused_epochs = sum(e for is_fused, _, e in trained if is_fused)
    assert search.study_ is study
    states = {t.params["lr"]: t.state for t in search.trials_}
    assert states == {0.1: TrialState.COMPLETE, 0.05: TrialState.COMPLETE,
                      1e-5: TrialState.PRUNED, 0.08: TrialState.COMPLETE,
                      2e-6: TrialState.PRUNED, 5e-6: TrialState.PRUNED}
    # Pruned trials trained fewer epochs and are not in cv_results_; completed ones trained all
    # 8 epochs once (continued across the chunks 1, 2, 4) and score as plain fits do.
    epochs = {t.params["lr"]: t.user_attrs["n_epochs"] for t in search.trials_}
    assert all(epochs[lr] < 8 for lr, state in states.items() if state == TrialState.PRUNED)
    assert all(epochs[lr] == 8 for lr, state in states.items() if state == TrialState.COMPLETE)
    assert search.cv_results_["trial_number"].tolist() == [0, 1, 3]
    assert_scores_are_sklearns(search, X, y, est)
    for trial in search.trials_:
        assert sorted(trial.intermediate_values) == [1, 2, 4, 8][:len(trial.intermediate_values)]
        if trial.state == TrialState.COMPLETE:
            assert trial.intermediate_values[8] == trial.value
    assert search.n_member_epochs_ == CV * sum(epochs.values()) < CV * 8 * len(lrs)
    assert search.n_member_epochs_ == fused_epochs
    assert search.best_params_ == {"lr": 0.1}


def test_pruning_a_pipeline_with_searched_max_epochs():
    # The epochs parameter is the pipeline's step's; a trial's chunks stop below its own
    # max_epochs; pruning_epochs given as an int (every 2 epochs).
    X, y = _X * _SCALES, _Y.copy()
    pipe = make_pipeline(StandardScaler(), clf())
    dists = {"mlpclassifier__lr": LR, "mlpclassifier__max_epochs": IntDistribution(3, 7)}
    search = FusedOptunaSearchCV(pipe, dists, n_trials=6, batch_size=3, cv=CV, random_state=1,
                                 pruner=optuna.pruners.MedianPruner(n_startup_trials=1),
                                 pruning_epochs=2).fit(X, y)
    for trial in search.trials_:
        max_epochs = trial.params["mlpclassifier__max_epochs"]
        steps = sorted(trial.intermediate_values)
        assert steps[:-1] == list(range(2, max_epochs, 2))[:len(steps) - 1]
        if trial.state == TrialState.COMPLETE:
            assert steps[-1] == max_epochs == trial.user_attrs["n_epochs"]
    assert_scores_are_sklearns(search, X, y, pipe)


def test_refit_and_best_estimator():
    X, y = data()
    dists = {"lr": LR}
    search = FusedOptunaSearchCV(clf(), dists, n_trials=5, batch_size=5, cv=CV,
                                 random_state=0).fit(X, y)
    best = int(np.argmax(search.cv_results_["mean_test_score"]))
    assert search.best_index_ == best
    assert search.best_params_ == search.cv_results_["params"][best]
    assert search.best_score_ == search.cv_results_["mean_test_score"][best]
    assert search.best_score_ == pytest.approx(search.study_.best_value, abs=1e-12)
    assert search.study_.best_trial.number == search.cv_results_["trial_number"][best]
    alone = clf(**search.best_params_).fit(X, y)
    np.testing.assert_array_equal(search.predict_proba(X), alone.predict_proba(X))
    assert search.score(X, y) == alone.score(X, y)
    np.testing.assert_array_equal(search.classes_, alone.classes_)
    assert search.refit_time_ >= 0

    again = pickle.loads(pickle.dumps(search))
    np.testing.assert_array_equal(again.predict(X), search.predict(X))
    assert len(again.study_.trials) == 5

    # Refitting again from the same parameters gives the same search.
    repeat = clone(search).fit(X, y)
    assert repeat.cv_results_["params"] == search.cv_results_["params"]

    no_refit = FusedOptunaSearchCV(clf(), dists, n_trials=2, cv=CV, refit=False,
                                   random_state=0).fit(X, y)
    assert not hasattr(no_refit, "best_estimator_")
    assert no_refit.best_params_ == no_refit.cv_results_["params"][no_refit.best_index_]

    multi = FusedOptunaSearchCV(clf(), dists, n_trials=3, cv=CV, random_state=0,
                                scoring={"acc": "accuracy", "nll": "neg_log_loss"},
                                refit="nll").fit(X, y)
    values = [t.value for t in multi.trials_]
    np.testing.assert_allclose(values, multi.cv_results_["mean_test_nll"], rtol=0, atol=1e-12)
    assert multi.best_score_ == max(values)
    assert {"mean_test_acc", "rank_test_nll"} <= set(multi.cv_results_)


@pytest.mark.filterwarnings("ignore:One or more of the test scores are non-finite")
@pytest.mark.parametrize("batch_size", [1, 2])
def test_diverging_trial_is_a_failure_with_error_score(batch_size):
    # sgd with lr=1e6 on unscaled targets diverges: a DivergenceError in a plain fit.
    X, y = make_regression(150, 4, noise=1.0, random_state=0)
    est = MLPRegressor((8,), optimizer="sgd", max_epochs=4, batch_size=32, random_state=0)
    with pytest.raises(DivergenceError):
        clone(est).set_params(lr=1e6).fit(X, y)
    study = optuna.create_study(direction="maximize")
    for lr in (1e-4, 1e6):
        study.enqueue_trial({"lr": lr})
    search = FusedOptunaSearchCV(est, {"lr": CategoricalDistribution([1e-4, 1e6])}, n_trials=2,
                                 batch_size=batch_size, cv=CV, study=study)
    with pytest.warns(FitFailedWarning, match="DivergenceError"):
        search.fit(X, y)
    good, bad = search.trials_
    assert (good.state, bad.state) == (TrialState.COMPLETE, TrialState.FAIL)
    assert "DivergenceError" in bad.user_attrs["fit_error"]
    results = search.cv_results_
    assert results["params"] == [{"lr": 1e-4}, {"lr": 1e6}]
    assert np.isfinite(results["mean_test_score"][0]) and np.isnan(results["mean_test_score"][1])
    assert results["rank_test_score"].tolist() == [1, 2]
    assert search.best_params_ == {"lr": 1e-4}

    # error_score='raise' raises, and leaves no trial running in the study.
    study = optuna.create_study(direction="maximize")
    study.enqueue_trial({"lr": 1e6})
    search = FusedOptunaSearchCV(est, {"lr": CategoricalDistribution([1e-4, 1e6])}, n_trials=2,
                                 batch_size=batch_size, cv=CV, study=study, error_score="raise")
    with pytest.raises(DivergenceError):
        search.fit(X, y)
    assert all(t.state.is_finished() for t in study.trials)


def test_other_estimators_timeout_and_continued_study():
    X, y = data()
    # Not an sknn_tune network: scikit-learn fits it, the search still works.
    search = FusedOptunaSearchCV(LogisticRegression(), {"C": FloatDistribution(1e-2, 10, log=True)},
                                 n_trials=3, batch_size=2, cv=CV, random_state=0).fit(X, y)
    assert_scores_are_sklearns(search, X, y, LogisticRegression())
    assert not hasattr(search, "n_member_epochs_")  # nothing fused

    # The timeout stops after a batch, never before the first.
    search = FusedOptunaSearchCV(clf(), {"lr": LR}, n_trials=None, timeout=1e-9, batch_size=2,
                                 cv=CV).fit(X, y)
    assert search.n_trials_ == 2

    # A study carries on across fits: the sampler sees the earlier trials, trials_ is this fit's.
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=0))
    search = FusedOptunaSearchCV(clf(), {"lr": LR}, n_trials=2, cv=CV, study=study)
    search.fit(X, y)
    search.fit(X, y)
    assert len(study.trials) == 4
    assert [t.number for t in search.trials_] == [2, 3]
    assert search.cv_results_["trial_number"].tolist() == [2, 3]


def test_parameter_validation():
    X, y = data()
    from scipy.stats import loguniform

    cases = [
        (dict(param_distributions={"lr": loguniform(1e-4, 1e-1)}), TypeError, "optuna distr"),
        (dict(n_trials=None), ValueError, "n_trials, timeout"),
        (dict(study=optuna.create_study(), n_trials=1), ValueError, "maximise"),
        (dict(study=optuna.create_study(direction="maximize"),
              sampler=optuna.samplers.RandomSampler()), ValueError, "either a study"),
        (dict(pruning_epochs=[2, 0], pruner=optuna.pruners.MedianPruner()), ValueError,
         "pruning_epochs"),
        (dict(estimator=LogisticRegression(), param_distributions={},
              pruner=optuna.pruners.MedianPruner()), ValueError, "partial_fit"),
        (dict(scoring=["accuracy", "f1_macro"], refit=True), ValueError, "refit"),
        (dict(n_trials=0), InvalidParameterError, "n_trials"),
        (dict(batch_size=0), InvalidParameterError, "batch_size"),
        (dict(sampler="tpe"), InvalidParameterError, "sampler"),
    ]
    for kwargs, error, match in cases:
        kwargs = {"estimator": clf(), "param_distributions": {"lr": LR}, **kwargs}
        search = FusedOptunaSearchCV(**kwargs)
        with pytest.raises(error, match=match):
            search.fit(X, y)
        assert not hasattr(search, "cv_results_")


# ----------------------------------------------------------------------------------------------
# optuna_integration.OptunaSearchCV: one fit at a time, pruning through partial_fit


def test_optuna_integration_prunes_through_partial_fit():
    optuna_integration = pytest.importorskip("optuna_integration")
    X, y = data()
    labels = np.array(["ant", "bee", "cat"])[y]  # string labels: partial_fit gets classes=
    max_iter = 4
    study = median_study({"lr": 0.1}, {"lr": 0.05}, {"lr": 1e-5}, {"lr": 2e-6})
    search = optuna_integration.OptunaSearchCV(
        clf(), {"lr": FloatDistribution(1e-6, 1.0, log=True)}, enable_pruning=True,
        max_iter=max_iter, n_trials=4, cv=CV, study=study)
    search.fit(X, labels)
    states = [t.state for t in search.trials_]
    assert states[:2] == [TrialState.COMPLETE] * 2
    assert TrialState.PRUNED in states[2:]
    # max_iter partial_fit calls of one epoch are a fit with max_epochs=max_iter: the same scores.
    for trial in search.trials_:
        if trial.state == TrialState.COMPLETE:
            est = clf(max_epochs=max_iter, **trial.params)
            expected = cross_val_score(est, X, labels, cv=CV)
            got = [trial.user_attrs[f"split{k}_test_score"] for k in range(CV)]
            np.testing.assert_allclose(got, expected, rtol=0, atol=ATOL)
            assert sorted(trial.intermediate_values) == list(range(max_iter))
    assert search.best_params_ == {"lr": 0.1}
    assert set(search.predict(X)) <= set(labels)
