"""sknn_tune.plotting: learning curves (plot_history, plot_histories) and search results."""

import sys

import numpy as np
import pandas as pd
import pytest
from scipy.stats import loguniform
from sklearn.datasets import load_iris
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sknn_tune import (
    DivergenceError,
    FusedGridSearchCV,
    FusedHalvingGridSearchCV,
    FusedRandomizedSearchCV,
    MLPClassifier,
    MLPRegressor,
    plot_histories,
    plot_history,
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
def stopped(iris):
    """A classifier with a validation set whose best epoch is not its last."""
    X, y = iris
    return MLPClassifier((8,), lr=0.2, max_epochs=30, early_stopping=True, patience=3,
                         random_state=0).fit(X, y)


@pytest.fixture(scope="module")
def plain(iris):
    X, y = iris
    return MLPClassifier((8,), max_epochs=4, random_state=0).fit(X, y)


def _diverged_history(train_loss=(1.0, 50.0, 1e9), diverged=(False, False, True)):
    """A history as the engine writes it for a run that diverged at epoch 3 (its last)."""
    history = pd.DataFrame({"epoch": [1, 2, 3], "train_loss": train_loss,
                            "val_loss": [1.2, 80.0, np.nan], "val_score": [0.5, 0.3, 0.1],
                            "lr": [1.0] * 3, "seconds": [0.01] * 3})
    if diverged is not None:
        history["diverged"] = diverged
    return history


def _divergence_marker(ax, epoch):
    """The one ``x`` marker of the axes: it stands at ``epoch``, at the top of the axes."""
    (marker,) = [line for line in ax.get_lines() if line.get_marker() == "x"]
    assert marker.get_xdata()[0] == epoch
    assert marker.get_transform() == ax.get_xaxis_transform()  # y in axes coordinates
    assert marker.get_ydata()[0] > 0.9
    assert ax.get_xlim()[0] <= epoch <= ax.get_xlim()[1]
    return marker


def test_loss_curves_and_best_epoch(stopped):
    ax = plot_history(stopped)
    train, val, best = ax.get_lines()
    history = stopped.history_
    np.testing.assert_array_equal(train.get_xdata(), history["epoch"])
    np.testing.assert_allclose(train.get_ydata(), history["train_loss"])
    np.testing.assert_allclose(val.get_ydata(), history["val_loss"])
    assert best.get_xdata()[0] == stopped.best_epoch_
    assert stopped.best_epoch_ < stopped.n_iter_  # the marker is not just the last epoch
    assert ax.get_xlabel() == "epoch"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "train", "validation", f"best epoch ({stopped.best_epoch_})"]


def test_without_validation_draws_training_loss_only(plain):
    ax = plot_history(plain, mark_best=False)
    (train,) = ax.get_lines()
    np.testing.assert_allclose(train.get_ydata(), plain.history_["train_loss"])


def test_score_and_other_columns(stopped, iris):
    ax = plot_history(stopped, metric="score")
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), stopped.history_["val_score"])
    assert ax.get_ylabel() == "validation score (accuracy)"
    ax = plot_history(stopped.history_, metric="lr")
    assert len(ax.get_lines()) == 1 and ax.get_ylabel() == "learning rate"
    X, y = iris
    reg = MLPRegressor((4,), max_epochs=2, early_stopping=True, random_state=0).fit(X, y)
    assert plot_history(reg, metric="score").get_ylabel() == "validation score (R²)"


def test_accepts_pipeline_and_dataframe(iris, stopped):
    X, y = iris
    pipe = make_pipeline(StandardScaler(), MLPClassifier((8,), max_epochs=3, random_state=0))
    ax = plot_history(pipe.fit(X, y))
    assert len(ax.get_lines()) == 2  # training loss, best epoch
    ax = plot_history(stopped.history_)
    assert len(ax.get_lines()) == 2  # no best epoch without an estimator


def test_draws_on_given_axes(stopped):
    _, ax = plt.subplots()
    assert plot_history(stopped, ax=ax) is ax
    assert plot_histories({"a": stopped}, ax=ax) is ax


def test_divergence_is_marked():
    history = _diverged_history()
    ax = plot_history(history)
    train, val, marker = ax.get_lines()
    assert marker is _divergence_marker(ax, 3)
    assert marker.get_color() == train.get_color()
    # the diverged epoch's losses (finite, but off the scale) are not drawn
    np.testing.assert_array_equal(train.get_ydata(), [1.0, 50.0, np.nan])
    np.testing.assert_array_equal(val.get_ydata(), [1.2, 80.0, np.nan])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "train (diverged at epoch 3)", "validation (diverged at epoch 3)"]
    # the diverged epoch's validation score (of NaN predictions) is not drawn either
    ax = plot_history(history, metric="score")
    score, _ = ax.get_lines()
    np.testing.assert_array_equal(score.get_ydata(), [0.5, 0.3, np.nan])
    assert score.get_label() == "validation score (diverged at epoch 3)"
    _divergence_marker(ax, 3)
    # other columns are drawn to the end; the run is still marked
    ax = plot_history(history, metric="lr")
    np.testing.assert_array_equal(ax.get_lines()[0].get_ydata(), [1.0, 1.0, 1.0])
    assert ax.get_lines()[0].get_label() == "learning rate (diverged at epoch 3)"
    _divergence_marker(ax, 3)


def test_divergence_is_read_from_the_history():
    # the diverged column decides, whatever the losses look like
    ax = plot_history(_diverged_history(train_loss=[1.0, 2.0, 3.0], diverged=[False, True, False]))
    assert ax.get_lines()[0].get_label() == "train (diverged at epoch 2)"
    np.testing.assert_array_equal(ax.get_lines()[0].get_ydata(), [1.0, np.nan, np.nan])
    _divergence_marker(ax, 2)
    ax = plot_history(_diverged_history(train_loss=[1.0, 1e9, 1e12], diverged=[False] * 3))
    assert ax.get_lines()[0].get_label() == "train"
    assert not [line for line in ax.get_lines() if line.get_marker() == "x"]
    # without the column (a frame of one's own, an older model): a NaN / inf loss is diverged,
    # a large finite one is not (plotting has no divergence rule of its own)
    ax = plot_history(_diverged_history(train_loss=[1.0, 50.0, np.inf], diverged=None))
    assert ax.get_lines()[0].get_label() == "train (diverged at epoch 3)"
    _divergence_marker(ax, 3)
    ax = plot_history(_diverged_history(train_loss=[1.0, 50.0, 1e9], diverged=None))
    assert ax.get_lines()[0].get_label() == "train"
    # a DivergenceError's history ends at the epoch that diverged
    ax = plot_history(DivergenceError("boom", history=_diverged_history(diverged=None)))
    assert ax.get_lines()[0].get_label() == "train (diverged at epoch 3)"
    _divergence_marker(ax, 3)
    with pytest.raises(ValueError, match="no history"):
        plot_history(DivergenceError("boom"))


def test_real_divergence_can_be_plotted(iris):
    X, y = iris
    clf = MLPClassifier((64, 64, 64), optimizer="sgd", lr=50.0, max_epochs=20, random_state=0)
    with pytest.raises(DivergenceError) as info:
        clf.fit(X * 1e3, y)
    # the engine's history may or may not have a diverged column yet: either way the error's
    # history ends at the epoch that diverged
    epoch = int(info.value.history["epoch"].iloc[-1])
    ax = plot_histories({"lr=50": info.value})
    assert ax.get_legend().get_texts()[0].get_text() == f"lr=50 (diverged at epoch {epoch})"
    _divergence_marker(ax, epoch)
    ax = plot_history(info.value)
    assert ax.get_lines()[0].get_label() == f"train (diverged at epoch {epoch})"
    _divergence_marker(ax, epoch)


def test_plot_histories_pairs_train_and_validation(stopped, plain):
    ax = plot_histories({"stopped": stopped, "plain": plain, "frame": _diverged_history()})
    lines = ax.get_lines()
    solid = [line for line in lines if line.get_linestyle() == "-"]
    dashed = [line for line in lines if line.get_linestyle() == "--"]
    assert [line.get_label() for line in solid] == [
        "stopped", "plain", "frame (diverged at epoch 3)"]
    # each run with a validation set also has its training curve, dashed, in its colour
    assert len(dashed) == 2
    assert dashed[0].get_color() == solid[0].get_color()
    np.testing.assert_allclose(dashed[0].get_ydata(), stopped.history_["train_loss"])
    np.testing.assert_allclose(solid[1].get_ydata(), plain.history_["train_loss"])
    # best-epoch dots on the estimators' main curves
    dots = [line for line in lines if line.get_marker() == "o"]
    assert [d.get_xdata()[0] for d in dots] == [stopped.best_epoch_, plain.best_epoch_]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["stopped", "plain", "frame (diverged at epoch 3)", "validation", "training"]
    assert _divergence_marker(ax, 3).get_color() == solid[2].get_color()


def test_plot_histories_score(stopped, plain):
    ax = plot_histories({"a": stopped, "b": plain}, metric="score", mark_best=False)
    a, b = ax.get_lines()
    np.testing.assert_allclose(a.get_ydata(), stopped.history_["val_score"])
    assert np.isnan(b.get_ydata()).all()  # no validation set: nothing to draw
    assert ax.get_ylabel() == "validation score (accuracy)"


def test_star_import_gives_the_plotting_functions_only():
    namespace = {}
    exec("from sknn_tune.plotting import *", namespace)
    assert sorted(set(namespace) - {"__builtins__"}) == [
        "plot_histories", "plot_history", "plot_search_results"]


def test_bad_inputs(stopped):
    with pytest.raises(ValueError, match="metric='accuracy'"):
        plot_history(stopped, metric="accuracy")
    with pytest.raises(TypeError, match="has no history_"):
        plot_history(np.zeros(3))
    with pytest.raises(NotFittedError):
        plot_history(MLPClassifier())
    with pytest.raises(TypeError, match="non-empty dict"):
        plot_histories([stopped])


def test_missing_matplotlib_message(monkeypatch, stopped):
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"pip install 'sknn_tune\[plot\]'"):
        plot_history(stopped)


# ---------------------------------------------------------------------------------------------
# plot_search_results: one panel per searched parameter, best candidate marked
# ---------------------------------------------------------------------------------------------


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
