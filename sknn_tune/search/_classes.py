"""The fused search classes: scikit-learn's searches, with every batch of fits trained at once."""

import contextlib
import textwrap
import warnings

import numpy as np
from joblib import parallel_config
from sklearn.experimental import enable_halving_search_cv  # noqa: F401
from sklearn.model_selection import (
    GridSearchCV,
    HalvingGridSearchCV,
    HalvingRandomSearchCV,
    RandomizedSearchCV,
)
from sklearn.utils.validation import indexable

from .._docstrings import docstring_section
from .._fused import MAX_MEMBERS_CONSTRAINT, CVPlanner, Session, same_splits
from .._sklearn_compat import _check_method_params


class _FusedSearchMixin:
    """Wraps scikit-learn's ``evaluate_candidates`` so each batch is trained fused first.

    scikit-learn then fits and scores every candidate x fold with its own code; each fit adopts
    the member trained for it, so ``cv_results_`` is scikit-learn's, number for number. The
    scoring pass runs in this process (``n_jobs`` and the active joblib backend, dask say, drive
    the fused stacks instead), since the pretrained members live here.

    A batch larger than the stacks that train at once goes to scikit-learn in slices of
    candidates, each trained, then evaluated by its own ``evaluate_candidates`` call (which
    accumulates ``cv_results_``, as successive halving's rounds do), then let go: memory does not
    grow with the number of candidates.
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
        self._session = Session(
            CVPlanner(self.estimator, X_checked, y_checked, routed.estimator.fit,
                      continues=self._members_continue()),
            max_members=self.max_members, n_jobs=self.n_jobs, verbose=self.verbose)
        self._split_params = routed.splitter.split
        self._score_params = routed.scorer.score
        fused = self._session.enabled
        try:
            if fused:
                # The session has taken the active joblib backend and n_jobs for its stacks;
                # the scoring pass stays here, where the trained members are (the sequential
                # backend overrides the n_jobs scikit-learn's search passes to joblib).
                # A bare estimator's folds go to scikit-learn as rows of X by reference.
                X_rows = self._session.planner.rows_by_reference()
                with self._session.serving(), parallel_config(backend="sequential"):
                    super().fit(X_rows, y, **params)
            else:
                # Nothing to fuse (another estimator, a fit parameter fusion does not plan):
                # scikit-learn's search as it is, with the workers the user asked for.
                super().fit(X, y, **params)
        finally:
            self.__dict__.pop("n_member_epochs_", None)  # a previous fit's
            if fused:  # nothing fused: scikit-learn's search, its fitted attributes only
                self.n_member_epochs_ = self._session.epochs_trained
            del self._session, self._split_params, self._score_params
        return self

    def _members_continue(self):
        """Whether a later batch continues this one's trained members. Only successive halving
        over a parameter (max_epochs) does; over n_samples every round trains on other rows."""
        return getattr(self, "resource", "n_samples") != "n_samples"

    def _run_search(self, evaluate_candidates, *, callback_ctx=None):
        session = self._session
        if not session.enabled:  # nothing to fuse: scikit-learn's own evaluation
            super()._run_search(evaluate_candidates, callback_ctx=callback_ctx)
            return
        X, y = session.planner.X, session.planner.y

        def fused_evaluate(candidate_params, cv=None, more_results=None, callback_ctx=None):
            candidate_params = list(candidate_params)
            splits = list((cv or self._checked_cv_orig).split(X, y, **self._split_params))

            def evaluate(start, stop, final):
                """Let scikit-learn fit (adopting the pretrained members) and score candidates
                ``start:stop`` of this batch: their part of ``more_results``, their task ids."""
                part = slice(start, stop)
                part_results = None
                if more_results is not None:
                    part_results = {key: list(values)[part] for key, values in more_results.items()}
                part_ctx = None
                if callback_ctx is not None:
                    part_ctx = _ShiftedTasks(callback_ctx, start * len(splits))
                with _only_final_warnings(final):
                    return evaluate_candidates(candidate_params[part], cv=same_splits(splits),
                                               more_results=part_results, callback_ctx=part_ctx)

            return _in_slices(session, candidate_params, splits, evaluate)

        super()._run_search(fused_evaluate, callback_ctx=callback_ctx)


def _in_slices(session, candidate_params, splits, evaluate):
    """Train and evaluate a batch a slice of candidates at a time; the last call's results.

    scikit-learn raises when every fit of one ``evaluate_candidates`` call fails, which must only
    happen when every fit of the batch does. A fit surely succeeds when its member did not
    diverge (scikit-learn's fit adopts it as it is). So a call holds such a fit, and ends just
    before the last candidate trained so far that has one: that candidate and the few after it
    wait, with their members, for the next call, and the last call holds a sure fit too.
    """
    registry = session.registry
    keys = []  # per candidate trained so far, the fit keys it registered
    done = 0  # candidates evaluated
    try:
        while len(keys) < len(candidate_params):
            keys += session.train(candidate_params[len(keys):], splits, in_slices=True)
            if len(keys) == len(candidate_params):
                break  # the last call evaluates the rest
            sure = [i for i in range(done, len(keys))
                    if any(_adopted_without_error(registry.peek(key)) for key in keys[i])]
            if len(sure) < 2:
                continue
            evaluate(done, sure[-1], final=False)
            for evaluated in keys[done:sure[-1]]:
                for key in evaluated:  # what scikit-learn did not adopt (a failed fit)
                    registry.discard(key)
            done = sure[-1]
        return evaluate(done, len(candidate_params), final=True)
    finally:
        registry.clear()


def _adopted_without_error(member):
    """Whether scikit-learn's fit of a registered member (None: nothing) succeeds: it adopts
    the member as it is, and fails only if the member diverged."""
    return member is not None and not member.diverged[0]


class _ShiftedTasks:
    """A callback context whose subtasks' ``task_id`` starts at ``offset``.

    ``evaluate_candidates`` numbers the fits of each call from 0 in the context it is given; the
    slices of a batch continue the numbering where the previous slice ended, so the task tree is
    the one a single call builds.
    """

    def __init__(self, context, offset):
        self._context = context
        self._offset = offset

    def subcontext(self, task_name="", task_id=None, **kwargs):
        if task_id is not None:
            task_id += self._offset
        return self._context.subcontext(task_name=task_name, task_id=task_id, **kwargs)

    def __getattr__(self, name):
        return getattr(self._context, name)


@contextlib.contextmanager
def _only_final_warnings(final):
    """Silence the non-finite score warning that ``evaluate_candidates`` gives for the results
    so far, except after a batch's last slice: it warns once per batch, as without slices."""
    with warnings.catch_warnings():
        if not final:
            warnings.filterwarnings("ignore", category=UserWarning,
                                    message="One or more of the .* scores are non-finite")
        yield


_MAX_MEMBERS_DOC = """
    max_members : int, default=None
        Most candidate x fold members trained in one stack. None picks it from a memory estimate
        (2 GiB and at most 512 members on CPU, half the free GPU memory); on CUDA out-of-memory a
        stack is halved.
"""
_SLICES_DOC = """\
        A batch of candidates with more members than the stacks that train at once (one per
        worker) fill is trained and scored a slice at a time, each slice the candidates that
        fill them, so memory does not grow with the number of candidates; scikit-learn then
        reports failed fits per slice.
"""
_ATTRIBUTE_DOC = """
    n_member_epochs_ : int
        Member-epochs the fused stacks trained (each candidate x fold counts its epochs); every
        fit of the search is trained once, successive halving's survivors continue. Not set
        when nothing is fused (the search is then scikit-learn's, attributes included).
"""


def _sklearn_section(base, name):
    """The body of section ``name`` of scikit-learn's docstring of ``base``, indented to inline."""
    section = docstring_section(base, name)
    if section is None:
        return f"    See :class:`sklearn.model_selection.{base.__name__}`.\n"
    return textwrap.indent(section, "    ") + "\n"


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
{_sklearn_section(base, "Parameters")}{_MAX_MEMBERS_DOC}{_SLICES_DOC}
    Attributes
    ----------
{_sklearn_section(base, "Attributes")}{_ATTRIBUTE_DOC}
    Examples
    --------
{example}"""


class FusedGridSearchCV(_FusedSearchMixin, GridSearchCV):
    _parameter_constraints: dict = {**GridSearchCV._parameter_constraints, **MAX_MEMBERS_CONSTRAINT}

    def __init__(self, estimator, param_grid, *, scoring=None, n_jobs=None, refit=True, cv=None,
                 verbose=0, pre_dispatch="2*n_jobs", error_score=np.nan,
                 return_train_score=False, max_members=None):
        super().__init__(estimator, param_grid, scoring=scoring, n_jobs=n_jobs, refit=refit,
                         cv=cv, verbose=verbose, pre_dispatch=pre_dispatch,
                         error_score=error_score, return_train_score=return_train_score)
        self.max_members = max_members


class FusedRandomizedSearchCV(_FusedSearchMixin, RandomizedSearchCV):
    _parameter_constraints: dict = {**RandomizedSearchCV._parameter_constraints, **MAX_MEMBERS_CONSTRAINT}

    def __init__(self, estimator, param_distributions, *, n_iter=10, scoring=None, n_jobs=None,
                 refit=True, cv=None, verbose=0, pre_dispatch="2*n_jobs", random_state=None,
                 error_score=np.nan, return_train_score=False, max_members=None):
        super().__init__(estimator, param_distributions, n_iter=n_iter, scoring=scoring,
                         n_jobs=n_jobs, refit=refit, cv=cv, verbose=verbose,
                         pre_dispatch=pre_dispatch, random_state=random_state,
                         error_score=error_score, return_train_score=return_train_score)
        self.max_members = max_members


class FusedHalvingGridSearchCV(_FusedSearchMixin, HalvingGridSearchCV):
    _parameter_constraints: dict = {**HalvingGridSearchCV._parameter_constraints, **MAX_MEMBERS_CONSTRAINT}

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
                                    **MAX_MEMBERS_CONSTRAINT}

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
