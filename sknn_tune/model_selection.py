"""Cross-validation and curves with every fit trained at once.

``cross_validate``, ``cross_val_score``, ``cross_val_predict``, ``validation_curve`` and
``learning_curve`` take scikit-learn's arguments and return scikit-learn's results. For an sknn_tune
estimator, or a :class:`~sklearn.pipeline.Pipeline` ending in one, each function

1. fixes the splits once (``check_cv(cv, y, classifier=is_classifier(estimator)).split(X, y,
   groups)``, as scikit-learn's function does),
2. plans every fold x parameter value x train size exactly as the estimator's ``fit`` would and
   trains them as members of stacked models (:class:`~sknn_tune._fused.Session`, the
   engine of the fused searches; ``n_jobs`` drives the stacks),
3. calls scikit-learn's own function on those splits, in this process, while the trained members
   are served (:meth:`~sknn_tune._fused.Session.serving`): each of its fits adopts its member
   instead of training, and every number it returns is computed by scikit-learn's code.

Anything else (another estimator, a fit parameter other than ``sample_weight``, metadata routing
enabled, ``exploit_incremental_learning``) goes to scikit-learn's function as it is.
"""

import textwrap
import types
import warnings

import numpy as np
import sklearn
from joblib import parallel_config
from sklearn import model_selection as _sklearn_model_selection
from sklearn.base import is_classifier
from sklearn.model_selection import check_cv
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils.validation import indexable

from ._docstrings import docstring_section
from ._fused import CVPlanner, Session
from ._sklearn_compat import _translate_train_sizes

__all__ = [
    "cross_val_predict",
    "cross_val_score",
    "cross_validate",
    "learning_curve",
    "validation_curve",
]

# scikit-learn's functions, taken once here: looked up on its module at call time they would be
# whatever was bound there since (these very functions, where a plugin or a user rebinds them).
_sk = types.SimpleNamespace(**{name: getattr(_sklearn_model_selection, name) for name in __all__})


# ----------------------------------------------------------------------------------------------
# the fused call


class _NotFused(Exception):
    """The call goes to scikit-learn's function as it is."""


def _session(estimator, X, y, groups, params, n_jobs, verbose, fit_targets=None):
    """``(session, X, y, groups)``: a :class:`~sknn_tune._fused.Session` for the estimator and
    the indexable inputs; raises :class:`_NotFused`, before ``cv`` is touched, when the call goes
    to scikit-learn as it is (an iterable of splits must reach it unconsumed).
    ``fit_targets(y)``: the targets the members train on, when not ``y`` itself."""
    if sklearn.get_config().get("enable_metadata_routing", False):
        raise _NotFused  # fit parameters are routed by requests: left to scikit-learn
    try:
        X, y, groups = indexable(X, y, groups)
    except (TypeError, ValueError) as error:  # scikit-learn's function reports it its own way
        raise _NotFused from error
    y_fit = y if fit_targets is None or y is None else fit_targets(y)
    session = Session(CVPlanner(estimator, X, y_fit, params or {}), n_jobs=n_jobs,
                      verbose=verbose)
    if not session.enabled:
        raise _NotFused
    return session, X, y, groups


def _fixed_splits(estimator, X, y, groups, cv):
    """The folds scikit-learn's function computes, as a list (an unseeded splitter gives other
    folds on every call, an iterable of splits gives them once)."""
    try:
        cv = check_cv(cv, y, classifier=is_classifier(estimator))
        splits = [(np.asarray(train), np.asarray(test)) for train, test in cv.split(X, y, groups)]
    except (TypeError, ValueError) as error:  # scikit-learn's function reports it its own way
        raise _NotFused from error
    if not splits:
        raise _NotFused
    return splits


def _fused_call(function, estimator, X, y, groups, cv, params, n_jobs, verbose, kwargs,
                candidates=({},), fit_targets=None):
    """scikit-learn's ``function`` on the splits of ``cv``, every fit of ``candidates`` x split
    trained first by a session; the function as it is when nothing can be fused."""
    splits = None
    try:
        session, X_, y_, groups_ = _session(estimator, X, y, groups, params, n_jobs, verbose,
                                            fit_targets)
        splits = _fixed_splits(estimator, X_, y_, groups_, cv)
        X_rows = session.planner.rows_by_reference()  # before training: one shared copy
        session.train(list(candidates), splits)
    except _NotFused:
        return function(estimator, X, y, cv=cv if splits is None else splits, n_jobs=n_jobs,
                        **kwargs)
    return _score(session, function, estimator, X_rows, y, cv=splits, **kwargs)


def _score(session, function, *args, **kwargs):
    """scikit-learn's ``function`` with one job, in this process, while the members the session
    trained are served to its fits (a dask or loky backend would run them elsewhere)."""
    try:
        with session.serving(), parallel_config(backend="sequential"):
            return function(*args, n_jobs=1, **kwargs)
    finally:
        session.registry.clear()


# ----------------------------------------------------------------------------------------------
# the functions


def cross_validate(estimator, X, y=None, *, groups=None, scoring=None, cv=None, n_jobs=None,
                   verbose=0, params=None, pre_dispatch="2*n_jobs", return_train_score=False,
                   return_estimator=False, return_indices=False, error_score=np.nan):
    kwargs = dict(groups=groups, scoring=scoring, verbose=verbose, params=params,
                  pre_dispatch=pre_dispatch, return_train_score=return_train_score,
                  return_estimator=return_estimator, return_indices=return_indices,
                  error_score=error_score)
    return _fused_call(_sk.cross_validate, estimator, X, y, groups, cv, params, n_jobs, verbose,
                       kwargs)


def cross_val_score(estimator, X, y=None, *, groups=None, scoring=None, cv=None, n_jobs=None,
                    verbose=0, params=None, pre_dispatch="2*n_jobs", error_score=np.nan):
    kwargs = dict(groups=groups, scoring=scoring, verbose=verbose, params=params,
                  pre_dispatch=pre_dispatch, error_score=error_score)
    return _fused_call(_sk.cross_val_score, estimator, X, y, groups, cv, params, n_jobs, verbose,
                       kwargs)


def cross_val_predict(estimator, X, y=None, *, groups=None, cv=None, n_jobs=None, verbose=0,
                      params=None, pre_dispatch="2*n_jobs", method="predict"):
    kwargs = dict(groups=groups, verbose=verbose, params=params, pre_dispatch=pre_dispatch,
                  method=method)
    # scikit-learn fits on label-encoded targets for these methods (its columns of probabilities
    # are then the encoded classes of the whole y): so do the stacks.
    encoded = method in ("decision_function", "predict_proba", "predict_log_proba")
    return _fused_call(_sk.cross_val_predict, estimator, X, y, groups, cv, params, n_jobs,
                       verbose, kwargs, fit_targets=_label_encoded if encoded else None)


def _label_encoded(y):
    """The targets as ``cross_val_predict`` encodes them for its probability methods."""
    y = np.asarray(y)
    if y.ndim == 1:
        return LabelEncoder().fit_transform(y)
    if y.ndim == 2:
        encoded = np.zeros_like(y, dtype=int)
        for column in range(y.shape[1]):
            encoded[:, column] = LabelEncoder().fit_transform(y[:, column])
        return encoded
    return y


def validation_curve(estimator, X, y, *, param_name, param_range, groups=None, cv=None,
                     scoring=None, n_jobs=None, pre_dispatch="all", verbose=0,
                     error_score=np.nan, params=None):
    kwargs = dict(param_name=param_name, param_range=param_range, groups=groups,
                  scoring=scoring, pre_dispatch=pre_dispatch, verbose=verbose,
                  error_score=error_score, params=params)
    return _fused_call(_sk.validation_curve, estimator, X, y, groups, cv, params, n_jobs,
                       verbose, kwargs, candidates=[{param_name: value} for value in param_range])


def learning_curve(estimator, X, y, *, groups=None, train_sizes=np.linspace(0.1, 1.0, 5),  # noqa: B008 (sklearn's)
                   cv=None, scoring=None, exploit_incremental_learning=False, n_jobs=None,
                   pre_dispatch="all", verbose=0, shuffle=False, random_state=None,
                   error_score=np.nan, return_times=False, params=None):
    kwargs = dict(groups=groups, train_sizes=train_sizes, scoring=scoring,
                  exploit_incremental_learning=exploit_incremental_learning,
                  pre_dispatch=pre_dispatch, verbose=verbose, error_score=error_score,
                  return_times=return_times, params=params)
    splits = None
    try:
        if exploit_incremental_learning:
            raise _NotFused  # partial_fit, one size after another: nothing to stack
        session, X_, y_, groups_ = _session(estimator, X, y, groups, params, n_jobs, verbose)
        splits = _fixed_splits(estimator, X_, y_, groups_, cv)
        with warnings.catch_warnings():  # scikit-learn's call warns about the sizes itself
            warnings.simplefilter("ignore")
            try:
                sizes = _translate_train_sizes(train_sizes, len(splits[0][0]))
            except (TypeError, ValueError) as error:
                raise _NotFused from error
        if shuffle:
            # As scikit-learn shuffles each split's training rows (one permutation per split, in
            # order, from random_state): done once here, so its call below shuffles nothing and
            # a RandomState passed in advances exactly as it would.
            rng = check_random_state(random_state)
            splits = [(rng.permutation(train), test) for train, test in splits]
        X_rows = session.planner.rows_by_reference()  # before training: one shared copy
        session.train([{}], [(train[:size], test) for train, test in splits for size in sizes])
    except _NotFused:
        return _sk.learning_curve(estimator, X, y, cv=cv if splits is None else splits,
                                  n_jobs=n_jobs, shuffle=shuffle, random_state=random_state,
                                  **kwargs)
    return _score(session, _sk.learning_curve, estimator, X_rows, y, cv=splits, shuffle=False,
                  random_state=None, **kwargs)


# ----------------------------------------------------------------------------------------------
# docstrings: scikit-learn's parameters and returns, our summary and examples


def _section(function, name):
    """The body of section ``name`` of scikit-learn's docstring of ``function``."""
    section = docstring_section(function, name)
    if section is None:
        return f"See :func:`sklearn.model_selection.{function.__name__}`."
    return section


def _doc(function, summary, fused, example):
    name = function.__name__
    parameters = _section(function, "Parameters")
    returns = _section(function, "Returns")
    description = textwrap.fill(
        f"A drop-in replacement for :func:`sklearn.model_selection.{name}`: same parameters, "
        f"same results. {fused} The splits are computed once; scikit-learn's own ``{name}`` "
        "then fits (each fit adopting its pretrained member) and scores them in this process, "
        "so ``n_jobs`` sets the workers that train the stacks. Any other estimator, fit "
        "parameters other than ``sample_weight``, or metadata routing enabled: scikit-learn's "
        f"``{name}`` as it is.", width=96, break_on_hyphens=False)
    body = f"""{summary}

{description}

Parameters
----------
{parameters}

Returns
-------
{returns}

See Also
--------
sklearn.model_selection.{name} : The function this one calls.

Examples
--------
{example}"""
    return textwrap.indent(body, "    ").lstrip() + "\n"


_FUSED_FOLDS = ("For an sknn_tune estimator, or a :class:`~sklearn.pipeline.Pipeline` ending in "
                "one, every fold is trained as a member of one stacked model.")

cross_validate.__doc__ = _doc(
    _sk.cross_validate,
    "Evaluate metric(s) by cross-validation, every fold trained at once.", _FUSED_FOLDS, """\
>>> from sklearn.datasets import load_iris
>>> from sknn_tune import MLPClassifier
>>> from sknn_tune.model_selection import cross_validate
>>> X, y = load_iris(return_X_y=True)
>>> model = MLPClassifier((16,), max_epochs=20, random_state=0)
>>> result = cross_validate(model, X, y, cv=3, scoring=["accuracy", "neg_log_loss"])
>>> sorted(result)
['fit_time', 'score_time', 'test_accuracy', 'test_neg_log_loss']
>>> result["test_accuracy"].shape
(3,)""")

cross_val_score.__doc__ = _doc(
    _sk.cross_val_score,
    "Evaluate a score by cross-validation, every fold trained at once.", _FUSED_FOLDS, """\
>>> from sklearn.datasets import load_iris
>>> from sklearn.pipeline import make_pipeline
>>> from sklearn.preprocessing import StandardScaler
>>> from sknn_tune import MLPClassifier
>>> from sknn_tune.model_selection import cross_val_score
>>> X, y = load_iris(return_X_y=True)
>>> pipe = make_pipeline(StandardScaler(), MLPClassifier((16,), max_epochs=20, random_state=0))
>>> scores = cross_val_score(pipe, X, y, cv=5)
>>> scores.shape
(5,)""")

cross_val_predict.__doc__ = _doc(
    _sk.cross_val_predict,
    "Cross-validated predictions for each sample, every fold trained at once.", _FUSED_FOLDS,
    """\
>>> from sklearn.datasets import load_iris
>>> from sknn_tune import MLPClassifier
>>> from sknn_tune.model_selection import cross_val_predict
>>> X, y = load_iris(return_X_y=True)
>>> model = MLPClassifier((16,), max_epochs=20, random_state=0)
>>> cross_val_predict(model, X, y, cv=3, method="predict_proba").shape
(150, 3)""")

validation_curve.__doc__ = _doc(
    _sk.validation_curve,
    "Training and test scores for each value of one parameter, every fit trained at once.",
    "For an sknn_tune estimator, or a :class:`~sklearn.pipeline.Pipeline` ending in one, every "
    "parameter value x fold is trained as a member of a stacked model (values that change the "
    "network's structure, say ``hidden_layer_sizes``, go to one stack each).", """\
>>> from sklearn.datasets import load_iris
>>> from sknn_tune import MLPClassifier
>>> from sknn_tune.model_selection import validation_curve
>>> X, y = load_iris(return_X_y=True)
>>> model = MLPClassifier((16,), max_epochs=20, random_state=0)
>>> train_scores, test_scores = validation_curve(
...     model, X, y, param_name="lr", param_range=[1e-3, 1e-2, 1e-1], cv=3)
>>> test_scores.shape
(3, 3)""")

learning_curve.__doc__ = _doc(
    _sk.learning_curve,
    "Training and test scores for growing training sets, every fit trained at once.",
    "For an sknn_tune estimator, or a :class:`~sklearn.pipeline.Pipeline` ending in one, every "
    "train size x fold (scikit-learn's subsets, ``shuffle`` and ``random_state`` included) is "
    "trained as a member of one stacked model; ``exploit_incremental_learning=True`` is "
    "scikit-learn's ``partial_fit`` loop.", """\
>>> from sklearn.datasets import load_iris
>>> from sknn_tune import MLPClassifier
>>> from sknn_tune.model_selection import learning_curve
>>> X, y = load_iris(return_X_y=True)
>>> model = MLPClassifier((16,), max_epochs=20, random_state=0)
>>> sizes, train_scores, test_scores = learning_curve(
...     model, X, y, train_sizes=[0.3, 0.6, 1.0], cv=3, shuffle=True, random_state=0)
>>> sizes.tolist(), test_scores.shape
([30, 60, 100], (3, 3))""")
