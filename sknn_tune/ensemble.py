"""Bagged and seed ensembles of MLPs, every member trained in one stacked model.

:class:`FusedBaggingClassifier` and :class:`FusedBaggingRegressor` are scikit-learn's
:class:`~sklearn.ensemble.BaggingClassifier` and :class:`~sklearn.ensemble.BaggingRegressor`:
same parameters, same draws of rows and features from ``random_state``, same fitted attributes and
predictions. Their ``fit`` first plans every member exactly as scikit-learn's bagging will fit it
(the member's seed, its rows as bootstrap counts in ``sample_weight`` or as indexed rows, its
feature subset), trains all members as one stacked model, then runs scikit-learn's own ``fit``
while the trained members are served (:meth:`~sknn_tune._fused.Session.serving`): each
member's ``fit`` adopts its pretrained network instead of training.

With ``bootstrap=False`` (and the default ``max_samples``) every member sees every row once and
differs from the others only by its seed: a seed ensemble ("deep ensemble"), whose spread the
regressor reports with ``predict(X, return_std=True)``.
"""

import re
import textwrap
import warnings

import numpy as np
import sklearn
from joblib import parallel_config
from sklearn.ensemble import BaggingClassifier, BaggingRegressor
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, has_fit_parameter, validate_data

from ._docstrings import docstring_section
from ._fused import MAX_MEMBERS_CONSTRAINT, BaggingPlanner, Session, split_estimator
from ._sklearn_compat import (
    MAX_INT,
    _check_sample_weight,
    _generate_bagging_indices,
    _get_n_samples_bootstrap,
)
from .classifier import MLPClassifier
from .regressor import MLPRegressor

__all__ = ["FusedBaggingClassifier", "FusedBaggingRegressor"]

class _FusedBaggingMixin:
    """Plans the members scikit-learn's bagging will fit, trains them fused, then lets
    scikit-learn's ``fit`` adopt them."""

    def fit(self, X, y, sample_weight=None, **fit_params):
        """Build the ensemble: every member trained in one stacked model, then fitted by
        scikit-learn's bagging (each member adopting its pretrained network).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The training input samples.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            The target values.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights, used as probabilities to draw each member's rows (as scikit-learn's
            bagging does).
        **fit_params : dict
            Parameters routed to the members' ``fit`` (metadata routing only; the members are
            then trained one at a time by scikit-learn).

        Returns
        -------
        self : object
            The fitted ensemble.
        """
        self._validate_params()
        rs = check_random_state(self.random_state)
        state = rs.get_state()  # planning draws what scikit-learn's fit draws again
        try:
            planner = self._plan_members(X, y, sample_weight, fit_params, rs)
        finally:
            rs.set_state(state)
        if planner is None or not planner.members:
            # Nothing to fuse: scikit-learn's bagging as it is (its fitted attributes only), with
            # the workers asked for.
            self.__dict__.pop("n_member_epochs_", None)  # a previous fit's
            return super().fit(X, y, sample_weight=sample_weight, **fit_params)
        session = Session(planner, self.max_members, self.n_jobs, self.verbose)
        # The one "candidate" of the session; its "folds" are the members.
        session.train([{}], [(i, None) for i in range(len(planner.members))])
        self.n_member_epochs_ = session.epochs_trained
        try:
            # In this process, where the trained members are served (the sequential backend
            # overrides the n_jobs scikit-learn's bagging passes to joblib).
            with session.serving(), parallel_config(backend="sequential"):
                return super().fit(X, y, sample_weight=sample_weight, **fit_params)
        finally:
            session.registry.clear()

    def _plan_members(self, X, y, sample_weight, fit_params, rs):
        """A :class:`~sknn_tune._fused.BaggingPlanner` of the fits scikit-learn's
        ``BaseBagging._fit`` will make, in its order, drawing from ``rs`` as it does; None when
        fusion does not apply (the
        member is not an sknn_tune MLP or a pipeline ending in one, metadata routing, or
        parameters scikit-learn will reject: its own ``fit`` then does what it does)."""
        if fit_params or sklearn.get_config().get("enable_metadata_routing", False):
            return None
        # The lines of BaseBagging.fit / _fit before its parallel loop, in the same order.
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"], dtype=None,
                             ensure_all_finite=False, multi_output=True)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(sample_weight, X, dtype=None)
        n_samples, n_features = X.shape
        y = self._validate_y(y)
        self._validate_estimator(self._get_estimator())
        if split_estimator(self.estimator_)[1] is None:
            return None
        with warnings.catch_warnings():  # scikit-learn's fit warns itself
            warnings.simplefilter("ignore")
            max_samples = _get_n_samples_bootstrap(n_samples, self.max_samples, sample_weight)
        if not self.bootstrap and max_samples > n_samples:
            return None
        max_features = self.max_features
        if isinstance(max_features, float):
            max_features = int(max_features * n_features)
        if max_features > n_features or (self.oob_score and (not self.bootstrap
                                                            or self.warm_start)):
            return None
        max_features = max(1, int(max_features))
        n_existing = len(self.estimators_) if self.warm_start and hasattr(
            self, "estimators_") else 0
        if self.n_estimators <= n_existing:
            return None
        if n_existing:
            rs.randint(MAX_INT, size=n_existing)
        seeds = rs.randint(MAX_INT, size=self.n_estimators - n_existing)

        # _parallel_build_estimators, one member after another.
        consumes_sample_weight = has_fit_parameter(self.estimator_, "sample_weight")
        subset_features = self.bootstrap_features or max_features != n_features
        planner = BaggingPlanner()
        for seed in seeds:
            estimator = self._make_estimator(append=False, random_state=seed)
            features, rows = _generate_bagging_indices(
                seed, self.bootstrap_features, self.bootstrap, n_features, n_samples,
                max_features, max_samples, sample_weight)
            # Every row, weighted by how often it was drawn; or the rows drawn, as drawn.
            weight = np.bincount(rows, minlength=n_samples) if consumes_sample_weight else None
            planner.add(estimator, X, y, weight, None if consumes_sample_weight else rows,
                        features if subset_features else None)
        return planner

    def _members_predictions(self, X):
        """Each member's ``predict`` on its features of ``X``: ``(n_estimators, n_samples, ...)``."""
        check_is_fitted(self)
        X = validate_data(self, X, accept_sparse=["csr", "csc"], dtype=None,
                          ensure_all_finite=False, reset=False)
        return np.stack([estimator.predict(X[:, features]) for estimator, features
                         in zip(self.estimators_, self.estimators_features_)])


def _sklearn_section(base, name, default):
    """Section ``name`` of scikit-learn's docstring of ``base``, indented to inline, with our
    network as the default member (its docstring says a decision tree)."""
    section = docstring_section(base, name)
    if section is None:
        return f"    See :class:`sklearn.ensemble.{base.__name__}`.\n"
    text = re.sub(r":class:`~sklearn\.tree\.DecisionTree(Classifier|Regressor)`",
                  f":class:`~sknn_tune.{default}`", section)
    text = text.replace("{", "{{").replace("}", "}}")  # the section goes through str.format
    return textwrap.indent(text, "    ") + "\n"


_DOC = """{base} with all members trained at once, in one stacked model.

    A drop-in replacement for :class:`sklearn.ensemble.{base}`: the same parameters (plus
    ``max_members``), the same draws of each member's rows and features from ``random_state``
    (``estimators_samples_``, ``estimators_features_``), hence the same members and predictions
    as scikit-learn's bagging over the same estimator. The default estimator is sknn_tune's
    :class:`~sknn_tune.{default}`. For an sknn_tune estimator, or a
    :class:`~sklearn.pipeline.Pipeline` ending in one, the members are planned exactly as
    scikit-learn's bagging fits them and trained as members of stacked models (``n_jobs`` sets
    the workers that train the stacks); scikit-learn's ``fit`` then adopts them. Any other
    estimator is fitted by scikit-learn as it is.

    With ``bootstrap=False`` and the default ``max_samples`` every member trains on all rows,
    differing only by its seed (scikit-learn gives each member its own ``random_state``): a seed
    ensemble, or deep ensemble.

    Parameters
    ----------
{parameters}
    max_members : int, default=None
        Most members trained in one stack. None picks it from a memory estimate, as the fused
        searches do.

    Attributes
    ----------
{attributes}
    n_member_epochs_ : int
        Member-epochs the fused stacks trained in the last ``fit``; not set when nothing is
        fused (the ensemble is then scikit-learn's, attributes included).

    See Also
    --------
    sklearn.ensemble.{base} : The ensemble this one is.
    {other} : The same for {other_task}.

    Examples
    --------
{example}"""


class FusedBaggingClassifier(_FusedBaggingMixin, BaggingClassifier):
    _parameter_constraints: dict = {**BaggingClassifier._parameter_constraints, **MAX_MEMBERS_CONSTRAINT}

    def __init__(self, estimator=None, n_estimators=10, *, max_samples=None, max_features=1.0,
                 bootstrap=True, bootstrap_features=False, oob_score=False, warm_start=False,
                 n_jobs=None, random_state=None, verbose=0, max_members=None):
        super().__init__(estimator=estimator, n_estimators=n_estimators, max_samples=max_samples,
                         max_features=max_features, bootstrap=bootstrap,
                         bootstrap_features=bootstrap_features, oob_score=oob_score,
                         warm_start=warm_start, n_jobs=n_jobs, random_state=random_state,
                         verbose=verbose)
        self.max_members = max_members

    def _get_estimator(self):
        return MLPClassifier() if self.estimator is None else self.estimator


class FusedBaggingRegressor(_FusedBaggingMixin, BaggingRegressor):
    _parameter_constraints: dict = {**BaggingRegressor._parameter_constraints, **MAX_MEMBERS_CONSTRAINT}

    def __init__(self, estimator=None, n_estimators=10, *, max_samples=None, max_features=1.0,
                 bootstrap=True, bootstrap_features=False, oob_score=False, warm_start=False,
                 n_jobs=None, random_state=None, verbose=0, max_members=None):
        super().__init__(estimator=estimator, n_estimators=n_estimators, max_samples=max_samples,
                         max_features=max_features, bootstrap=bootstrap,
                         bootstrap_features=bootstrap_features, oob_score=oob_score,
                         warm_start=warm_start, n_jobs=n_jobs, random_state=random_state,
                         verbose=verbose)
        self.max_members = max_members

    def _get_estimator(self):
        return MLPRegressor() if self.estimator is None else self.estimator

    def predict(self, X, return_std=False, **params):
        """Predict regression targets: the mean of the members' predictions.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            The input samples.
        return_std : bool, default=False
            Also return the standard deviation of the members' predictions (the ensemble's
            spread: an estimate of the model's uncertainty at each sample).
        **params : dict
            Routed to the members' ``predict`` (metadata routing), as scikit-learn's.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            The mean prediction, as :meth:`sklearn.ensemble.BaggingRegressor.predict`.
        y_std : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            The members' standard deviation (``ddof=0``); only with ``return_std=True``.
        """
        y = super().predict(X, **params)
        if not return_std:
            return y
        return y, self._members_predictions(X).std(axis=0)


FusedBaggingClassifier.__doc__ = _DOC.format(
    parameters=_sklearn_section(BaggingClassifier, "Parameters", "MLPClassifier"),
    attributes=_sklearn_section(BaggingClassifier, "Attributes", "MLPClassifier"),
    base="BaggingClassifier", default="MLPClassifier", other="FusedBaggingRegressor",
    other_task="regression", example="""\
    >>> from sklearn.datasets import load_iris
    >>> from sknn_tune import MLPClassifier
    >>> from sknn_tune.ensemble import FusedBaggingClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> bagging = FusedBaggingClassifier(MLPClassifier((16,), max_epochs=20), n_estimators=8,
    ...                                  random_state=0).fit(X, y)
    >>> len(bagging.estimators_), bagging.n_member_epochs_
    (8, 160)
    >>> bagging.predict_proba(X[:2]).shape
    (2, 3)
""")

FusedBaggingRegressor.__doc__ = _DOC.format(
    parameters=_sklearn_section(BaggingRegressor, "Parameters", "MLPRegressor"),
    attributes=_sklearn_section(BaggingRegressor, "Attributes", "MLPRegressor"),
    base="BaggingRegressor", default="MLPRegressor", other="FusedBaggingClassifier",
    other_task="classification", example="""\
    >>> from sklearn.datasets import make_regression
    >>> from sknn_tune import MLPRegressor
    >>> from sknn_tune.ensemble import FusedBaggingRegressor
    >>> X, y = make_regression(100, 4, noise=1.0, random_state=0)
    >>> seeds = FusedBaggingRegressor(MLPRegressor((16,), max_epochs=20), n_estimators=5,
    ...                               bootstrap=False, random_state=0).fit(X, y / y.std())
    >>> mean, std = seeds.predict(X[:3], return_std=True)
    >>> mean.shape, std.shape, bool((std > 0).all())
    ((3,), (3,), True)
""")
