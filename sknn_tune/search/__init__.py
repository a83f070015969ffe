"""Fused hyperparameter search: scikit-learn's searches, all candidates x folds trained at once."""

from ._classes import (
    FusedGridSearchCV,
    FusedHalvingGridSearchCV,
    FusedHalvingRandomSearchCV,
    FusedRandomizedSearchCV,
)
from ._optuna import FusedOptunaSearchCV

__all__ = [
    "FusedGridSearchCV",
    "FusedHalvingGridSearchCV",
    "FusedHalvingRandomSearchCV",
    "FusedOptunaSearchCV",
    "FusedRandomizedSearchCV",
]
