"""A candidate whose training or scoring raises gets ``error_score`` in a fused search, with
scikit-learn's warnings, exactly as in :class:`~sklearn.model_selection.GridSearchCV`; the other
candidates, also those trained in the same stack, are unaffected."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.exceptions import FitFailedWarning
from sklearn.experimental import enable_halving_search_cv  # noqa: F401
from sklearn.model_selection import GridSearchCV, HalvingGridSearchCV, RandomizedSearchCV
from sklearn.model_selection import cross_validate as sk_cross_validate
from test_search import assert_same_search

from sknn_tune import (
    FusedGridSearchCV,
    FusedHalvingGridSearchCV,
    FusedRandomizedSearchCV,
    MLPClassifier,
)
from sknn_tune.model_selection import cross_validate

X, Y = load_iris(return_X_y=True)
SMALL = {"hidden_layer_sizes": (8,), "max_epochs": 3, "random_state": 0}


def picky_scorer(estimator, X, y):
    """Raises for the larger learning rate only: one member of a stack fails, not the others."""
    if estimator.lr > 5e-3:
        raise ValueError("picky scorer refuses this candidate")
    return float(np.mean(estimator.predict(X) == y))


def _search(search_class, estimator, grid, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        search = search_class(estimator, grid, cv=3, **kwargs).fit(X, Y)
    messages = sorted({(w.category.__name__, tuple(_without_tracebacks(str(w.message))))
                       for w in caught if issubclass(w.category, (FitFailedWarning, UserWarning))
                       and "converged" not in str(w.message)})
    return search, messages


def _without_tracebacks(message):
    """A warning's text less its traceback frames (the fused and plain fits fail from other
    lines): the summary and each error's own line."""
    return [line for line in message.splitlines()
            if line and not line.startswith((" ", "Traceback"))]


ESTIMATOR_SCORER_CASES = {
    # The network's own validation scorer raises while the stack trains (roc_auc on 3 classes).
    "roc_auc on multiclass": ({"scoring": [None, "roc_auc"]}, {}),
    # A custom scorer raises for one of the members that train side by side in one stack.
    "one member of a stack": ({"lr": [1e-3, 1e-2]}, {"scoring": picky_scorer}),
    # A candidate that diverges.
    "divergence": ({"lr": [1e-3, 1e6], "optimizer": ["sgd"]}, {}),
}


@pytest.mark.parametrize("case", list(ESTIMATOR_SCORER_CASES))
def test_failing_candidate_gets_error_score_as_in_grid_search(case, trained):
    grid, params = ESTIMATOR_SCORER_CASES[case]
    estimator = MLPClassifier(early_stopping=True, **SMALL, **params)
    ref, ref_warnings = _search(GridSearchCV, estimator, grid)
    fused, fused_warnings = _search(FusedGridSearchCV, estimator, grid)
    assert_same_search(fused, ref, X)
    assert fused_warnings == ref_warnings
    assert any(name == "FitFailedWarning" for name, _ in fused_warnings)
    scores = fused.cv_results_["mean_test_score"]
    assert np.isnan(scores).sum() == 1 and np.isfinite(scores).sum() == 1
    # The good candidate's folds were trained fused, not again by scikit-learn's pass.
    assert trained.fused() >= 3


def test_failing_candidate_with_numeric_error_score():
    estimator = MLPClassifier(early_stopping=True, **SMALL)
    grid = {"scoring": [None, "roc_auc"]}
    ref, _ = _search(GridSearchCV, estimator, grid, error_score=-1.0)
    fused, _ = _search(FusedGridSearchCV, estimator, grid, error_score=-1.0)
    assert_same_search(fused, ref, X)
    assert -1.0 in fused.cv_results_["mean_test_score"]


def test_error_score_raise_raises_the_candidates_error():
    estimator = MLPClassifier(early_stopping=True, scoring="roc_auc", **SMALL)
    with pytest.raises(ValueError) as ref:
        GridSearchCV(estimator, {"lr": [1e-3]}, cv=3, error_score="raise").fit(X, Y)
    with pytest.raises(ValueError) as fused:
        FusedGridSearchCV(estimator, {"lr": [1e-3]}, cv=3, error_score="raise").fit(X, Y)
    assert str(fused.value) == str(ref.value)


def test_every_candidate_failing_raises_as_grid_search():
    estimator = MLPClassifier(early_stopping=True, scoring="roc_auc", **SMALL)
    with pytest.raises(ValueError, match="All the 6 fits failed"):
        FusedGridSearchCV(estimator, {"lr": [1e-3, 1e-2]}, cv=3).fit(X, Y)


def test_randomized_search_and_cross_validate_go_on():
    estimator = MLPClassifier(early_stopping=True, scoring=picky_scorer, **SMALL)
    grid = {"lr": [1e-3, 1e-2]}
    ref, ref_warnings = _search(RandomizedSearchCV, estimator, grid, n_iter=2, random_state=0)
    fused, fused_warnings = _search(FusedRandomizedSearchCV, estimator, grid, n_iter=2,
                                    random_state=0)
    assert_same_search(fused, ref, X)
    assert fused_warnings == ref_warnings
    bad = MLPClassifier(early_stopping=True, scoring="roc_auc", **SMALL)
    with pytest.raises(ValueError) as theirs:
        sk_cross_validate(bad, X, Y, cv=3)
    with pytest.raises(ValueError) as ours:
        cross_validate(bad, X, Y, cv=3)
    assert _without_tracebacks(str(ours.value)) == _without_tracebacks(str(theirs.value))


def _picky_estimator():
    return MLPClassifier(early_stopping=True, scoring=picky_scorer, batch_size="auto",
                         **{**SMALL, "max_epochs": 4})


@pytest.mark.filterwarnings("ignore:One or more of the t:UserWarning")
def test_halving_search_with_a_failing_member_equals_sklearn():
    kwargs = dict(resource="max_epochs", max_resources=4, min_resources=2, factor=2, cv=3,
                  refit=False, random_state=0)
    grid = {"lr": [1e-3, 2e-3, 1e-2]}
    with pytest.warns(FitFailedWarning, match="picky scorer"):
        fused = FusedHalvingGridSearchCV(_picky_estimator(), grid, **kwargs).fit(X, Y)
    with pytest.warns(FitFailedWarning, match="picky scorer"):
        ref = HalvingGridSearchCV(_picky_estimator(), grid, **kwargs).fit(X, Y)
    assert_same_search(fused, ref, X)


@pytest.mark.filterwarnings("ignore:One or more of the t:UserWarning")
def test_optuna_failing_member_is_a_failed_trial(trained):
    optuna = pytest.importorskip("optuna")
    from optuna.distributions import CategoricalDistribution
    from optuna.trial import TrialState

    from sknn_tune import FusedOptunaSearchCV

    study = optuna.create_study(direction="maximize")
    for lr in (1e-3, 1e-2):
        study.enqueue_trial({"lr": lr})
    search = FusedOptunaSearchCV(_picky_estimator(), {"lr": CategoricalDistribution([1e-3, 1e-2])},
                                 n_trials=2, batch_size=2, cv=3, study=study, refit=False)
    with pytest.warns(FitFailedWarning, match="picky scorer"):
        search.fit(X, Y)
    good, bad = search.trials_
    assert (good.state, bad.state) == (TrialState.COMPLETE, TrialState.FAIL)
    ref = GridSearchCV(_picky_estimator(), {"lr": [1e-3]}, cv=3).fit(X, Y)
    assert search.cv_results_["mean_test_score"][0] == ref.cv_results_["mean_test_score"][0]
    assert np.isnan(search.cv_results_["mean_test_score"][1])
    assert trained.fused() >= 3  # the good trial trained fused beside its failing neighbour
