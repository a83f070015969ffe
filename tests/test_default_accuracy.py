"""Default accuracy (issue 12.9): behind a StandardScaler, our default MLPs cross-validate at least
as well as scikit-learn's default MLPs, up to a small noise margin, on small bundled/generated sets.

The full comparison over 11 data sets and 3 seeds is ``benchmarks/bench_accuracy.py``; these are
its cheapest sets where the former defaults (He-uniform weights, zero biases) fell short.
"""

import warnings

import pytest
from sklearn import datasets
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from sklearn.neural_network import MLPRegressor as SkMLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sknn_tune import MLPClassifier, MLPRegressor

# Seed noise of one seed's 3-fold mean on these sets; the former defaults fell short by 0.047
# (iris) and 0.046 (friedman1), the present ones by 0.013 and 0.017 (3-seed 5-fold means in the
# benchmark: +0.000 and +0.002).
MARGIN = 0.025


def _friedman1():
    return datasets.make_friedman1(n_samples=400, n_features=10, noise=1.0, random_state=0)


CASES = {
    "iris": (lambda: datasets.load_iris(return_X_y=True), SkMLPClassifier, MLPClassifier,
             StratifiedKFold),
    "friedman1": (_friedman1, SkMLPRegressor, MLPRegressor, KFold),
}


def default_cv_scores(case, ours_params=None):
    load, sk_cls, our_cls, cv_cls = CASES[case]
    X, y = load()
    cv = cv_cls(n_splits=3, shuffle=True, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        theirs = cross_val_score(make_pipeline(StandardScaler(), sk_cls(random_state=0)), X, y,
                                 cv=cv).mean()
        ours = cross_val_score(
            make_pipeline(StandardScaler(),
                          our_cls(device="cpu", random_state=0, **(ours_params or {}))),
            X, y, cv=cv).mean()
    return ours, theirs


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
def test_default_cv_score_at_least_sklearns(case):
    ours, theirs = default_cv_scores(case)
    assert ours >= theirs - MARGIN, (ours, theirs)
