"""With scikit-learn's metadata routing enabled, sample weights requested by the network of a
pipeline reach the fused members: the search still fuses, with GridSearchCV's results."""

import numpy as np
import sklearn
from sklearn.datasets import load_iris
from sklearn.metrics import accuracy_score, make_scorer
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from test_search import assert_same_search

from sknn_tune import FusedGridSearchCV, MLPClassifier

X, Y = load_iris(return_X_y=True)
WEIGHT = np.random.RandomState(0).uniform(0.2, 3.0, len(Y))
GRID = {"mlpclassifier__lr": [1e-3, 1e-2]}


def _searches(scaler_requests_weight):
    with sklearn.config_context(enable_metadata_routing=True):
        network = MLPClassifier((8,), max_epochs=3, patience=None, random_state=0)
        pipe = make_pipeline(
            StandardScaler().set_fit_request(sample_weight=scaler_requests_weight),
            network.set_fit_request(sample_weight=True))
        scorer = make_scorer(accuracy_score).set_score_request(sample_weight=True)
        fused = FusedGridSearchCV(pipe, GRID, cv=3, scoring=scorer).fit(X, Y, sample_weight=WEIGHT)
        ref = GridSearchCV(pipe, GRID, cv=3, scoring=scorer).fit(X, Y, sample_weight=WEIGHT)
    return fused, ref


def test_routed_sample_weight_fuses(trained):
    fused, ref = _searches(scaler_requests_weight=False)
    assert_same_search(fused, ref, X)
    assert trained.fused() == 6  # 2 candidates x 3 folds, trained fused
    # The weights were used: without them the scores differ.
    unweighted = GridSearchCV(make_pipeline(StandardScaler(), MLPClassifier(
        (8,), max_epochs=3, patience=None, random_state=0)), GRID, cv=3).fit(X, Y)
    assert not np.allclose(unweighted.cv_results_["mean_test_score"],
                           fused.cv_results_["mean_test_score"])


def test_weights_routed_to_an_earlier_step_train_sequentially(trained):
    # The scaler fits on weighted rows too: fusion (which fits prefixes unweighted) steps aside.
    fused, ref = _searches(scaler_requests_weight=True)
    assert_same_search(fused, ref, X)
    assert trained.fused() == 0
