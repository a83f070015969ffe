import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris
from sklearn.exceptions import NotFittedError
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sknn_tune import DivergenceError, MLPClassifier, MLPRegressor, plot_histories, plot_history

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
