"""scikit-learn's own estimator checks: every one must pass, with no expected failures."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from sknn_tune import MLPClassifier, MLPRegressor


@parametrize_with_checks([MLPClassifier(), MLPRegressor()])
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
