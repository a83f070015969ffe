"""Learning curves from a fitted estimator's ``history_``.

matplotlib is an optional dependency (the ``plot`` extra): it is imported when a function here is
called, not when :mod:`sknn_tune` is imported.

A run that diverged is read from its history, never re-judged here: ``history_`` has a boolean
``diverged`` column, True on the epoch a member diverged (the engine stops there), and a
:class:`~sknn_tune.DivergenceError` ends its history at that epoch. A history without the
column (a DataFrame of one's own, a model saved by an older version) counts an epoch whose
training loss is NaN or infinite as diverged: not the engine's rule, only what cannot be drawn.
"""

import math

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, is_classifier, is_regressor
from sklearn.utils.validation import check_is_fitted

from .exceptions import DivergenceError

__all__ = ["plot_histories", "plot_history", "plot_search_results"]

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
        history = obj.history
        if "diverged" not in history.columns:  # the error's history ends at the diverged epoch
            history = history.assign(diverged=np.arange(len(history)) == len(history) - 1)
        return history, None, None
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


# Per-epoch results that mean nothing once the training loss is NaN or infinite.
_RESULTS = ("train_loss", "val_loss", "val_score")


def _diverged_rows(history):
    """Mask of the epochs from the one the run diverged on (see the module's docstring): the
    ``diverged`` column where the history has one, else a NaN or infinite training loss."""
    if "diverged" in history.columns:
        diverged = history["diverged"].eq(True).to_numpy()  # NaN / None: not diverged
    elif "train_loss" in history.columns:
        diverged = ~np.isfinite(history["train_loss"].to_numpy(dtype=float))
    else:
        diverged = np.zeros(len(history), dtype=bool)
    return np.logical_or.accumulate(diverged) if len(diverged) else diverged


def _diverged_epoch(history):
    """The epoch the run diverged on, or None."""
    rows = np.flatnonzero(_diverged_rows(history))
    return int(history["epoch"].iloc[rows[0]]) if len(rows) else None


def _diverged_label(label, epoch):
    return str(label) if epoch is None else f"{label} (diverged at epoch {epoch})"


def _draw(ax, history, column, label, **style):
    """Draw one column against the epoch; return the line.

    A diverged epoch's losses and scores are not drawn: its training loss is NaN, infinite or
    far off the scale of the others, and its validation score scores predictions of NaN.
    """
    x = history["epoch"].to_numpy()
    y = history[column].to_numpy(dtype=float).copy()
    if column in _RESULTS:
        y[_diverged_rows(history)] = np.nan
    y[~np.isfinite(y)] = np.nan  # matplotlib breaks the line at NaN
    (line,) = ax.plot(x, y, label=label, **style)
    return line


def _mark_divergence(ax, epoch, color):
    """An ``x`` at the top of the axes above the epoch a run diverged on: its loss is off the
    chart there."""
    ax.plot([epoch], [0.97], marker="x", markersize=10, markeredgewidth=2, linestyle="none",
            color=color, transform=ax.get_xaxis_transform(), clip_on=False, label="_nolegend_")


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
        The axes drawn on. The curves of a run that diverged stop at the epoch before; an ``x``
        at the top of the axes marks the epoch it diverged on, and its legend entries end in
        "(diverged at epoch N)".

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
    diverged_at = _diverged_epoch(history)
    lines = [_draw(ax, history, column, _diverged_label(
                 name if name is not None else _COLUMN_LABELS.get(column, column), diverged_at))
             for column, name in _columns(metric, history)]
    if diverged_at is not None:
        _mark_divergence(ax, diverged_at, lines[0].get_color())
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
        The axes drawn on. The curves of a run that diverged stop at the epoch before; an
        ``x`` in its colour at the top of the axes marks the epoch it diverged on, and its legend
        entry ends in "(diverged at epoch N)".

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
        diverged_at = _diverged_epoch(history)
        main, color = None, None
        for column, name in columns:
            dashed = name == "train" and len(columns) == 2
            line = _draw(ax, history, column,
                         "_nolegend_" if dashed else _diverged_label(label, diverged_at),
                         color=color, linestyle="--" if dashed else "-",
                         alpha=0.6 if dashed else 1.0)
            main = main or line
            color = line.get_color()
        if diverged_at is not None:
            _mark_divergence(ax, diverged_at, color)
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


# ---------------------------------------------------------------------------------------------
# Search results: score against each searched hyperparameter
# ---------------------------------------------------------------------------------------------


def _search_metric(search, results, metric):
    """The scorer name whose ``mean_test_<name>`` column to draw."""
    names = [key[len("mean_test_"):] for key in results if key.startswith("mean_test_")]
    if metric is None:
        if "score" in names:
            return "score"
        refit = getattr(search, "refit", None)
        if isinstance(refit, str) and refit in names:
            return refit
        raise ValueError(f"This search has several scores; pass metric= one of {names}.")
    if metric not in names:
        raise ValueError(f"metric={metric!r} is not a score of this search; use one of {names}.")
    return metric


def _search_params(search, results, params):
    """The ``cv_results_`` parameter names to draw, one panel each."""
    available = [key[len("param_"):] for key in results if key.startswith("param_")]
    if params is None:
        # every searched parameter but successive halving's resource, which the colours show
        resource = getattr(search, "resource", None) if "iter" in results else None
        params = [name for name in available if name != resource] or available
    elif isinstance(params, str):
        params = [params]
    params = [name[len("param_"):] if name.startswith("param_") and name not in available
              else name for name in params]
    unknown = [name for name in params if name not in available]
    if unknown or not params:
        raise ValueError(f"{unknown or params} not searched; this search's parameters are "
                         f"{available}.")
    return params


def _best_index(search, results, metric):
    """The index of the candidate ``best_params_`` names (or the top-ranked one)."""
    best = getattr(search, "best_index_", None)
    refit = getattr(search, "refit", None)
    if best is not None and (callable(refit) or refit is True or refit == metric
                             or metric == "score"):
        return int(best)
    ranks = np.asarray(results[f"rank_test_{metric}"], dtype=float)
    if "iter" in results:  # halving: the best is chosen among the last iteration
        last = np.asarray(results["iter"]) == np.max(results["iter"])
        ranks = np.where(last, ranks, np.inf)
    if not np.isfinite(ranks).any():
        return None
    return int(np.argmin(ranks))


def _is_number(value):
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_))


def _param_values(results, name):
    """``(values, present)``: the candidates' values (``None`` where masked) and a mask."""
    column = results[f"param_{name}"]
    mask = np.ma.getmaskarray(column)
    data = np.ma.getdata(column)
    values = [None if masked else value for value, masked in zip(data.tolist(), mask)]
    return values, ~mask


def _category_label(value):
    if isinstance(value, float):
        return f"{value:g}"
    return str(value) if not callable(value) else getattr(value, "__name__", repr(value))


def _use_log(values, log_scale, name):
    if isinstance(log_scale, dict):
        log_scale = log_scale.get(name, "auto")
    positive = len(values) > 0 and min(values) > 0
    if log_scale == "auto":
        return positive and max(values) / min(values) > 100
    if log_scale and not positive:
        raise ValueError(f"log_scale=True for {name!r}, whose values are not all positive.")
    return bool(log_scale)


def plot_search_results(search, params=None, metric=None, ax=None, log_scale="auto"):
    """Plot a search's cross-validated score against each hyperparameter it searched.

    One panel per parameter: every candidate's mean test score (the mean over the CV folds, with
    the folds' standard deviation as an error bar) at its value of that parameter, the mean
    training score as hollow markers when the search has ``return_train_score=True``, and the
    best candidate as a red star. This is the picture of a coarse-to-fine random search: where
    along each axis the good candidates lie, and so where to search next.

    Parameters
    ----------
    search : fitted search
        Any fitted scikit-learn search with a ``cv_results_``:
        :class:`~sklearn.model_selection.GridSearchCV`,
        :class:`~sklearn.model_selection.RandomizedSearchCV`, the halving searches, or their
        fused versions (:class:`~sknn_tune.FusedGridSearchCV`, ...). For successive halving the
        points are coloured by iteration (the number of resources each candidate had), and
        the best candidate is the best of the last iteration, as ``best_params_``.
    params : str or list of str, default=None
        The parameters to draw, as named in ``cv_results_`` (``'mlpclassifier__lr'``; a
        ``'param_'`` prefix is accepted). None draws every searched parameter, except the
        halving resource (``max_epochs``, say), which the colours show.
    metric : str, default=None
        For a multi-metric search, the scorer name whose ``mean_test_<metric>`` to draw; None
        draws ``mean_test_score``, or the ``refit`` metric of a multi-metric search.
    ax : matplotlib.axes.Axes or array-like of Axes, default=None
        Where to draw, one Axes per parameter; a new figure is created when None (up to three
        panels per row, sharing the score axis).
    log_scale : 'auto', bool or dict, default='auto'
        Whether a numeric parameter's axis is logarithmic. 'auto' chooses it when the values
        are all positive and span more than two decades (learning rates, weight decay); a dict
        maps parameter names to 'auto' / True / False. Non-numeric values (strings, tuples such
        as ``hidden_layer_sizes``, None, booleans) always get a categorical axis, one tick per
        value, with the candidates of a category spread a little around its tick.

    Returns
    -------
    ax : matplotlib.axes.Axes or numpy.ndarray of Axes
        The Axes for one parameter, an array of them (one per parameter, in order) for several.
        Candidates whose score is NaN (a failed or diverged fit under ``error_score=np.nan``)
        are drawn as grey ``x`` at the bottom of each panel.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        When the search has not been fitted.
    ValueError
        When ``params`` names a parameter the search did not search, or ``metric`` is not one
        of its scores.

    See Also
    --------
    plot_history : The learning curves of one fit, such as ``search.best_estimator_``.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import matplotlib.pyplot as plt
    >>> from sklearn.datasets import load_iris
    >>> from sknn_tune import MLPClassifier, FusedGridSearchCV, plot_search_results
    >>> X, y = load_iris(return_X_y=True)
    >>> grid = {"lr": [1e-4, 1e-3, 1e-2, 1e-1], "activation": ["relu", "tanh"]}
    >>> search = FusedGridSearchCV(MLPClassifier((8,), max_epochs=3, random_state=0), grid,
    ...                            cv=3).fit(X, y)
    >>> ax_act, ax_lr = plot_search_results(search)
    >>> ax_lr.get_xscale(), ax_act.get_xscale()  # lr spans 3 decades; activation is categorical
    ('log', 'linear')
    >>> [tick.get_text() for tick in ax_act.get_xticklabels()]
    ['relu', 'tanh']
    >>> star = [line for line in ax_lr.get_lines() if line.get_label() == "best"][0]
    >>> float(star.get_xdata()[0]) == search.best_params_["lr"]
    True
    >>> plt.close("all")
    """
    plt = _pyplot()
    check_is_fitted(search, "cv_results_")
    results = search.cv_results_
    metric = _search_metric(search, results, metric)
    names = _search_params(search, results, params)
    if not (log_scale == "auto" or isinstance(log_scale, (bool, np.bool_, dict))):
        raise ValueError(f"log_scale must be 'auto', a bool or a dict; got {log_scale!r}.")

    if ax is None:
        ncols = min(len(names), 3)
        nrows = math.ceil(len(names) / ncols)
        _, grid = plt.subplots(nrows, ncols, figsize=(4.2 * ncols + 1.6, 3.4 * nrows),
                                 sharey=True, squeeze=False, layout="constrained")
        for extra in grid.ravel()[len(names):]:
            extra.set_visible(False)
        axes = grid.ravel()[:len(names)]
    else:
        axes = np.atleast_1d(np.asarray(ax, dtype=object)).ravel()
        if len(axes) != len(names):
            raise ValueError(f"ax holds {len(axes)} Axes for {len(names)} parameters {names}.")

    mean = np.asarray(results[f"mean_test_{metric}"], dtype=float)
    std = np.asarray(results[f"std_test_{metric}"], dtype=float)
    train_key = f"mean_train_{metric}"
    train = np.asarray(results[train_key], dtype=float) if train_key in results else None
    best = _best_index(search, results, metric)

    # successive halving: one colour per iteration
    if "iter" in results:
        iters = np.asarray(results["iter"])
        resources = np.asarray(results["n_resources"])
        cmap = plt.get_cmap("viridis")
        n_iter = int(iters.max()) + 1
        colors = [cmap(0.85 * i / max(n_iter - 1, 1)) for i in range(n_iter)]
        resource = str(getattr(search, "resource", "n_resources")).rsplit("__", 1)[-1]
        groups = [(iters == i, colors[i], f"iter {i}: {resource}={resources[iters == i][0]}")
                  for i in range(n_iter)]
    else:
        groups = [(np.ones(len(mean), dtype=bool), "C0", "mean test score ± std")]

    for axis, name in zip(axes, names):
        values, present = _param_values(results, name)
        numeric = all(_is_number(values[i]) for i in np.flatnonzero(present))
        if numeric:
            x = np.array([float(v) if p else np.nan for v, p in zip(values, present)])
            if _use_log(x[present], log_scale, name):
                axis.set_xscale("log")
        else:
            labels, positions = [], {}
            for i in np.flatnonzero(present):
                key = _category_label(values[i])
                if key not in positions:
                    positions[key] = len(labels)
                    labels.append(key)
            x = np.full(len(values), np.nan)
            counts = {}
            for i in np.flatnonzero(present):
                key = _category_label(values[i])
                counts.setdefault(key, []).append(i)
            for key, members in counts.items():  # spread a category's candidates a little
                offsets = np.linspace(-0.2, 0.2, len(members)) if len(members) > 1 else [0.0]
                x[members] = positions[key] + np.asarray(offsets)
            axis.set_xticks(range(len(labels)), labels)
            axis.set_xlim(-0.5, len(labels) - 0.5)

        for rows, color, label in groups:
            rows = rows & present
            axis.errorbar(x[rows], mean[rows], yerr=std[rows], fmt="o", color=color,
                          markersize=5, elinewidth=1, alpha=0.85, label=label)
            if train is not None:
                axis.plot(x[rows], train[rows], linestyle="none", marker="o", markersize=5,
                          markerfacecolor="none", markeredgecolor=color, alpha=0.6,
                          label="_nolegend_")
        if train is not None:
            axis.plot([], [], linestyle="none", marker="o", markerfacecolor="none",
                      markeredgecolor="0.3", label="mean train score")
        failed = present & ~np.isfinite(mean)
        if failed.any():
            axis.plot(x[failed], np.full(failed.sum(), 0.03), linestyle="none", marker="x",
                      color="0.4", transform=axis.get_xaxis_transform(),
                      label=f"failed ({failed.sum()})")
        if best is not None and present[best]:
            axis.plot([x[best]], [mean[best]], linestyle="none", marker="*", markersize=15,
                      color="red", markeredgecolor="black", zorder=5, label="best")
        axis.set_xlabel(name)
        axis.grid(True, alpha=0.3)
    score_label = "score" if metric == "score" else metric
    axes[0].set_ylabel(f"mean test {score_label} (CV)")
    handles, labels = axes[0].get_legend_handles_labels()
    order = sorted(range(len(labels)), key=lambda i: labels[i] in ("mean train score", "best")
                   or labels[i].startswith("failed"))  # the test scores first
    handles, labels = [handles[i] for i in order], [labels[i] for i in order]
    if ax is None:  # beside the panels, clear of the points
        axes[0].figure.legend(handles, labels, loc="outside right upper", fontsize="small")
    else:
        axes[0].legend(handles, labels, fontsize="small")
    return axes[0] if len(axes) == 1 else axes
