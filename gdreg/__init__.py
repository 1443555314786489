"""Linear regression trained by gradient descent, as scikit-learn estimators."""

from ._gd import GDLinearRegressor
from ._plot import LossCurveDisplay
from ._sgd import SGDLinearRegressor

__version__ = "0.1.0"

__all__ = [
    "GDLinearRegressor",
    "LossCurveDisplay",
    "SGDLinearRegressor",
    "__version__",
]
