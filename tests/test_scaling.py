"""The implicit centring and scaling of the design."""

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose

from gdreg._scaling import ScaledDesign, feature_statistics


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("l2", [0.0, 0.5])
def test_statistics_match_explicit_computation(rng, fit_intercept, l2):
    X = rng.standard_normal((50, 4)) * [1, 10, 1e3, 1e-3] + 5
    weights = rng.uniform(0.5, 2.0, 50)
    center, inv_scale = feature_statistics(
        X, weights, fit_intercept=fit_intercept, l2=l2
    )
    mean = np.average(X, axis=0, weights=weights)
    expected_center = mean if fit_intercept else np.zeros(4)
    mean_square = np.average((X - expected_center) ** 2, axis=0, weights=weights)
    assert_allclose(center, expected_center, rtol=1e-12)
    assert_allclose(inv_scale, 1 / np.sqrt(mean_square + l2), rtol=1e-10)


def test_sparse_statistics_equal_dense(rng):
    X = rng.standard_normal((40, 5)) * (rng.uniform(size=(40, 5)) < 0.3)
    weights = rng.uniform(0.5, 2.0, 40)
    dense = feature_statistics(X, weights, fit_intercept=True, l2=0.1)
    for container in (sp.csr_matrix, sp.csc_matrix):
        sparse = feature_statistics(container(X), weights, fit_intercept=True, l2=0.1)
        assert_allclose(sparse[0], dense[0], rtol=1e-12, atol=1e-15)
        assert_allclose(sparse[1], dense[1], rtol=1e-12)


def test_constant_features_are_removed(rng):
    X = np.column_stack([np.full(30, 7.0), rng.standard_normal(30), np.zeros(30)])
    _, inv_scale = feature_statistics(X, np.ones(30), fit_intercept=True, l2=0.0)
    assert inv_scale[0] == 0 and inv_scale[2] == 0
    assert inv_scale[1] > 0


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("n_targets", [None, 3])
def test_products_equal_explicit_matrix(rng, sparse, n_targets):
    X = rng.standard_normal((30, 4)) * (rng.uniform(size=(30, 4)) < 0.5)
    center = rng.standard_normal(4)
    inv_scale = rng.uniform(0.1, 2, 4)
    Z = (X - center) * inv_scale
    design = ScaledDesign(sp.csr_matrix(X) if sparse else X, center, inv_scale)
    V = rng.standard_normal(4 if n_targets is None else (4, n_targets))
    R = rng.standard_normal(30 if n_targets is None else (30, n_targets))
    assert_allclose(design.matvec(V), Z @ V, rtol=1e-12)
    assert_allclose(design.rmatvec(R), Z.T @ R, rtol=1e-12)


def test_unit_conversions_are_inverse(rng):
    design = ScaledDesign(np.eye(3), rng.standard_normal(3), np.array([2.0, 0.5, 0]))
    V = np.array([1.0, -2.0, 0.0])
    coef, intercept = design.to_user_units(V, 4.0)
    V_back, intercept_back = design.to_internal_units(coef, intercept)
    assert_allclose(V_back, V)
    assert_allclose(intercept_back, 4.0)


def test_float32_input_is_not_upcast(rng):
    X = rng.standard_normal((20, 3)).astype(np.float32)
    center, inv_scale = feature_statistics(
        X, np.ones(20, np.float32), fit_intercept=True, l2=0.0
    )
    assert center.dtype == np.float32 and inv_scale.dtype == np.float32
    design = ScaledDesign(X, center, inv_scale)
    assert design.matvec(np.ones(3, np.float32)).dtype == np.float32


def test_merged_moments_equal_moments_of_all_rows(rng):
    from gdreg._scaling import merge_moments, weighted_moments

    X = rng.standard_normal((60, 3)) * [1, 100, 1e-2] + [5, -3, 0]
    weights = rng.uniform(0.1, 2, 60)
    parts = [
        (weights[rows].sum(), *weighted_moments(X[rows], weights[rows]))
        for rows in (slice(0, 10), slice(10, 45), slice(45, 60))
    ]
    merged = parts[0]
    for part in parts[1:]:
        merged = merge_moments(merged, part)
    mean, std = weighted_moments(X, weights)
    assert_allclose(merged[0], weights.sum())
    assert_allclose(merged[1], mean, rtol=1e-12)
    assert_allclose(merged[2], std, rtol=1e-12)


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("magnitude", [1e-200, 1e-150, 1e150, 1e250])
def test_moments_of_extreme_magnitudes(rng, sparse, magnitude):
    from gdreg._scaling import weighted_moments

    base = rng.standard_normal((40, 2)) + [3.0, 0.0]
    X = base * [magnitude, 1.0]
    weights = rng.uniform(0.5, 2.0, 40)
    mean, std = weighted_moments(sp.csr_matrix(X) if sparse else X, weights)
    expected_mean = np.average(base, axis=0, weights=weights)
    expected_std = np.sqrt(
        np.average((base - expected_mean) ** 2, axis=0, weights=weights)
    )
    assert_allclose(mean / [magnitude, 1.0], expected_mean, rtol=1e-12)
    assert_allclose(std / [magnitude, 1.0], expected_std, rtol=1e-12)


@pytest.mark.parametrize("sparse", [False, True])
def test_penalised_whitening_makes_the_hessian_identity(rng, sparse):
    from gdreg._scaling import penalised_whitening, scaled_gram

    X = rng.standard_normal((20, 6)) @ rng.standard_normal((6, 6))
    X[:, 2] = 3.0  # a feature without spread keeps a zero coordinate
    center = X.mean(axis=0)
    std = X.std(axis=0)
    inv_scale = np.where(std > 0, 1 / np.sqrt(std**2 + 0.05), 0.0)
    penalty = 0.05 * inv_scale**2
    sw = rng.uniform(0.5, 2.0, 20)
    data = sp.csr_matrix(X) if sparse else X
    (Q, Q_inv), nu = penalised_whitening(data, sw, center, inv_scale, penalty)
    C, _ = scaled_gram(X, center, inv_scale, sw / sw.sum())
    informative = inv_scale > 0
    H = C + np.diag(penalty)
    H[~informative, ~informative] = 1.0
    assert_allclose(Q.T @ H @ Q, np.eye(6), atol=1e-10)
    assert_allclose(Q.T @ np.diag(penalty) @ Q, np.diag(nu), atol=1e-10)
    assert_allclose(Q_inv @ Q, np.eye(6), atol=1e-10)
    assert np.all((nu >= 0) & (nu <= 1 + 1e-12))


def test_penalised_whitening_skips_well_conditioned_problems(rng):
    from gdreg._scaling import penalised_whitening

    X = rng.standard_normal((500, 4))
    penalty = np.full(4, 1e-3)
    result = penalised_whitening(X, np.ones(500), X.mean(0), 1 / X.std(0), penalty)
    assert result is None
