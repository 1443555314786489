"""scikit-learn's estimator checks, run on every public estimator."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from gdreg import GDLinearRegressor

ESTIMATORS = [
    GDLinearRegressor(),
    GDLinearRegressor(penalty="elasticnet", alpha=0.01),
]


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
