"""Learning curves from a fitted estimator's ``history_``.

matplotlib is an optional dependency (the ``plot`` extra): it is imported when a function here is
called, not when :mod:`sknn_tune` is imported.
"""

import math

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, is_classifier, is_regressor
from sklearn.utils.validation import check_is_fitted

from .exceptions import DivergenceError

# metric -> the history columns it draws, with their legend labels
_LOSS_COLUMNS = (("train_loss", "train"), ("val_loss", "validation"))
_ALIASES = {"score": "val_score"}
_COLUMN_LABELS = {"train_loss": "training loss", "val_loss": "validation loss",
                  "val_score": "validation score", "lr": "learning rate",
                  "seconds": "seconds per epoch"}


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            "sknn_tune's plotting functions need matplotlib, which is not installed. Install it "
            "with `pip install matplotlib` or `pip install 'sknn_tune[plot]'`.") from exc
    return plt


def _unwrap(obj):
    """``(history, best_epoch, estimator)`` from an estimator, a pipeline, an error or a frame."""
    if isinstance(obj, pd.DataFrame):
        return obj, None, None
    if isinstance(obj, DivergenceError):
        if obj.history is None:
            raise ValueError("This DivergenceError carries no history to plot.")
        return obj.history, None, None
    if hasattr(obj, "steps") and hasattr(obj, "_final_estimator"):  # Pipeline
        return _unwrap(obj._final_estimator)
    for wrapped in ("regressor_", "best_estimator_"):  # TransformedTargetRegressor, searches
        if hasattr(obj, wrapped) and not hasattr(obj, "history_"):
            return _unwrap(getattr(obj, wrapped))
    if hasattr(obj, "history_"):
        return obj.history_, getattr(obj, "best_epoch_", None), obj
    if isinstance(obj, BaseEstimator):
        check_is_fitted(obj)  # NotFittedError for an unfitted sknn_tune estimator
    raise TypeError(
        "Expected a fitted sknn_tune estimator, a Pipeline ending in one, a DivergenceError or a "
        f"history DataFrame; got {type(obj).__name__}, which has no history_.")


def _columns(metric, history):
    """The ``(column, label suffix)`` pairs that ``metric`` draws from ``history``."""
    if metric == "loss":
        return [(col, name) for col, name in _LOSS_COLUMNS
                if col == "train_loss" or history[col].notna().any()]
    column = _ALIASES.get(metric, metric)
    if column == "epoch" or column not in history.columns:
        options = ["loss", "score", *(c for c in history.columns if c != "epoch")]
        raise ValueError(f"metric={metric!r} is not a history column; use one of {options}.")
    return [(column, None)]


def _ylabel(metric, estimator):
    if metric == "loss":
        return "loss"
    column = _ALIASES.get(metric, metric)
    label = _COLUMN_LABELS.get(column, column)
    if column == "val_score" and estimator is not None:
        if is_classifier(estimator):
            label += " (accuracy)"
        elif is_regressor(estimator):
            label += " (R²)"
    return label


def _divergence_point(history, column):
    """``(epoch, value)`` of the last finite value when ``column`` ends non-finite, else None."""
    values = history[column].to_numpy(dtype=float)
    if len(values) == 0 or np.isfinite(values[-1]):
        return None
    finite = np.flatnonzero(np.isfinite(values))
    if len(finite) == 0:
        return float(history["epoch"].iloc[-1]), None
    return float(history["epoch"].iloc[finite[-1]]), float(values[finite[-1]])


def _draw(ax, history, column, label, **style):
    x = history["epoch"].to_numpy()
    y = history[column].to_numpy(dtype=float)
    y = np.where(np.isfinite(y), y, np.nan)  # matplotlib breaks the line at NaN
    (line,) = ax.plot(x, y, label=label, **style)
    point = _divergence_point(history, column)
    if point is not None and point[1] is not None:
        ax.plot([point[0]], [point[1]], marker="x", markersize=9, linestyle="none",
                color=line.get_color(), label="_nolegend_")
    return line, point is not None


def _finish(ax, metric, estimator):
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(_ylabel(metric, estimator))
    ax.legend()
    return ax


def plot_history(estimator_or_history, metric="loss", ax=None, *, mark_best=True):
    """Plot the learning curves of one fit, epoch by epoch.

    Parameters
    ----------
    estimator_or_history : estimator, Pipeline, DivergenceError or pandas.DataFrame
        A fitted :class:`~sknn_tune.MLPClassifier` or :class:`~sknn_tune.MLPRegressor`, a
        :class:`~sklearn.pipeline.Pipeline` (or search, or
        :class:`~sklearn.compose.TransformedTargetRegressor`) wrapping one, a
        :class:`~sknn_tune.DivergenceError` raised by a fit, or a ``history_`` DataFrame.
    metric : str, default='loss'
        'loss' draws the training and (when there is a validation set) validation loss; 'score'
        draws the validation score (accuracy or R²); any other ``history_`` column ('lr',
        'seconds', ...) draws that column.
    ax : matplotlib.axes.Axes, default=None
        Axes to draw on; a new figure is created when None.
    mark_best : bool, default=True
        Draw a dotted vertical line at ``best_epoch_``, the epoch whose weights the estimator
        predicts with. Needs an estimator: a bare DataFrame does not know its best epoch.

    Returns
    -------
    ax : matplotlib.axes.Axes
        The axes drawn on. A run that diverged ends its curves with an ``x`` at the last finite
        value, and its legend entries say so.

    See Also
    --------
    plot_histories : Compare the curves of several fits on one axes.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> from sklearn.datasets import load_iris
    >>> from sknn_tune import MLPClassifier, plot_history
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = MLPClassifier((16,), lr=1e-2, max_epochs=8, early_stopping=True,
    ...                     random_state=0).fit(X, y)
    >>> ax = plot_history(clf)
    >>> [line.get_label() for line in ax.get_lines()][:2]
    ['train', 'validation']
    >>> best_line = ax.get_lines()[-1]
    >>> best_line.get_xdata()[0] == clf.best_epoch_
    True
    >>> ax = plot_history(clf, metric="score")
    >>> ax.get_ylabel()
    'validation score (accuracy)'
    >>> plt.close("all")
    """
    plt = _pyplot()
    history, best_epoch, estimator = _unwrap(estimator_or_history)
    if ax is None:
        _, ax = plt.subplots()
    for column, name in _columns(metric, history):
        label = name if name is not None else _COLUMN_LABELS.get(column, column)
        line, diverged = _draw(ax, history, column, label)
        if diverged:
            line.set_label(f"{label} (diverged)")
    if mark_best and best_epoch is not None and best_epoch >= 1:
        ax.axvline(best_epoch, color="0.4", linestyle=":", label=f"best epoch ({best_epoch})")
    return _finish(ax, metric, estimator)


def plot_histories(histories, metric="loss", ax=None, *, mark_best=True):
    """Compare the learning curves of several fits on one axes.

    Parameters
    ----------
    histories : dict
        Maps a legend label (``"dropout=0.5"``, ``"adam"``) to what :func:`plot_history` accepts:
        a fitted estimator, a Pipeline ending in one, a DivergenceError or a history DataFrame.
    metric : str, default='loss'
        'loss' draws each run's validation loss as a solid line and its training loss as a dashed
        line of the same colour (only the training loss when a run has no validation set);
        'score' draws the validation scores; any other ``history_`` column draws that column.
    ax : matplotlib.axes.Axes, default=None
        Axes to draw on; a new figure is created when None.
    mark_best : bool, default=True
        Put a dot on each estimator's curve at its ``best_epoch_``.

    Returns
    -------
    ax : matplotlib.axes.Axes
        The axes drawn on. Runs that diverged end in an ``x`` and say so in the legend.

    See Also
    --------
    plot_history : The curves of one fit, with the best epoch marked.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> from sklearn.datasets import load_iris
    >>> from sknn_tune import MLPClassifier, plot_histories
    >>> X, y = load_iris(return_X_y=True)
    >>> runs = {f"lr={lr}": MLPClassifier((16,), lr=lr, max_epochs=5, random_state=0).fit(X, y)
    ...         for lr in (1e-3, 1e-2)}
    >>> ax = plot_histories(runs, mark_best=False)
    >>> [line.get_label() for line in ax.get_lines()]
    ['lr=0.001', 'lr=0.01']
    >>> len(ax.get_lines()[0].get_xdata())
    5
    >>> plt.close("all")
    """
    plt = _pyplot()
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    if not isinstance(histories, dict) or not histories:
        raise TypeError("histories must be a non-empty dict mapping labels to estimators or "
                        f"history DataFrames; got {type(histories).__name__}.")
    if ax is None:
        _, ax = plt.subplots()
    handles, estimators, both = [], [], False
    for label, item in histories.items():
        history, best_epoch, estimator = _unwrap(item)
        estimators.append(estimator)
        columns = _columns(metric, history)
        both |= metric == "loss" and len(columns) == 2
        # the validation curve (solid) first; the training curve dashed in the same colour
        columns = columns[::-1]
        main, color, diverged = None, None, False
        for column, name in columns:
            dashed = name == "train" and len(columns) == 2
            line, line_diverged = _draw(
                ax, history, column, "_nolegend_" if dashed else str(label), color=color,
                linestyle="--" if dashed else "-", alpha=0.6 if dashed else 1.0)
            main = main or line
            color = line.get_color()
            diverged |= line_diverged
        if diverged:
            main.set_label(f"{label} (diverged)")
        handles.append(main)
        if mark_best and best_epoch is not None:
            value = history.loc[history["epoch"] == best_epoch, columns[0][0]]
            if len(value) and math.isfinite(value.iloc[0]):
                ax.plot([best_epoch], [value.iloc[0]], marker="o", linestyle="none",
                        color=color, label="_nolegend_")
    if both:  # explain the line styles
        handles += [Line2D([], [], color="0.3", label="validation"),
                    Line2D([], [], color="0.3", linestyle="--", alpha=0.6, label="training")]
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    # name the score only when every run is the same kind of estimator
    same = len({type(e) for e in estimators}) == 1
    ax.set_ylabel(_ylabel(metric, estimators[0] if same else None))
    ax.legend(handles=handles)
    return ax
