"""Reliability: bad input, extreme data, divergence, side effects, determinism.

Every test here runs on both estimators, and on ``partial_fit`` where it
applies. The property tests at the end draw shapes, dtypes, scales, sparsity,
weights and parameters; set ``HYPOTHESIS_PROFILE=fuzz`` for a long run.
"""

import subprocess
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_array_equal
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning, NotFittedError

from gdreg import GDLinearRegressor, SGDLinearRegressor

ESTIMATORS = [GDLinearRegressor(), SGDLinearRegressor(random_state=0)]
FIT_METHODS = [
    (GDLinearRegressor(), "fit"),
    (SGDLinearRegressor(random_state=0), "fit"),
    (SGDLinearRegressor(random_state=0), "partial_fit"),
]
FIT_IDS = ["gd-fit", "sgd-fit", "sgd-partial_fit"]


def _call(estimator, method, X, y, sample_weight=None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return getattr(estimator, method)(X, y, sample_weight=sample_weight)


def _data(rng, n_samples=30, n_features=3):
    X = rng.standard_normal((n_samples, n_features))
    return X, X @ np.arange(1.0, n_features + 1) + 0.1 * rng.standard_normal(n_samples)


# 1. Bad input: each case gives ValueError or TypeError naming the input.

BAD_INPUTS = {
    "nan in X": (lambda X, y, w: (np.where(X > 1, np.nan, X), y, w), r"X.*NaN"),
    "inf in X": (lambda X, y, w: (np.where(X > 1, np.inf, X), y, w), r"X.*infinity"),
    "nan in y": (lambda X, y, w: (X, np.where(y > 1, np.nan, y), w), r"y.*NaN"),
    "inf in y": (lambda X, y, w: (X, np.where(y > 1, -np.inf, y), w), r"y.*infinity"),
    "nan in sample_weight": (
        lambda X, y, w: (X, y, np.where(w > 1, np.nan, w)),
        r"sample_weight.*NaN",
    ),
    "inf in sample_weight": (
        lambda X, y, w: (X, y, np.where(w > 1, np.inf, w)),
        r"sample_weight.*infinity",
    ),
    "negative sample_weight": (
        lambda X, y, w: (X, y, w - 1.5),
        r"[Nn]egative.*sample_weight",
    ),
    "all-zero sample_weight": (lambda X, y, w: (X, y, 0 * w), r"[Ss]ample weights"),
    "sample_weight of wrong length": (lambda X, y, w: (X, y, w[:-1]), r"sample_weight"),
    "empty X": (lambda X, y, w: (X[:0], y[:0], None), r"X.*0 sample"),
    "X without columns": (lambda X, y, w: (X[:, :0], y, w), r"X.*0 feature"),
    "X and y of different lengths": (
        lambda X, y, w: (X, y[:-1], w),
        r"X has 30 samples but y has 29",
    ),
    "3-D X": (lambda X, y, w: (X[:, :, None], y, w), r"X.*dim 3"),
    "3-D y": (lambda X, y, w: (X, y[:, None, None], w), r"y is not valid input.*dim 3"),
    "y as a row": (lambda X, y, w: (X, y[None, :], w), r"X has 30 samples but y has 1"),
    "strings in X": (lambda X, y, w: (X.astype(str).astype(object) + "m", y, w), r"X"),
    "objects in X": (
        lambda X, y, w: (np.array([[object()] * 3] * 30), y, w),
        r"X is not valid input",
    ),
    "complex X": (lambda X, y, w: (X + 1j, y, w), r"X.*Complex data"),
    "strings in y": (
        lambda X, y, w: (X, np.array(["a"] * 30), w),
        r"y is not valid input",
    ),
    "complex y": (lambda X, y, w: (X, y + 1j, w), r"y.*Complex data"),
    "y is None": (lambda X, y, w: (X, None, w), r"requires y"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
@pytest.mark.parametrize("estimator, method", FIT_METHODS, ids=FIT_IDS)
def test_bad_input_is_named(rng, estimator, method, case):
    X, y = _data(rng)
    weights = rng.uniform(0.5, 2.0, len(y))
    make, message = BAD_INPUTS[case]
    X, y, weights = make(X, y, weights)
    estimator = clone(estimator)
    with pytest.raises((ValueError, TypeError), match=message):
        _call(estimator, method, X, y, weights)
    with pytest.raises(NotFittedError):
        estimator.predict(np.zeros((2, 3)))


GD_BAD_PARAMETERS = [
    ("penalty", "l3"),
    ("penalty", 2),
    ("alpha", -0.1),
    ("alpha", "0.1"),
    ("l1_ratio", -0.01),
    ("l1_ratio", 1.01),
    ("fit_intercept", "yes"),
    ("fit_intercept", None),
    ("learning_rate", 0.0),
    ("learning_rate", -1.0),
    ("learning_rate", "fast"),
    ("acceleration", "momentum"),
    ("acceleration", None),
    ("precompute", "yes"),
    ("max_iter", 0),
    ("max_iter", 1.5),
    ("tol", -1e-4),
    ("tol", "small"),
    ("warm_start", 1.0),
    ("verbose", "loud"),
]
SGD_BAD_PARAMETERS = [
    p
    for p in GD_BAD_PARAMETERS
    if p[0] not in ("learning_rate", "acceleration", "precompute")
] + [
    ("learning_rate", "optimal"),
    ("learning_rate", 0.1),
    ("eta0", 0.0),
    ("eta0", -1.0),
    ("power_t", -0.5),
    ("batch_size", 0),
    ("batch_size", 2.5),
    ("momentum", -0.1),
    ("momentum", 1.0),
    ("average", 10),
    ("shuffle", "yes"),
    ("random_state", "seed"),
    ("n_iter_no_change", 0),
    ("early_stopping", "yes"),
    ("validation_fraction", 0.0),
    ("validation_fraction", 1.0),
]


@pytest.mark.parametrize(
    "estimator, method, name, value",
    [(GDLinearRegressor(), "fit", *p) for p in GD_BAD_PARAMETERS]
    + [(SGDLinearRegressor(), "fit", *p) for p in SGD_BAD_PARAMETERS]
    + [(SGDLinearRegressor(), "partial_fit", *p) for p in SGD_BAD_PARAMETERS],
)
def test_bad_parameter_is_named(rng, estimator, method, name, value):
    X, y = _data(rng)
    estimator = clone(estimator).set_params(**{name: value})
    with pytest.raises((ValueError, TypeError), match=rf"'{name}' parameter.*Got"):
        _call(estimator, method, X, y)


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=["gd", "sgd"])
def test_predict_before_fit(rng, estimator):
    with pytest.raises(NotFittedError, match="not fitted yet"):
        clone(estimator).predict(rng.standard_normal((3, 3)))


@pytest.mark.parametrize("estimator, method", FIT_METHODS, ids=FIT_IDS)
def test_predict_with_another_number_of_features(rng, estimator, method):
    X, y = _data(rng)
    estimator = _call(clone(estimator), method, X, y)
    with pytest.raises(ValueError, match="X has 2 features, but .* is expecting 3"):
        estimator.predict(X[:, :2])


def test_partial_fit_with_another_number_of_features(rng):
    X, y = _data(rng)
    estimator = SGDLinearRegressor().partial_fit(X, y)
    coef = estimator.coef_.copy()
    with pytest.raises(ValueError, match="X has 4 features, but .* is expecting 3"):
        estimator.partial_fit(np.column_stack([X, X[:, 0]]), y)
    assert_array_equal(estimator.coef_, coef)


# 2. Extreme but valid data: finite coefficients and an objective no worse
# than that of an exact least-squares solve, or a clear error.


def _extreme_cases():
    rng = np.random.default_rng(7)
    X, y = _data(rng, n_samples=60, n_features=3)
    noise = 0.1 * rng.standard_normal(60)
    tiny_huge = rng.standard_normal((60, 2)) * [1e150, 1e-150]
    sparse_columns = np.zeros((60, 4))
    sparse_columns[rng.choice(60, 3, replace=False), 1] = 1.0
    sparse_columns[:, 0] = rng.standard_normal(60)
    outliers = y.copy()
    outliers[:3] = 1e6
    wide = rng.standard_normal((10, 40))
    return {
        "constant feature": (np.column_stack([X, np.full(60, 3.0)]), y),
        "duplicated column": (np.column_stack([X, X[:, 0]]), y),
        "collinear columns": (np.column_stack([X, X[:, 0] + 2 * X[:, 1]]), y),
        "more features than samples": (wide, wide[:, 0] + 0.1),
        "magnitudes 1e150 and 1e-150": (
            tiny_huge,
            tiny_huge @ [1e-150, 1e150] + noise,
        ),
        "target of magnitude 1e200": (X, (y + 5) * 1e200),
        "float32 near its overflow limit": (
            (X * 1e37).astype(np.float32),
            (y * 1e37).astype(np.float32),
        ),
        "all-zero X": (np.zeros((60, 3)), y),
        "all-identical rows": (np.ones((60, 3)), y),
        "zero-variance y": (X, np.full(60, -2.5)),
        "heavy outliers": (X, outliers),
        "very sparse columns": (sparse_columns, sparse_columns[:, 0] + noise),
        "one sample": (X[:1], y[:1]),
        "one feature": (X[:, :1], y),
    }


EXTREME = _extreme_cases()


def _reference_objective(X, y):
    """Least-squares objective of an SVD solve on standardised columns."""
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    unit = np.max(np.abs(X), axis=0)
    unit[unit == 0] = 1
    y_unit = np.max(np.abs(y - y.mean())) or 1.0
    Z = X / unit
    Z = Z - Z.mean(axis=0)
    solution = np.linalg.lstsq(Z, (y - y.mean()) / y_unit, rcond=1e-12)[0]
    residual = (y - y.mean()) / y_unit - Z @ solution
    return 0.5 * np.mean(residual**2)


def _scaled_objective(estimator, X, y):
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    y_unit = np.max(np.abs(y - y.mean())) or 1.0
    coef = np.asarray(estimator.coef_, dtype=np.float64)
    intercept = np.float64(estimator.intercept_)
    with np.errstate(over="ignore"):
        prediction = (X / y_unit) @ coef + intercept / y_unit
    return 0.5 * np.mean((y / y_unit - prediction) ** 2)


# Full-batch descent reaches the minimum to rounding; stochastic descent
# stops at a noise floor set by tol, a few thousandths of the objective.
# Objectives are compared relative to the variance of y, with an absolute
# slack for the cases where the minimum is zero.
TOLERANCE = {GDLinearRegressor: 1e-6, SGDLinearRegressor: 2e-2}


@pytest.mark.parametrize("case", list(EXTREME))
@pytest.mark.parametrize("estimator, method", FIT_METHODS, ids=FIT_IDS)
def test_extreme_data_fits_soundly(estimator, method, case):
    X, y = EXTREME[case]
    estimator = clone(estimator)
    for _ in range(20 if method == "partial_fit" else 1):
        _call(estimator, method, X, y)
    assert np.all(np.isfinite(estimator.coef_))
    assert np.all(np.isfinite(estimator.intercept_))
    assert np.all(np.isfinite(estimator.predict(X)))
    objective = _scaled_objective(estimator, X, y)
    if method == "partial_fit":
        # Twenty passes are no fit to convergence; they must still do no
        # worse than the constant prediction they start from.
        y64 = np.asarray(y, dtype=np.float64)
        y_unit = np.max(np.abs(y64 - y64.mean())) or 1.0
        assert objective <= 0.5 * np.var(y64 / y_unit) * 1.05 + 1e-12
        return
    tolerance = TOLERANCE[type(estimator)]
    if X.dtype == np.float32:
        tolerance = max(tolerance, 1e-3)
    assert objective <= _reference_objective(X, y) * (1 + tolerance) + 1e-12


def test_sparse_extreme_magnitudes():
    rng = np.random.default_rng(3)
    X = sp.random(200, 5, density=0.3, random_state=4, format="csr")
    X = X @ sp.diags([1e150, 1e-150, 1.0, 1e100, 1.0])
    y = X @ np.array([1e-150, 1e150, 1.0, 1e-100, 0.0]) + rng.standard_normal(200)
    reference = _reference_objective(X.toarray(), y)
    for estimator in ESTIMATORS:
        estimator = _call(clone(estimator), "fit", X, y)
        assert np.all(np.isfinite(estimator.coef_))
        tolerance = TOLERANCE[type(estimator)]
        objective = _scaled_objective(estimator, X.toarray(), y)
        assert objective <= reference * (1 + tolerance)


# 3. Divergence and failed fits leave the estimator as it was.


@pytest.mark.parametrize(
    "estimator",
    [
        GDLinearRegressor(learning_rate=100.0, acceleration="none"),
        SGDLinearRegressor(learning_rate="constant", eta0=100.0, random_state=0),
    ],
    ids=["gd", "sgd"],
)
def test_divergence_never_stores_non_finite_coefficients(rng, estimator):
    X, y = _data(rng)
    with pytest.raises(ValueError, match=r"learning_rate|eta0"):
        estimator.fit(X, y)
    assert not hasattr(estimator, "coef_")


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=["gd", "sgd"])
def test_failed_refit_keeps_the_previous_fit(rng, estimator):
    X, y = _data(rng)
    estimator = clone(estimator).set_params(warm_start=True).fit(X, y)
    state = {k: np.copy(v) for k, v in vars(estimator).items() if k.endswith("_")}
    with pytest.raises(ValueError):
        estimator.fit(np.where(X > 1, np.nan, X), y)
    with pytest.raises(ValueError):
        estimator.fit(X[:, :2], y)
    for key, value in state.items():
        assert_array_equal(getattr(estimator, key), value)


def test_failed_partial_fit_keeps_the_previous_state(rng):
    X, y = _data(rng)
    estimator = SGDLinearRegressor(random_state=0, batch_size=1).partial_fit(X, y)
    before = (estimator.coef_.copy(), estimator.t_, estimator.n_features_in_)
    with pytest.raises(ValueError):
        estimator.partial_fit(X, np.where(y > 1, np.inf, y))
    estimator.set_params(learning_rate="constant", eta0=1e3)
    with pytest.raises(ValueError, match="eta0"):
        estimator.partial_fit(X * 100, y)
    assert_array_equal(estimator.coef_, before[0])
    assert (estimator.t_, estimator.n_features_in_) == before[1:]


# 4. No side effects.


@pytest.mark.parametrize("estimator, method", FIT_METHODS, ids=FIT_IDS)
@pytest.mark.parametrize("sparse", [False, True])
def test_inputs_and_global_state_are_untouched(rng, estimator, method, sparse):
    X, y = _data(rng)
    weights = rng.uniform(0.5, 2.0, len(y))
    X_in = sp.csr_matrix(X) if sparse else X
    arrays = [y, weights] + ([X_in.data] if sparse else [X_in])
    copies = [a.copy() for a in arrays]
    for array in arrays:
        array.setflags(write=False)
    random_state = np.random.get_state()
    filters = list(warnings.filters)
    errstate = np.geterr()

    estimator = (
        clone(estimator).set_params(random_state=None)
        if hasattr(estimator, "random_state")
        else clone(estimator)
    )
    getattr(estimator, method)(X_in, y, sample_weight=weights)

    for array, copy in zip(arrays, copies):
        assert_array_equal(array, copy)
    after = np.random.get_state()
    assert after[0] == random_state[0] and np.array_equal(after[1], random_state[1])
    assert warnings.filters == filters
    assert np.geterr() == errstate


# 5. Determinism across runs, processes and threads.

_SCRIPT = """
import numpy as np
from gdreg import GDLinearRegressor, SGDLinearRegressor
rng = np.random.default_rng(5)
X = rng.standard_normal((300, 4)) * [1, 10, 100, 0.1]
y = X @ [1.0, 0.2, 0.03, 5.0] + rng.standard_normal(300)
for est in (GDLinearRegressor(), SGDLinearRegressor(random_state=11, batch_size=1)):
    est.fit(X, y)
    print(np.append(est.coef_, est.intercept_).tobytes().hex())
"""


def test_bit_identical_across_processes():
    outputs = [
        subprocess.run(
            [sys.executable, "-c", _SCRIPT], capture_output=True, text=True, check=True
        ).stdout
        for _ in range(2)
    ]
    assert outputs[0] == outputs[1]
    assert len(outputs[0].split()) == 2


@pytest.mark.parametrize(
    "estimator",
    [
        GDLinearRegressor(),
        GDLinearRegressor(penalty="elasticnet"),
        SGDLinearRegressor(random_state=2),
        SGDLinearRegressor(random_state=2, batch_size=1, penalty="l2"),
    ],
    ids=["gd", "gd-enet", "sgd", "sgd-1-l2"],
)
def test_concurrent_fits_equal_sequential_fits(rng, estimator):
    datasets = [_data(np.random.default_rng(seed), n_samples=400) for seed in range(8)]

    def fit(data):
        return _call(clone(estimator), "fit", *data)

    sequential = [fit(data) for data in datasets]
    with ThreadPoolExecutor(max_workers=8) as pool:
        concurrent = list(pool.map(fit, datasets))
    for a, b in zip(sequential, concurrent):
        assert_array_equal(a.coef_, b.coef_)
        assert a.intercept_ == b.intercept_


# 6. Fuzzing with hypothesis.


@st.composite
def _problems(draw):
    n_samples = draw(st.integers(1, 40))
    n_features = draw(st.integers(1, 6))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    log_scales = draw(
        st.lists(st.floats(-12, 12), min_size=n_features, max_size=n_features)
    )
    X = rng.standard_normal((n_samples, n_features)) * 10.0 ** np.array(log_scales)
    X += draw(st.floats(-3, 3)) * 10.0 ** np.array(log_scales)
    density = draw(st.sampled_from([1.0, 0.5, 0.1]))
    X[rng.uniform(size=X.shape) > density] = 0.0
    y = rng.standard_normal(n_samples) * 10.0 ** draw(st.floats(-10, 10))
    weights = None
    if draw(st.booleans()):
        weights = rng.integers(0, 4, n_samples).astype(float)
        weights[0] = 1.0
    dtype = draw(st.sampled_from([np.float64, np.float32]))
    sparse = draw(st.booleans())
    X = X.astype(dtype)
    return (sp.csr_matrix(X) if sparse else X), y.astype(dtype), weights


@st.composite
def _estimators(draw):
    penalty = draw(st.sampled_from([None, "l2", "l1", "elasticnet"]))
    common = dict(
        penalty=penalty,
        alpha=draw(st.sampled_from([1e-4, 1e-2, 1.0])),
        fit_intercept=draw(st.booleans()),
    )
    if draw(st.booleans()):
        return GDLinearRegressor(
            acceleration=draw(st.sampled_from(["auto", "nesterov", "none"])),
            max_iter=200,
            **common,
        )
    return SGDLinearRegressor(
        batch_size=draw(st.sampled_from([1, 4, 32])),
        average=draw(st.booleans()),
        momentum=draw(st.sampled_from([0.0, 0.5])),
        max_iter=30,
        random_state=0,
        **common,
    )


@given(problem=_problems(), estimator=_estimators())
def test_fuzzed_fits_are_finite_and_side_effect_free(problem, estimator):
    X, y, weights = problem
    before = (X.copy(), y.copy(), None if weights is None else weights.copy())
    _call(estimator, "fit", X, y, weights)
    assert np.all(np.isfinite(estimator.coef_))
    assert np.all(np.isfinite(estimator.intercept_))
    assert np.all(np.isfinite(estimator.predict(X)))
    assert estimator.coef_.dtype == X.dtype
    X_before = before[0].toarray() if sp.issparse(X) else before[0]
    assert_array_equal(X.toarray() if sp.issparse(X) else X, X_before)
    assert_array_equal(y, before[1])
    if weights is not None:
        assert_array_equal(weights, before[2])
