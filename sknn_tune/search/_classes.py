"""The fused search classes: scikit-learn's searches, with every batch of fits trained at once."""

import inspect
import re
import textwrap
from numbers import Integral

import numpy as np
from joblib import parallel_config
from sklearn.experimental import enable_halving_search_cv  # noqa: F401
from sklearn.model_selection import (
    GridSearchCV,
    HalvingGridSearchCV,
    HalvingRandomSearchCV,
    RandomizedSearchCV,
)
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import _check_method_params, indexable

from .._pretrained import serving
from ._fusion import Fusion, same_splits


class _FusedSearchMixin:
    """Wraps scikit-learn's ``evaluate_candidates`` so each batch is trained fused first.

    scikit-learn then fits and scores every candidate x fold with its own code; each fit adopts
    the member trained for it, so ``cv_results_`` is scikit-learn's, number for number. The
    scoring pass runs in this process (``n_jobs`` and the active joblib backend, dask say, drive
    the fused stacks instead), since the pretrained members live here.
    """

    def fit(self, X, y=None, **params):
        """Run fit with all sets of parameters, candidates x folds trained together.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs), default=None
            Targets.
        **params : dict of str -> object
            Parameters passed to the estimator's ``fit``, the scorer and the CV splitter, as
            in scikit-learn's search.

        Returns
        -------
        self : object
            The fitted search.
        """
        X_checked, y_checked = indexable(X, y)
        routed = self._get_routed_params_for_fit(_check_method_params(X_checked, params=params))
        self._fusion = Fusion(self.estimator, X_checked, y_checked, routed.estimator.fit,
                              max_members=self.max_members, n_jobs=self.n_jobs,
                              verbose=self.verbose)
        self._split_params = routed.splitter.split
        n_jobs = self.n_jobs
        self.n_jobs = 1
        try:
            # The fusion has taken the active joblib backend for its stacks; the scoring pass
            # stays here, where the pretrained members are (a dask backend ignores n_jobs=1).
            with serving(self._fusion.registry), parallel_config(backend="sequential"):
                super().fit(X, y, **params)
        finally:
            self.n_jobs = n_jobs
            self.n_member_epochs_ = self._fusion.epochs_trained
            del self._fusion, self._split_params
        return self

    def _run_search(self, evaluate_candidates, *, callback_ctx=None):
        fusion, X, y = self._fusion, self._fusion.X, self._fusion.y

        def fused_evaluate(candidate_params, cv=None, more_results=None, callback_ctx=None):
            candidate_params = list(candidate_params)
            splits = list((cv or self._checked_cv_orig).split(X, y, **self._split_params))
            fusion.train(candidate_params, splits)
            return evaluate_candidates(candidate_params, cv=same_splits(splits),
                                       more_results=more_results, callback_ctx=callback_ctx)

        super()._run_search(fused_evaluate, callback_ctx=callback_ctx)


_MAX_MEMBERS = {"max_members": [Interval(Integral, 1, None, closed="left"), None]}
_MAX_MEMBERS_DOC = """
    max_members : int, default=None
        Most candidate x fold members trained in one stack. None picks it from a memory estimate
        (2 GiB on CPU, half the free GPU memory); on CUDA out-of-memory a stack is halved.
"""
_ATTRIBUTE_DOC = """
    n_member_epochs_ : int
        Member-epochs the fused stacks trained (each candidate x fold counts its epochs); every
        fit of the search is trained once, successive halving's survivors continue.
"""


def _sklearn_section(base, name):
    """The body of section ``name`` of scikit-learn's docstring of ``base``, indented to inline."""
    doc = inspect.cleandoc(base.__doc__ or "")
    match = re.search(rf"^{name}\n-+\n(.*?)\n\s*\n[A-Z][\w ]*\n-+\n", doc, re.S | re.M)
    if match is None:
        return f"    See :class:`sklearn.model_selection.{base.__name__}`.\n"
    return textwrap.indent(match.group(1).rstrip(), "    ") + "\n"


def _fused_doc(base, example):
    return f"""{base.__name__} with every batch of candidates x folds trained at once.

    A drop-in replacement for :class:`sklearn.model_selection.{base.__name__}`: same parameters
    (plus ``max_members``), same ``cv_results_``, ``best_params_``, ``best_estimator_``, scoring,
    refit and ``error_score`` behaviour. For an sknn_tune estimator, or a
    :class:`~sklearn.pipeline.Pipeline` ending in one, each batch of candidates x folds the
    search evaluates is planned exactly as the estimator's ``fit`` would, grouped by network
    structure (layer sizes, activation, batch size, optimizer, batch norm), and trained as
    members of one stacked model; scikit-learn then scores each fit with its own code. Anything
    else is fitted one at a time by scikit-learn, still correct.

    Parameters
    ----------
{_sklearn_section(base, "Parameters")}{_MAX_MEMBERS_DOC}
    Attributes
    ----------
{_sklearn_section(base, "Attributes")}{_ATTRIBUTE_DOC}
    Examples
    --------
{example}"""


class FusedGridSearchCV(_FusedSearchMixin, GridSearchCV):
    _parameter_constraints: dict = {**GridSearchCV._parameter_constraints, **_MAX_MEMBERS}

    def __init__(self, estimator, param_grid, *, scoring=None, n_jobs=None, refit=True, cv=None,
                 verbose=0, pre_dispatch="2*n_jobs", error_score=np.nan,
                 return_train_score=False, max_members=None):
        super().__init__(estimator, param_grid, scoring=scoring, n_jobs=n_jobs, refit=refit,
                         cv=cv, verbose=verbose, pre_dispatch=pre_dispatch,
                         error_score=error_score, return_train_score=return_train_score)
        self.max_members = max_members


class FusedRandomizedSearchCV(_FusedSearchMixin, RandomizedSearchCV):
    _parameter_constraints: dict = {**RandomizedSearchCV._parameter_constraints, **_MAX_MEMBERS}

    def __init__(self, estimator, param_distributions, *, n_iter=10, scoring=None, n_jobs=None,
                 refit=True, cv=None, verbose=0, pre_dispatch="2*n_jobs", random_state=None,
                 error_score=np.nan, return_train_score=False, max_members=None):
        super().__init__(estimator, param_distributions, n_iter=n_iter, scoring=scoring,
                         n_jobs=n_jobs, refit=refit, cv=cv, verbose=verbose,
                         pre_dispatch=pre_dispatch, random_state=random_state,
                         error_score=error_score, return_train_score=return_train_score)
        self.max_members = max_members


class FusedHalvingGridSearchCV(_FusedSearchMixin, HalvingGridSearchCV):
    _parameter_constraints: dict = {**HalvingGridSearchCV._parameter_constraints, **_MAX_MEMBERS}

    def __init__(self, estimator, param_grid, *, factor=3, resource="n_samples",
                 max_resources="auto", min_resources="exhaust", aggressive_elimination=False,
                 cv=5, scoring=None, refit=True, error_score=np.nan, return_train_score=True,
                 random_state=None, n_jobs=None, verbose=0, max_members=None):
        super().__init__(estimator, param_grid, factor=factor, resource=resource,
                         max_resources=max_resources, min_resources=min_resources,
                         aggressive_elimination=aggressive_elimination, cv=cv, scoring=scoring,
                         refit=refit, error_score=error_score,
                         return_train_score=return_train_score, random_state=random_state,
                         n_jobs=n_jobs, verbose=verbose)
        self.max_members = max_members


class FusedHalvingRandomSearchCV(_FusedSearchMixin, HalvingRandomSearchCV):
    _parameter_constraints: dict = {**HalvingRandomSearchCV._parameter_constraints,
                                    **_MAX_MEMBERS}

    def __init__(self, estimator, param_distributions, *, n_candidates="exhaust", factor=3,
                 resource="n_samples", max_resources="auto", min_resources="smallest",
                 aggressive_elimination=False, cv=5, scoring=None, refit=True,
                 error_score=np.nan, return_train_score=True, random_state=None, n_jobs=None,
                 verbose=0, max_members=None):
        super().__init__(estimator, param_distributions, n_candidates=n_candidates,
                         factor=factor, resource=resource, max_resources=max_resources,
                         min_resources=min_resources,
                         aggressive_elimination=aggressive_elimination, cv=cv, scoring=scoring,
                         refit=refit, error_score=error_score,
                         return_train_score=return_train_score, random_state=random_state,
                         n_jobs=n_jobs, verbose=verbose)
        self.max_members = max_members


FusedGridSearchCV.__doc__ = _fused_doc(GridSearchCV, """\
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> from sknn_tune import MLPClassifier, FusedGridSearchCV
    >>> X, y = load_iris(return_X_y=True)
    >>> pipe = make_pipeline(StandardScaler(), MLPClassifier((16,), max_epochs=20, random_state=0))
    >>> grid = {"mlpclassifier__lr": [1e-3, 1e-2], "mlpclassifier__dropout": [0.0, 0.2]}
    >>> search = FusedGridSearchCV(pipe, grid, cv=3).fit(X, y)
    >>> len(search.cv_results_["params"]), search.n_member_epochs_
    (4, 240)
""")
FusedRandomizedSearchCV.__doc__ = _fused_doc(RandomizedSearchCV, """\
    >>> from scipy.stats import loguniform
    >>> from sklearn.datasets import load_iris
    >>> from sknn_tune import MLPClassifier, FusedRandomizedSearchCV
    >>> X, y = load_iris(return_X_y=True)
    >>> search = FusedRandomizedSearchCV(
    ...     MLPClassifier((16,), max_epochs=20, random_state=0),
    ...     {"lr": loguniform(1e-4, 1e-1), "weight_decay": loguniform(1e-6, 1e-2)},
    ...     n_iter=6, cv=3, random_state=0).fit(X, y)
    >>> len(search.cv_results_["params"])
    6
""")
FusedHalvingGridSearchCV.__doc__ = _fused_doc(HalvingGridSearchCV, """\
    >>> from sklearn.datasets import load_iris
    >>> from sknn_tune import MLPClassifier, FusedHalvingGridSearchCV
    >>> X, y = load_iris(return_X_y=True)
    >>> search = FusedHalvingGridSearchCV(
    ...     MLPClassifier((16,), random_state=0), {"lr": [1e-3, 3e-3, 1e-2, 3e-2]},
    ...     resource="max_epochs", min_resources=5, max_resources=20, factor=2, cv=3,
    ...     random_state=0).fit(X, y)
    >>> search.n_resources_
    [5, 10, 20]
""")
FusedHalvingRandomSearchCV.__doc__ = _fused_doc(HalvingRandomSearchCV, """\
    >>> from scipy.stats import loguniform
    >>> from sklearn.datasets import load_iris
    >>> from sknn_tune import MLPClassifier, FusedHalvingRandomSearchCV
    >>> X, y = load_iris(return_X_y=True)
    >>> search = FusedHalvingRandomSearchCV(
    ...     MLPClassifier((16,), random_state=0), {"lr": loguniform(1e-4, 1e-1)},
    ...     n_candidates=4, resource="max_epochs", min_resources=5, max_resources=20,
    ...     factor=2, cv=3, random_state=0).fit(X, y)
    >>> search.n_resources_
    [5, 10, 20]
""")
