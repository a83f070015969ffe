"""MLPClassifierCV / MLPRegressorCV: the search in fit, its stages, and estimator behaviour.

Small budgets throughout (the defaults search 27 + 9 candidates for up to 81 epochs): what is
tested is that the stages are what the docs say and that the estimators work everywhere an
estimator does; benchmarks/bench_selftuning.py measures what they are worth.
"""

import pickle

import numpy as np
import pandas as pd
import pytest
from scipy.stats import loguniform
from sklearn.datasets import load_iris, make_classification, make_regression
from sklearn.model_selection import GridSearchCV, ParameterSampler, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from sknn_tune import (
    MLPClassifier,
    MLPClassifierCV,
    MLPRegressor,
    MLPRegressorCV,
    default_space,
    neural_network,
    plot_search_results,
)
from sknn_tune._self_tuning import _neighbours

X, Y = load_iris(return_X_y=True)
X = StandardScaler().fit_transform(X)
SMALL = {"n_iter": 3, "n_fine": 2, "cv": 3, "max_epochs": 9, "random_state": 0}


_CHECK_FAILURES = {
    **{check: ("weights and the repeated rows they stand for make different folds, so the "
               "search may choose another candidate")
       for check in ("check_sample_weight_equivalence_on_dense_data",
                     "check_sample_weight_equivalence_on_sparse_data")},
    "check_methods_subset_invariance": ("float32 products over 1 row and over 20 round "
                                        "differently (~2e-7), as sknn_tune's estimators'"),
}


# a small budget (the defaults train 36 candidates for up to 81 epochs), enough to learn
@parametrize_with_checks([MLPClassifierCV(n_iter=2, n_fine=1, cv=2, max_epochs=3),
                          MLPRegressorCV(n_iter=2, n_fine=1, cv=2, max_epochs=27)],
                         expected_failed_checks=lambda estimator: _CHECK_FAILURES)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


def test_fit_runs_a_coarse_halving_stage_then_a_fine_stage_then_refits_the_best():
    clf = MLPClassifierCV(**SMALL).fit(X, Y)
    results = pd.DataFrame(clf.cv_results_)
    coarse, fine = results[results.stage == "coarse"], results[results.stage == "fine"]
    # successive halving over epochs: 3 candidates for 3 epochs, the best for 9
    assert coarse.groupby("iter").size().tolist() == [3, 1]
    assert coarse.groupby("iter").n_resources.first().tolist() == [3, 9]
    # the fine stage's 2 candidates: too few to halve, both trained for the full 9 epochs
    assert fine.groupby("iter").size().to_dict() == {2: 2}
    assert (fine.n_resources == 9).all()
    # the best is the best at the full budget, and the refit has its parameters and budget
    full = results[results.n_resources == 9]
    assert clf.best_index_ == full.mean_test_score.idxmax()
    assert clf.best_score_ == full.mean_test_score.max()
    assert clf.best_params_ == clf.cv_results_["params"][clf.best_index_]
    refit = clf.best_estimator_.get_params()
    assert all(refit[name] == value for name, value in clf.best_params_.items())
    assert refit["max_epochs"] == 9 and len(clf.history_) <= 9
    np.testing.assert_array_equal(clf.predict(X), clf.best_estimator_.predict(X))
    np.testing.assert_array_equal(clf.predict_proba(X), clf.best_estimator_.predict_proba(X))
    assert clf.score(X, Y) == clf.best_estimator_.score(X, Y)
    assert list(clf.classes_) == [0, 1, 2]
    assert clf.n_member_epochs_ > 0
    assert "coarse" in clf.summary() and "Total params" in clf.summary()
    assert (results.rank_test_score.min(), len(results)) == (1, 6)


def test_both_stages_halve_over_epochs_up_to_the_budget():
    clf = MLPClassifierCV(n_iter=9, n_fine=3, cv=2, max_epochs=9, random_state=0).fit(X, Y)
    results = pd.DataFrame(clf.cv_results_)
    rounds = results.groupby(["stage", "iter"]).n_resources.agg(["size", "first"])
    assert rounds.loc["coarse"].values.tolist() == [[9, 1], [3, 3], [1, 9]]
    assert rounds.loc["fine"].values.tolist() == [[3, 3], [1, 9]]
    assert clf.best_params_ == clf.cv_results_["params"][clf.best_index_]
    assert results.n_resources[clf.best_index_] == 9


def test_fine_stage_samples_around_the_best():
    rng = np.random.default_rng(0)
    best = {"lr": 0.01, "weight_decay": 1e-4, "dropout": 0.3, "hidden_layer_sizes": (64, 32),
            "activation": "gelu", "optimizer": "adamw"}
    for candidate in _neighbours(best, 200, rng):
        assert 0.01 / 3 <= candidate["lr"] <= 0.01 * 3
        assert 1e-4 / 3 <= candidate["weight_decay"] <= 1e-4 * 3
        assert 0.2 <= candidate["dropout"] <= 0.4
        assert all(w in (32, 64, 128) for w in candidate["hidden_layer_sizes"][:1])
        assert candidate["activation"] == "gelu" and candidate["optimizer"] == "adamw"
    widths = {w for c in _neighbours(best, 200, rng, max_width=64) for w in c["hidden_layer_sizes"]}
    assert widths == {16, 32, 64}, "doubled up to the widest of the space, no further"


@pytest.mark.parametrize(("n_samples", "epochs"), [(150, 81), (6000, 27), (30000, 9)])
def test_auto_budget_falls_with_the_rows(n_samples, epochs, monkeypatch):
    """'auto' gives larger data fewer epochs; the searches and the refit use the budget."""
    X_many, y_many = make_classification(n_samples, 4, random_state=0)

    class BudgetChosen(Exception):
        pass

    def coarse_stage(self, template, *args):
        raise BudgetChosen(template.max_epochs, self.max_epochs_)

    monkeypatch.setattr(MLPClassifierCV, "_coarse_stage", coarse_stage)
    with pytest.raises(BudgetChosen) as chosen:  # stop the fit once the budget is chosen
        MLPClassifierCV(cv=5).fit(X_many, y_many)
    assert chosen.value.args == (epochs, epochs)


@pytest.mark.parametrize("n_samples", [150, 5000, 100000])
def test_default_space_scales_with_the_data(n_samples):
    space = default_space(n_samples)
    assert (len(space) == 2) == (n_samples <= 2000)  # L-BFGS for small data only
    widths = max(max(shape) for shape in space[0]["hidden_layer_sizes"])
    assert widths == (128 if n_samples < 10000 else 256 if n_samples < 100000 else 512)
    assert {len(shape) for shape in space[0]["hidden_layer_sizes"]} == {1, 2, 3}
    for params in ParameterSampler(space, 30, random_state=0):
        MLPClassifier(**params)._validate_params()  # every draw is a valid network
        if params["optimizer"] == "lbfgs":
            assert params["dropout"] == 0 and not params["batch_norm"]


def test_explicit_space_template_and_its_fixed_parameters():
    template = MLPRegressor((8,), batch_size=16, activation="tanh")
    X_reg, y_reg = make_regression(120, 4, noise=1.0, random_state=0)
    reg = MLPRegressorCV(template, param_distributions={"lr": loguniform(1e-3, 1e-1)},
                         **SMALL).fit(X_reg, y_reg)
    assert set(reg.best_params_) == {"lr"}
    fitted = reg.best_estimator_.get_params()
    assert fitted["hidden_layer_sizes"] == (8,) and fitted["batch_size"] == 16
    assert template.get_params()["max_epochs"] == 200, "the template is not changed"
    # scikit-learn's signature: its names in the space, max_iter as the budget
    clf = MLPClassifierCV(neural_network.MLPClassifier((6,)),
                          param_distributions={"alpha": loguniform(1e-5, 1e-1)},
                          **SMALL).fit(X, Y)
    assert clf.best_estimator_.get_params()["max_iter"] == 9
    assert set(pd.DataFrame(clf.cv_results_).n_resources) == {3, 9}


def test_works_where_estimators_work():
    clf = MLPClassifierCV(**SMALL)
    pipe = make_pipeline(StandardScaler(), clf)
    scores = cross_val_score(pipe, X, Y, cv=2)
    assert scores.shape == (2,) and np.all(scores > 0.5)
    grid = GridSearchCV(MLPClassifierCV(**SMALL), {"max_epochs": [3, 6]}, cv=2).fit(X, Y)
    assert grid.best_params_["max_epochs"] in (3, 6)
    fitted = pipe.fit(X, Y)
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.predict(X), fitted.predict(X))
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    labelled = MLPClassifierCV(**SMALL).fit(frame, np.array(["x", "y", "z"])[Y])
    assert list(labelled.feature_names_in_) == ["a", "b", "c", "d"]
    assert set(labelled.predict(frame)) <= {"x", "y", "z"}


def test_plots_the_search_and_the_refit():
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    from sknn_tune import plot_history

    clf = MLPClassifierCV(**SMALL).fit(X, Y)
    axes = plot_search_results(clf)  # a panel per searched parameter (of either space)
    assert len(axes) == sum(key.startswith("param_") for key in clf.cv_results_) >= 6
    assert plot_history(clf.best_estimator_) is not None


def test_refit_false_has_no_model_and_errors_clearly():
    clf = MLPClassifierCV(**{**SMALL, "refit": False}).fit(X, Y)
    assert not hasattr(clf, "best_estimator_")
    with pytest.raises(Exception, match="not fitted"):
        clf.predict(X)
