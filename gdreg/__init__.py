"""Linear regression trained by gradient descent, as scikit-learn estimators."""

from ._gd import GDLinearRegressor

__version__ = "0.1.0"

__all__ = ["GDLinearRegressor", "__version__"]
