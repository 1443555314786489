"""GDLinearRegressor on arrays of other libraries, under array API dispatch.

Each fit on array-api-strict or PyTorch data is compared with the same fit
on NumPy data: the namespace and device of the input must be kept, and the
values must agree to what the floating-point type allows.
"""

import numpy as np
import pytest
import sklearn
from numpy.testing import assert_allclose

from gdreg import GDLinearRegressor

# Fits solved to tol=1e-10 in float64 stop within about 1e-10 (times the
# condition number of the scaled problem, a few here) of the exact minimum,
# whichever library runs the products; the two fits differ only by the
# rounding of those products (about 1e-16 per operation). So 1e-10 relative
# to the largest coefficient bounds their difference with room to spare.
FLOAT64_RTOL = 1e-10

# In float32 the solver stops at a relative gradient norm of 1e-4 at the
# best (single precision resolves about 6e-8, and its rounding errors in the
# gradient grow with n_samples), so each fit is within about 1e-4 times the
# condition number of the minimum; differently rounded products can make the
# two fits stop at different points of that neighbourhood. 2e-3 relative to
# the largest coefficient (or to the spread of the targets, for
# predictions) allows for both.
FLOAT32_RTOL = 2e-3

SETTINGS = [
    {},
    {"penalty": "l2", "alpha": 0.1},
    {"penalty": "elasticnet", "alpha": 0.01, "l1_ratio": 0.5},
    {"penalty": "l1", "alpha": 0.01},
]


def _strict(dtype_name):
    xps = pytest.importorskip("array_api_strict")
    # A device other than the default, so that any array created without
    # the input's device is caught.
    device = xps.Device("device1")

    def to_xp(a):
        return xps.asarray(a, dtype=getattr(xps, dtype_name), device=device)

    def to_np(a):
        return np.asarray(xps.asarray(a, device=xps.Device("CPU_DEVICE")))

    return xps, device, to_xp, to_np


def _torch(dtype_name):
    torch = pytest.importorskip(
        "torch", reason="PyTorch is an optional extra: pip install gdreg[arrays]"
    )
    device = torch.device("cpu")

    def to_xp(a):
        return torch.asarray(a, dtype=getattr(torch, dtype_name), device=device)

    def to_np(a):
        return a.cpu().numpy()

    return torch, device, to_xp, to_np


LIBRARIES = {
    "strict-float64": (_strict, "float64"),
    "strict-float32": (_strict, "float32"),
    "torch-float64": (_torch, "float64"),
    "torch-float32": (_torch, "float32"),
}


@pytest.fixture(params=list(LIBRARIES))
def library(request):
    make, dtype_name = LIBRARIES[request.param]
    xp, device, to_xp, to_np = make(dtype_name)
    return xp, device, to_xp, to_np, dtype_name


def _data(rng, n_targets=None, n_samples=120, n_features=5):
    """Features in mixed units with offsets, and sample weights."""
    scales = np.array([1.0, 10.0, 0.1, 3.0, 0.5])[:n_features]
    X = rng.standard_normal((n_samples, n_features)) * scales + 2 * scales
    shape = (n_features,) if n_targets is None else (n_features, n_targets)
    coef = rng.standard_normal(shape) / scales.reshape((-1,) + (1,) * (len(shape) - 1))
    noise = 0.1 * rng.standard_normal((n_samples,) + shape[1:])
    y = X @ coef + 1.5 + noise
    weights = rng.uniform(0.5, 2.0, n_samples)
    return X, y, weights


def _assert_close(actual, expected, dtype_name, scale):
    rtol = FLOAT64_RTOL if dtype_name == "float64" else FLOAT32_RTOL
    assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale)


@pytest.mark.parametrize("settings", SETTINGS, ids=lambda s: s.get("penalty", "none"))
@pytest.mark.parametrize("precompute", [True, False])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("n_targets", [None, 2], ids=["1d", "2d"])
def test_fit_predict_in_input_namespace(
    rng, library, settings, precompute, weighted, n_targets
):
    xp, device, to_xp, to_np, dtype_name = library
    X, y, weights = _data(rng, n_targets)
    X, y, weights = (a.astype(dtype_name) for a in (X, y, weights))
    sample_weight = weights if weighted else None
    params = dict(settings, precompute=precompute, tol=1e-10)
    reference = GDLinearRegressor(**params).fit(X, y, sample_weight=sample_weight)
    expected = reference.predict(X)

    with sklearn.config_context(array_api_dispatch=True):
        X_xp, y_xp = to_xp(X), to_xp(y)
        weights_xp = None if sample_weight is None else to_xp(sample_weight)
        model = GDLinearRegressor(**params).fit(X_xp, y_xp, sample_weight=weights_xp)
        predicted = model.predict(X_xp)

    for array in (model.coef_, model.intercept_, predicted):
        assert type(array) is type(X_xp)
        assert array.device == device
        assert array.dtype == X_xp.dtype
    assert model.coef_.shape == reference.coef_.shape
    assert model.intercept_.shape == np.shape(reference.intercept_)
    coef_scale = np.max(np.abs(reference.coef_))
    _assert_close(to_np(model.coef_), reference.coef_, dtype_name, coef_scale)
    _assert_close(to_np(model.intercept_), reference.intercept_, dtype_name, np.std(y))
    _assert_close(to_np(predicted), expected, dtype_name, np.std(y))


def test_warm_start_stays_in_namespace(rng, library):
    xp, device, to_xp, to_np, dtype_name = library
    X, y, _ = _data(rng)
    with sklearn.config_context(array_api_dispatch=True):
        X_xp, y_xp = to_xp(X), to_xp(y)
        model = GDLinearRegressor(warm_start=True, tol=1e-10).fit(X_xp, y_xp)
        first = to_np(model.coef_)
        model.fit(X_xp, y_xp)
    assert model.coef_.device == device
    assert model.n_iter_ <= 2
    _assert_close(to_np(model.coef_), first, dtype_name, np.max(np.abs(first)))


def test_predict_refuses_another_namespace(rng, library):
    xp, device, to_xp, to_np, dtype_name = library
    X, y, _ = _data(rng)
    with sklearn.config_context(array_api_dispatch=True):
        model = GDLinearRegressor().fit(to_xp(X), to_xp(y))
        with pytest.raises(ValueError, match="must use the same namespace"):
            model.predict(X)


def test_without_dispatch_results_are_numpy(rng):
    torch = pytest.importorskip(
        "torch", reason="PyTorch is an optional extra: pip install gdreg[arrays]"
    )
    X, y, _ = _data(rng)
    reference = GDLinearRegressor().fit(X, y)
    model = GDLinearRegressor().fit(torch.asarray(X), torch.asarray(y))
    assert isinstance(model.coef_, np.ndarray)
    assert_allclose(model.coef_, reference.coef_, rtol=0, atol=0)
