"""MLPClassifierCV and MLPRegressorCV: networks that choose their own hyperparameters in ``fit``.

``fit`` runs the tuning tutorials' recipe with the fused searches: a coarse random search over a
wide space (:func:`default_space`) by successive halving with epochs as the resource
(:class:`~sknn_tune.FusedHalvingRandomSearchCV`: many candidates get a few epochs, the best get
more), then a fine stage that samples around the best candidates (narrower log-ranges,
neighbouring widths), by successive halving too (:class:`~sknn_tune.FusedHalvingGridSearchCV`
over the sampled candidates), then a refit of the best on all the data. The estimator is scikit-learn's
*CV-estimator* pattern (``LogisticRegressionCV``, ``RidgeCV``): usable anywhere an estimator is.
"""

import math
import warnings
from numbers import Integral

import numpy as np
import pandas as pd
from scipy.stats import loguniform, uniform
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from ._fit_protocol import INPUT_DTYPES
from ._sklearn_compat import HasMethods, Interval, StrOptions, _fit_context
from .classifier import MLPClassifier
from .regressor import MLPRegressor
from .search import FusedHalvingGridSearchCV, FusedHalvingRandomSearchCV

__all__ = ["MLPClassifierCV", "MLPRegressorCV", "default_space"]

HALVING_FACTOR = 3  # candidates kept per round: 1 / 3, each with 3 times the epochs
FINE_LOG_SPAN = 3.0  # the fine stage samples a log parameter within best / 3 ... best * 3
FINE_DROPOUT_SPAN = 0.1
FINE_SEEDS = 3  # the fine stage samples around this many of the coarse stage's best
MIN_WIDTH, MAX_WIDTH = 8, 1024
# max_epochs='auto': epochs by training rows (up to the first bound, 81; ...), about the same
# number of optimizer steps at every size; powers of HALVING_FACTOR, so that halving 27
# candidates starts at a whole number of epochs
AUTO_EPOCHS = ((2000, 81), (20000, 27), (math.inf, 9))
LOG_PARAMETERS = ("lr", "weight_decay")
# the parameters default_space searches, whatever the data
SPACE_PARAMETERS = ("hidden_layer_sizes", "activation", "dropout", "batch_norm", "optimizer",
                    "lr", "weight_decay", "batch_size")


def _auto_epochs(n_train):
    """The budget ``max_epochs='auto'`` gives a fold of ``n_train`` training rows."""
    return next(epochs for rows, epochs in AUTO_EPOCHS if n_train <= rows)


def _widths(n_samples):
    """Hidden widths worth trying on ``n_samples`` rows: wider networks need more data."""
    largest = 128 if n_samples < 10000 else 256 if n_samples < 100000 else 512
    return [w for w in (32, 64, 128, 256, 512) if w <= largest]


def _structures(widths):
    """Depth 1 to 3: constant widths, and funnels that halve layer by layer."""
    shapes = {(w,) * depth for w in widths for depth in (1, 2, 3)}
    shapes |= {tuple(w // 2**i for i in range(depth)) for w in widths for depth in (2, 3)
               if w // 2 ** (depth - 1) >= 16}
    return sorted(shapes, key=lambda s: (len(s), s))


def default_space(n_samples, n_features=None):
    """The built-in search space of :class:`MLPClassifierCV` and :class:`MLPRegressorCV`.

    A list of two spaces, each sampled with equal probability by scikit-learn's
    :class:`~sklearn.model_selection.ParameterSampler`: stochastic training (Adam, AdamW, SGD
    with momentum; dropout, batch normalisation, batch size) and, on up to 2000 rows, full-batch
    L-BFGS (scikit-learn's choice for small data), which takes no dropout or batch
    normalisation. Both draw the structure (depth 1 to 3 of widths up to 128 below 10000 rows,
    256 below 100000, 512 above, constant or funnel-shaped), the activation, and log-uniform
    learning rate and L2 weight decay. Batch sizes grow with the data.

    Parameters
    ----------
    n_samples : int
        Training rows (of one cross-validation fold).
    n_features : int, default=None
        Input features (unused; the space may depend on it in a later version).

    Returns
    -------
    space : list of dict
        ``param_distributions`` for a search over :class:`~sknn_tune.MLPClassifier` or
        :class:`~sknn_tune.MLPRegressor`.
    """
    structures = _structures(_widths(n_samples))
    batches = ([16, 32, 64] if n_samples < 1000 else [32, 64, 128, 256] if n_samples < 50000
               else [128, 256, 512, 1024])
    shared = {"hidden_layer_sizes": structures, "activation": ["relu", "tanh", "elu", "gelu"],
              "weight_decay": loguniform(1e-7, 1e-2)}
    stochastic = {**shared, "optimizer": ["adam", "adamw", "momentum"],
                  "lr": loguniform(1e-4, 3e-2), "dropout": uniform(0.0, 0.5),
                  "batch_norm": [False, True], "batch_size": batches}
    if n_samples > 2000:
        return [stochastic]
    full_batch = {**shared, "optimizer": ["lbfgs"], "dropout": [0.0], "batch_norm": [False]}
    return [stochastic, full_batch]


def _neighbours(params, n, rng, max_width=MAX_WIDTH):
    """``n`` candidates around ``params``: log parameters within a factor of FINE_LOG_SPAN,
    dropout within FINE_DROPOUT_SPAN, each width halved, kept or doubled (up to ``max_width``);
    the rest as is."""
    out = []
    for _ in range(n):
        new = dict(params)
        for name in LOG_PARAMETERS:
            if isinstance(new.get(name), float) and new[name] > 0:
                new[name] = float(new[name] * FINE_LOG_SPAN ** rng.uniform(-1, 1))
        if isinstance(new.get("dropout"), float) and new["dropout"] > 0:
            new["dropout"] = float(np.clip(new["dropout"] + rng.uniform(-1, 1)
                                           * FINE_DROPOUT_SPAN, 0.0, 0.6))
        if isinstance(new.get("hidden_layer_sizes"), tuple):
            new["hidden_layer_sizes"] = tuple(
                int(np.clip(w * 2.0 ** rng.integers(-1, 2), MIN_WIDTH, max(w, max_width)))
                for w in new["hidden_layer_sizes"])
        out.append(new)
    return out


class _BaseMLPCV(BaseEstimator):
    _parameter_constraints: dict = {
        "estimator": [HasMethods(["fit", "predict"]), None],
        "param_distributions": [dict, list, None],
        "n_iter": [Interval(Integral, 1, None, closed="left")],
        "n_fine": [Interval(Integral, 0, None, closed="left"), None],
        "cv": ["cv_object"],
        "scoring": [str, callable, None],
        "refit": ["boolean"],
        "max_epochs": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "n_jobs": [Integral, None],
        "random_state": ["random_state"],
        "device": [str, None],
        "verbose": ["verbose"],
    }

    def __init__(self, estimator=None, *, param_distributions=None, n_iter=27, n_fine=None,
                 cv=5, scoring=None, refit=True, max_epochs="auto", n_jobs=None, random_state=None,
                 device="auto", verbose=0):
        self.estimator = estimator
        self.param_distributions = param_distributions
        self.n_iter = n_iter
        self.n_fine = n_fine
        self.cv = cv
        self.scoring = scoring
        self.refit = refit
        self.max_epochs = max_epochs
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.device = device
        self.verbose = verbose

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    @_fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y, sample_weight=None):
        """Search the hyperparameters by cross-validation, then refit the best on all the data.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Per-sample weights, passed to every fit.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        # validated once here (features and their names are this estimator's); the searches
        # and the refit see the arrays
        X, y = validate_data(self, X, y, accept_sparse=["csr", "csc"],
                             dtype=list(INPUT_DTYPES), multi_output=True,
                             y_numeric=not is_classifier(self))
        rng = np.random.default_rng(check_random_state(self.random_state).randint(2**31))
        n_train = math.ceil(X.shape[0] * (1 - 1 / self._n_splits()))
        self.max_epochs_ = (_auto_epochs(n_train) if self.max_epochs == "auto"
                            else self.max_epochs)
        template = self._template(rng)
        space = (default_space(n_train, X.shape[1]) if self.param_distributions is None
                 else self.param_distributions)
        fit_params = {} if sample_weight is None else {"sample_weight": sample_weight}
        coarse = self._coarse_stage(template, space, rng, X, y, fit_params)
        # the fine stage widens networks up to the built-in space's widest
        max_width = _widths(n_train)[-1] if self.param_distributions is None else MAX_WIDTH
        fine = self._fine_stage(template, coarse, rng, X, y, fit_params, max_width)
        self.cv_results_ = _joined_results(coarse, fine, template.epochs_parameter)
        # the best at the largest budget (the fine stage's, max_epochs)
        budget = self.cv_results_["n_resources"]
        self.best_index_ = int(np.argmax(np.where(
            budget == budget.max(),
            np.nan_to_num(self.cv_results_["mean_test_score"], nan=-np.inf), -np.inf)))
        self.best_params_ = self.cv_results_["params"][self.best_index_]
        self.best_score_ = float(self.cv_results_["mean_test_score"][self.best_index_])
        self.n_member_epochs_ = (getattr(coarse, "n_member_epochs_", 0)
                                 + getattr(fine, "n_member_epochs_", 0))
        if self.refit:
            self.best_estimator_ = clone(template).set_params(**self.best_params_)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                self.best_estimator_.fit(X, y, **fit_params)
            if is_classifier(self):
                self.classes_ = self.best_estimator_.classes_
        elif is_classifier(self):
            self.classes_ = np.unique(y)
        return self

    def _n_splits(self):
        return self.cv if isinstance(self.cv, Integral) else getattr(self.cv, "n_splits", 5)

    def _template(self, rng):
        base = self._default_estimator() if self.estimator is None else clone(self.estimator)
        params = {base.epochs_parameter: self.max_epochs_}
        names = base.get_params(deep=False)
        if "device" in names:
            params["device"] = self.device
        if "random_state" in names and base.get_params()["random_state"] is None:
            params["random_state"] = int(rng.integers(2**31))
        return base.set_params(**params)

    def _search_options(self):
        return {"cv": self.cv, "scoring": self.scoring, "refit": False, "n_jobs": self.n_jobs,
                "return_train_score": False, "error_score": np.nan}

    def _halving(self, template, space, n_candidates, search_class, random_state):
        """Successive halving of ``n_candidates`` over epochs, ending at ``max_epochs``."""
        # scikit-learn's halving runs 1 + floor(log_factor(n_candidates)) rounds: the first
        # gets max_epochs / factor ** (rounds - 1) epochs, so that the last gets max_epochs
        rounds = 0
        while HALVING_FACTOR ** (rounds + 1) <= n_candidates:
            rounds += 1
        min_epochs = max(1, self.max_epochs_ // HALVING_FACTOR ** rounds)
        options = {"factor": HALVING_FACTOR, "resource": template.epochs_parameter,
                   "min_resources": min_epochs, "max_resources": self.max_epochs_,
                   **self._search_options()}
        if search_class is FusedHalvingRandomSearchCV:
            return search_class(template, space, n_candidates=n_candidates,
                                random_state=random_state, **options)
        return search_class(template, space, **options)

    def _coarse_stage(self, template, space, rng, X, y, fit_params):
        search = self._halving(template, space, self.n_iter, FusedHalvingRandomSearchCV,
                               int(rng.integers(2**31)))
        min_epochs = search.min_resources
        if self.verbose:
            print(f"{type(self).__name__}: coarse stage, {self.n_iter} candidates from "
                  f"{min_epochs} to {self.max_epochs_} epochs")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            search.fit(X, y, **fit_params)
        return search

    def _fine_stage(self, template, coarse, rng, X, y, fit_params, max_width):
        n_fine = max(1, self.n_iter // 3) if self.n_fine is None else self.n_fine
        if n_fine == 0:
            return None
        results = coarse.cv_results_
        resource = template.epochs_parameter
        # The best candidates by how far they got, then by score: the winner of the last
        # round, then the best of those the round before dropped, ...
        scores = np.nan_to_num(np.asarray(results["mean_test_score"], dtype=float), nan=-np.inf)
        order = np.lexsort((-scores, -np.asarray(results["iter"])))
        seeds = []
        for i in order:
            seed = {k: v for k, v in results["params"][i].items() if k != resource}
            if np.isfinite(scores[i]) and seed not in seeds and len(seeds) < FINE_SEEDS:
                seeds.append(seed)
        if not seeds:
            return None
        per_seed = [n_fine // len(seeds) + (i < n_fine % len(seeds)) for i in range(len(seeds))]
        candidates = [c for seed, n in zip(seeds, per_seed) for c in _neighbours(seed, n, rng, max_width)]
        if np.max(results["n_resources"]) < self.max_epochs_:
            candidates = seeds[:1] + candidates  # the coarse best, at the full budget too
        grid = [{name: [value] for name, value in c.items()} for c in candidates]
        search = self._halving(template, grid, len(candidates), FusedHalvingGridSearchCV,
                               None)
        if self.verbose:
            print(f"{type(self).__name__}: fine stage, {len(candidates)} candidates around the "
                  f"best {len(seeds)}, up to {self.max_epochs_} epochs")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            search.fit(X, y, **fit_params)
        return search

    # ------------------------------------------------------------------------------------------
    # the refit estimator

    def _best(self):
        check_is_fitted(self, "best_estimator_")
        return self.best_estimator_

    def _checked(self, X):
        return validate_data(self, X, reset=False, accept_sparse=["csr", "csc"],
                             dtype=list(INPUT_DTYPES))

    def predict(self, X):
        """Predict with the refit best estimator.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            Predictions of ``best_estimator_``.
        """
        return self._best().predict(self._checked(X))

    @property
    def history_(self):
        """The refit's ``history_``: one row per epoch of ``best_estimator_``."""
        return self._best().history_

    def summary(self):
        """The search and the chosen network, as text.

        Returns
        -------
        summary : str
            Candidates and member-epochs per stage, the best parameters and score, and the
            refit network's layer table.
        """
        check_is_fitted(self, "cv_results_")
        stages = pd.Series(self.cv_results_["stage"]).value_counts()
        lines = [f"{type(self).__name__}: {stages.get('coarse', 0)} coarse and "
                 f"{stages.get('fine', 0)} fine candidate evaluations, "
                 f"{self.n_member_epochs_} member-epochs",
                 f"best {self.best_score_:.4f} with {self.best_params_}"]
        if hasattr(self, "best_estimator_"):
            lines.append(self.best_estimator_.summary())
        return "\n".join(lines)


def _joined_results(coarse, fine, resource):
    """Both stages' ``cv_results_`` in one table: a ``stage`` column, the coarse rounds'
    ``iter`` and ``n_resources`` (the fine stage's rounds numbered after the coarse ones), the
    candidates' parameters without the epoch resource, ranks over both."""
    frames = []
    for stage, search in (("coarse", coarse), ("fine", fine)):
        if search is None:
            continue
        frame = pd.DataFrame(search.cv_results_)
        frame["stage"] = stage
        frame["params"] = [{k: v for k, v in p.items() if k != resource} for p in frame["params"]]
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True)
    fine_rows = table["stage"] == "fine"
    if fine_rows.any():  # the fine stage's rounds follow the coarse stage's
        table.loc[fine_rows, "iter"] += table.loc[~fine_rows, "iter"].max() + 1
    table = table.drop(columns=[c for c in (f"param_{resource}", "rank_test_score")
                                if c in table])
    scores = table["mean_test_score"].fillna(-np.inf)
    table["rank_test_score"] = scores.rank(method="min", ascending=False).astype(np.int32)
    results = {}
    for column in table.columns:
        values = table[column].to_numpy()
        if column.startswith("param_"):
            objects = np.empty(len(table), dtype=object)  # tuples stay items, not rows
            for i, value in enumerate(table[column]):
                objects[i] = value
            values = np.ma.MaskedArray(objects, mask=table[column].isna().to_numpy())
        elif column in ("iter", "n_resources"):
            values = values.astype(np.int64)
        results[column] = values
    results["params"] = list(table["params"])
    return results


class MLPClassifierCV(ClassifierMixin, _BaseMLPCV):
    def _default_estimator(self):
        return MLPClassifier()

    def predict_proba(self, X):
        """Class probabilities of the refit best estimator.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Probability of each class in ``classes_`` order.
        """
        return self._best().predict_proba(self._checked(X))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressorCV(RegressorMixin, _BaseMLPCV):
    def _default_estimator(self):
        return MLPRegressor()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


_PARAMETERS_DOC = """\
    estimator : estimator, default=None
        The network to tune: its parameters are the fixed ones, the search sets the others.
        None: ``{default}()`` with its defaults. An estimator (rather than every MLP parameter
        repeated here) keeps one place for the network's parameters, as scikit-learn's
        meta-estimators do. It may be a ``sknn_tune.neural_network`` estimator with
        ``param_distributions`` in scikit-learn's names. Its epoch parameter and ``device`` are
        set from ``max_epochs`` and ``device``, and an unset ``random_state`` from this one's.
    param_distributions : dict or list of dict, default=None
        What to search, as for :class:`~sklearn.model_selection.RandomizedSearchCV`; None: the
        built-in space, :func:`default_space` of the data.
    n_iter : int, default=27
        Candidates of the coarse stage: successive halving keeps a third of them each round
        (with three times the epochs), from ``max_epochs / 3**k`` epochs up to ``max_epochs``.
    n_fine : int, default=None
        Candidates of the fine stage, sampled around the coarse stage's best three (learning
        rate and weight decay within a factor of 3, dropout within 0.1, each width halved,
        kept or doubled) and halved over epochs up to ``max_epochs`` as the coarse stage.
        None: ``n_iter // 3``; 0: no fine stage.
    cv : int, cross-validation generator or iterable, default=5
        As for scikit-learn's searches (stratified for classifiers).
    scoring : str or callable, default=None
        As for scikit-learn's searches; None: the estimator's ``score``.
    refit : bool, default=True
        Refit the best candidate on all the data (``best_estimator_``), for ``predict``.
    max_epochs : int or 'auto', default='auto'
        The budget: the epochs of the final rounds and of the refit. 'auto': by the training
        rows of one fold, 81 epochs up to 2000 rows, 27 up to 20000, 9 above (about the same
        number of optimizer steps: larger data needs fewer passes).
    n_jobs : int, default=None
        Cores for the fused searches (see :class:`~sknn_tune.FusedGridSearchCV`).
    random_state : int, RandomState instance or None, default=None
        The candidates' draws and the networks' seeds.
    device : str, default='auto'
        Where the networks train.
    verbose : int, default=0
        Print each stage.
"""

_ATTRIBUTES_DOC = """\
    cv_results_ : dict of ndarray
        Both stages, one row per candidate and round, with scikit-learn's search columns, a
        ``stage`` column (``'coarse'`` or ``'fine'``), ``iter`` and ``n_resources`` (the epochs
        of each round; the fine stage's rounds follow the coarse stage's).
    best_index_ : int
        The row of ``cv_results_`` with the best mean test score at ``max_epochs``.
    best_params_ : dict
        Its parameters.
    best_score_ : float
        Its mean cross-validated score.
    best_estimator_ : estimator
        The best candidate refit on all the data (``refit=True``).
    max_epochs_ : int
        The budget used: ``max_epochs``, or the one 'auto' chose.
    n_member_epochs_ : int
        Epochs trained by all the searches' fits.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during fit (only when X has string column names).
"""

MLPClassifierCV.__doc__ = f"""A multilayer perceptron classifier that tunes itself by cross-validation.

    ``fit`` searches the hyperparameters in two fused stages (a coarse random search by
    successive halving over epochs, then a fine search around the best) and refits the best
    network on all the data, as ``LogisticRegressionCV`` chooses its regularisation.

    Parameters
    ----------
{_PARAMETERS_DOC.format(default="MLPClassifier")}
    Attributes
    ----------
{_ATTRIBUTES_DOC}    classes_ : ndarray of shape (n_classes,)
        The class labels.

    See Also
    --------
    default_space : The built-in search space.
    MLPRegressorCV : The regressor.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sknn_tune import MLPClassifierCV
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = MLPClassifierCV(n_iter=3, n_fine=2, cv=3, max_epochs=9, random_state=0).fit(X, y)
    >>> sorted(set(clf.cv_results_["stage"]))
    ['coarse', 'fine']
    >>> clf.predict(X[:3]).shape
    (3,)
    """

MLPRegressorCV.__doc__ = f"""A multilayer perceptron regressor that tunes itself by cross-validation.

    See :class:`MLPClassifierCV`.

    Parameters
    ----------
{_PARAMETERS_DOC.format(default="MLPRegressor")}
    Attributes
    ----------
{_ATTRIBUTES_DOC}
    See Also
    --------
    default_space : The built-in search space.
    MLPClassifierCV : The classifier.

    Examples
    --------
    >>> from sklearn.datasets import load_diabetes
    >>> from sknn_tune import MLPRegressorCV
    >>> X, y = load_diabetes(return_X_y=True)
    >>> reg = MLPRegressorCV(n_iter=3, n_fine=2, cv=3, max_epochs=9, random_state=0).fit(X, y)
    >>> reg.best_estimator_.max_epochs
    9
    """
