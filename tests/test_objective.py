"""The objective in internal coordinates: values, gradients, proximal map."""

import numpy as np
import pytest
from numpy.testing import assert_allclose

from gdreg._objective import (
    Quadratic,
    l1_value,
    min_norm_subgradient,
    soft_threshold,
)
from gdreg._scaling import ScaledDesign


def _quadratic(rng, weighted, n_targets=None):
    X = rng.standard_normal((40, 5))
    design = ScaledDesign(X, X.mean(axis=0), 1 / X.std(axis=0))
    y = rng.standard_normal(40 if n_targets is None else (40, n_targets))
    weights = rng.uniform(0.1, 1, 40) if weighted else None
    if weighted:
        weights /= weights.sum()
    quad = Quadratic(design, y, weights, l2=np.full(5, 0.3))
    return quad, design, y, weights


def _direct_objective(V, design, y, weights, l2):
    R = y - design.matvec(V)
    w = np.full(len(y), 1 / len(y)) if weights is None else weights
    w = w if R.ndim == 1 else w[:, None]
    return 0.5 * np.sum(w * R**2, axis=0) + 0.5 * np.sum(l2 * V.T**2, axis=-1)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("n_targets", [None, 2])
def test_value_matches_direct_computation(rng, weighted, n_targets):
    quad, design, y, weights = _quadratic(rng, weighted, n_targets)
    V = rng.standard_normal((5,) if n_targets is None else (5, n_targets))
    expected = _direct_objective(V, design, y, weights, quad.l2)
    assert_allclose(quad.value(V, quad.hvp(V)), expected, rtol=1e-12)


@pytest.mark.parametrize("weighted", [False, True])
def test_gradient_matches_finite_differences(rng, weighted):
    quad, design, y, weights = _quadratic(rng, weighted)
    V = rng.standard_normal(5)
    gradient = quad.gradient(quad.hvp(V))
    h = 1e-6
    for j in range(5):
        e = np.zeros(5)
        e[j] = h
        plus = _direct_objective(V + e, design, y, weights, quad.l2)
        minus = _direct_objective(V - e, design, y, weights, quad.l2)
        # Central differences on a quadratic are exact up to rounding of
        # values of order one divided by 2h, about 1e-10.
        assert_allclose(gradient[j], (plus - minus) / (2 * h), rtol=1e-6, atol=1e-8)


def test_soft_threshold():
    V = np.array([-3.0, -0.5, 0.0, 0.5, 3.0])
    assert_allclose(soft_threshold(V, 1.0), [-2.0, 0.0, 0.0, 0.0, 2.0])


def test_min_norm_subgradient_vanishes_only_at_optimum():
    l1 = np.array([1.0, 1.0, 1.0])
    V = np.array([0.0, 2.0, -1.0])
    # At zero a gradient inside [-l1, l1] is cancelled; elsewhere the sign
    # term adds to it.
    G = np.array([0.5, -1.0, 1.0])
    assert_allclose(min_norm_subgradient(V, G, l1), [0.0, 0.0, 0.0])
    G = np.array([1.5, 0.0, 0.0])
    assert_allclose(min_norm_subgradient(V, G, l1), [0.5, 1.0, -1.0])
    assert_allclose(l1_value(V, l1), 3.0)
