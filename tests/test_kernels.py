"""Tests of the blocked SGD kernels against a plain loop over the updates."""

from math import ceil

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

from gdreg import _kernels as kernels
from gdreg._kernels import internal_rows, max_row_norm_sq, row_norms_sq, sgd_pass

# Forward substitution repeats the loop's dependent arithmetic; what differs
# is the order of the sums inside the products, so float64 results agree to
# a few hundred ulps after thousands of updates.
RTOL = 1e-10


def reference_pass(
    X,
    y,
    sample_weight,
    order,
    coef,
    intercept,
    steps,
    *,
    l2=0.0,
    l1=None,
    center=None,
    scale=None,
    fit_intercept=True,
    batch_size=1,
    block_size=None,
    dtype=np.float64,
):
    """Plain loop over mini-batches implementing the documented update.

    With ``l1``, the soft-threshold is applied after every ``block_size``
    rows (and after the last row), as the kernel does.
    """
    X = X.toarray() if sp.issparse(X) else np.asarray(X)
    n, d = X.shape
    Y = np.asarray(y, dtype=dtype).reshape(n, -1)
    center = np.zeros(d) if center is None else center
    scale = np.ones(d) if scale is None else scale
    Z = ((X - center) / scale).astype(dtype)
    s = np.ones(n) if sample_weight is None else sample_weight
    w = np.array(coef, dtype=dtype).reshape(d, -1)
    b = np.array(intercept, dtype=dtype).reshape(-1)
    loss = 0.0
    coef_sum, b_sum = np.zeros_like(w), np.zeros_like(b)
    eta_in_block = 0.0
    if block_size is not None:
        block_size = max(batch_size, block_size // batch_size * batch_size)
    for k, eta in enumerate(steps):
        rows = order[k * batch_size : (k + 1) * batch_size]
        R = Z[rows] @ w + b - Y[rows]
        loss += float(np.sum(s[rows, None] * R**2))
        factor = dtype(eta / len(rows))
        grad = Z[rows].T @ (s[rows, None].astype(dtype) * R)
        decay = (1 - eta * np.reshape(l2, (-1, 1))).astype(dtype)
        w = decay * w - factor * grad
        if fit_intercept:
            b = b - factor * (s[rows, None].astype(dtype) * R).sum(axis=0)
        eta_in_block += eta
        end = (k + 1) * batch_size
        if l1 is not None and (end % block_size == 0 or end >= len(order)):
            t = (eta_in_block * l1)[:, None]
            w = np.sign(w) * np.maximum(np.abs(w) - t, 0)
            eta_in_block = 0.0
        coef_sum += w
        b_sum += b
    if np.ndim(y) == 1:
        return w[:, 0], b[0], loss, coef_sum[:, 0], b_sum[0]
    return w, b, loss, coef_sum, b_sum


def make_problem(rng, n, d, k=None, offset=0.0):
    """Random rows with an offset, targets and a stable step size."""
    X = rng.standard_normal((n, d)) * rng.uniform(0.5, 2.0, d) + offset
    shape = (d,) if k is None else (d, k)
    y = X @ rng.standard_normal(shape) + 0.1 * rng.standard_normal((n,) + shape[1:])
    center = X.mean(axis=0) if offset else np.zeros(d)
    scale = X.std(axis=0)
    return X, y, center, scale


def stable_steps(X, center, scale, sample_weight, n_updates, rng):
    """Steps below the per-row stability bound, varying from update to update."""
    bound = max_row_norm_sq(X, center, scale, sample_weight) + 1.0
    return rng.uniform(0.2, 1.0, n_updates) / bound


def assert_pass_close(got, want, rtol=RTOL):
    """Compare every value a kernel pass returns with the loop's."""
    for g, e in zip(got, want):
        assert_allclose(g, e, rtol=rtol, atol=rtol * np.max(np.abs(e)))


def check_against_loop(X, y, sw, order, coef, intercept, steps, rtol=RTOL, **kw):
    """Run the kernel and the loop and compare every returned value."""
    got = sgd_pass(X, y, sw, order, coef, intercept, steps, average=True, **kw)
    want = reference_pass(X, y, sw, order, coef, intercept, steps, **kw)
    assert_pass_close(got, want, rtol)
    return got


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.mark.parametrize("batch_size", [1, 3, 64])
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("l2", [0.0, 0.05])
@pytest.mark.parametrize("weighted", [False, True])
def test_dense_matches_loop(rng, batch_size, fit_intercept, l2, weighted):
    X, y, center, scale = make_problem(rng, 700, 6, offset=3.0)
    sw = rng.uniform(0.2, 2.0, 700) if weighted else None
    order = rng.permutation(700)
    n_updates = ceil(700 / batch_size)
    steps = stable_steps(X, center, scale, sw, n_updates, rng) * batch_size**0.5
    check_against_loop(
        X, y, sw, order, rng.standard_normal(6), 0.3, steps,
        l2=l2, center=center, scale=scale, fit_intercept=fit_intercept,
        batch_size=batch_size,
    )  # fmt: skip


@pytest.mark.parametrize("layout", ["C", "F", "csr"])
@pytest.mark.parametrize("batch_size", [1, 3])
def test_layouts_and_targets(rng, layout, batch_size):
    X, Y, center, scale = make_problem(rng, 400, 5, k=3, offset=1.0)
    X[rng.uniform(size=X.shape) < 0.5] = 0.0
    data = sp.csr_matrix(X) if layout == "csr" else np.asarray(X, order=layout)
    sw = rng.uniform(0.5, 1.5, 400)
    order = rng.integers(0, 400, 500)
    steps = stable_steps(X, center, scale, sw, ceil(500 / batch_size), rng)
    check_against_loop(
        data, Y, sw, order, np.zeros((5, 3)), np.ones(3), steps,
        l2=0.01, center=center, scale=scale, batch_size=batch_size,
    )  # fmt: skip


@pytest.mark.parametrize("k", [None, 2])
@pytest.mark.parametrize("batch_size", [1, 4])
@pytest.mark.parametrize("l2", [0.0, 0.02])
def test_sparse_wide_matches_loop(rng, k, batch_size, l2):
    n, d = 300, 1500
    X = sp.random(n, d, density=0.01, format="csr", random_state=rng)
    shape = (d,) if k is None else (d, k)
    y = X @ rng.standard_normal(shape)
    center = np.asarray(X.mean(axis=0)).ravel()
    scale = np.sqrt(np.asarray(X.multiply(X).mean(axis=0)).ravel() + 1e-2)
    order = rng.permutation(n)
    steps = stable_steps(X, center, scale, None, ceil(n / batch_size), rng)
    check_against_loop(
        X, y, None, order, np.zeros(shape), np.zeros(shape[1:]), steps,
        l2=l2, l1=np.full(d, 1e-3), center=center, scale=scale,
        batch_size=batch_size, block_size=32,
    )  # fmt: skip


@pytest.mark.parametrize("batch_size", [1, 3, 64])
@pytest.mark.parametrize("block_size", [24, 192])
def test_l1_matches_blocked_loop(rng, batch_size, block_size):
    X, _, center, scale = make_problem(rng, 500, 8)
    y = X[:, 0] - X[:, 1] + 0.1 * rng.standard_normal(500)
    steps = stable_steps(X, center, scale, None, ceil(500 / batch_size), rng)
    l1 = rng.uniform(0.05, 0.2, 8)
    got = check_against_loop(
        X, y, None, rng.permutation(500), np.zeros(8), 0.0, steps,
        l2=0.01, l1=l1, center=center, scale=scale, batch_size=batch_size,
        block_size=block_size,
    )  # fmt: skip
    assert np.any(got.coef == 0.0)


def test_float32_input(rng):
    X, y, center, scale = make_problem(rng, 500, 7, offset=2.0)
    X32 = X.astype(np.float32)
    order = rng.permutation(500)
    steps = stable_steps(X, center, scale, None, 500, rng)
    args = (y, None, order, np.zeros(7), 0.0, steps)
    kw = dict(l2=0.01, center=center, scale=scale)
    got = sgd_pass(X32, *args, **kw)
    exact = reference_pass(X32.astype(np.float64), *args, **kw)
    assert_allclose(got.coef, exact[0], rtol=RTOL)
    # The kernel computes in float64 whatever the input; a loop in float32
    # arithmetic drifts by about 500 updates * eps32 (6e-8) relative.
    single = reference_pass(X32, *args, dtype=np.float32, **kw)
    assert_allclose(got.coef, single[0], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("l2", [0.0, 0.05])
@pytest.mark.parametrize("batch_size", [1, 4])
def test_passes_reuse_buffers_without_carrying_state(rng, l2, batch_size):
    """Successive passes of one SGDPasses, with orders of different lengths,
    step arrays and scalars, and averaging on and off, give exactly the
    results of fresh sgd_pass calls."""
    X, y, center, scale = make_problem(rng, 300, 4, offset=1.0)
    kw = dict(l2=l2, center=center, scale=scale, batch_size=batch_size)
    passes = kernels.SGDPasses(X, y, None, **kw)
    coef, intercept = rng.standard_normal(4), 0.5
    for size, average in [(300, False), (37, True), (300, True), (123, False)]:
        order = rng.permutation(300)[:size]
        n_updates = ceil(size / batch_size)
        steps = stable_steps(X, center, scale, None, n_updates, rng)
        steps = steps if average else float(steps[0])
        got = passes.run(order, coef, intercept, steps, average=average)
        want = sgd_pass(
            X, y, None, order, coef, intercept, steps, average=average, **kw
        )
        for g, e in zip(got, want):
            assert_array_equal(g, e)
        coef, intercept = got.coef, got.intercept


def test_inputs_unchanged_and_deterministic(rng):
    X, y, center, scale = make_problem(rng, 300, 4, offset=1.0)
    sw = rng.uniform(0.5, 1.5, 300)
    order, coef = rng.permutation(300), rng.standard_normal(4)
    steps = stable_steps(X, center, scale, sw, 300, rng)
    arrays = (X, y, sw, order, coef, steps, center, scale)
    copies = [a.copy() for a in arrays]
    for a in arrays:
        a.flags.writeable = False
    kw = dict(l2=0.1, l1=np.full(4, 0.01), center=center, scale=scale)
    first = sgd_pass(X, y, sw, order, coef, 0.5, steps, average=True, **kw)
    second = sgd_pass(X, y, sw, order, coef, 0.5, steps, average=True, **kw)
    for a, c in zip(arrays, copies):
        assert_array_equal(a, c)
    for f, s in zip(first, second):
        assert_array_equal(f, s)


def test_max_row_norm_sq(rng):
    X, _, center, scale = make_problem(rng, 200, 5, offset=1.0)
    X[rng.uniform(size=X.shape) < 0.6] = 0.0
    sw = rng.uniform(0.5, 2.0, 200)
    expected = np.max(sw * np.sum(((X - center) / scale) ** 2, axis=1))
    assert max_row_norm_sq(X, center, scale, sw) == pytest.approx(expected)
    assert max_row_norm_sq(sp.csr_matrix(X), center, scale, sw) == pytest.approx(
        expected
    )


def test_bad_steps_length(rng):
    X, y, _, _ = make_problem(rng, 10, 2)
    with pytest.raises(ValueError, match="one value per mini-batch"):
        sgd_pass(X, y, None, np.arange(10), np.zeros(2), 0.0, np.ones(3))


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 120),
    d=st.integers(1, 9),
    batch_size=st.integers(1, 10),
    block_size=st.integers(1, 40),
    l2=st.sampled_from([0.0, 0.3]),
    seed=st.integers(0, 2**32 - 1),
)
def test_random_shapes_match_loop(n, d, batch_size, block_size, l2, seed):
    rng = np.random.default_rng(seed)
    X, y, center, scale = make_problem(rng, n, d, offset=0.5)
    scale = np.where(scale > 0, scale, 1.0)
    order = rng.integers(0, n, rng.integers(1, 2 * n + 1))
    sw = rng.uniform(0.1, 3.0, n)
    steps = stable_steps(X, center, scale, sw, ceil(order.size / batch_size), rng)
    check_against_loop(
        X, y, sw, order, rng.standard_normal(d), 0.0, steps,
        l2=l2, center=center, scale=scale, batch_size=batch_size,
        block_size=block_size,
    )  # fmt: skip


def test_strong_decay_splits_blocks(rng):
    # steps * l2 near 0.9 make the products of decay factors underflow over a
    # few hundred updates; blocks and chunks are shortened to stay exact.
    X, y, center, scale = make_problem(rng, 900, 4)
    steps = stable_steps(X, center, scale, None, 900, rng)
    l2 = 0.9 / steps.max()
    check_against_loop(
        X, y, None, rng.permutation(900), np.ones(4), 0.0, steps,
        l2=l2, center=center, scale=scale, block_size=400,
    )  # fmt: skip


def whitening(X, center, scale):
    """Upper-triangular R with ``((X - center) / scale) @ R`` white."""
    Z = (X - center) / scale
    chol = np.linalg.cholesky(Z.T @ Z / X.shape[0])
    return np.linalg.inv(chol).T


def correlated_problem(rng, n, d, k=None):
    """Rows with strongly correlated features, so that whitening matters."""
    mix = np.triu(rng.uniform(0.5, 1.5, (d, d)))
    X = rng.standard_normal((n, d)) @ mix + 2.0
    X[rng.uniform(size=X.shape) < 0.3] = 0.0
    shape = (d,) if k is None else (d, k)
    y = X @ rng.standard_normal(shape) + 0.1 * rng.standard_normal((n,) + shape[1:])
    return X, y, X.mean(axis=0), X.std(axis=0)


@pytest.mark.parametrize("layout", ["dense", "csr"])
@pytest.mark.parametrize("batch_size", [1, 3, 64])
@pytest.mark.parametrize("k", [None, 2])
def test_rotation_matches_loop_on_rotated_rows(rng, layout, batch_size, k):
    n, d = 400, 5
    X, y, center, scale = correlated_problem(rng, n, d, k)
    R = whitening(X, center, scale)
    rotated = ((X - center) / scale) @ R
    data = sp.csr_matrix(X) if layout == "csr" else X
    sw = rng.uniform(0.5, 1.5, n)
    order = rng.permutation(n)
    n_updates = ceil(n / batch_size)
    steps = stable_steps(rotated, None, None, sw, n_updates, rng) * batch_size**0.5
    shape = (d,) if k is None else (d, k)
    coef, intercept = rng.standard_normal(shape), np.full(shape[1:], 0.2)
    kw = dict(l2=0.01, batch_size=batch_size)
    got = sgd_pass(
        data, y, sw, order, coef, intercept, steps,
        center=center, scale=scale, rotation=R, average=True, **kw,
    )  # fmt: skip
    want = reference_pass(rotated, y, sw, order, coef, intercept, steps, **kw)
    assert_pass_close(got, want)


def test_rotation_float32_without_intercept(rng):
    X, y, center, scale = correlated_problem(rng, 300, 4)
    X32 = X.astype(np.float32)
    R = whitening(X, center, scale)
    rotated = ((X32.astype(np.float64) - center) / scale) @ R
    order = rng.permutation(300)
    steps = stable_steps(rotated, None, None, None, 300, rng)
    args = (y, None, order, np.zeros(4), 0.0, steps)
    got = sgd_pass(
        X32, *args, center=center, scale=scale, rotation=R, fit_intercept=False,
        average=True,
    )  # fmt: skip
    want = reference_pass(rotated, *args, fit_intercept=False)
    assert_pass_close(got, want)


def test_rotation_errors(rng):
    X, y, _, _ = make_problem(rng, 10, 3)
    args = (y, None, np.arange(10), np.zeros(3), 0.0, np.full(10, 0.01))
    with pytest.raises(ValueError, match=r"shape \(3, 3\)"):
        sgd_pass(X, *args, rotation=np.eye(2))
    wide = sp.random(10, 1200, density=0.01, format="csr", random_state=0)
    wide_args = (y, None, np.arange(10), np.zeros(1200), 0.0, np.full(10, 0.01))
    with pytest.raises(ValueError, match="at most 1000 features"):
        sgd_pass(wide, *wide_args, rotation=np.eye(1200))


@pytest.mark.parametrize("layout", ["dense", "csr", "csr_duplicates"])
@pytest.mark.parametrize("rotated", [False, True])
def test_row_norms_sq(rng, layout, rotated):
    X, _, center, scale = correlated_problem(rng, 250, 6)
    R = whitening(X, center, scale) if rotated else None
    Z = (X - center) / scale
    expected = np.sum((Z if R is None else Z @ R) ** 2, axis=1)
    if layout == "dense":
        data = X
    else:
        data = sp.csr_matrix(X)
        if layout == "csr_duplicates":
            # The same matrix with every stored entry split into two halves.
            data = sp.csr_matrix(
                (
                    np.repeat(data.data / 2, 2),
                    np.repeat(data.indices, 2),
                    2 * data.indptr,
                ),
                shape=X.shape,
            )
            assert not data.has_canonical_format
    before = data.copy()
    got = row_norms_sq(data, center, scale, R)
    assert got.shape == (250,)
    assert_allclose(got, expected, rtol=1e-12)
    if sp.issparse(data):
        assert_array_equal(data.data, before.data)
        assert_array_equal(data.indices, before.indices)
    assert max_row_norm_sq(data, center, scale, rotation=R) == pytest.approx(
        expected.max()
    )


def test_row_norms_sq_defaults(rng):
    X, _, _, _ = make_problem(rng, 50, 3)
    assert_allclose(row_norms_sq(X), np.sum(X**2, axis=1), rtol=1e-12)
    assert row_norms_sq(np.empty((0, 3))).shape == (0,)


@pytest.mark.parametrize("layout", ["C", "F", "csr"])
@pytest.mark.parametrize("batch_size", [1, 4, 32])
@pytest.mark.parametrize("l2", [0.0, 0.02])
@pytest.mark.parametrize("k", [None, 2])
def test_prepared_rows_match_loop(rng, layout, batch_size, l2, k):
    X, y, center, scale = correlated_problem(rng, 300, 5, k)
    X[rng.uniform(size=X.shape) < 0.3] = 0.0
    R = whitening(X, center, scale)
    rotated = ((X - center) / scale) @ R
    data = sp.csr_matrix(X) if layout == "csr" else np.asarray(X, order=layout)
    rows = internal_rows(data, y, center, scale, R)
    assert rows.flags.c_contiguous and rows.dtype == np.float64
    assert_allclose(rows[:, :5], rotated, rtol=1e-12, atol=1e-12)
    assert_array_equal(rows[:, 5], 1.0)
    assert_array_equal(rows[:, 6:], -np.reshape(y, (300, -1)))

    sw = rng.uniform(0.5, 1.5, 300)
    order = rng.permutation(300)
    steps = stable_steps(rotated, None, None, sw, ceil(300 / batch_size), rng)
    shape = (5,) if k is None else (5, k)
    coef, intercept = rng.standard_normal(shape), np.full(shape[1:], 0.2)
    kw = dict(l2=l2, batch_size=batch_size)
    got = sgd_pass(
        data, y, sw, order, coef, intercept, steps, center=center, scale=scale,
        rotation=R, average=True, rows=rows, **kw,
    )  # fmt: skip
    want = reference_pass(rotated, y, sw, order, coef, intercept, steps, **kw)
    assert_pass_close(got, want)


def test_prepared_rows_errors(rng):
    X, y, _, _ = make_problem(rng, 10, 3)
    args = (y, None, np.arange(10), np.zeros(3), 0.0, 0.01)
    with pytest.raises(ValueError, match=r"rows must be internal_rows.*\(10, 5\)"):
        sgd_pass(X, *args, rows=np.zeros((10, 4)))
    wide = sp.random(10, 1200, density=0.01, format="csr", random_state=0)
    with pytest.raises(ValueError, match="at most 1000 features"):
        internal_rows(wide, y)


@pytest.mark.parametrize("batch_size", [1, 3])
@pytest.mark.parametrize("l2", [0.0, 0.05])
def test_scalar_steps_equal_constant_array(rng, batch_size, l2):
    X, y, center, scale = make_problem(rng, 301, 4, offset=2.0)
    sw = rng.uniform(0.5, 1.5, 301)
    order = rng.permutation(301)
    eta = float(stable_steps(X, center, scale, sw, 1, rng)[0])
    kw = dict(l2=l2, center=center, scale=scale, batch_size=batch_size, average=True)
    scalar = sgd_pass(X, y, sw, order, np.zeros(4), 0.0, eta, **kw)
    array = sgd_pass(
        X, y, sw, order, np.zeros(4), 0.0, np.full(ceil(301 / batch_size), eta), **kw
    )
    for a, b in zip(scalar, array):
        assert_array_equal(a, b)
    with pytest.raises(ValueError, match="steps must be positive"):
        sgd_pass(X, y, sw, order, np.zeros(4), 0.0, 0.0, **kw)


@pytest.mark.parametrize("layout", ["dense", "csr"])
@pytest.mark.parametrize("batch_size", [1, 3, 32])
@pytest.mark.parametrize("k", [None, 2])
@pytest.mark.parametrize("prepared", [False, True])
def test_per_coordinate_l2_matches_loop(rng, layout, batch_size, k, prepared):
    X, y, center, scale = correlated_problem(rng, 350, 5, k)
    data = sp.csr_matrix(X) if layout == "csr" else X
    l2 = np.array([0.0, 0.01, 0.3, 0.05, 0.0])
    sw = rng.uniform(0.5, 1.5, 350)
    order = rng.permutation(350)
    n_updates = ceil(350 / batch_size)
    steps = stable_steps(X, center, scale, sw, n_updates, rng) * batch_size**0.5
    shape = (5,) if k is None else (5, k)
    coef, intercept = rng.standard_normal(shape), np.full(shape[1:], 0.2)
    kw = dict(l2=l2, center=center, scale=scale, batch_size=batch_size)
    rows = internal_rows(data, y, center, scale) if prepared else None
    got = sgd_pass(
        data, y, sw, order, coef, intercept, steps, average=True, rows=rows, **kw
    )
    want = reference_pass(X, y, sw, order, coef, intercept, steps, **kw)
    assert_pass_close(got, want)


@pytest.mark.parametrize("batch_size", [1, 4])
def test_per_coordinate_l2_with_l1_matches_blocked_loop(rng, batch_size):
    X, y, center, scale = make_problem(rng, 300, 4, offset=1.0)
    l2 = np.array([0.02, 0.0, 0.1, 0.04])
    l1 = np.array([0.01, 0.05, 0.0, 0.02])
    steps = stable_steps(X, center, scale, None, ceil(300 / batch_size), rng)
    check_against_loop(
        X, y, None, rng.permutation(300), np.zeros(4), 0.0, steps,
        l2=l2, l1=l1, center=center, scale=scale, batch_size=batch_size,
        block_size=24,
    )  # fmt: skip


def test_equal_per_coordinate_l2_is_the_scalar_pass(rng):
    X, y, center, scale = make_problem(rng, 200, 3, offset=2.0)
    args = (X, y, None, rng.permutation(200), np.zeros(3), 0.0, 0.01)
    kw = dict(center=center, scale=scale, average=True)
    vector = sgd_pass(*args, l2=np.full(3, 0.05), **kw)
    scalar = sgd_pass(*args, l2=0.05, **kw)
    for a, b in zip(vector, scalar):
        assert_array_equal(a, b)


def test_per_coordinate_l2_errors(rng):
    X, y, _, _ = make_problem(rng, 10, 3)
    args = (y, None, np.arange(10), np.zeros(3), 0.0, 0.01)
    with pytest.raises(ValueError, match=r"l2 must be a float or have shape \(3,\)"):
        sgd_pass(X, *args, l2=np.ones(2))
    with pytest.raises(ValueError, match="non-negative"):
        sgd_pass(X, *args, l2=np.array([0.1, -0.1, 0.0]))
    wide = sp.random(10, 1200, density=0.01, format="csr", random_state=0)
    l2 = np.linspace(0, 0.1, 1200)
    with pytest.raises(ValueError, match="per-coordinate l2 needs dense X"):
        sgd_pass(wide, y, None, np.arange(10), np.zeros(1200), 0.0, 0.01, l2=l2)


@pytest.mark.parametrize("batch_size", [1, 5])
def test_general_rotation_with_per_coordinate_l2_matches_loop(rng, batch_size):
    X, y, center, scale = correlated_problem(rng, 300, 4)
    Q = np.linalg.qr(rng.standard_normal((4, 4)))[0] * rng.uniform(0.5, 2.0, 4)
    rotated = ((X - center) / scale) @ Q
    l2 = np.array([0.3, 0.0, 0.02, 0.1])
    sw = rng.uniform(0.5, 1.5, 300)
    order = rng.permutation(300)
    steps = stable_steps(rotated, None, None, sw, ceil(300 / batch_size), rng)
    kw = dict(l2=l2, batch_size=batch_size)
    got = sgd_pass(
        X, y, sw, order, np.zeros(4), 0.1, steps, center=center, scale=scale,
        rotation=Q, average=True, **kw,
    )  # fmt: skip
    want = reference_pass(rotated, y, sw, order, np.zeros(4), 0.1, steps, **kw)
    assert_pass_close(got, want)


def test_decay_factors_rounding_to_one(rng):
    # A positive l2 whose products with the steps vanish next to one.
    X, y, _, _ = make_problem(rng, 50, 2)
    args = (X, y, None, rng.permutation(50), np.zeros(2), 0.0, 1e-3)
    decayed = sgd_pass(*args, l2=1e-20)
    plain = sgd_pass(*args, l2=0.0)
    assert_array_equal(decayed.coef, plain.coef)


@pytest.fixture
def product_calls(monkeypatch):
    """Count the chunks run as products of the blocks' matrices."""
    calls = []
    run = kernels._affine_blocks

    def counted(*args, **kwargs):
        calls.append(args[1].shape[0])
        return run(*args, **kwargs)

    monkeypatch.setattr(kernels, "_affine_blocks", counted)
    return calls


@pytest.mark.parametrize("batch_size", [9, 16, 64])
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("l2", ["none", "scalar", "per-coordinate"])
@pytest.mark.parametrize("k", [None, 2])
@pytest.mark.parametrize("prepared", [False, True])
def test_product_blocks_match_loop(
    rng, product_calls, batch_size, fit_intercept, l2, k, prepared
):
    # Without sample weights, blocks of one mini-batch over few features run
    # as products of small matrices (from 8 rows per mini-batch on); 41
    # updates make groups of blocks and a last, shorter mini-batch.
    n, d = 40 * batch_size + 7, 6
    X, y, center, scale = make_problem(rng, n, d, k, offset=2.0)
    strengths = {"none": 0.0, "scalar": 0.05, "per-coordinate": np.linspace(0, 0.2, d)}
    order = rng.permutation(n)
    steps = stable_steps(X, center, scale, None, ceil(n / batch_size), rng)
    shape = (d,) if k is None else (d, k)
    coef, intercept = rng.standard_normal(shape), np.full(shape[1:], 0.3)
    rows = internal_rows(X, y, center, scale) if prepared else None
    args = (X, y, None, order, coef, intercept, steps * batch_size**0.5)
    kw = dict(
        l2=strengths[l2], center=center, scale=scale,
        fit_intercept=fit_intercept, batch_size=batch_size,
    )  # fmt: skip
    got = sgd_pass(*args, average=True, rows=rows, **kw)
    assert_pass_close(got, reference_pass(*args, **kw))
    assert product_calls


@pytest.mark.parametrize("eta", ["constant", "varying"])
def test_product_blocks_across_chunks(rng, product_calls, monkeypatch, eta):
    # Small chunks split the pass into several, whose block counts are not
    # multiples of their group sizes; one step for every update scales the
    # matrices by one factor.
    monkeypatch.setattr(kernels, "_PRODUCTS_CHUNK_BYTES", 40_000)
    n, d, m = 3000, 3, 16
    X, y, center, scale = make_problem(rng, n, d, offset=1.0)
    steps = stable_steps(X, center, scale, None, ceil(n / m), rng) * m**0.5
    if eta == "constant":
        steps = np.full(steps.size, steps.min())
    args = (X, y, None, rng.permutation(n), np.zeros(d), 0.0, steps)
    kw = dict(l2=0.01, center=center, scale=scale, batch_size=m)
    rows = internal_rows(X, y, center, scale)
    got = sgd_pass(*args, average=True, rows=rows, **kw)
    assert_pass_close(got, reference_pass(*args, **kw))
    assert len(product_calls) > 3 and len(set(product_calls)) > 1


def test_product_blocks_only_where_they_pay(rng, product_calls):
    # Many features, sample weights or L1 keep the loop over the blocks.
    X, y, center, scale = make_problem(rng, 640, 40)
    steps = stable_steps(X, center, scale, None, 10, rng)
    args = (X, y, None, rng.permutation(640), np.zeros(40), 0.0, steps)
    sgd_pass(*args, center=center, scale=scale, batch_size=64)
    assert not product_calls
    small = (X[:, :4], y, None, args[3], np.zeros(4), 0.0, steps)
    sgd_pass(*small, batch_size=64, l1=np.full(4, 0.01))
    sgd_pass(small[0], y, np.ones(640), *small[3:], batch_size=64)
    assert not product_calls
    sgd_pass(*small, batch_size=64)
    assert product_calls


@pytest.fixture
def chunk_calls(monkeypatch):
    """Record the ``(start, stop, n_blocks, block)`` of every chunk run."""
    calls = []
    run = kernels._run_chunk

    def recorded(*args):
        calls.append(args[3:])
        return run(*args)

    monkeypatch.setattr(kernels, "_run_chunk", recorded)
    return calls


@pytest.mark.parametrize(
    ("batch_size", "block_size"), [(1, 8), (3, 12), (4, None), (9, None)]
)
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("k", [None, 2])
@pytest.mark.parametrize("l2", [0.0, 0.05])
@pytest.mark.parametrize("prepared", [False, True])
def test_padded_last_block_matches_loop(
    rng, chunk_calls, batch_size, block_size, fit_intercept, k, l2, prepared
):
    # The rows after the last full block run as one more block of the last
    # chunk, padded with rows of zeros; every length of that tail, whole
    # mini-batches or not, with blocks of several mini-batches (a triangular
    # solve per block) or of one (products of matrices).
    block = block_size or {4: 64, 9: 9}[batch_size]
    d = 4
    shape = (d,) if k is None else (d, k)
    for tail in range(block):
        n = 2 * block + tail
        X, y, center, scale = make_problem(rng, n, d, k, offset=1.0)
        steps = stable_steps(X, center, scale, None, ceil(n / batch_size), rng)
        if tail % 2:
            steps = float(steps.min())
        args = (X, y, None, rng.permutation(n), rng.standard_normal(shape),
                np.full(shape[1:], 0.2), steps)  # fmt: skip
        kw = dict(
            l2=l2, center=center, scale=scale, fit_intercept=fit_intercept,
            batch_size=batch_size, block_size=block_size,
        )  # fmt: skip
        rows = internal_rows(X, y, center, scale) if prepared else None
        chunk_calls.clear()
        got = sgd_pass(*args, average=True, rows=rows, **kw)
        assert chunk_calls == [(0, n, 2 + (tail > 0), block)]
        n_updates = ceil(n / batch_size)
        steps = np.full(n_updates, steps) if np.ndim(steps) == 0 else steps
        assert_pass_close(got, reference_pass(*args[:-1], steps, **kw))


@pytest.mark.parametrize("batch_size", [1, 3])
@pytest.mark.parametrize("layout", ["dense", "csr"])
def test_padded_last_block_with_weights(rng, chunk_calls, batch_size, layout):
    X, y, center, scale = make_problem(rng, 2 * 24 + 17, 3, offset=1.0)
    n = X.shape[0]
    data = sp.csr_matrix(X) if layout == "csr" else X
    sw = rng.uniform(0.0, 2.0, n)
    sw[rng.permutation(n)[:5]] = 0.0
    steps = stable_steps(X, center, scale, sw, ceil(n / batch_size), rng)
    args = (data, y, sw, rng.permutation(n), np.zeros(3), 0.1, steps)
    kw = dict(center=center, scale=scale, batch_size=batch_size, block_size=24)
    check_against_loop(*args, **kw)
    assert chunk_calls == [(0, n, 3, 24)]


@pytest.mark.parametrize(
    ("n", "chunks"), [(95, [(0, 95, 3, 40)]), (115, [(0, 80, 2, 40), (80, 115, 1, 35)])]
)
def test_decay_keeps_leftover_rows_apart_when_it_would_underflow(
    rng, chunk_calls, n, chunks
):
    # Products of decay factors stay representable over at most 100 updates:
    # a chunk holds two blocks of 40, and the leftover rows join it only
    # while the chunk stays within 100 updates.
    X, y, center, scale = make_problem(rng, n, 3)
    eta = float(stable_steps(X, center, scale, None, 1, rng)[0])
    factor = np.exp(kernels._LOG_TINY / 100.5)
    steps = np.full(n, eta)
    check_against_loop(
        X, y, None, rng.permutation(n), np.ones(3), 0.5, steps,
        l2=(1.0 - factor) / eta, center=center, scale=scale, block_size=40,
    )  # fmt: skip
    assert chunk_calls == chunks
