"""GDLinearRegressor: oracles, properties, parameters and failure modes."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.linear_model import ElasticNet, Lasso, LinearRegression, Ridge
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from gdreg import GDLinearRegressor

from .conftest import make_regression_data

# A tolerance on the relative gradient of 1e-10 leaves coefficient errors of
# about 1e-10 times the condition number of the scaled problem (below 100
# for these data), so 1e-7 relative on coefficients has ample margin.
TIGHT = dict(tol=1e-10, max_iter=100_000)


def _exact_least_squares(X, y, sample_weight=None):
    """Weighted least squares solved on standardised features."""
    scaler = StandardScaler().fit(X, sample_weight=sample_weight)
    reg = LinearRegression().fit(scaler.transform(X), y, sample_weight=sample_weight)
    coef = reg.coef_ / scaler.scale_
    return coef, reg.intercept_ - scaler.mean_ @ coef


@pytest.mark.parametrize("acceleration", ["auto", "cg", "nesterov", "none"])
def test_matches_linear_regression(regression_data, acceleration):
    X, y = regression_data
    reg = GDLinearRegressor(acceleration=acceleration, **TIGHT).fit(X, y)
    oracle = LinearRegression().fit(X, y)
    assert_allclose(reg.coef_, oracle.coef_, rtol=1e-7)
    assert_allclose(reg.intercept_, oracle.intercept_, rtol=1e-7)


def test_badly_scaled_features_converge_fast(badly_scaled_data):
    X, y = badly_scaled_data
    reg = GDLinearRegressor(**TIGHT).fit(X, y)
    coef, intercept = _exact_least_squares(X, y)
    assert_allclose(reg.coef_, coef, rtol=1e-7)
    assert_allclose(reg.intercept_, intercept, rtol=1e-7)
    # Conjugate gradients needs at most n_features steps in exact arithmetic;
    # scaling makes the features' units irrelevant to that count.
    assert reg.n_iter_ <= X.shape[1] + 2


def test_duplicated_and_collinear_columns(rng):
    X, y = make_regression_data(rng, n_features=4)
    X = np.column_stack([X, X[:, 0], X[:, 1] + 2 * X[:, 2]])
    reg = GDLinearRegressor(**TIGHT).fit(X, y)
    oracle = LinearRegression().fit(X, y)
    assert_allclose(reg.predict(X), oracle.predict(X), rtol=1e-8)
    assert np.all(np.isfinite(reg.coef_))


@pytest.mark.parametrize("scaled", [False, True])
def test_matches_ridge(regression_data, badly_scaled_data, scaled):
    X, y = badly_scaled_data if scaled else regression_data
    alpha = 0.1
    reg = GDLinearRegressor(penalty="l2", alpha=alpha, **TIGHT).fit(X, y)
    # Ridge minimises ||y - Xw - b||^2 + a ||w||^2: the same minimiser when
    # a = alpha * n_samples.
    oracle = Ridge(alpha=alpha * len(y), tol=1e-12, solver="svd").fit(X, y)
    assert_allclose(reg.coef_, oracle.coef_, rtol=1e-6, atol=1e-12)
    assert_allclose(reg.intercept_, oracle.intercept_, rtol=1e-7)


@pytest.mark.parametrize(
    "penalty, l1_ratio, oracle",
    [
        ("l1", 1.0, Lasso(alpha=0.05, tol=1e-14, max_iter=100_000)),
        (
            "elasticnet",
            0.5,
            ElasticNet(alpha=0.05, l1_ratio=0.5, tol=1e-14, max_iter=100_000),
        ),
    ],
)
@pytest.mark.parametrize("acceleration", ["nesterov", "none"])
def test_matches_lasso_and_elastic_net(
    regression_data, penalty, l1_ratio, oracle, acceleration
):
    X, y = regression_data
    reg = GDLinearRegressor(
        penalty=penalty,
        alpha=0.05,
        l1_ratio=l1_ratio,
        acceleration=acceleration,
        **TIGHT,
    ).fit(X, y)
    oracle.fit(X, y)
    assert_allclose(reg.coef_, oracle.coef_, rtol=1e-6, atol=1e-9)
    assert_allclose(reg.intercept_, oracle.intercept_, rtol=1e-7)


def test_elastic_net_on_badly_scaled_data(badly_scaled_data):
    X, y = badly_scaled_data
    reg = GDLinearRegressor(penalty="elasticnet", alpha=1e-3, **TIGHT).fit(X, y)
    oracle = ElasticNet(alpha=1e-3, l1_ratio=0.15, tol=1e-14, max_iter=1_000_000)
    oracle.fit(X, y)

    def objective(coef, intercept):
        r = y - X @ coef - intercept
        l1 = 1e-3 * (0.15 * np.abs(coef).sum() + 0.85 / 2 * coef @ coef)
        return 0.5 * np.mean(r**2) + l1

    assert objective(reg.coef_, reg.intercept_) <= objective(
        oracle.coef_, oracle.intercept_
    ) * (1 + 1e-9)


def test_no_intercept(regression_data):
    X, y = regression_data
    reg = GDLinearRegressor(fit_intercept=False, **TIGHT).fit(X, y)
    oracle = LinearRegression(fit_intercept=False).fit(X, y)
    assert_allclose(reg.coef_, oracle.coef_, rtol=1e-7)
    assert reg.intercept_ == 0


def test_sample_weight_matches_weighted_least_squares(regression_data, rng):
    X, y = regression_data
    weights = rng.uniform(0.1, 3, len(y))
    reg = GDLinearRegressor(**TIGHT).fit(X, y, sample_weight=weights)
    oracle = LinearRegression().fit(X, y, sample_weight=weights)
    assert_allclose(reg.coef_, oracle.coef_, rtol=1e-7)


@pytest.mark.parametrize("container", [sp.csr_matrix, sp.csc_matrix, sp.csr_array])
@pytest.mark.parametrize("penalty", [None, "elasticnet"])
def test_sparse_equals_dense(rng, container, penalty):
    X, y = make_regression_data(rng)
    X[rng.uniform(size=X.shape) < 0.6] = 0
    dense = GDLinearRegressor(penalty=penalty, alpha=0.01, **TIGHT).fit(X, y)
    sparse = GDLinearRegressor(penalty=penalty, alpha=0.01, **TIGHT)
    sparse.fit(container(X), y)
    assert_allclose(sparse.coef_, dense.coef_, rtol=1e-8, atol=1e-12)
    assert_allclose(sparse.predict(container(X)), dense.predict(X), rtol=1e-8)


@pytest.mark.parametrize("penalty", [None, "l1"])
def test_several_targets_equal_separate_fits(rng, penalty):
    X, y = make_regression_data(rng)
    Y = np.column_stack([y, 2 * y + X[:, 0], -y])
    reg = GDLinearRegressor(penalty=penalty, alpha=0.01, **TIGHT).fit(X, Y)
    assert reg.coef_.shape == (3, X.shape[1])
    assert reg.intercept_.shape == (3,)
    assert reg.predict(X).shape == Y.shape
    for k in range(3):
        single = GDLinearRegressor(penalty=penalty, alpha=0.01, **TIGHT)
        single.fit(X, Y[:, k])
        assert_allclose(reg.coef_[k], single.coef_, rtol=1e-7, atol=1e-10)
        assert_allclose(reg.intercept_[k], single.intercept_, rtol=1e-7)


def test_float32_in_float32_out(badly_scaled_data):
    X, y = badly_scaled_data
    reg32 = GDLinearRegressor().fit(X.astype(np.float32), y.astype(np.float32))
    reg64 = GDLinearRegressor().fit(X, y)
    assert reg32.coef_.dtype == np.float32
    assert np.asarray(reg32.intercept_).dtype == np.float32
    assert reg32.predict(X.astype(np.float32)).dtype == np.float32
    # Single precision resolves about 1e-7 relative per operation; sums over
    # 200 rows and a solve with a modest condition number leave ~1e-4.
    assert_allclose(reg32.predict(X), reg64.predict(X), rtol=1e-3, atol=1e-3)


def test_fixed_learning_rate_is_textbook_gradient_descent(regression_data):
    X, y = regression_data
    eta, n_steps = 0.3, 5
    with pytest.warns(ConvergenceWarning):
        reg = GDLinearRegressor(learning_rate=eta, max_iter=n_steps, tol=0).fit(X, y)

    Z = (X - X.mean(axis=0)) / X.std(axis=0)
    w, b = np.zeros(X.shape[1]), y.mean()
    for _ in range(n_steps):
        residual = y - Z @ w - b
        w = w + eta * Z.T @ residual / len(y)
        b = b + eta * residual.mean()
    coef = w / X.std(axis=0)
    assert_allclose(reg.coef_, coef, rtol=1e-12)
    assert_allclose(reg.intercept_, b - X.mean(axis=0) @ coef, rtol=1e-12)
    assert len(reg.loss_curve_) == n_steps == reg.n_iter_


@pytest.mark.parametrize("acceleration", ["none", "nesterov"])
def test_too_large_learning_rate_raises_and_leaves_estimator_unfitted(
    regression_data, acceleration
):
    X, y = regression_data
    reg = GDLinearRegressor(learning_rate=50.0, acceleration=acceleration)
    with pytest.raises(ValueError, match=r"learning_rate=50.0 is too large"):
        reg.fit(X, y)
    with pytest.raises(NotFittedError):
        reg.predict(X)


def test_divergence_keeps_previous_fit_with_warm_start(regression_data):
    X, y = regression_data
    reg = GDLinearRegressor(warm_start=True).fit(X, y)
    coef = reg.coef_.copy()
    reg.set_params(learning_rate=50.0)
    with pytest.raises(ValueError, match="learning_rate"):
        reg.fit(X, 3 * y)
    assert_allclose(reg.coef_, coef, rtol=0)


def test_auto_step_never_diverges_on_hard_data(rng):
    X = rng.standard_normal((100, 5)) * np.logspace(-6, 6, 5)
    X[:, 4] = X[:, 3] * (1 + 1e-9)
    y = rng.standard_normal(100) * 1e5
    for acceleration in ["cg", "nesterov", "none"]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            reg = GDLinearRegressor(acceleration=acceleration).fit(X, y)
        assert np.all(np.isfinite(reg.coef_))
        assert np.all(np.diff(reg.loss_curve_) <= 1e-9 * abs(reg.loss_curve_[0]))


def test_loss_curve_is_objective(regression_data):
    X, y = regression_data
    reg = GDLinearRegressor(penalty="l2", alpha=0.1, **TIGHT).fit(X, y)
    final = 0.5 * np.mean((y - reg.predict(X)) ** 2) + 0.05 * reg.coef_ @ reg.coef_
    assert len(reg.loss_curve_) == reg.n_iter_
    assert_allclose(reg.loss_curve_[-1], final, rtol=1e-10)


def test_warm_start_starts_from_previous_solution(regression_data):
    X, y = regression_data
    reg = GDLinearRegressor(warm_start=True).fit(X, y)
    reg.fit(X, y)
    assert reg.n_iter_ <= 1


def test_convergence_warning_names_values_and_remedy(badly_scaled_data):
    X, y = badly_scaled_data
    reg = GDLinearRegressor(acceleration="none", max_iter=2)
    with pytest.warns(ConvergenceWarning, match=r"max_iter=2.*Increase max_iter"):
        reg.fit(X, y)
    assert reg.n_iter_ == 2


# Each parameter's out-of-range values are covered in test_reliability.py;
# these are the combinations that are invalid only together.
@pytest.mark.parametrize(
    "params, message",
    [
        ({"acceleration": "cg", "learning_rate": 0.1}, "needs learning_rate='auto'"),
        ({"acceleration": "cg", "penalty": "l1"}, "does not handle the L1 part"),
    ],
)
def test_invalid_parameter_combinations_are_named(regression_data, params, message):
    X, y = regression_data
    with pytest.raises(ValueError, match=message):
        GDLinearRegressor(**params).fit(X, y)


def test_verbose_prints_one_line_per_iteration(regression_data, capsys):
    X, y = regression_data
    reg = GDLinearRegressor(verbose=1).fit(X, y)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == reg.n_iter_
    assert lines[0].startswith("GDLinearRegressor: iteration 1, objective")


def test_silent_by_default(regression_data, capsys):
    GDLinearRegressor().fit(*regression_data)
    assert capsys.readouterr().out == ""


def test_inputs_are_not_modified(regression_data, rng):
    X, y = regression_data
    weights = rng.uniform(0.5, 2, len(y))
    for array in (X, y, weights):
        array.setflags(write=False)
    copies = X.copy(), y.copy(), weights.copy()
    GDLinearRegressor(penalty="l1").fit(X, y, sample_weight=weights)
    for array, copy in zip((X, y, weights), copies):
        assert_allclose(array, copy, rtol=0)


def test_in_pipeline_and_grid_search(regression_data):
    X, y = regression_data
    search = GridSearchCV(
        make_pipeline(StandardScaler(), GDLinearRegressor(penalty="l2")),
        {"gdlinearregressor__alpha": [1e-3, 1.0]},
        cv=3,
    ).fit(X, y)
    assert search.best_params_["gdlinearregressor__alpha"] == 1e-3
    assert search.score(X, y) > 0.9


@given(
    column=st.integers(0, 3),
    factor=st.floats(1e-3, 1e3).filter(lambda c: abs(c - 1) > 1e-3),
    seed=st.integers(0, 2**16),
)
def test_scaling_a_feature_divides_its_coefficient(column, factor, seed):
    X, y = make_regression_data(np.random.default_rng(seed), n_features=4)
    reg = GDLinearRegressor(**TIGHT).fit(X, y)
    X_scaled = X.copy()
    X_scaled[:, column] *= factor
    scaled = GDLinearRegressor(**TIGHT).fit(X_scaled, y)
    expected = reg.coef_.copy()
    expected[column] /= factor
    assert_allclose(scaled.coef_, expected, rtol=1e-7)
    assert_allclose(scaled.intercept_, reg.intercept_, rtol=1e-7)


@given(
    weights=st.lists(st.integers(0, 4), min_size=12, max_size=12).filter(
        lambda w: sum(1 for v in w if v > 0) >= 5
    ),
    penalty=st.sampled_from([None, "l2", "elasticnet"]),
    seed=st.integers(0, 2**16),
)
def test_integer_weights_equal_repeated_rows(weights, penalty, seed):
    X, y = make_regression_data(np.random.default_rng(seed), n_samples=12, n_features=3)
    weights = np.asarray(weights)
    params = dict(penalty=penalty, alpha=0.05, **TIGHT)
    weighted = GDLinearRegressor(**params).fit(X, y, sample_weight=weights)
    repeated = GDLinearRegressor(**params).fit(
        np.repeat(X, weights, axis=0), np.repeat(y, weights)
    )
    assert_allclose(weighted.coef_, repeated.coef_, rtol=1e-6, atol=1e-9)
    assert_allclose(weighted.intercept_, repeated.intercept_, rtol=1e-7, atol=1e-9)


@given(
    n_samples=st.integers(2, 30),
    n_features=st.integers(1, 6),
    log_scale=st.floats(-8, 8),
    seed=st.integers(0, 2**16),
    penalty=st.sampled_from([None, "l2", "l1"]),
)
def test_predictions_are_finite_for_finite_input(
    n_samples, n_features, log_scale, seed, penalty
):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, n_features)) * 10.0**log_scale
    y = rng.standard_normal(n_samples) * 10.0 ** (-log_scale / 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg = GDLinearRegressor(penalty=penalty).fit(X, y)
    assert np.all(np.isfinite(reg.coef_))
    assert np.all(np.isfinite(reg.predict(X)))


@pytest.mark.parametrize("penalty", [None, "l2", "elasticnet"])
@pytest.mark.parametrize("weighted", [False, True])
def test_precomputed_gram_gives_the_same_iterates(
    badly_scaled_data, rng, penalty, weighted
):
    X, y = badly_scaled_data
    weights = rng.uniform(0.5, 2.0, len(y)) if weighted else None
    fits = [
        GDLinearRegressor(penalty=penalty, alpha=0.01, precompute=flag).fit(
            X, y, sample_weight=weights
        )
        for flag in (True, False)
    ]
    assert fits[0].n_iter_ == fits[1].n_iter_
    assert_allclose(fits[0].loss_curve_, fits[1].loss_curve_, rtol=1e-9)
    assert_allclose(fits[0].coef_, fits[1].coef_, rtol=1e-8)


def test_precompute_needs_dense_input(regression_data):
    X, y = regression_data
    with pytest.raises(ValueError, match="precompute=True needs dense X"):
        GDLinearRegressor(precompute=True).fit(sp.csr_matrix(X), y)
