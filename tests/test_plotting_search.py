"""plot_search_results: one panel per searched parameter, best candidate marked."""

import numpy as np
import pytest
from scipy.stats import loguniform
from sklearn.datasets import load_iris
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sknn_tune import (
    FusedGridSearchCV,
    FusedHalvingGridSearchCV,
    FusedRandomizedSearchCV,
    MLPClassifier,
    plot_search_results,
)

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
plt = pytest.importorskip("matplotlib.pyplot")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), y


@pytest.fixture(scope="module")
def grid_search(iris):
    """lr over three decades x a categorical activation, with training scores."""
    X, y = iris
    grid = {"lr": [1e-4, 1e-3, 1e-2, 1e-1], "activation": ["relu", "tanh"]}
    return FusedGridSearchCV(MLPClassifier((8,), max_epochs=4, random_state=0), grid, cv=3,
                             return_train_score=True).fit(X, y)


@pytest.fixture(scope="module")
def halving(iris):
    X, y = iris
    pipe = make_pipeline(StandardScaler(), MLPClassifier((8,), random_state=0))
    grid = {"mlpclassifier__lr": [3e-3, 1e-2, 3e-2, 1e-1],
            "mlpclassifier__hidden_layer_sizes": [(4,), (8,)]}
    return FusedHalvingGridSearchCV(pipe, grid, resource="mlpclassifier__max_epochs",
                                    min_resources=1, max_resources=4, factor=2, cv=3,
                                    random_state=0).fit(X, y)


def _best_star(ax):
    (star,) = [line for line in ax.get_lines() if line.get_label() == "best"]
    return float(star.get_xdata()[0]), float(star.get_ydata()[0])


def _points(ax):
    """``(x, y)`` of every mean-test-score point drawn on ``ax``."""
    xs, ys = [], []
    for container in ax.containers:
        data_line = container.lines[0]
        xs.append(np.asarray(data_line.get_xdata(), dtype=float))
        ys.append(np.asarray(data_line.get_ydata(), dtype=float))
    return np.concatenate(xs), np.concatenate(ys)


def test_one_panel_per_parameter(grid_search):
    axes = plot_search_results(grid_search)
    assert isinstance(axes, np.ndarray) and axes.shape == (2,)
    # cv_results_ lists parameters alphabetically
    assert [ax.get_xlabel() for ax in axes] == ["activation", "lr"]
    assert axes[0].get_ylabel() == "mean test score (CV)"
    results = grid_search.cv_results_
    x, y = _points(axes[1])
    np.testing.assert_allclose(np.sort(x), np.sort(results["param_lr"].astype(float)))
    np.testing.assert_allclose(np.sort(y), np.sort(results["mean_test_score"]))
    # the mean train scores are drawn as hollow markers
    train = [line for line in axes[1].get_lines() if line.get_markerfacecolor() == "none"
             and len(line.get_xdata())]
    np.testing.assert_allclose(np.sort(np.concatenate([t.get_ydata() for t in train])),
                               np.sort(results["mean_train_score"]))
    legend = axes[0].figure.legends[0]
    assert [t.get_text() for t in legend.get_texts()] == [
        "mean test score ± std", "mean train score", "best"]


def test_categorical_axis_and_best_marker(grid_search):
    ax_act, ax_lr = plot_search_results(grid_search)
    assert [t.get_text() for t in ax_act.get_xticklabels()] == ["relu", "tanh"]
    best = grid_search.best_params_
    x, y = _best_star(ax_lr)
    assert x == pytest.approx(best["lr"])
    assert y == pytest.approx(grid_search.best_score_)
    x, _ = _best_star(ax_act)
    assert ax_act.get_xticklabels()[round(x)].get_text() == best["activation"]
    # a category's candidates are spread around its tick, not onto the next one
    xs, _ = _points(ax_act)
    assert np.all(np.abs(xs - np.round(xs)) <= 0.2 + 1e-12)


@pytest.mark.parametrize(("values", "log_scale", "expected"), [
    ([1e-4, 1e-3, 1e-2, 1e-1], "auto", "log"),   # three decades
    ([1e-3, 3e-3, 1e-2], "auto", "linear"),      # one decade
    ([1e-4, 1e-1], False, "linear"),
    ([0.1, 0.3], True, "log"),
    ([0.1, 0.3], {"C": True}, "log"),
])
def test_log_scale_decision(iris, values, log_scale, expected):
    X, y = iris
    search = GridSearchCV(LogisticRegression(), {"C": values}, cv=3).fit(X, y)
    ax = plot_search_results(search, log_scale=log_scale)
    assert ax.get_xscale() == expected


def test_log_scale_needs_positive_values(iris):
    X, y = iris
    search = GridSearchCV(make_pipeline(StandardScaler(), MLPClassifier((4,), max_epochs=2)),
                          {"mlpclassifier__weight_decay": [0.0, 1e-3, 1e-1]}, cv=3).fit(X, y)
    ax = plot_search_results(search)  # 'auto' never takes the log of a zero
    assert ax.get_xscale() == "linear"
    with pytest.raises(ValueError, match="not all positive"):
        plot_search_results(search, log_scale=True)


def test_plain_sklearn_search_single_param_and_given_ax(iris):
    X, y = iris
    search = GridSearchCV(LogisticRegression(), {"C": [0.01, 1.0, 100.0]}, cv=3).fit(X, y)
    _, ax = plt.subplots()
    out = plot_search_results(search, params="param_C", ax=ax)
    assert out is ax  # one parameter: the Axes itself, not an array
    assert _best_star(ax)[0] == pytest.approx(search.best_params_["C"])
    assert ax.get_legend() is not None
    with pytest.raises(ValueError, match="1 Axes for 2 parameters"):
        plot_search_results(search, params=["C", "C"], ax=ax)


def test_random_search_best_marker(iris):
    X, y = iris
    search = FusedRandomizedSearchCV(
        MLPClassifier((8,), max_epochs=3, random_state=0),
        {"lr": loguniform(1e-4, 1e-1), "weight_decay": loguniform(1e-6, 1e-2)},
        n_iter=6, cv=3, random_state=0).fit(X, y)
    axes = plot_search_results(search, params=["lr", "weight_decay"])
    for ax, name in zip(axes, ["lr", "weight_decay"]):
        values = search.cv_results_[f"param_{name}"].astype(float)
        assert ax.get_xscale() == ("log" if values.max() / values.min() > 100 else "linear")
        assert _best_star(ax)[0] == pytest.approx(search.best_params_[name])


def test_halving_colours_by_iteration(halving):
    # the resource is not a panel of its own by default: the colours show it
    axes = plot_search_results(halving)
    assert [ax.get_xlabel() for ax in axes] == ["mlpclassifier__hidden_layer_sizes",
                                               "mlpclassifier__lr"]
    ax_layers, ax_lr = axes
    assert len(ax_lr.containers) == halving.n_iterations_
    colors = {tuple(c.lines[0].get_color()) for c in ax_lr.containers}
    assert len(colors) == halving.n_iterations_
    labels = [t.get_text() for t in ax_lr.figure.legends[0].get_texts()]
    assert labels[:halving.n_iterations_] == [
        f"iter {i}: max_epochs={n}" for i, n in enumerate(halving.n_resources_)]
    # the best is the best of the last iteration, as best_params_ says
    best = halving.best_params_
    assert _best_star(ax_lr)[0] == pytest.approx(best["mlpclassifier__lr"])
    x, _ = _best_star(ax_layers)
    ticks = [t.get_text() for t in ax_layers.get_xticklabels()]
    assert ticks == ["(4,)", "(8,)"]
    assert ticks[round(x)] == str(best["mlpclassifier__hidden_layer_sizes"])
    # asked for explicitly, the resource gets its panel
    ax = plot_search_results(halving, params="mlpclassifier__max_epochs")
    assert _best_star(ax)[0] == best["mlpclassifier__max_epochs"] == halving.n_resources_[-1]


def test_multimetric(iris):
    X, y = iris
    search = GridSearchCV(LogisticRegression(), {"C": [0.01, 1.0, 100.0]}, cv=3,
                          scoring=["accuracy", "f1_macro"], refit="f1_macro").fit(X, y)
    ax = plot_search_results(search)  # the refit metric
    assert ax.get_ylabel() == "mean test f1_macro (CV)"
    ax = plot_search_results(search, metric="accuracy")
    _, ys = _points(ax)
    np.testing.assert_allclose(np.sort(ys), np.sort(search.cv_results_["mean_test_accuracy"]))
    assert _best_star(ax)[1] == pytest.approx(search.cv_results_["mean_test_accuracy"].max())
    with pytest.raises(ValueError, match="not a score of this search"):
        plot_search_results(search, metric="score")
    no_refit = GridSearchCV(LogisticRegression(), {"C": [0.1, 1.0]}, cv=3,
                            scoring=["accuracy", "f1_macro"], refit=False).fit(X, y)
    with pytest.raises(ValueError, match="pass metric="):
        plot_search_results(no_refit)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.FitFailedWarning")
@pytest.mark.filterwarnings("ignore:One or more of the test scores are non-finite")
def test_failed_candidates_and_masked_params(iris):
    X, y = iris
    grid = [{"C": [-1.0, 0.1, 1.0]}, {"fit_intercept": [False]}]
    search = GridSearchCV(LogisticRegression(), grid, cv=3).fit(X, y)
    ax_c, ax_intercept = plot_search_results(search)
    # param_C is masked for the candidate of the second grid: three candidates on the C panel
    x, _ = _points(ax_c)
    assert np.isfinite(x).sum() == 3
    (failed,) = [line for line in ax_c.get_lines() if line.get_label().startswith("failed")]
    assert failed.get_label() == "failed (1)"
    assert list(failed.get_xdata()) == [-1.0]
    assert [t.get_text() for t in ax_intercept.get_xticklabels()] == ["False"]


def test_errors(iris):
    search = FusedGridSearchCV(MLPClassifier((4,), max_epochs=2), {"lr": [1e-3, 1e-2]}, cv=3)
    with pytest.raises(NotFittedError):
        plot_search_results(search)
    X, y = iris
    search.fit(X, y)
    with pytest.raises(ValueError, match=r"\['dropout'\] not searched.*\['lr'\]"):
        plot_search_results(search, params=["lr", "dropout"])
    with pytest.raises(ValueError, match="log_scale"):
        plot_search_results(search, log_scale="yes")
