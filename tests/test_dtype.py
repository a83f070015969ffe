"""The dtype hyperparameter: the network's floating-point type, whatever the input's."""

import numpy as np
import pytest
import torch
from conftest import assert_same_training
from sklearn.datasets import make_classification
from sklearn.model_selection import GridSearchCV

from sknn_tune import FusedGridSearchCV, MLPClassifier, MLPRegressor

X, Y = make_classification(120, 5, n_informative=3, n_redundant=0, n_classes=3, random_state=0)


def clf(**params):
    return MLPClassifier(**{"hidden_layer_sizes": (8,), "max_epochs": 3, "batch_size": 32,
                            "random_state": 0, "device": "cpu", **params})


@pytest.mark.parametrize("dtype, input_dtype, expected", [
    (None, np.float64, torch.float32), (None, np.float32, torch.float32),
    ("float32", np.float64, torch.float32), ("float64", np.float32, torch.float64)])
def test_dtype_chooses_the_network_type(dtype, input_dtype, expected):
    est = clf(dtype=dtype).fit(X.astype(input_dtype), Y)
    assert est.model_.params.dtype == expected
    reference = clf().fit(X, Y).predict_proba(X)
    np.testing.assert_allclose(est.predict_proba(X), reference, atol=1e-4)


def test_regressor_takes_dtype_and_rejects_others():
    y = X[:, 0] * 2.0
    assert MLPRegressor((4,), max_epochs=2, dtype="float32").fit(X, y).model_.params.dtype == (
        torch.float32)
    with pytest.raises(ValueError, match="dtype"):
        MLPRegressor(dtype="float16").fit(X, y)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fused_equals_sequential_in_both_dtypes(dtype):
    grid = {"lr": [1e-3, 1e-2], "dropout": [0.0, 0.2]}
    fused = FusedGridSearchCV(clf(dtype=dtype), grid, cv=3).fit(X, Y)
    ref = GridSearchCV(clf(dtype=dtype), grid, cv=3).fit(X, Y)
    for key in ("mean_test_score", "split0_test_score", "split2_test_score"):
        assert_same_training(fused.cv_results_[key], ref.cv_results_[key], err_msg=key)
    assert fused.best_estimator_.model_.params.dtype == getattr(torch, dtype)
