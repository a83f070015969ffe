"""sknn_tune: PyTorch multilayer perceptrons as scikit-learn estimators, with fused search."""

from ._persistence import load, save
from ._self_tuning import MLPClassifierCV, MLPRegressorCV, default_space
from ._version import __version__ as __version__
from .classifier import MLPClassifier
from .exceptions import DivergenceError
from .plotting import plot_histories, plot_history, plot_search_results
from .regressor import MLPRegressor
from .search import (
    FusedGridSearchCV,
    FusedHalvingGridSearchCV,
    FusedHalvingRandomSearchCV,
    FusedOptunaSearchCV,
    FusedRandomizedSearchCV,
)

__all__ = [
    "DivergenceError",
    "FusedGridSearchCV",
    "FusedHalvingGridSearchCV",
    "FusedHalvingRandomSearchCV",
    "FusedOptunaSearchCV",
    "FusedRandomizedSearchCV",
    "MLPClassifier",
    "MLPClassifierCV",
    "MLPRegressor",
    "MLPRegressorCV",
    "default_space",
    "load",
    "plot_histories",
    "plot_history",
    "plot_search_results",
    "save",
]
