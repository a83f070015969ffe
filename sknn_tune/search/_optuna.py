"""A batched Bayesian search: Optuna proposes a batch of trials, the batch trains fused, Optuna is told.

The search is scikit-learn's ``BaseSearchCV`` with its own ``_run_search``: each round asks the
study for ``batch_size`` trials and hands them to scikit-learn's ``evaluate_candidates``, which the
fused searches' mixin trains as stacked members (:class:`~sknn_tune._fused.Session`) before
scikit-learn scores every fit; the study is told each trial's mean test score. Everything after the
search (``cv_results_``, refit, multimetric scoring, callbacks) is scikit-learn's own. With a
pruner, a batch trains in chunks of epochs first: after each chunk every live trial reports its
cross-validated score and the pruner may stop it; the survivors continue from their trained state.

Optuna is imported when a search is fitted, not when sknn_tune is imported.
"""

import copy
import time
from numbers import Integral, Real

import numpy as np
from sklearn.base import clone
from sklearn.utils import check_random_state

from .._fused import MAX_MEMBERS_CONSTRAINT, RESOURCE_PARAMETER, same_splits, split_estimator
from .._sklearn_compat import BaseSearchCV, HasMethods, Interval, _fit_and_score
from ._classes import _ATTRIBUTE_DOC, _MAX_MEMBERS_DOC, _FusedSearchMixin


def _import_optuna():
    try:
        import optuna
    except ImportError as error:  # pragma: no cover - exercised only without optuna
        raise ImportError(
            "FusedOptunaSearchCV needs optuna: pip install 'sknn_tune[optuna]' (or optuna)."
        ) from error
    return optuna


class _OptunaSearch(BaseSearchCV):
    """scikit-learn's search with Optuna choosing the candidates, a batch of trials at a time."""

    # BaseSearchCV.fit hands pre_dispatch to its scoring pass, which runs one job here.
    pre_dispatch = "2*n_jobs"

    def _run_search(self, evaluate_candidates, *, callback_ctx=None):
        optuna = _import_optuna()
        X, y = self._session.planner.X, self._session.planner.y
        # The folds are fixed once: every trial, every epoch chunk and the fused training see the
        # same rows, also with an unseeded shuffling splitter.
        splits = [(np.asarray(train), np.asarray(test))
                  for train, test in self._checked_cv_orig.split(X, y, **self._split_params)]
        study = self._make_study(optuna)
        resource, default_epochs = self._resource(self.estimator)
        pruning = not isinstance(study.pruner, optuna.pruners.NopPruner)
        if pruning and resource is None:
            raise ValueError(
                "Pruning reports each trial's score after a part of its max_epochs; "
                f"{type(self.estimator).__name__} is neither an sknn_tune network nor a Pipeline "
                "ending in one. Pass pruner=None, or use optuna_integration.OptunaSearchCV, "
                "which prunes through partial_fit.")
        rounds = _Rounds(self, splits)
        trials, finished, start = [], [], time.monotonic()
        try:
            while self._budget_left(len(trials), start):
                n_ask = self.batch_size
                if self.n_trials is not None:
                    n_ask = min(n_ask, self.n_trials - len(trials))
                batch = [study.ask(self.param_distributions) for _ in range(n_ask)]
                trials.extend(batch)
                try:
                    done = self._run_batch(study, batch, rounds, resource, default_epochs,
                                           pruning)
                except BaseException:
                    # Leave no trial RUNNING in the study (Ctrl-C, error_score='raise', ...).
                    for trial in batch:
                        study.tell(trial, state=optuna.trial.TrialState.FAIL,
                                   skip_if_finished=True)
                    self._session.registry.clear()
                    raise
                finally:
                    self._session.resumable.clear()  # no later batch continues these members
                finished.extend(done)
                if self.verbose:
                    print(f"[{type(self).__name__}] {len(trials)} trials: {len(done)} of "
                          f"the last {len(batch)} trained to the end, {len(batch) - len(done)}"
                          f" pruned")
        finally:
            self.study_ = study
            by_number = {trial.number: trial for trial in study.get_trials(deepcopy=False)}
            self.trials_ = [by_number[trial.number] for trial in trials]
            self.n_trials_ = len(trials)
        if not finished:
            raise ValueError(f"None of the {len(trials)} trials was trained to the end (all "
                             "pruned); see trials_ for their intermediate scores.")
        # One scikit-learn pass over every finished trial (their members wait, trained, in the
        # fusion's registry): cv_results_ in trial order, failures judged over the whole search.
        search_ctx = None
        if callback_ctx is not None:  # as GridSearchCV's: one task, the fits its subtasks
            search_ctx = callback_ctx.subcontext(
                task_name="search", max_subtasks=len(finished) * len(splits),
                sequential_subtasks=False).call_on_fit_task_begin(estimator=self)
        evaluate_candidates([trial.params for trial in finished], cv=same_splits(splits),
                            more_results={"trial_number": [trial.number for trial in finished]},
                            callback_ctx=search_ctx)
        if search_ctx is not None:
            search_ctx.call_on_fit_task_end(estimator=self)

    def _run_batch(self, study, batch, rounds, resource, default_epochs, pruning):
        """Train, score and tell one batch; return the trials trained to the end."""
        from optuna.trial import TrialState

        final_epochs = {trial.number: trial.params.get(resource, default_epochs) for trial in batch}
        schedule = {trial.number: self._chunks(final_epochs[trial.number]) if pruning else []
                    for trial in batch}
        live = list(batch)
        for epochs in sorted(set().union(*schedule.values())):
            group = [trial for trial in live if epochs in schedule[trial.number]]
            if not group:
                continue
            outcomes = rounds.score([{**trial.params, resource: epochs} for trial in group],
                                    keep=False)
            pruned = set()
            for trial, (value, _) in zip(group, outcomes):
                trial.set_user_attr("n_epochs", epochs)
                if not np.isfinite(value):
                    continue  # a failed fit goes on to the end, which records it as failed
                trial.report(value, epochs)
                if trial.should_prune():
                    pruned.add(trial.number)
                    study.tell(trial, state=TrialState.PRUNED)
            live = [trial for trial in live if trial.number not in pruned]
        outcomes = rounds.score([trial.params for trial in live], keep=True) if live else []
        for trial, (value, summary) in zip(live, outcomes):
            if resource:
                trial.set_user_attr("n_epochs", final_epochs[trial.number])
            for key, number in summary.items():
                trial.set_user_attr(key, number)
            if np.isfinite(value):
                if pruning:
                    trial.report(value, final_epochs[trial.number])
                study.tell(trial, value)
            else:
                study.tell(trial, state=TrialState.FAIL)
        return live

    def _multimetric_scoring(self):
        return isinstance(self.scoring, (list, tuple, set, dict))

    # ------------------------------------------------------------------------------------------

    def _check_search_parameters(self, optuna):
        from optuna.distributions import BaseDistribution

        wrong = {name: type(dist).__name__ for name, dist in self.param_distributions.items()
                 if not isinstance(dist, BaseDistribution)}
        if wrong:
            raise TypeError(
                "param_distributions must map parameter names to optuna distributions "
                f"(FloatDistribution, IntDistribution, CategoricalDistribution); got {wrong}.")
        if self.n_trials is None and self.timeout is None:
            raise ValueError("Set n_trials, timeout or both: with neither the search never ends.")
        if self.study is not None:
            if self.sampler is not None or self.pruner is not None:
                raise ValueError("Pass either a study or a sampler / pruner: the study brings "
                                 "its own.")
            directions = self.study.directions
            if len(directions) != 1 or directions[0] != optuna.study.StudyDirection.MAXIMIZE:
                raise ValueError("The study must maximise a single objective (scikit-learn "
                                 f"scores are greater-is-better); its directions are "
                                 f"{[d.name for d in directions]}.")
        if self.pruning_epochs is not None and not isinstance(self.pruning_epochs, Integral):
            epochs = np.asarray(self.pruning_epochs)
            if epochs.ndim != 1 or not np.issubdtype(epochs.dtype, np.integer) or (epochs < 1).any():
                raise ValueError("pruning_epochs must be a positive int or a list of positive "
                                 f"ints; got {self.pruning_epochs!r}.")

    def _make_study(self, optuna):
        if self.study is not None:
            return self.study
        if self.sampler is not None:  # a copy, so that every fit starts from the same state
            sampler = copy.deepcopy(self.sampler)
        else:
            seed = None
            if self.random_state is not None:
                seed = int(check_random_state(self.random_state).randint(np.iinfo(np.int32).max))
            sampler = optuna.samplers.TPESampler(seed=seed)
        pruner = optuna.pruners.NopPruner() if self.pruner is None else copy.deepcopy(self.pruner)
        return optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner)

    @staticmethod
    def _resource(estimator):
        """``(name, default)`` of the network's epochs parameter (what pruning chunks), or
        ``(None, None)`` when the estimator is not an sknn_tune network."""
        _, mlp = split_estimator(estimator)
        if mlp is None:
            return None, None
        name = RESOURCE_PARAMETER
        if mlp is not estimator:
            name = f"{estimator.steps[-1][0]}__{RESOURCE_PARAMETER}"
        return name, mlp.max_epochs

    def _chunks(self, max_epochs):
        """Epoch counts below ``max_epochs`` at which a trial reports its score to the pruner."""
        max_epochs = int(max_epochs)
        if self.pruning_epochs is None:
            epochs = {max(1, max_epochs >> k) for k in (3, 2, 1)}
        elif isinstance(self.pruning_epochs, Integral):
            epochs = set(range(int(self.pruning_epochs), max_epochs, int(self.pruning_epochs)))
        else:
            epochs = {int(e) for e in self.pruning_epochs}
        return sorted(e for e in epochs if e < max_epochs)

    def _budget_left(self, n_started, start):
        if self.n_trials is not None and n_started >= self.n_trials:
            return False
        # As Optuna's optimize, the timeout ends the search after a batch, never before the first.
        return (self.timeout is None or n_started == 0
                or time.monotonic() - start < self.timeout)


class _Rounds:
    """Trains a batch's candidates x folds fused and scores them for the study.

    The scores are scikit-learn's ``_fit_and_score`` of each fit, which adopts its trained
    member and only predicts; members of finished trials stay registered for the search's final
    scoring pass (the one that fills ``cv_results_``), members of a pruning chunk are let go.
    """

    def __init__(self, search, splits):
        self.search, self.splits = search, splits
        self.scorers = search._get_scorers()[0]

    def score(self, candidates, keep):
        """Per candidate ``(value, summary)``: the objective (the mean test score of the
        ``refit`` metric, NaN when a fit failed) and the trial's user attributes
        (``mean_test_<metric>``, ``std_test_<metric>``, ``fit_error``)."""
        search, session = self.search, self.search._session
        keys = session.train(candidates, self.splits)
        outcomes = []
        with session.serving(keep=True):
            for candidate in candidates:
                outs = [_fit_and_score(
                    clone(search.estimator), session.planner.X, session.planner.y,
                    scorer=self.scorers, train=train, test=test, verbose=0, parameters=candidate,
                    fit_params=session.planner.fit_params,
                    score_params=search._score_params, error_score=np.nan)
                    for train, test in self.splits]
                outcomes.append(self._outcome(outs))
        if not keep:
            for candidate_keys in keys:
                for key in candidate_keys:
                    session.registry.discard(key)
        return outcomes

    def _outcome(self, outs):
        scores = [out["test_scores"] for out in outs]
        by_metric = ({name: [s[name] for s in scores] for name in scores[0]}
                     if isinstance(scores[0], dict) else {"score": scores})
        summary = {}
        for name, values in by_metric.items():
            summary[f"mean_test_{name}"] = float(np.mean(values))
            summary[f"std_test_{name}"] = float(np.std(values))
        errors = [out["fit_error"] for out in outs if out["fit_error"] is not None]
        if errors:
            summary["fit_error"] = errors[0].strip().splitlines()[-1]
            return np.nan, summary
        if "score" in by_metric:
            return summary["mean_test_score"], summary
        refit = self.search.refit
        if not isinstance(refit, str) or refit not in by_metric:
            raise ValueError("With multi-metric scoring, refit must name the metric the study "
                             f"maximises, one of {sorted(by_metric)}; got {refit!r}.")
        return summary[f"mean_test_{refit}"], summary


class FusedOptunaSearchCV(_FusedSearchMixin, _OptunaSearch):
    _parameter_constraints: dict = {
        **{name: rule for name, rule in BaseSearchCV._parameter_constraints.items()
           if name != "pre_dispatch"},
        "param_distributions": [dict],
        "n_trials": [Interval(Integral, 1, None, closed="left"), None],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "timeout": [Interval(Real, 0, None, closed="neither"), None],
        "sampler": [HasMethods(["sample_relative", "sample_independent"]), None],
        "pruner": [HasMethods(["prune"]), None],
        "study": [HasMethods(["ask", "tell"]), None],
        "pruning_epochs": [Interval(Integral, 1, None, closed="left"), "array-like", None],
        "random_state": ["random_state"],
        **MAX_MEMBERS_CONSTRAINT,
    }

    def __init__(self, estimator, param_distributions, *, n_trials=10, batch_size=5, timeout=None,
                 scoring=None, n_jobs=None, refit=True, cv=None, verbose=0, sampler=None,
                 pruner=None, study=None, pruning_epochs=None, random_state=None,
                 error_score=np.nan, return_train_score=False, max_members=None):
        # BaseSearchCV.__init__ would also set pre_dispatch, which this search does not use.
        self.estimator = estimator
        self.param_distributions = param_distributions
        self.n_trials = n_trials
        self.batch_size = batch_size
        self.timeout = timeout
        self.scoring = scoring
        self.n_jobs = n_jobs
        self.refit = refit
        self.cv = cv
        self.verbose = verbose
        self.sampler = sampler
        self.pruner = pruner
        self.study = study
        self.pruning_epochs = pruning_epochs
        self.random_state = random_state
        self.error_score = error_score
        self.return_train_score = return_train_score
        self.max_members = max_members

    def fit(self, X, y=None, **params):
        """Run the Optuna search, each batch of trials x folds trained together, then refit.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs), default=None
            Targets.
        **params : dict of str -> object
            Parameters passed to the estimator's ``fit``, the scorer and the CV splitter, as in
            scikit-learn's searches (``sample_weight``, ``groups``).

        Returns
        -------
        self : object
            The fitted search.
        """
        self._validate_params()
        self._check_search_parameters(_import_optuna())
        if self._multimetric_scoring() and not isinstance(self.refit, str):
            raise ValueError("With multi-metric scoring, refit must name the metric the study "
                             f"maximises; got refit={self.refit!r}.")
        return super().fit(X, y, **params)

    def _members_continue(self):
        return True  # pruning continues a batch's surviving members


FusedOptunaSearchCV.__doc__ = f"""Optuna-driven search: each batch of trials x folds trained at once.

    A Bayesian (or any Optuna sampler's) hyperparameter search with the interface of
    scikit-learn's searches. Each round asks the study for ``batch_size`` trials, trains all
    their candidates x folds as members of stacked models, exactly as :class:`FusedGridSearchCV`
    does, lets scikit-learn score every fit (each fit adopts its pretrained member, so the scores
    are scikit-learn's, equal to ``cross_val_score`` of that candidate), and tells the study each
    trial's mean test score. A trial whose fit fails (a :class:`DivergenceError`, say) is told
    ``FAIL`` and gets ``error_score`` in ``cv_results_``.

    With a ``pruner``, a batch trains in chunks of epochs (``pruning_epochs``): after each chunk,
    every live trial reports its cross-validated score at that number of epochs to the study
    (``trial.report``) and the pruner may stop it (told ``PRUNED``); the others continue from
    their trained state, so a trial that runs to the end trains its ``max_epochs`` once.

    Needs ``optuna`` (``pip install 'sknn_tune[optuna]'``).

    Parameters
    ----------
    estimator : estimator object
        An sknn_tune network, or a :class:`~sklearn.pipeline.Pipeline` ending in one (any other
        estimator works too, fitted one at a time and without pruning).
    param_distributions : dict of str -> optuna.distributions.BaseDistribution
        Parameter names (as ``set_params`` takes them) to Optuna distributions, e.g.
        ``{{"lr": FloatDistribution(1e-4, 1e-1, log=True), "dropout": FloatDistribution(0, 0.5)}}``.
    n_trials : int or None, default=10
        Number of trials of this ``fit``. None: until ``timeout``.
    batch_size : int, default=5
        Trials asked from the sampler, trained fused and told together. Larger batches train
        faster per trial; smaller ones let the sampler learn from more results before proposing
        (Optuna's TPE sampler treats the batch's running trials with its constant liar).
    timeout : float or None, default=None
        Seconds after which no new batch starts (the running one finishes; the first batch
        always runs).
    scoring : str, callable, list, tuple or dict, default=None
        As in :class:`~sklearn.model_selection.GridSearchCV`; with several metrics, ``refit``
        names the one the study maximises.
    n_jobs : int, default=None
        Fused stacks trained at the same time, as in :class:`FusedGridSearchCV`; the scoring
        pass runs in this process.
    refit : bool, str or callable, default=True
        Refit the best candidate on the whole data, as in scikit-learn's searches.
    cv : int, cross-validation generator or iterable, default=None
        Determines the folds (5-fold by default, stratified for classifiers). The folds are drawn
        once per ``fit`` and shared by every trial.
    verbose : int, default=0
        Print a line per batch; higher values also print scikit-learn's per-fit messages.
    sampler : optuna.samplers.BaseSampler, default=None
        The sampler of a new study (copied at each ``fit``); None is
        ``TPESampler(seed=<from random_state>)``.
    pruner : optuna.pruners.BasePruner, default=None
        The pruner of a new study (copied at each ``fit``); None is no pruning.
    study : optuna.study.Study, default=None
        A study to continue (maximising a single objective), with its own sampler and pruner;
        its earlier trials inform the sampler. None creates a new in-memory study.
    pruning_epochs : int, list of int or None, default=None
        With a pruner, the epoch counts at which trials report their scores: an int ``n`` is
        every ``n`` epochs, a list gives them; None is ``max_epochs`` // 8, // 4 and // 2.
        Counts at or above a trial's ``max_epochs`` are dropped.
    random_state : int, RandomState instance or None, default=None
        Seeds the default sampler; ignored when ``sampler`` or ``study`` is given.
    error_score : 'raise' or numeric, default=np.nan
        Score of a fit that fails; 'raise' raises the error. Such a trial is told ``FAIL``.
    return_train_score : bool, default=False
        Also score the training folds (in ``cv_results_``).
{_MAX_MEMBERS_DOC}
    Attributes
    ----------
    cv_results_ : dict of numpy (masked) ndarrays
        scikit-learn's ``cv_results_`` of the trials trained to the end (completed or failed, in
        trial order; pruned trials are in ``trials_``): ``params``, ``param_<name>``,
        ``split<k>_test_score``, ``mean_test_score``, ``std_test_score``, ``rank_test_score``,
        times, train scores, and ``trial_number`` (the trial's number in ``study_``).
    best_estimator_ : estimator
        The best candidate refitted on the whole data (when ``refit``).
    best_score_ : float
        Mean cross-validated score of the best candidate.
    best_params_ : dict
        Parameters of the best candidate.
    best_index_ : int
        Its row in ``cv_results_``.
    scorer_ : function or dict
        The scorer(s) used.
    n_splits_ : int
        Number of folds.
    refit_time_ : float
        Seconds the refit took.
    multimetric_ : bool
        Whether several metrics were scored.
    study_ : optuna.study.Study
        The study, with every trial (and, with a pruner, their intermediate scores).
    trials_ : list of optuna.trial.FrozenTrial
        The trials of this ``fit``: completed, failed and pruned. Their ``user_attrs`` hold
        ``mean_test_score`` / ``std_test_score`` (per metric) and, for sknn_tune networks,
        ``n_epochs``: the ``max_epochs`` the trial was trained to (fewer when pruned).
    n_trials_ : int
        Number of trials this ``fit`` ran.
{_ATTRIBUTE_DOC}
    See Also
    --------
    FusedRandomizedSearchCV : The same budget spent on random candidates, all in one batch.
    FusedHalvingRandomSearchCV : Successive halving over epochs, also continuing survivors.

    Notes
    -----
    ``optuna_integration.OptunaSearchCV`` also works on sknn_tune's estimators, one fit at a time,
    pruning through their ``partial_fit`` (one epoch per call).

    With ``lr_schedule='cosine'`` the schedule depends on ``max_epochs``, so a pruned search
    retrains such trials from scratch at each chunk of epochs instead of continuing them.

    The search is scikit-learn's ``BaseSearchCV.fit`` with an Optuna ``_run_search``: after the
    last batch, one scikit-learn evaluation pass over every finished trial fills ``cv_results_``
    (so failures are judged over the whole search, as in one grid search), and refit,
    multimetric scoring and callbacks are scikit-learn's. The trained members of finished trials
    wait for that pass: memory grows with ``n_trials`` x folds members (small for tabular
    networks); each batch is scored for the study by the same scikit-learn scoring code.

    Examples
    --------
    >>> from optuna.distributions import FloatDistribution
    >>> from sklearn.datasets import load_iris
    >>> from sknn_tune import FusedOptunaSearchCV, MLPClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> search = FusedOptunaSearchCV(
    ...     MLPClassifier((8,), max_epochs=10, random_state=0),
    ...     {{"lr": FloatDistribution(1e-3, 1e-1, log=True)}},
    ...     n_trials=6, batch_size=3, cv=3, random_state=0).fit(X, y)
    >>> search.n_trials_, len(search.cv_results_["params"]), search.n_member_epochs_
    (6, 6, 180)
    >>> sorted(search.best_params_)
    ['lr']
"""
