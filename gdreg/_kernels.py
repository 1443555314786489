"""Vectorised update kernels for stochastic gradient descent on squared loss.

The kernels run one pass of textbook (mini-batch) SGD over rows of ``X`` in a
given order and return the same iterates as a plain loop over the updates, up
to rounding, while doing the work in blocks of consecutive updates with a few
dense linear-algebra calls per block.
"""

from math import ceil, log
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
from scipy.linalg import blas

_CHUNK_BYTES = 1 << 20
_LOG_TINY = log(1e-150)
_SPARSE_DENSE_MAX_FEATURES = 1000


class SGDPassResult(NamedTuple):
    """Weights after one pass and the sums a caller needs.

    Attributes
    ----------
    coef : ndarray of shape (n_features,) or (n_features, n_targets)
        Coefficients after the last update, in the internal scaled space.

    intercept : float or ndarray of shape (n_targets,)
        Intercept after the last update.

    sq_loss : float
        Sum over the rows of the pass of ``s_i * r_i**2`` (summed over
        targets), each residual taken with the weights at the start of the
        row's mini-batch: the progressive training loss.

    coef_sum : ndarray or None
        Sum over the updates of the coefficients after each update, or None
        unless ``average=True``.

    intercept_sum : float, ndarray or None
        Sum over the updates of the intercept after each update, or None
        unless ``average=True``.
    """

    coef: np.ndarray
    intercept: np.ndarray | float
    sq_loss: float
    coef_sum: np.ndarray | None
    intercept_sum: np.ndarray | float | None


def sgd_pass(
    X,
    y: np.ndarray,
    sample_weight: np.ndarray | None,
    order: np.ndarray,
    coef: np.ndarray,
    intercept: np.ndarray | float,
    steps: np.ndarray,
    *,
    l2: float = 0.0,
    l1: np.ndarray | None = None,
    center: np.ndarray | None = None,
    scale: np.ndarray | None = None,
    fit_intercept: bool = True,
    batch_size: int = 1,
    average: bool = False,
    block_size: int | None = None,
) -> SGDPassResult:
    """Run one pass of mini-batch SGD on squared loss, in blocks.

    Parameters
    ----------
    X : {ndarray, sparse matrix} of shape (n_samples, n_features)
        Training data in the user's units: a dense float32 or float64 array
        (C or F order) or a CSR matrix. It is neither modified nor copied;
        rows are gathered a chunk at a time.

    y : ndarray of shape (n_samples,) or (n_samples, n_targets)
        Targets. Several targets share the rows and the steps.

    sample_weight : ndarray of shape (n_samples,) or None
        Per-row step multipliers ``s_i`` (normalised by the caller, usually
        to mean one); None means all ones.

    order : ndarray of int
        Row indices visited by this pass, in order; any index array.

    coef : ndarray of shape (n_features,) or (n_features, n_targets)
        Coefficients at the start of the pass, in the internal space. Not
        modified.

    intercept : float or ndarray of shape (n_targets,)
        Intercept at the start of the pass.

    steps : ndarray of shape (n_updates,)
        One step size per mini-batch, ``n_updates = ceil(len(order) /
        batch_size)``.

    l2 : float, default=0.0
        L2 strength in the internal space; every ``steps[k] * l2`` must be
        below one.

    l1 : ndarray of shape (n_features,) or None, default=None
        Per-coordinate L1 strengths, applied by a proximal step at the end of
        each block (see Notes).

    center : ndarray of shape (n_features,) or None, default=None
        Offsets subtracted from the rows; None means zero.

    scale : ndarray of shape (n_features,) or None, default=None
        Positive divisors applied after centring; None means one.

    fit_intercept : bool, default=True
        Whether the intercept is updated. It enters the predictions either
        way.

    batch_size : int, default=1
        Rows per update; the last mini-batch of the pass may be shorter.

    average : bool, default=False
        Whether to return the sums of the iterates after every update.

    block_size : int or None, default=None
        Rows per block (rounded to a multiple of ``batch_size``); None picks
        it from the shape. Exposed so tests can place the L1 steps.

    Returns
    -------
    result : SGDPassResult
        The weights after the pass, the progressive squared loss and, with
        ``average=True``, the sums of the iterates.

    Notes
    -----
    With ``z_i = (x_i - center) / scale`` and the weights ``(w, b)`` at the
    start of mini-batch ``k`` (rows ``R_k``, ``m_k`` of them, step
    ``eta_k``), the update is

    .. math::

        r_i = z_i^T w + b - y_i, \\quad
        w \\leftarrow (1 - \\eta_k \\lambda_2) w
            - \\frac{\\eta_k}{m_k} \\sum_{i \\in R_k} s_i r_i z_i, \\quad
        b \\leftarrow b - \\frac{\\eta_k}{m_k} \\sum_{i \\in R_k} s_i r_i.

    A block of consecutive updates is computed at once. Write ``g_j =
    eta s_j / m`` for row ``j``, ``c_t`` for the product of the decay factors
    ``1 - eta lambda_2`` of the mini-batches before row ``t``'s, counted from
    a reference point, and ``c'_j`` for the same product including row
    ``j``'s own mini-batch. Unrolling the updates gives the residuals of the
    block as the solution of a unit lower-triangular system

    .. math::

        r_t + \\sum_{j \\prec t} \\left(\\frac{c_t}{c'_j} z_t^T z_j
            + k\\right) g_j r_j = c_t z_t^T \\hat w + b - y_t,

    where ``j < t`` runs over rows of earlier mini-batches only, ``k`` is one
    when the intercept is fitted, and ``w = c \\hat w``. Afterwards
    ``\\hat w \\leftarrow \\hat w - \\sum_j (g_j / c'_j) r_j z_j`` and ``b
    \\leftarrow b - k \\sum_j g_j r_j``. The matrix is the product of the
    block's rows scaled by ``c_t`` and by ``g_j / c'_j``, formed for many
    blocks in one batched product; forward substitution does the same
    dependent arithmetic as the loop, so the iterates agree to rounding.

    The iterate after update ``a`` of a block is ``c'_a (\\hat w_0 -
    \\sum_{a(j) \\le a} (g_j / c'_j) r_j z_j)``, so the sum over the block's
    updates is ``(\\sum_a c'_a) \\hat w_0 - \\sum_j q_j (g_j / c'_j) r_j z_j``
    with ``q_j = \\sum_{a \\ge a(j)} c'_a``; for the intercept the weights are
    the number of updates from row ``j``'s on. Both take one product per
    chunk of rows.

    L1 is not linear, so exactness cannot hold: with ``l1`` the coefficients
    are soft-thresholded by ``(sum of the block's steps) * l1`` after each
    block. The iterates are those of a blocked proximal variant, not of
    per-sample proximal SGD; inside a block the averaging sums use the
    iterates before thresholding except for the block's last one.

    Momentum does not fit the triangular form as written (each update then
    depends on two earlier iterates); a caller that needs it must run
    ``batch_size``-row updates one at a time.
    """
    data = _prepare(
        X, y, sample_weight, order, coef, intercept, steps,
        l2, l1, center, scale, fit_intercept, batch_size, block_size,
    )  # fmt: skip
    state = _PassState(data, coef, intercept, average)
    for start, stop, n_blocks, block in _chunks(data):
        _run_chunk(data, state, start, stop, n_blocks, block)
    return state.result(data, y, coef, intercept)


def max_row_norm_sq(
    X,
    center: np.ndarray | None = None,
    scale: np.ndarray | None = None,
    sample_weight: np.ndarray | None = None,
) -> float:
    """Largest weighted squared row norm in the internal space.

    Parameters
    ----------
    X : {ndarray, sparse matrix} of shape (n_samples, n_features)
        Dense array or CSR matrix in the user's units; not copied.

    center : ndarray of shape (n_features,) or None, default=None
        Offsets subtracted from the rows; None means zero.

    scale : ndarray of shape (n_features,) or None, default=None
        Divisors applied after centring; None means one.

    sample_weight : ndarray of shape (n_samples,) or None, default=None
        Row multipliers ``s_i``; None means all ones.

    Returns
    -------
    value : float
        ``max_i s_i * |(x_i - center) / scale|**2`` (0.0 for no rows). A
        per-row step ``eta`` is stable when ``eta * s_i * (|z_i|**2 + k) <
        2`` with ``k`` one when the intercept is fitted.
    """
    n, d = X.shape
    center = np.zeros(d) if center is None else np.asarray(center, np.float64)
    scale = np.ones(d) if scale is None else np.asarray(scale, np.float64)
    if sp.issparse(X):
        norms = _sparse_row_norms_sq(sp.csr_matrix(X), center, scale)
    else:
        norms = _dense_row_norms_sq(X, center, scale)
    if sample_weight is not None:
        norms = norms * np.asarray(sample_weight, np.float64)
    return float(norms.max()) if n else 0.0


def _dense_row_norms_sq(X, center: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Squared norms of the centred, scaled rows of dense X, a chunk at a time."""
    n, d = X.shape
    step = max(1, _CHUNK_BYTES // (8 * max(d, 1)))
    norms = np.empty(n)
    for start in range(0, n, step):
        Z = (X[start : start + step] - center) / scale
        norms[start : start + step] = np.einsum("ij,ij->i", Z, Z)
    return norms


def _sparse_row_norms_sq(X, center: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Squared norms of centred, scaled CSR rows without densifying.

    Each stored entry contributes ``((x - c) / s)**2 - (c / s)**2`` and every
    row gets ``|c / s|**2``; no large terms cancel.
    """
    X.sum_duplicates()
    cols = X.indices
    stored = ((X.data - center[cols]) / scale[cols]) ** 2 - (center / scale)[cols] ** 2
    rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
    base = float(np.sum((center / scale) ** 2))
    norms = np.bincount(rows, weights=stored, minlength=X.shape[0]) + base
    return np.maximum(norms, 0.0)


class _PassData(NamedTuple):
    """Inputs of a pass in the forms the chunk solver uses."""

    X: object
    Y: np.ndarray
    order: np.ndarray
    g: np.ndarray
    decay: np.ndarray
    steps: np.ndarray
    center: np.ndarray
    scale: np.ndarray
    l1: np.ndarray | None
    sparse_blocks: bool
    fit_intercept: bool
    batch_size: int
    block: int


def _prepare(
    X, y, sample_weight, order, coef, intercept, steps,
    l2, l1, center, scale, fit_intercept, batch_size, block_size,
) -> _PassData:  # fmt: skip
    """Check shapes and precompute per-row step factors for a pass."""
    n, d = X.shape
    order = np.asarray(order, dtype=np.intp)
    steps = np.asarray(steps, dtype=np.float64).ravel()
    m = int(batch_size)
    n_updates = ceil(len(order) / m)
    if m < 1:
        raise ValueError(f"batch_size must be a positive integer; got {m}.")
    if steps.shape[0] != n_updates:
        raise ValueError(
            f"steps must hold one value per mini-batch ({n_updates}); "
            f"got {steps.shape[0]}."
        )
    decay = 1.0 - steps * float(l2)
    if l2 and np.any(decay <= 0.0):
        raise ValueError("every steps[k] * l2 must be below 1.")

    Y = np.asarray(y).reshape(n, -1)
    s = np.ones(len(order)) if sample_weight is None else sample_weight[order]
    batch = np.arange(len(order)) // m
    sizes = np.full(n_updates, float(m))
    if n_updates:
        sizes[-1] = len(order) - (n_updates - 1) * m
    g = (steps / sizes)[batch] * s

    sparse = sp.issparse(X)
    sparse_blocks = sparse and d > _SPARSE_DENSE_MAX_FEATURES
    block = _block_length(d, m, sparse_blocks) if block_size is None else block_size
    block = max(m, block // m * m)
    block = _limit_block(block, m, decay)
    return _PassData(
        X=sp.csr_matrix(X) if sparse else X,
        Y=Y,
        order=order,
        g=g,
        decay=decay,
        steps=steps,
        center=np.zeros(d) if center is None else np.asarray(center, np.float64),
        scale=np.ones(d) if scale is None else np.asarray(scale, np.float64),
        l1=None if l1 is None else np.asarray(l1, np.float64),
        sparse_blocks=sparse_blocks,
        fit_intercept=bool(fit_intercept),
        batch_size=m,
        block=block,
    )


def _block_length(n_features: int, batch_size: int, sparse: bool) -> int:
    """Rows per block, from timings of the dense kernel on two cores."""
    if sparse:
        return max(batch_size, 64 // batch_size * batch_size)
    if batch_size == 1:
        return 48 if n_features <= 20 else 64
    if batch_size >= 16:
        return batch_size
    return max(batch_size, 64 // batch_size * batch_size)


def _limit_block(block: int, m: int, decay: np.ndarray) -> int:
    """Shrink a block so that its product of decay factors stays representable."""
    if decay.size == 0 or decay.min() >= 1.0:
        return block
    per_update = -log(float(decay.min()))
    max_updates = max(1, int(-_LOG_TINY / per_update))
    return min(block, max_updates * m)


def _chunks(data: _PassData):
    """Yield (start, stop, n_blocks, block) row ranges of equal blocks.

    A chunk holds as many blocks as fit in about a megabyte of gathered rows,
    fewer if the product of decay factors over the chunk would underflow; the
    rows left after the last full block form a chunk of their own.
    """
    n_rows = len(data.order)
    m, block = data.batch_size, data.block
    d, k = data.X.shape[1], data.Y.shape[1]
    per_chunk = max(1, _CHUNK_BYTES // (8 * block * (2 * d + 2 + k + block)))
    log_decay = np.concatenate([[0.0], np.cumsum(np.log(data.decay))])
    start = 0
    while n_rows - start >= block:
        n_blocks = min(per_chunk, (n_rows - start) // block)
        first = start // m
        lasts = first + np.arange(1, n_blocks + 1) * (block // m)
        fits = log_decay[lasts] - log_decay[first] >= _LOG_TINY
        n_blocks = max(1, int(np.count_nonzero(fits)))
        yield start, start + n_blocks * block, n_blocks, block
        start += n_blocks * block
    if start < n_rows:
        yield start, n_rows, 1, n_rows - start


class _PassState:
    """Weights carried from chunk to chunk, with the running sums."""

    def __init__(self, data: _PassData, coef, intercept, average: bool):
        d, k = data.X.shape[1], data.Y.shape[1]
        self.w = np.zeros((d + 1 + k, k))
        self.w[:d] = np.asarray(coef, np.float64).reshape(d, k)
        self.w[d] = np.asarray(intercept, np.float64).reshape(k)
        self.w[d + 1 :] = np.eye(k)
        self.sq_loss = 0.0
        self.sums = np.zeros((d + 1, k)) if average else None

    def result(self, data: _PassData, y, coef, intercept) -> SGDPassResult:
        """Package the weights in the shapes the caller passed."""
        d = data.X.shape[1]
        vector = np.ndim(y) == 1
        coef_out = self.w[:d, 0].copy() if vector else self.w[:d].copy()
        b = self.w[d, 0] if vector else self.w[d].copy()
        if np.ndim(intercept) == 0 and vector:
            b = float(b)
        sums = (None, None)
        if self.sums is not None:
            c_sum = self.sums[:d, 0].copy() if vector else self.sums[:d].copy()
            b_sum = float(self.sums[d, 0]) if vector else self.sums[d].copy()
            sums = (c_sum, b_sum)
        return SGDPassResult(coef_out, b, float(self.sq_loss), *sums)


def _run_chunk(
    data: _PassData, state: _PassState, start: int, stop: int, n_blocks: int, block: int
) -> None:
    """Apply the updates of rows start:stop (whole blocks) to the state."""
    plan = _chunk_plan(data, start, stop, n_blocks, block)
    idx = data.order[start:stop]
    if data.sparse_blocks:
        from gdreg._kernels_sparse import run_sparse_chunk  # noqa: F401

    Zl, Zr = _chunk_rows(data, idx, plan)
    coupled = plan.n_batches_per_block > 1
    P = _block_products(Zl, Zr, n_blocks, block, data.batch_size) if coupled else None
    R = _solve_blocks(state.w, Zl, Zr, P, n_blocks, block, plan, data, state)

    s = np.ones(len(idx)) if data.g is None else None
    del s
    weights = plan.row_weight
    state.sq_loss += float(np.einsum("i,ij,ij->", weights, R, R))
    if state.sums is not None:
        _add_block_sums(state, Zr, R, plan, n_blocks, block)
    d = data.X.shape[1]
    state.w[:d] *= plan.chunk_decay


class _ChunkPlan(NamedTuple):
    """Per-row and per-block factors of one chunk."""

    row_decay: np.ndarray
    row_gain: np.ndarray
    row_weight: np.ndarray
    block_decay: np.ndarray
    threshold: np.ndarray | None
    n_batches_per_block: int
    chunk_decay: float
    avg_rows: np.ndarray | None
    avg_rows_b: np.ndarray | None
    avg_blocks: np.ndarray | None
    avg_blocks_b: np.ndarray | None


def _chunk_plan(data: _PassData, start, stop, n_blocks, block) -> _ChunkPlan:
    """Decay products, row gains and averaging weights for rows start:stop."""
    m = data.batch_size
    first, last = start // m, ceil(stop / m)
    f = data.decay[first:last]
    after = np.cumprod(f)
    before = np.concatenate([[1.0], after[:-1]])
    batch = np.arange(start, stop) // m - first
    ...
