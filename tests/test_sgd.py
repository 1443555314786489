"""SGDLinearRegressor: convergence, exactness, streaming and failure modes."""

import pickle
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.linear_model import ElasticNet, LinearRegression, Ridge

from gdreg import GDLinearRegressor, SGDLinearRegressor
from gdreg._scaling import whitening_rotation
from gdreg._schedules import AutoSchedule
from gdreg._sgd import _GapCertificate, _hessian, _row_weights

from .conftest import make_regression_data


def _objective(X, y, coef, intercept, l1=0.0, l2=0.0):
    r = y - X @ coef - intercept
    return 0.5 * np.mean(r**2) + l1 * np.abs(coef).sum() + 0.5 * l2 * coef @ coef


def _long_run(**params):
    """SGD run long with small final steps, to compare with exact minima."""
    defaults = dict(random_state=0, max_iter=500, tol=1e-6)
    return SGDLinearRegressor(**{**defaults, **params})


@pytest.mark.parametrize("batch_size", [1, 16])
def test_converges_to_least_squares_on_badly_scaled_data(badly_scaled_data, batch_size):
    X, y = badly_scaled_data
    reg = _long_run(batch_size=batch_size).fit(X, y)
    oracle = LinearRegression().fit(X, y)
    f_min = _objective(X, y, oracle.coef_, oracle.intercept_)
    # Stochastic steps stop at a noise floor set by the last step; 1e-4 of
    # the objective is far below the spread between train/test splits.
    assert _objective(X, y, reg.coef_, reg.intercept_) <= f_min * (1 + 1e-4)


def test_noise_free_data_is_fitted_exactly(rng):
    X = rng.standard_normal((300, 3)) * [1.0, 100.0, 0.01]
    y = X @ np.array([1.0, 0.02, 300.0]) + 5.0
    reg = SGDLinearRegressor(random_state=0).fit(X, y)
    assert_allclose(reg.coef_, [1.0, 0.02, 300.0], rtol=1e-6)
    assert_allclose(reg.intercept_, 5.0, rtol=1e-6)


def test_matches_ridge(regression_data):
    X, y = regression_data
    reg = _long_run(penalty="l2", alpha=0.1, batch_size=8).fit(X, y)
    oracle = Ridge(alpha=0.1 * len(y)).fit(X, y)
    f = _objective(X, y, reg.coef_, reg.intercept_, l2=0.1)
    f_min = _objective(X, y, oracle.coef_, oracle.intercept_, l2=0.1)
    assert f <= f_min * (1 + 1e-4)


@pytest.mark.parametrize("params", [{"penalty": "l2"}, {"penalty": "elasticnet"}])
def test_loss_curve_ends_at_the_penalised_objective_of_the_fit(regression_data, params):
    X, y = regression_data
    reg = SGDLinearRegressor(alpha=0.1, random_state=0, **params).fit(X, y)
    rho = 0.15 if params["penalty"] == "elasticnet" else 0.0
    f = _objective(X, y, reg.coef_, reg.intercept_, l1=0.1 * rho, l2=0.1 * (1 - rho))
    assert reg.loss_curve_[-1] == pytest.approx(f, rel=1e-9)


def test_matches_elastic_net(regression_data):
    X, y = regression_data
    reg = _long_run(penalty="elasticnet", alpha=0.05, l1_ratio=0.5, batch_size=8)
    reg.fit(X, y)
    oracle = ElasticNet(alpha=0.05, l1_ratio=0.5, tol=1e-12).fit(X, y)
    f = _objective(X, y, reg.coef_, reg.intercept_, l1=0.025, l2=0.025)
    f_min = _objective(X, y, oracle.coef_, oracle.intercept_, l1=0.025, l2=0.025)
    assert f <= f_min * (1 + 1e-3)


def _reference_epoch(Z, y, V, b, eta, order, batch_size):
    """Textbook mini-batch SGD over the rows of Z in the given order."""
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        r = Z[rows] @ V + b - y[rows]
        V = V - eta * Z[rows].T @ r / len(rows)
        b = b - eta * r.mean()
    return V, b


@pytest.mark.parametrize("batch_size", [1, 5])
def test_one_epoch_is_textbook_sgd_on_standardised_features(rng, batch_size):
    # Independent features keep the whitening rotation out, so the internal
    # coordinates are plain standardisation.
    X = rng.standard_normal((64, 3)) * [1.0, 10.0, 0.1] + [1.0, -2.0, 3.0]
    y = rng.standard_normal(64)
    eta = 0.05
    reg = SGDLinearRegressor(
        learning_rate="constant", eta0=eta, batch_size=batch_size, shuffle=False
    )
    reg.partial_fit(X, y)

    Z = (X - X.mean(axis=0)) / X.std(axis=0)
    V, b = _reference_epoch(Z, y, np.zeros(3), y.mean(), eta, np.arange(64), batch_size)
    coef = V / X.std(axis=0)
    assert_allclose(reg.coef_, coef, rtol=1e-10)
    assert_allclose(reg.intercept_, b - X.mean(axis=0) @ coef, rtol=1e-10)
    assert reg.t_ == int(np.ceil(64 / batch_size))


def test_same_random_state_gives_bit_identical_fits(badly_scaled_data):
    X, y = badly_scaled_data
    first = SGDLinearRegressor(random_state=3).fit(X, y)
    second = SGDLinearRegressor(random_state=3).fit(X, y)
    assert_array_equal(first.coef_, second.coef_)
    assert first.intercept_ == second.intercept_
    other = SGDLinearRegressor(random_state=4, max_iter=1, tol=0)
    with pytest.warns(ConvergenceWarning):
        other.fit(X, y)
    assert not np.array_equal(other.coef_, first.coef_)


def test_partial_fit_streams_to_the_solution(rng):
    X, y = make_regression_data(rng, n_samples=2000, scales=np.logspace(-2, 2, 6))
    reg = SGDLinearRegressor(random_state=0, batch_size=8)
    for _ in range(5):
        for start in range(0, 2000, 250):
            reg.partial_fit(X[start : start + 250], y[start : start + 250])
    oracle = LinearRegression().fit(X, y)
    assert reg.score(X, y) >= oracle.score(X, y) - 1e-3
    assert reg.t_ == 5 * 8 * int(np.ceil(250 / 8))
    assert reg.n_iter_ == 1


def test_partial_fit_rejects_a_different_number_of_features(regression_data):
    X, y = regression_data
    reg = SGDLinearRegressor().partial_fit(X, y)
    with pytest.raises(ValueError, match="features"):
        reg.partial_fit(X[:, :3], y)


def test_partial_fit_rejects_a_different_number_of_targets(regression_data):
    X, y = regression_data
    reg = SGDLinearRegressor().partial_fit(X, y)
    with pytest.raises(ValueError, match="target column"):
        reg.partial_fit(X, np.column_stack([y, y]))


def test_early_stopping_records_validation_scores(rng):
    X, y = make_regression_data(rng, n_samples=500)
    reg = SGDLinearRegressor(early_stopping=True, random_state=0).fit(X, y)
    assert len(reg.validation_scores_) == reg.n_iter_
    assert reg.best_validation_score_ == max(reg.validation_scores_)
    assert reg.best_validation_score_ > 0.9


# 'invscaling' keeps improving slowly for all of max_iter; only the fit's
# quality is asserted here.
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("learning_rate", ["constant", "invscaling", "adaptive"])
def test_user_schedules_converge(regression_data, learning_rate):
    X, y = regression_data
    reg = SGDLinearRegressor(
        learning_rate=learning_rate, eta0=0.01, random_state=0, max_iter=200
    ).fit(X, y)
    assert reg.score(X, y) > 0.99


def test_averaging_and_momentum_converge(regression_data):
    X, y = regression_data
    for params in (dict(average=True), dict(momentum=0.5)):
        reg = SGDLinearRegressor(random_state=0, **params).fit(X, y)
        assert reg.score(X, y) > 0.99


def test_too_large_eta0_raises_and_leaves_estimator_unfitted(regression_data):
    X, y = regression_data
    reg = SGDLinearRegressor(learning_rate="constant", eta0=50.0, random_state=0)
    with pytest.raises(ValueError, match=r"eta0=50.0 is\s+too large|Lower eta0"):
        reg.fit(X, y)
    with pytest.raises(NotFittedError):
        reg.predict(X)


def test_auto_step_never_diverges_on_hard_data(rng):
    X = rng.standard_normal((200, 4)) * np.logspace(-6, 6, 4)
    X[:5] *= 1e3
    y = rng.standard_normal(200) * 1e6
    for batch_size in (1, 7, 64):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            reg = SGDLinearRegressor(batch_size=batch_size, random_state=0).fit(X, y)
        assert np.all(np.isfinite(reg.coef_))


def test_convergence_warning_names_max_iter(regression_data):
    X, y = regression_data
    with pytest.warns(ConvergenceWarning, match=r"max_iter=2 epochs"):
        SGDLinearRegressor(max_iter=2, tol=0, random_state=0).fit(X, y)


@pytest.mark.parametrize("container", [sp.csr_matrix, sp.csc_matrix])
def test_sparse_equals_dense(rng, container):
    X, y = make_regression_data(rng)
    X[rng.uniform(size=X.shape) < 0.6] = 0
    params = dict(random_state=0, max_iter=5, tol=0, penalty="l1", alpha=1e-3)
    with pytest.warns(ConvergenceWarning):
        dense = SGDLinearRegressor(**params).fit(X, y)
    with pytest.warns(ConvergenceWarning):
        sparse = SGDLinearRegressor(**params).fit(container(X), y)
    assert_allclose(sparse.coef_, dense.coef_, rtol=1e-9, atol=1e-12)


def test_several_targets_equal_separate_fits(rng):
    X, y = make_regression_data(rng)
    Y = np.column_stack([y, -2 * y])
    params = dict(random_state=0, max_iter=4, tol=0, learning_rate="constant")
    with pytest.warns(ConvergenceWarning):
        reg = SGDLinearRegressor(**params).fit(X, Y)
    assert reg.coef_.shape == (2, X.shape[1])
    for k in range(2):
        with pytest.warns(ConvergenceWarning):
            single = SGDLinearRegressor(**params).fit(X, Y[:, k])
        assert_allclose(reg.coef_[k], single.coef_, rtol=1e-9)


def test_float32_in_float32_out(regression_data):
    X, y = regression_data
    reg = SGDLinearRegressor(random_state=0).fit(X.astype(np.float32), y)
    assert reg.coef_.dtype == np.float32
    assert reg.predict(X.astype(np.float32)).dtype == np.float32


def test_inputs_are_not_modified(regression_data, rng):
    X, y = regression_data
    weights = rng.uniform(0.5, 2, len(y))
    for array in (X, y, weights):
        array.setflags(write=False)
    copies = X.copy(), y.copy(), weights.copy()
    SGDLinearRegressor(random_state=0).fit(X, y, sample_weight=weights)
    SGDLinearRegressor(random_state=0).partial_fit(X, y, sample_weight=weights)
    for array, copy in zip((X, y, weights), copies):
        assert_array_equal(array, copy)


def test_pickle_round_trip(regression_data):
    X, y = regression_data
    reg = SGDLinearRegressor(random_state=0).fit(X, y)
    clone = pickle.loads(pickle.dumps(reg))
    assert_array_equal(clone.predict(X), reg.predict(X))
    clone.partial_fit(X, y)


def test_weighted_sgd_reaches_the_weighted_minimum(badly_scaled_data, rng):
    X, y = badly_scaled_data
    weights = rng.uniform(0.2, 5.0, len(y))
    gd = GDLinearRegressor().fit(X, y, sample_weight=weights)
    sgd = _long_run(batch_size=4).fit(X, y, sample_weight=weights)

    def objective(reg):
        return np.average((y - reg.predict(X)) ** 2, weights=weights)

    assert objective(sgd) <= objective(gd) * (1 + 1e-4)


@given(
    n_samples=st.integers(2, 40),
    n_features=st.integers(1, 5),
    log_scale=st.floats(-6, 6),
    batch_size=st.sampled_from([1, 3, 32]),
    seed=st.integers(0, 2**16),
)
def test_predictions_are_finite_for_finite_input(
    n_samples, n_features, log_scale, batch_size, seed
):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, n_features)) * 10.0**log_scale
    y = rng.standard_normal(n_samples)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg = SGDLinearRegressor(batch_size=batch_size, random_state=0).fit(X, y)
    assert np.all(np.isfinite(reg.coef_))
    assert np.all(np.isfinite(reg.predict(X)))


@pytest.mark.parametrize("layout", ["dense", "csr"])
@pytest.mark.parametrize("params", [{}, {"batch_size": 1, "average": True}])
def test_internal_copy_of_the_rows_changes_only_rounding(monkeypatch, layout, params):
    """fit passes over a prepared copy of the rows when it fits the budget;
    without the copy each chunk is transformed as it is read, to the same
    iterates up to rounding. (A constant step: 'auto' steers by the
    certificate that only the copy makes cheap.)"""
    import gdreg._sgd

    X, y = make_regression_data(np.random.default_rng(3), n_samples=400)
    X[:, 0] = 1e4 * X[:, 0] + 3e4
    X = sp.csr_matrix(X) if layout == "csr" else X
    params = dict(
        random_state=0,
        max_iter=8,
        n_iter_no_change=50,
        learning_rate="constant",
        eta0=0.01,
        **params,
    )
    copies = []
    build = gdreg._sgd.internal_rows
    monkeypatch.setattr(
        gdreg._sgd, "internal_rows", lambda *a: copies.append(1) or build(*a)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        copied = SGDLinearRegressor(**params).fit(X, y)
        assert len(copies) == 1
        monkeypatch.setattr(gdreg._sgd, "_INTERNAL_ROWS_MAX_BYTES", 0)
        streamed = SGDLinearRegressor(**params).fit(X, y)
        assert len(copies) == 1
    assert copied.n_iter_ == streamed.n_iter_ == 8
    assert_allclose(copied.coef_, streamed.coef_, rtol=1e-10)
    assert_allclose(copied.intercept_, streamed.intercept_, rtol=1e-10)
    assert_allclose(copied.loss_curve_, streamed.loss_curve_, rtol=1e-10)


@pytest.mark.parametrize("batch_size", [1, 8])
def test_l2_blocks_match_one_batch_at_a_time(monkeypatch, batch_size):
    """An L2 penalty decays each scaled feature at its own rate; the blocked
    passes carry those rates and give the iterates of the loop over
    mini-batches, which wide sparse data run. (A constant step: 'auto'
    steers by a certificate that only the blocked path makes cheap.)"""
    import gdreg._sgd

    rng = np.random.default_rng(5)
    X = rng.standard_normal((300, 4)) * np.array([1.0, 30.0, 0.01, 5.0])
    y = X @ np.array([1.0, 0.1, 50.0, -0.3]) + rng.standard_normal(300)
    X = sp.csr_matrix(X)
    params = dict(
        penalty="l2",
        alpha=0.1,
        batch_size=batch_size,
        random_state=0,
        max_iter=5,
        learning_rate="constant",
        eta0=0.002,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        blocked = SGDLinearRegressor(**params).fit(X, y)
        monkeypatch.setattr(gdreg._sgd, "_DENSE_BLOCKS_MAX_FEATURES", 0)
        looped = SGDLinearRegressor(**params).fit(X, y)
    assert_allclose(blocked.coef_, looped.coef_, rtol=1e-9)
    assert_allclose(blocked.intercept_, looped.intercept_, rtol=1e-9)
    assert_allclose(blocked.loss_curve_, looped.loss_curve_, rtol=1e-9)


def test_l2_penalty_with_more_features_than_samples_converges():
    """Directions that only the penalty curves are reached as fast as the
    others: fit rotates to coordinates where the penalised problem is
    isotropic."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 60)) * rng.uniform(0.1, 10, 60)
    y = X @ rng.standard_normal(60) + rng.standard_normal(40)
    alpha = 0.05
    oracle = Ridge(alpha=alpha * 40).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        reg = SGDLinearRegressor(penalty="l2", alpha=alpha, random_state=0).fit(X, y)
    best = _objective(X, y, oracle.coef_, oracle.intercept_, l2=alpha)
    assert _objective(X, y, reg.coef_, reg.intercept_, l2=alpha) <= best * (1 + 1e-3)
    assert reg.n_iter_ < 200


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("n_targets", [1, 2])
@pytest.mark.parametrize("penalised", [False, True])
@pytest.mark.parametrize("equal_weights", [True, False])
def test_gap_certificate_is_the_exact_excess(
    fit_intercept, n_targets, penalised, equal_weights
):
    """The certificate's excess, with the Hessian formed as fit forms it
    (from the covariance of the rows before their rotation), equals the
    objective minus its minimum, computed independently by a least-squares
    solve; with weights, a per-coordinate L2 strength, a rotation and an
    exactly collinear column."""
    rng = np.random.default_rng(3)
    n, d = 50, 4
    unrotated = rng.standard_normal((n, d)) + 0.3
    unrotated[:, 3] = 2.0 * unrotated[:, 1]
    rotation = rng.standard_normal((d, d))
    Z = unrotated @ rotation
    y = rng.standard_normal((n, n_targets)) if n_targets > 1 else rng.standard_normal(n)
    rows = np.column_stack([Z, np.ones(n), -y])
    weights = np.ones(n) if equal_weights else rng.uniform(0.5, 2.0, n)
    l2 = rng.uniform(0.1, 1.0, d) if penalised else np.zeros(d)
    P = _row_weights(weights)
    assert np.ndim(P) == (0 if equal_weights else 1)
    gram = unrotated.T @ (unrotated * np.broadcast_to(P, n)[:, None])
    internal = SimpleNamespace(rotation=rotation)
    hessian = _hessian(rows, gram, internal, P, fit_intercept)
    certificate = _GapCertificate(rows, P, l2, hessian)
    V = rng.standard_normal((d, n_targets)) if n_targets > 1 else rng.standard_normal(d)
    b = rng.standard_normal(n_targets) if n_targets > 1 else rng.standard_normal()
    b = b if fit_intercept else 0.0 * b

    p = weights / weights.sum()
    A = np.column_stack([Z, np.ones(n)]) if fit_intercept else Z
    penalty = np.r_[l2, [0.0] * fit_intercept][:, None]
    Y = y.reshape(n, -1)

    def objective(theta):
        value = 0.5 * np.sum(p[:, None] * (A @ theta - Y) ** 2)
        return value + 0.5 * np.sum(penalty * theta**2)

    # The minimum from the normal equations, solved by least squares.
    H = A.T @ (A * p[:, None]) + np.diagflat(penalty)
    best = np.linalg.lstsq(H, A.T @ (p[:, None] * Y), rcond=None)[0]
    theta = V.reshape(d, -1)
    if fit_intercept:
        theta = np.vstack([theta, np.reshape(b, (1, -1))])
    data_fit, excess = certificate.evaluate((V, b))
    penalty_value = 0.5 * np.sum(penalty[:d] * theta[:d] ** 2)
    assert data_fit + penalty_value == pytest.approx(objective(theta), rel=1e-12)
    assert excess == pytest.approx(objective(theta) - objective(best), rel=1e-9)


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("equal_weights", [True, False])
def test_whitened_certificate_needs_no_eigendecomposition(fit_intercept, equal_weights):
    """After plain whitening the certificate built from the basis of
    informative directions has the pseudo-inverse, the curvature and the
    excesses of the one built from the Hessian by an eigendecomposition;
    with an exactly collinear column and offset features."""
    rng = np.random.default_rng(4)
    n, d = 60, 4
    X = rng.standard_normal((n, d)) @ rng.standard_normal((d, d)) + 2.0
    X[:, 3] = X[:, 0] - X[:, 1]
    y = rng.standard_normal(n)
    weights = np.ones(n) if equal_weights else rng.uniform(0.5, 2.0, n)
    P = _row_weights(weights)
    p = np.broadcast_to(P, n)
    center = p @ X if fit_intercept else np.zeros(d)
    inv_scale = 1.0 / np.sqrt(p @ (X - center) ** 2)
    Z = (X - center) * inv_scale
    gram = Z.T @ (Z * p[:, None])
    S, S_inv, informative = whitening_rotation(X, weights, center, inv_scale, gram)
    rows = np.column_stack([Z @ S, np.ones(n), -y])
    internal = SimpleNamespace(rotation=S)
    hessian = _hessian(rows, gram, internal, P, fit_intercept)
    general = _GapCertificate(rows, P, np.zeros(d), hessian)
    direct = _GapCertificate.whitened(rows, P, informative, fit_intercept)
    assert informative.shape == (d, d - 1)
    assert_allclose(direct.inverse, general.inverse, atol=1e-9)
    assert direct.curvature == pytest.approx(general.curvature, rel=1e-9)
    for _ in range(3):
        V, b = rng.standard_normal(d), rng.standard_normal() * fit_intercept
        assert direct.evaluate((V, b)) == pytest.approx(
            general.evaluate((V, b)), rel=1e-9
        )


def test_auto_stops_within_tol_of_the_minimum(rng):
    """With the default schedule a fit ends once the objective is certified
    within ``tol`` (relative) of its minimum."""
    X = rng.standard_normal((2000, 5)) * [1.0, 1e3, 1e-3, 10.0, 1.0]
    X[:, 4] = X[:, 0] + 0.01 * rng.standard_normal(2000)
    y = X @ np.array([1.0, 1e-3, 1e3, 0.1, 2.0]) + rng.standard_normal(2000)
    # The minimum by least squares on standardised columns, where the
    # scales above cost no precision.
    mean, std = X.mean(axis=0), X.std(axis=0)
    scaled = np.linalg.lstsq((X - mean) / std, y - y.mean(), rcond=None)[0]
    best = _objective(X, y, scaled / std, y.mean() - mean @ (scaled / std))
    tol = 1e-4
    reg = SGDLinearRegressor(tol=tol, random_state=0).fit(X, y)
    # Certified: (f - f*) <= tol * f, and not one epoch later than that.
    certified = best / (1 - tol) * (1 + 1e-9)
    assert _objective(X, y, reg.coef_, reg.intercept_) <= certified
    assert reg.loss_curve_[-1] <= certified
    assert reg.loss_curve_[-2] > certified


@pytest.mark.parametrize("batch_size", [1, 4])
def test_integer_weights_reach_the_minimum_of_the_repeated_rows(batch_size):
    """The data of scikit-learn's sample-weight equivalence check, with an
    L2 penalty: a fit with integer weights (zeros included) and a fit on the
    rows repeated as often are both certified within ``tol`` of the one
    minimum of the repeated rows' objective. (Their predictions differ by
    the noise that ``tol`` allows, about 3e-4, not 1e-7: see
    tests/test_common.py.)"""
    rng = np.random.RandomState(42)
    X = rng.rand(15, 30)
    y = rng.randint(0, 3, size=15).astype(float)
    weights = rng.randint(0, 5, size=15)
    X_repeated, y_repeated = X.repeat(weights, axis=0), y.repeat(weights)
    alpha, tol = 1e-3, 3e-4
    # The minimum from the normal equations with an unpenalised intercept.
    A = np.column_stack([X_repeated, np.ones(len(y_repeated))])
    penalty = np.r_[np.full(30, alpha), 0.0]
    best = np.linalg.solve(
        A.T @ A / len(y_repeated) + np.diag(penalty), A.T @ y_repeated / len(y_repeated)
    )
    f_min = _objective(X_repeated, y_repeated, best[:30], best[30], l2=alpha)
    params = dict(penalty="l2", alpha=alpha, tol=tol, batch_size=batch_size)
    weighted = SGDLinearRegressor(random_state=0, **params)
    weighted.fit(X, y, sample_weight=weights)
    repeated = SGDLinearRegressor(random_state=1, **params).fit(X_repeated, y_repeated)
    for reg in (weighted, repeated):
        f = _objective(X_repeated, y_repeated, reg.coef_, reg.intercept_, l2=alpha)
        assert f_min <= f <= f_min / (1 - tol) * (1 + 1e-9)


def test_certified_schedule_cuts_only_when_noise_holds_the_excess_up():
    """The step is kept while the excess falls as fast as the step's
    contraction explains, cut when it falls slower, and not cut again
    before the new step has had time to halve the excess."""
    schedule = AutoSchedule(0.1, floor_per_step=1.0, tol=1e-4, patience=5)
    # 10 updates of 0.1 at curvature 1: the error shrinks by exp(-1).
    schedule.end_certified_epoch(0.1, 1.0, n_updates=10, curvature=1.0, target=0.0)
    assert schedule.current == 0.1
    # A target far below the excess: the deepest cut, a fifth.
    schedule.end_certified_epoch(0.09, 0.1, n_updates=10, curvature=1.0, target=0.0)
    assert schedule.current == pytest.approx(0.02)
    # 2 * 0.02 * 10 = 0.4 < log(2): the next slow epoch keeps the step...
    schedule.end_certified_epoch(0.089, 0.09, n_updates=10, curvature=1.0, target=0.0)
    assert schedule.current == pytest.approx(0.02)
    # ...and the one after cuts it, by a half only, since half the target
    # is within a factor 4 of the excess.
    schedule.end_certified_epoch(0.089, 0.089, n_updates=10, curvature=1.0,
                                 target=0.089 / 2)  # fmt: skip
    assert schedule.current == pytest.approx(0.01)
    # In between, sqrt(target / (2 * excess)).
    schedule.progress = np.inf
    schedule.end_certified_epoch(0.089, 0.089, n_updates=10, curvature=1.0,
                                 target=0.089 * 2 / 9)  # fmt: skip
    assert schedule.current == pytest.approx(0.01 / 3)


def test_certified_schedule_glides_to_a_cut_step_over_one_epoch():
    """After a cut the next epoch's steps fall geometrically from the old
    step to the new one; the epochs after it use the new step alone."""
    schedule = AutoSchedule(0.1, floor_per_step=1.0, tol=1e-4, patience=5)
    assert schedule.steps(0, 5) == 0.1
    schedule.end_certified_epoch(1.0, 1.0, n_updates=10, curvature=1.0, target=0.0)
    steps = schedule.steps(5, 5)
    assert_allclose(steps, 0.1 * 0.2 ** (np.arange(5) / 4))
    assert schedule.steps(10, 5) == pytest.approx(0.02)


def test_fit_runs_blas_on_one_thread_on_mid_sized_data(monkeypatch):
    """Data whose products BLAS would thread, up to 2**22 values, run with
    one BLAS thread during the fit; small data and after the fit, the
    process's own setting."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    controller = threadpoolctl.ThreadpoolController().select(user_api="blas")
    if not controller.lib_controllers:
        pytest.skip("no BLAS library that threadpoolctl controls")
    before = [lib.num_threads for lib in controller.lib_controllers]
    if max(before) == 1:
        pytest.skip("BLAS already runs on one thread: no limit to observe")
    seen = []
    run = SGDLinearRegressor._run

    def spy(self, *args, **kwargs):
        seen.append([lib.get_num_threads() for lib in controller.lib_controllers])
        return run(self, *args, **kwargs)

    monkeypatch.setattr(SGDLinearRegressor, "_run", spy)
    rng = np.random.default_rng(0)
    for n_samples, n_features in [(20_000, 4), (300, 4)]:
        X = rng.standard_normal((n_samples, n_features))
        y = X @ np.ones(n_features)
        SGDLinearRegressor(max_iter=2, random_state=0).fit(X, y)
    assert seen[0] == [1] * len(before)
    assert seen[1] == before
    assert [lib.get_num_threads() for lib in controller.lib_controllers] == before
