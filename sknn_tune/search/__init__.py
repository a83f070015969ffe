"""Fused hyperparameter search: scikit-learn's searches, all candidates x folds trained at once."""

from ._classes import (
    FusedGridSearchCV,
    FusedHalvingGridSearchCV,
    FusedHalvingRandomSearchCV,
    FusedRandomizedSearchCV,
)

__all__ = [
    "FusedGridSearchCV",
    "FusedHalvingGridSearchCV",
    "FusedHalvingRandomSearchCV",
    "FusedRandomizedSearchCV",
]
