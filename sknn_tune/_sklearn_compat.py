"""Every private scikit-learn name sknn_tune uses, in one place.

scikit-learn's own estimators and searches are built on these helpers, and an estimator that
behaves exactly like theirs needs the same ones: parameter validation (``_fit_context``,
``_param_validation``), sample-weight checks, the fold split of a meta-estimator (``_safe_split``),
fit-parameter indexing (``_check_method_params``) and the per-fit scoring of a search
(``_fit_and_score``) the draws of
bagging and of learning curves (``_generate_bagging_indices``, ``_translate_train_sizes``), and
the base class of the searches (``BaseSearchCV``, whose
``_run_search`` is scikit-learn's documented hook for new searches). They are private, so a
scikit-learn release may move or change them: import them from here and nowhere else, so that
a move is one edit and the tests say which one broke. Tested with scikit-learn 1.9 (pyproject's lower bound).
"""

from sklearn.base import _fit_context
from sklearn.ensemble._bagging import MAX_INT, _generate_bagging_indices
from sklearn.ensemble._bootstrap import _get_n_samples_bootstrap
from sklearn.model_selection._search import BaseSearchCV
from sklearn.model_selection._validation import _fit_and_score, _translate_train_sizes
from sklearn.neural_network import MLPClassifier as _SklearnMLPClassifier
from sklearn.neural_network import MLPRegressor as _SklearnMLPRegressor
from sklearn.utils import _safe_indexing
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.metaestimators import _safe_split
from sklearn.utils.multiclass import _check_partial_fit_first_call
from sklearn.utils.validation import _check_method_params, _check_sample_weight

# scikit-learn's MLP parameter validation, which sknn_tune.neural_network's classes take as theirs
MLP_CLASSIFIER_CONSTRAINTS = _SklearnMLPClassifier._parameter_constraints
MLP_REGRESSOR_CONSTRAINTS = _SklearnMLPRegressor._parameter_constraints

__all__ = [
    "MAX_INT",
    "MLP_CLASSIFIER_CONSTRAINTS",
    "MLP_REGRESSOR_CONSTRAINTS",
    "BaseSearchCV",
    "HasMethods",
    "Interval",
    "StrOptions",
    "_check_method_params",
    "_check_partial_fit_first_call",
    "_check_sample_weight",
    "_fit_and_score",
    "_fit_context",
    "_generate_bagging_indices",
    "_get_n_samples_bootstrap",
    "_safe_indexing",
    "_safe_split",
    "_translate_train_sizes",
]
