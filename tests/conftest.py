"""Seeded data shared by the tests."""

import os

# SciPy reads this once, at its first import: set it before anything imports
# SciPy, so that scikit-learn's array API estimator checks run instead of
# being skipped.
os.environ.setdefault("SCIPY_ARRAY_API", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

# Property tests run a bounded number of examples by default, so the suite
# stays fast in CI; HYPOTHESIS_PROFILE=fuzz runs many more, on demand.
settings.register_profile("ci", max_examples=25, deadline=None)
settings.register_profile("fuzz", max_examples=2000, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def make_regression_data(rng, n_samples=200, n_features=6, scales=None, noise=0.1):
    """Linear data with known coefficients; ``scales`` multiplies the columns."""
    X = rng.standard_normal((n_samples, n_features))
    if scales is not None:
        X = X * scales
    coef = rng.standard_normal(n_features)
    if scales is not None:
        coef = coef / scales
    y = X @ coef + 0.5 + noise * rng.standard_normal(n_samples)
    return X, y


@pytest.fixture
def regression_data(rng):
    return make_regression_data(rng)


@pytest.fixture
def badly_scaled_data(rng):
    """Feature scales from 1e-4 to 1e4 and non-zero means."""
    scales = np.logspace(-4, 4, 6)
    X, y = make_regression_data(rng, scales=scales)
    return X + 3 * scales, y
