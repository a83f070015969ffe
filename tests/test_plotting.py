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


def _diverged_history():
    return pd.DataFrame({"epoch": [1, 2, 3], "train_loss": [1.0, 50.0, np.inf],
                         "val_loss": [1.2, 80.0, np.nan], "val_score": [0.5, 0.3, 0.1],
                         "lr": [1.0] * 3, "seconds": [0.01] * 3})


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
    ax = plot_history(DivergenceError("boom", history=history))
    train, train_end, val, val_end = ax.get_lines()
    assert np.isnan(val.get_ydata()[-1])
    assert np.isnan(train.get_ydata()[-1])  # the inf is not drawn
    assert (train_end.get_xdata()[0], train_end.get_ydata()[0]) == (2, 50.0)
    assert (val_end.get_xdata()[0], val_end.get_ydata()[0]) == (2, 80.0)
    assert train_end.get_marker() == val_end.get_marker() == "x"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "train (diverged)", "validation (diverged)"]
    # the diverged epoch's validation score (of NaN predictions) is not drawn either
    ax = plot_history(history, metric="score")
    score, score_end = ax.get_lines()
    np.testing.assert_array_equal(score.get_ydata(), [0.5, 0.3, np.nan])
    assert (score_end.get_xdata()[0], score_end.get_ydata()[0]) == (2, 0.3)
    assert score.get_label() == "validation score (diverged)"
    with pytest.raises(ValueError, match="no history"):
        plot_history(DivergenceError("boom"))


def test_real_divergence_can_be_plotted(iris):
    X, y = iris
    clf = MLPClassifier((64, 64, 64), optimizer="sgd", lr=50.0, max_epochs=20, random_state=0)
    with pytest.raises(DivergenceError) as info:
        clf.fit(X * 1e3, y)
    ax = plot_histories({"lr=50": info.value})
    assert ax.get_legend().get_texts()[0].get_text() == "lr=50 (diverged)"


def test_plot_histories_pairs_train_and_validation(stopped, plain):
    ax = plot_histories({"stopped": stopped, "plain": plain, "frame": _diverged_history()})
    lines = ax.get_lines()
    solid = [line for line in lines if line.get_linestyle() == "-"]
    dashed = [line for line in lines if line.get_linestyle() == "--"]
    assert [line.get_label() for line in solid] == ["stopped", "plain", "frame (diverged)"]
    # each run with a validation set also has its training curve, dashed, in its colour
    assert len(dashed) == 2
    assert dashed[0].get_color() == solid[0].get_color()
    np.testing.assert_allclose(dashed[0].get_ydata(), stopped.history_["train_loss"])
    np.testing.assert_allclose(solid[1].get_ydata(), plain.history_["train_loss"])
    # best-epoch dots on the estimators' main curves
    dots = [line for line in lines if line.get_marker() == "o"]
    assert [d.get_xdata()[0] for d in dots] == [stopped.best_epoch_, plain.best_epoch_]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["stopped", "plain", "frame (diverged)", "validation", "training"]


def test_plot_histories_score(stopped, plain):
    ax = plot_histories({"a": stopped, "b": plain}, metric="score", mark_best=False)
    a, b = ax.get_lines()
    np.testing.assert_allclose(a.get_ydata(), stopped.history_["val_score"])
    assert np.isnan(b.get_ydata()).all()  # no validation set: nothing to draw
    assert ax.get_ylabel() == "validation score (accuracy)"


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
