"""SGDLinearRegressor on arrays of other libraries, under array API dispatch.

Data of array-api-strict or PyTorch are fitted by the one-mini-batch-at-a-
time update in their own library, with the shuffling drawn by the
estimator's NumPy random state. Each fit is compared with the NumPy fit
that runs the same update (with momentum, NumPy also updates one
mini-batch at a time).
"""

import warnings

import numpy as np
import pytest
import sklearn
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.exceptions import ConvergenceWarning

from gdreg import SGDLinearRegressor

from .test_array_api import LIBRARIES, _data

# Both fits make the same updates in float64 (the iterates are float64 for
# float32 data too) from the same shuffling; only the summation order inside
# the products differs, about 1e-16 relative per operation. The steps keep
# every update a contraction, so these differences do not grow from update
# to update; a few thousand updates stay far below 1e-10 of the largest
# coefficient. Measured differences are about 1e-15.
FLOAT64_RTOL = 1e-10

# With float32 data the products of the objective (which drives the step
# schedule and the stopping rule) and the published coefficients are
# float32: each side rounds its float64 iterates to float32 (about 6e-8
# relative), and differently rounded objective values only matter if they
# fall within 1e-7 of a stopping threshold, which no seeded case here does.
# 1e-5 relative to the largest coefficient leaves room for a few roundings.
FLOAT32_RTOL = 1e-5

# Each case: estimator parameters, whether samples are weighted, and the
# number of targets. Ten epochs of 16-sample mini-batches keep the Python
# loop over mini-batches short; a fixed number of epochs is all the
# comparison needs.
CASES = {
    "plain": ({"momentum": 0.5}, False, None),
    "l1-average": (
        {"momentum": 0.3, "penalty": "l1", "alpha": 0.01, "average": True},
        True,
        None,
    ),
    "enet-2d": (
        {"momentum": 0.5, "penalty": "elasticnet", "alpha": 0.01, "batch_size": 4},
        False,
        2,
    ),
    "l2-invscaling-2d": (
        {"momentum": 0.2, "penalty": "l2", "alpha": 0.1, "learning_rate": "invscaling"},
        True,
        2,
    ),
}


@pytest.fixture(params=list(LIBRARIES))
def library(request):
    make, dtype_name = LIBRARIES[request.param]
    return (*make(dtype_name), dtype_name)


def _assert_close(actual, expected, dtype_name, scale):
    rtol = FLOAT64_RTOL if dtype_name == "float64" else FLOAT32_RTOL
    assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale)


def _check_outputs(model, predicted, X_xp, device):
    for array in (model.coef_, model.intercept_, predicted):
        assert type(array) is type(X_xp)
        assert array.device == device
        assert array.dtype == X_xp.dtype


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("case", list(CASES))
def test_fit_predict_in_input_namespace(rng, library, case):
    settings, weighted, n_targets = CASES[case]
    xp, device, to_xp, to_np, dtype_name = library
    X, y, weights = _data(rng, n_targets)
    X, y, weights = (a.astype(dtype_name) for a in (X, y, weights))
    sample_weight = weights if weighted else None
    params = {"batch_size": 16, "max_iter": 10, "random_state": 0, **settings}
    reference = SGDLinearRegressor(**params).fit(X, y, sample_weight=sample_weight)

    with sklearn.config_context(array_api_dispatch=True):
        X_xp, y_xp = to_xp(X), to_xp(y)
        weights_xp = None if sample_weight is None else to_xp(sample_weight)
        model = SGDLinearRegressor(**params).fit(X_xp, y_xp, sample_weight=weights_xp)
        predicted = model.predict(X_xp)

    _check_outputs(model, predicted, X_xp, device)
    assert model.n_iter_ == reference.n_iter_
    assert model.coef_.shape == reference.coef_.shape
    assert model.intercept_.shape == np.shape(reference.intercept_)
    coef_scale = np.max(np.abs(reference.coef_))
    _assert_close(to_np(model.coef_), reference.coef_, dtype_name, coef_scale)
    _assert_close(to_np(model.intercept_), reference.intercept_, dtype_name, np.std(y))
    _assert_close(to_np(predicted), reference.predict(X), dtype_name, np.std(y))
    _assert_close(model.loss_curve_, reference.loss_curve_, dtype_name, 0.0)


def test_fixed_step_matches_blocked_numpy_fit(rng, library):
    # Without momentum NumPy data go through the exact blocked updates, which
    # equal the mini-batch loop up to rounding.
    xp, device, to_xp, to_np, dtype_name = library
    X, y, _ = _data(rng)
    X, y = X.astype(dtype_name), y.astype(dtype_name)
    params = dict(
        learning_rate="constant", eta0=0.05, max_iter=8, batch_size=8, random_state=0
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reference = SGDLinearRegressor(**params).fit(X, y)
        with sklearn.config_context(array_api_dispatch=True):
            model = SGDLinearRegressor(**params).fit(to_xp(X), to_xp(y))
    assert model.n_iter_ == reference.n_iter_ == 8
    coef_scale = np.max(np.abs(reference.coef_))
    _assert_close(to_np(model.coef_), reference.coef_, dtype_name, coef_scale)


def test_partial_fit_in_input_namespace(rng, library):
    xp, device, to_xp, to_np, dtype_name = library
    X, y, weights = _data(rng, n_samples=150)
    X, y, weights = (a.astype(dtype_name) for a in (X, y, weights))
    reference = SGDLinearRegressor(momentum=0.5, random_state=0)
    model = SGDLinearRegressor(momentum=0.5, random_state=0)
    for rows in (slice(0, 50), slice(50, 100), slice(100, 150)):
        reference.partial_fit(X[rows], y[rows], sample_weight=weights[rows])
        with sklearn.config_context(array_api_dispatch=True):
            model.partial_fit(
                to_xp(X[rows]), to_xp(y[rows]), sample_weight=to_xp(weights[rows])
            )
    with sklearn.config_context(array_api_dispatch=True):
        X_xp = to_xp(X)
        predicted = model.predict(X_xp)

    _check_outputs(model, predicted, X_xp, device)
    assert model.t_ == reference.t_
    coef_scale = np.max(np.abs(reference.coef_))
    _assert_close(to_np(model.coef_), reference.coef_, dtype_name, coef_scale)
    _assert_close(to_np(predicted), reference.predict(X), dtype_name, np.std(y))


def test_early_stopping_and_warm_start_in_input_namespace(rng, library):
    xp, device, to_xp, to_np, dtype_name = library
    X, y, _ = _data(rng, n_samples=200)
    X, y = X.astype(dtype_name), y.astype(dtype_name)
    params = dict(
        momentum=0.5,
        batch_size=16,
        early_stopping=True,
        warm_start=True,
        random_state=0,
    )
    reference = SGDLinearRegressor(**params).fit(X, y).fit(X, y)
    with sklearn.config_context(array_api_dispatch=True):
        X_xp, y_xp = to_xp(X), to_xp(y)
        model = SGDLinearRegressor(**params).fit(X_xp, y_xp).fit(X_xp, y_xp)
        predicted = model.predict(X_xp)

    _check_outputs(model, predicted, X_xp, device)
    assert model.n_iter_ == reference.n_iter_
    _assert_close(
        model.validation_scores_, reference.validation_scores_, dtype_name, 1.0
    )
    coef_scale = np.max(np.abs(reference.coef_))
    _assert_close(to_np(model.coef_), reference.coef_, dtype_name, coef_scale)


def test_predict_refuses_another_namespace(rng, library):
    xp, device, to_xp, to_np, dtype_name = library
    X, y, _ = _data(rng)
    with sklearn.config_context(array_api_dispatch=True):
        model = SGDLinearRegressor(batch_size=16, random_state=0)
        model.fit(to_xp(X), to_xp(y))
        with pytest.raises(ValueError, match="must use the same namespace"):
            model.predict(X)


def test_partial_fit_refuses_another_library(rng, library):
    xp, device, to_xp, to_np, dtype_name = library
    X, y, _ = _data(rng, n_samples=60)
    model = SGDLinearRegressor(random_state=0).partial_fit(X[:30], y[:30])
    coef = model.coef_.copy()
    with sklearn.config_context(array_api_dispatch=True):
        with pytest.raises(ValueError, match="pass every partial_fit call data of"):
            model.partial_fit(to_xp(X[30:]), to_xp(y[30:]))
        assert_array_equal(model.coef_, coef)
        other = SGDLinearRegressor(random_state=0)
        other.partial_fit(to_xp(X[:30]), to_xp(y[:30]))
        with pytest.raises(ValueError, match="was fitted on arrays of"):
            other.partial_fit(X[30:], y[30:])


@pytest.mark.parametrize("settings", [{}, {"penalty": "l1", "alpha": 0.01}])
def test_numpy_input_unchanged_by_dispatch(rng, settings):
    # NumPy data keep the blocked kernels and whitening under dispatch.
    X, y, weights = _data(rng)
    X[:, 3] += 5 * X[:, 0]
    reference = SGDLinearRegressor(random_state=0, **settings).fit(X, y, weights)
    with sklearn.config_context(array_api_dispatch=True):
        model = SGDLinearRegressor(random_state=0, **settings).fit(X, y, weights)
    assert isinstance(model.coef_, np.ndarray)
    assert_array_equal(model.coef_, reference.coef_)
    assert model.intercept_ == reference.intercept_


def test_without_dispatch_results_are_numpy(rng):
    torch = pytest.importorskip(
        "torch", reason="PyTorch is an optional extra: pip install gdreg[arrays]"
    )
    assert SGDLinearRegressor().__sklearn_tags__().array_api_support
    X, y, _ = _data(rng)
    reference = SGDLinearRegressor(random_state=0).fit(X, y)
    model = SGDLinearRegressor(random_state=0).fit(torch.asarray(X), torch.asarray(y))
    assert isinstance(model.coef_, np.ndarray)
    assert_array_equal(model.coef_, reference.coef_)
