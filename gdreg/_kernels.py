"""Vectorised update kernels for stochastic gradient descent on squared loss.

One pass of textbook (mini-batch) SGD over the rows of ``X`` in a given order
is computed in blocks of consecutive updates, with a few dense linear-algebra
calls per block, and gives the iterates of a plain loop up to rounding.
"""

from math import ceil, log
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
from scipy.linalg import blas, solve_triangular

_CHUNK_BYTES = 1 << 21
_LOG_TINY = log(1e-150)
_DENSE_BLOCKS_MAX_FEATURES = 1000
_PRODUCTS_MAX_WIDTH = 18
_PRODUCTS_MAX_WORK = 12288
_PRODUCTS_CHUNK_BYTES = 1 << 22


class SGDPassResult(NamedTuple):
    """Weights after one pass and the sums a caller needs.

    Attributes
    ----------
    coef : ndarray of shape (n_features,) or (n_features, n_targets)
        Coefficients after the last update, in the internal scaled space.

    intercept : float or ndarray of shape (n_targets,)
        Intercept after the last update.

    sq_loss : float
        Sum over the rows of the pass of ``s_i * r_i**2`` (and over the
        targets), each residual taken with the weights at the start of the
        row's mini-batch: the progressive training loss.

    coef_sum : ndarray or None
        Sum over the updates of the pass of the coefficients after each
        update; None unless ``average=True``.

    intercept_sum : float, ndarray or None
        Sum over the updates of the intercept after each update; None unless
        ``average=True``.
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
    steps: np.ndarray | float,
    *,
    l2: float | np.ndarray = 0.0,
    l1: np.ndarray | None = None,
    center: np.ndarray | None = None,
    scale: np.ndarray | None = None,
    fit_intercept: bool = True,
    batch_size: int = 1,
    average: bool = False,
    block_size: int | None = None,
    rotation: np.ndarray | None = None,
    rows: np.ndarray | None = None,
) -> SGDPassResult:
    """Run one pass of mini-batch SGD on squared loss, in exact blocks.

    Parameters
    ----------
    X : {ndarray, sparse matrix} of shape (n_samples, n_features)
        Training data in the user's units: a dense float32 or float64 array
        in C or F order, or a CSR matrix. It is neither modified nor copied;
        rows are gathered a chunk at a time.

    y : ndarray of shape (n_samples,) or (n_samples, n_targets)
        Targets. Several targets share the rows and the steps.

    sample_weight : ndarray of shape (n_samples,) or None
        Per-row step multipliers ``s_i`` (the caller normalises them, usually
        to mean one); None means all ones.

    order : ndarray of int
        Row indices visited by this pass, in order: a permutation or any
        index array.

    coef : ndarray of shape (n_features,) or (n_features, n_targets)
        Coefficients at the start of the pass, in the internal space. Not
        modified.

    intercept : float or ndarray of shape (n_targets,)
        Intercept at the start of the pass.

    steps : float or ndarray of shape (n_updates,)
        One step size per mini-batch, ``n_updates = ceil(len(order) /
        batch_size)``, or one float for all of them.

    l2 : float or ndarray of shape (n_features,), default=0.0
        L2 strength in the internal space, one for all coordinates or one per
        coordinate (not for CSR X with more than 1000 features); every
        ``steps[k] * l2`` must be below one.

    l1 : ndarray of shape (n_features,) or None, default=None
        Per-coordinate L1 strengths, applied by a proximal step after each
        block (see Notes).

    center : ndarray of shape (n_features,) or None, default=None
        Offsets subtracted from the rows; None means zero.

    scale : ndarray of shape (n_features,) or None, default=None
        Positive divisors applied after centring; None means one.

    fit_intercept : bool, default=True
        Whether the intercept is updated; it enters the predictions either
        way.

    batch_size : int, default=1
        Rows per update; the last mini-batch of the pass may be shorter.

    average : bool, default=False
        Whether to return the sums of the iterates after every update.

    block_size : int or None, default=None
        Rows per block, rounded down to a multiple of ``batch_size``; None
        picks it from the shape. It only changes rounding, except with
        ``l1`` where it sets where the thresholding happens.

    rotation : ndarray of shape (n_features, n_features) or None, default=None
        Square matrix ``R`` applied to the centred, scaled rows,
        ``z_i = ((x_i - center) / scale) @ R``; ``coef`` and the result are
        then in the rotated space. Dense X, or CSR with at most 1000
        features (densified a chunk at a time).

    rows : ndarray of shape (n_samples, n_features + 1 + n_targets) or None, \
            default=None
        The rows of ``X`` already in the internal space, as returned by
        :func:`internal_rows` for the same ``X``, ``y``, ``center``,
        ``scale`` and ``rotation``. A caller making several passes over the
        same data builds it once; each pass then only gathers its rows. Dense
        X, or CSR with at most 1000 features.

    Returns
    -------
    result : SGDPassResult
        The weights after the pass (float64), the progressive squared loss
        and, with ``average=True``, the sums of the iterates.

    Notes
    -----
    With ``z_i = (x_i - center) / scale`` (times ``R`` with a rotation) and
    the weights ``(w, b)`` at the
    start of mini-batch ``k`` (rows ``R_k``, ``m_k`` of them, step
    ``eta_k``), one update is

    .. math::

        r_i = z_i^T w + b - y_i, \\quad
        w \\leftarrow (1 - \\eta_k \\lambda_2) w
            - \\frac{\\eta_k}{m_k} \\sum_{i \\in R_k} s_i r_i z_i, \\quad
        b \\leftarrow b - \\frac{\\eta_k}{m_k} \\sum_{i \\in R_k} s_i r_i.

    Write ``g_j = eta s_j / m`` for row ``j`` and let ``c_t`` (``c'_t``) be
    the product of the factors ``1 - eta lambda_2`` of the mini-batches
    before (up to and including) row ``t``'s, counted from the start of a
    chunk of rows, so that ``w = c \\hat w`` with ``\\hat w`` fixed by the
    decay. Unrolling the updates of a block of rows gives its residuals as
    the solution of a unit lower-triangular system

    .. math::

        r_t + \\sum_{j \\prec t} \\left(\\frac{c_t}{c'_j} z_t^T z_j
            + k\\right) g_j r_j = c_t z_t^T \\hat w + b - y_t,

    where ``j \\prec t`` runs over the rows of earlier mini-batches of the
    block only and ``k`` is one when the intercept is fitted. Then
    ``\\hat w \\leftarrow \\hat w - \\sum_j (g_j / c'_j) r_j z_j`` and
    ``b \\leftarrow b - k \\sum_j g_j r_j``. The matrix is the product of the
    block's rows scaled by ``c_t`` with its rows scaled by ``g_j / c'_j``
    (an appended column carries ``k``), formed for many blocks in one
    batched product; forward substitution performs the dependent arithmetic
    of the loop, so the iterates agree to rounding.

    The iterate after update ``a`` is ``c'_a (\\hat w_0 - \\sum_{a(j) \\le a}
    (g_j / c'_j) r_j z_j)``, so the sum of the iterates over a chunk is
    ``(\\sum_a c'_a) \\hat w_0 - \\sum_j q_j (g_j / c'_j) r_j z_j`` with
    ``q_j = \\sum_{a \\ge a(j)} c'_a``; for the intercept ``q_j`` counts the
    updates from row ``j``'s on. One product per chunk gives both.

    With a different L2 strength per coordinate the decay products are
    vectors: with ``C_t`` (``C'_j``) the per-coordinate products of the
    factors ``1 - eta lambda_f`` before row ``t``'s mini-batch (up to and
    including row ``j``'s), the system couples ``t`` to ``j`` through
    ``(C_t z_t)^T (z_j / C'_j) + k``, the product of the rows scaled one way
    with the rows scaled the other, and ``\\hat w = w / C`` coordinate by
    coordinate; the iterates are still those of the loop.

    L1 is not linear, so exactness cannot hold: with ``l1`` the coefficients
    are soft-thresholded by ``(sum of the block's steps) * l1`` after each
    block, and the iterates (and their sums) are those of this blocked
    proximal variant, not of per-sample proximal SGD.

    A block of one mini-batch without sample weights changes the stacked
    weights ``(w, b, 1)`` by a linear map, ``I`` minus the step times the
    product of the batch's rows with themselves, on the coordinates that
    change. With few features these small matrices cost less than the calls
    of the loop: they are formed for many blocks in one batched product and
    chained by products of matrices, a few calls per chunk of rows, and the
    iterates are still those of the loop up to rounding. Without
    ``block_size``, mini-batches of 8 rows or more run this way when the
    maps pay: no sample weights, no L1 and at most 18 columns ``[z, 1,
    -y]``, fewer for larger mini-batches.

    When the rows are gathered dense and there is neither L1 nor an L2
    strength per coordinate, the rows after the last full block run as one
    more block of the last chunk, filled up with rows of zeros: such a row
    has a zero residual and leaves the weights and the sums unchanged, so a
    short pass is one chunk, with no separate call for its leftover rows.

    Momentum makes each update depend on two earlier iterates, which this
    triangular form does not cover; a caller that needs momentum has to run
    the updates one mini-batch at a time.
    """
    passes = SGDPasses(
        X, y, sample_weight, l2=l2, l1=l1, center=center, scale=scale,
        fit_intercept=fit_intercept, batch_size=batch_size,
        block_size=block_size, rotation=rotation, rows=rows,
    )  # fmt: skip
    return passes.run(order, coef, intercept, steps, average=average)


class SGDPasses:
    """Passes of :func:`sgd_pass` over the same data, checked once.

    The arguments are those of :func:`sgd_pass` that stay fixed from pass to
    pass; :meth:`run` takes the others. The inputs are checked and put in the
    kernel's forms once, and the buffers of the gathered rows and of the
    blocks' systems are kept from one pass to the next, which on small data
    is a good part of a pass's cost. The arrays passed in must not change
    while the object is in use.
    """

    def __init__(
        self,
        X,
        y,
        sample_weight=None,
        *,
        l2=0.0,
        l1=None,
        center=None,
        scale=None,
        fit_intercept=True,
        batch_size=1,
        block_size=None,
        rotation=None,
        rows=None,
    ):
        self._fixed = _prepare_fixed(
            X, y, sample_weight, l2, l1, center, scale, fit_intercept,
            batch_size, rotation, rows,
        )  # fmt: skip
        self._block_size = block_size
        self._vector = np.ndim(y) == 1
        self._space = None

    def run(self, order, coef, intercept, steps, average=False) -> SGDPassResult:
        """One pass over the rows ``order`` from ``(coef, intercept)`` with
        the given steps, as :func:`sgd_pass` makes it."""
        data = _prepare_pass(self._fixed, order, steps, self._block_size, average)
        if self._space is None:
            self._space = _Workspace(data)
        else:
            self._space.data = data
        state = _PassState(data, coef, intercept, average)
        for start, stop, n_blocks, block in _chunks(data):
            _run_chunk(data, state, self._space, start, stop, n_blocks, block)
        return state.result(data, self._vector)


def internal_rows(
    X,
    y: np.ndarray,
    center: np.ndarray | None = None,
    scale: np.ndarray | None = None,
    rotation: np.ndarray | None = None,
) -> np.ndarray:
    """Every row in the internal space, with a column of ones and the targets.

    Parameters
    ----------
    X : {ndarray, sparse matrix} of shape (n_samples, n_features)
        Dense array or CSR matrix with at most 1000 features, in the user's
        units; read a chunk of rows at a time.

    y : ndarray of shape (n_samples,) or (n_samples, n_targets)
        Targets.

    center : ndarray of shape (n_features,) or None, default=None
        Offsets subtracted from the rows; None means zero.

    scale : ndarray of shape (n_features,) or None, default=None
        Positive divisors applied after centring; None means one.

    rotation : ndarray of shape (n_features, n_features) or None, default=None
        Square matrix applied to the centred, scaled rows.

    Returns
    -------
    rows : ndarray of shape (n_samples, n_features + 1 + n_targets)
        C-ordered float64 rows ``[z_i, 1, -y_i]`` with ``z_i = ((x_i -
        center) / scale) @ rotation``, for the ``rows`` argument of
        :func:`sgd_pass`.
    """
    n, d = X.shape
    if sp.issparse(X):
        if d > _DENSE_BLOCKS_MAX_FEATURES:
            raise ValueError(
                "internal_rows needs dense X or a CSR matrix with at most "
                f"{_DENSE_BLOCKS_MAX_FEATURES} features; got {d} features."
            )
        X = sp.csr_matrix(X)
    Y = np.asarray(y).reshape(n, -1)
    center = _optional(center, 0.0)
    scale = _optional(scale, 1.0)
    rotation = _check_rotation(rotation, d)
    out = np.empty((n, d + 1 + Y.shape[1]))
    step = max(1, _CHUNK_BYTES // (8 * (d + 1 + Y.shape[1])))
    for start in range(0, n, step):
        part = X[start : start + step]
        part = part.toarray() if sp.issparse(part) else part
        Z = np.asarray(part, dtype=np.float64)
        if center is not None:
            Z = Z - center
        if scale is not None:
            Z = Z / scale
        if rotation is not None:
            Z = Z @ rotation
        block = out[start : start + step]
        block[:, :d] = Z
        block[:, d] = 1.0
        np.negative(Y[start : start + step], out=block[:, d + 1 :])
    return out


def max_row_norm_sq(
    X,
    center: np.ndarray | None = None,
    scale: np.ndarray | None = None,
    sample_weight: np.ndarray | None = None,
    rotation: np.ndarray | None = None,
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

    rotation : ndarray of shape (n_features, n_features) or None, default=None
        Square matrix applied to the centred, scaled rows.

    Returns
    -------
    value : float
        ``max_i s_i * |z_i|**2``, 0.0 without rows. A per-row step ``eta``
        cannot diverge when ``eta * s_i * (|z_i|**2 + k) < 2`` for every row,
        ``k`` being one when the intercept is fitted.
    """
    norms = row_norms_sq(X, center, scale, rotation)
    if sample_weight is not None:
        norms = norms * np.asarray(sample_weight, np.float64)
    return float(norms.max()) if norms.size else 0.0


def row_norms_sq(
    X,
    center: np.ndarray | None = None,
    scale: np.ndarray | None = None,
    rotation: np.ndarray | None = None,
) -> np.ndarray:
    """Squared norms of the rows in the internal space.

    Parameters
    ----------
    X : {ndarray, sparse matrix} of shape (n_samples, n_features)
        Dense array or CSR matrix in the user's units. Dense X is read a
        chunk at a time; CSR X is neither copied nor densified without a
        rotation (unless it holds duplicate entries), and densified a chunk
        at a time with one.

    center : ndarray of shape (n_features,) or None, default=None
        Offsets subtracted from the rows; None means zero.

    scale : ndarray of shape (n_features,) or None, default=None
        Divisors applied after centring; None means one.

    rotation : ndarray of shape (n_features, n_features) or None, default=None
        Square matrix ``R`` applied to the centred, scaled rows.

    Returns
    -------
    norms : ndarray of shape (n_samples,)
        ``|z_i|**2`` with ``z_i = ((x_i - center) / scale) @ R``.
    """
    d = X.shape[1]
    center = np.zeros(d) if center is None else np.asarray(center, np.float64)
    scale = np.ones(d) if scale is None else np.asarray(scale, np.float64)
    rotation = _check_rotation(rotation, d)
    if sp.issparse(X) and rotation is None:
        return _sparse_row_norms_sq(sp.csr_matrix(X), center, scale)
    return _chunked_row_norms_sq(X, center, scale, rotation)


def _chunked_row_norms_sq(X, center, scale, rotation) -> np.ndarray:
    """Squared norms of the transformed rows of X, a chunk of rows at a time."""
    n, d = X.shape
    if sp.issparse(X):
        X = sp.csr_matrix(X)
    step = max(1, _CHUNK_BYTES // (8 * max(d, 1)))
    norms = np.empty(n)
    for start in range(0, n, step):
        rows = X[start : start + step]
        rows = rows.toarray() if sp.issparse(rows) else rows
        Z = (rows - center) / scale
        if rotation is not None:
            Z = Z @ rotation
        norms[start : start + step] = np.einsum("ij,ij->i", Z, Z)
    return norms


def _sparse_row_norms_sq(X, center: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Squared norms of centred, scaled CSR rows without densifying.

    A stored entry adds ``((x - c) / s)**2 - (c / s)**2`` to the norm of a
    row whose entries are all at ``c`` (which is ``|c / s|**2``), so no large
    terms cancel.
    """
    if not X.has_canonical_format:
        X = X.copy()
        X.sum_duplicates()
    cols = X.indices
    ratio = center / scale
    stored = ((X.data - center[cols]) / scale[cols]) ** 2 - ratio[cols] ** 2
    rows = np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
    norms = np.bincount(rows, weights=stored, minlength=X.shape[0])
    return np.maximum(norms + float(ratio @ ratio), 0.0)


class _PassData(NamedTuple):
    """Inputs of a pass in the forms the chunk solvers use."""

    X: object
    Y: np.ndarray
    order: np.ndarray
    sample_weight: np.ndarray | None
    steps: np.ndarray | float
    decay: np.ndarray | None
    center: np.ndarray | None
    scale: np.ndarray | None
    inv_scale: np.ndarray | None
    rotation: np.ndarray | None
    l1: np.ndarray | None
    dense_blocks: bool
    products: bool
    decaying: bool
    fit_intercept: bool
    average: bool
    batch_size: int
    block: int
    rows: np.ndarray | None
    l2_features: np.ndarray | None
    l2: float = 0.0


def _prepare_fixed(
    X, y, sample_weight, l2, l1, center, scale, fit_intercept, batch_size,
    rotation, rows,
) -> _PassData:  # fmt: skip
    """Check and convert the inputs that stay fixed from pass to pass; the
    order, steps, decay and block length are filled in by
    :func:`_prepare_pass`."""
    n, d = X.shape
    m = int(batch_size)
    if m < 1:
        raise ValueError(f"batch_size must be a positive integer; got {m}.")
    sparse = not isinstance(X, np.ndarray) and sp.issparse(X)
    dense_blocks = not sparse or d <= _DENSE_BLOCKS_MAX_FEATURES
    l2, l2_features = _check_l2(l2, d, dense_blocks)
    Y = np.asarray(y).reshape(n, -1)
    if sample_weight is not None:
        sample_weight = np.asarray(sample_weight, dtype=np.float64)

    rotation = _check_rotation(rotation, d)
    if rotation is not None and not dense_blocks:
        raise ValueError(
            "rotation needs dense X or a CSR matrix with at most "
            f"{_DENSE_BLOCKS_MAX_FEATURES} features; got {d} features."
        )
    if rows is not None:
        rows = np.asarray(rows)
        width = d + 1 + Y.shape[1]
        if not dense_blocks or rows.shape != (n, width):
            raise ValueError(
                f"rows must be internal_rows(X, y, ...) of shape ({n}, {width}) "
                f"for dense X or CSR X with at most {_DENSE_BLOCKS_MAX_FEATURES} "
                f"features; got shape {rows.shape}."
            )
        rows = np.ascontiguousarray(rows, dtype=np.float64)
    scale = _optional(scale, 1.0)
    if X.dtype.type not in (np.float32, np.float64):
        X = X.astype(np.float64)
    # Whether blocks of one mini-batch could run as products; the block
    # length of each pass decides.
    products = (
        dense_blocks
        and l1 is None
        and sample_weight is None
        and _products_pay(m, d + 1 + Y.shape[1])
    )
    return _PassData(
        X=sp.csr_matrix(X) if sparse else X,
        Y=Y,
        order=np.empty(0, dtype=np.intp),
        sample_weight=sample_weight,
        steps=1.0,
        decay=None,
        center=_optional(center, 0.0),
        scale=scale,
        inv_scale=None if scale is None else 1.0 / scale,
        rotation=rotation,
        l1=None if l1 is None else np.asarray(l1, dtype=np.float64),
        dense_blocks=dense_blocks,
        products=products,
        decaying=False,
        fit_intercept=bool(fit_intercept),
        average=False,
        batch_size=m,
        block=m,
        rows=rows,
        l2_features=l2_features,
        l2=l2,
    )


def _prepare_pass(fixed: _PassData, order, steps, block_size, average) -> _PassData:
    """The data of one pass: ``fixed`` (from :func:`_prepare_fixed`) with the
    pass's checked order and steps, the decay factors of its updates and
    its block length."""
    n, m, l2 = fixed.X.shape[0], fixed.batch_size, fixed.l2
    order = np.asarray(order, dtype=np.intp).ravel()
    # Negative indices read as unsigned exceed any row count.
    if order.size and order.view(np.uintp).max() >= n:
        raise ValueError(f"order must hold row indices in [0, {n}).")
    n_updates = ceil(order.size / m)
    steps = _check_steps(steps, n_updates)
    decay = None
    if l2 > 0 and n_updates:
        # With one strength per coordinate, the largest sets how far the
        # products of decay factors may run before they underflow.
        decay = 1.0 - np.broadcast_to(steps, (n_updates,)) * l2
        if decay.min() <= 0.0:
            raise ValueError(f"every steps[k] * l2 must be below 1; got l2={l2}.")
    d = fixed.X.shape[1]
    block = (
        _block_length(d, m, fixed.products) if block_size is None else int(block_size)
    )
    block = _limit_block(max(m, block // m * m), m, decay)
    return fixed._replace(
        order=order,
        steps=steps,
        decay=decay,
        decaying=decay is not None,
        products=fixed.products and block == m,
        average=bool(average),
        block=block,
    )


def _check_l2(l2, d: int, dense_blocks: bool):
    """Return the largest L2 strength, and the per-coordinate ones when they
    differ (else None)."""
    if isinstance(l2, float):
        return l2, None
    l2 = np.asarray(l2, dtype=np.float64)
    if l2.ndim == 0:
        return float(l2), None
    if l2.shape != (d,):
        raise ValueError(f"l2 must be a float or have shape ({d},); got {l2.shape}.")
    if np.any(l2 < 0):
        raise ValueError("l2 must be non-negative.")
    largest = float(l2.max(initial=0.0))
    if not d or float(l2.min()) == largest:
        return largest, None
    if not dense_blocks:
        raise ValueError(
            "per-coordinate l2 needs dense X or a CSR matrix with at most "
            f"{_DENSE_BLOCKS_MAX_FEATURES} features; got {d} features."
        )
    return largest, l2


def _check_steps(steps, n_updates: int) -> np.ndarray | float:
    """Return positive steps as a float (one for every update) or an array."""
    if isinstance(steps, float) or np.ndim(steps) == 0:
        eta = float(steps)
        if not eta > 0.0:
            raise ValueError(f"steps must be positive; got {eta}.")
        return eta
    steps = np.asarray(steps, dtype=np.float64).ravel()
    if steps.size != n_updates:
        raise ValueError(
            f"steps must hold one value per mini-batch ({n_updates}); got {steps.size}."
        )
    if np.any(steps <= 0.0):
        raise ValueError("steps must be positive.")
    return steps


def _check_rotation(rotation, d: int) -> np.ndarray | None:
    """Return the rotation as a C-ordered float64 array, or None."""
    if rotation is None:
        return None
    rotation = np.ascontiguousarray(rotation, dtype=np.float64)
    if rotation.shape != (d, d):
        raise ValueError(f"rotation must have shape ({d}, {d}); got {rotation.shape}.")
    return rotation


def _optional(values, neutral: float) -> np.ndarray | None:
    """Return values as float64, or None when all equal the neutral value."""
    if values is None:
        return None
    values = np.asarray(values, dtype=np.float64)
    return None if np.all(values == neutral) else values


def _block_length(n_features: int, batch_size: int, products: bool) -> int:
    """Rows per block, chosen from timings of one pass on two cores;
    ``products`` tells whether blocks of one mini-batch may run as products
    of matrices (see :func:`_products_pay`)."""
    if batch_size == 1:
        return 48 if n_features <= 20 else 64
    if batch_size >= 16 or (products and batch_size >= 8):
        return batch_size
    return 64 // batch_size * batch_size


def _products_pay(batch_size: int, width: int) -> bool:
    """Whether blocks of one mini-batch run faster as products of matrices
    of side ``width`` (see :func:`_affine_blocks`) than as a loop of
    vector products, from timings of one pass on two cores."""
    return width <= _PRODUCTS_MAX_WIDTH and batch_size * width**2 <= _PRODUCTS_MAX_WORK


def _limit_block(block: int, m: int, decay: np.ndarray | None) -> int:
    """Shrink a block so that its product of decay factors stays representable."""
    if decay is None or decay.min() >= 1.0:
        return block
    max_updates = max(1, int(_LOG_TINY / log(float(decay.min()))))
    return min(block, max_updates * m)


def _chunks(data: _PassData):
    """Yield ``(start, stop, n_blocks, block)`` ranges of equal blocks of rows.

    A chunk holds as many blocks as fit in about half a megabyte of gathered
    rows, fewer if the product of decay factors over it would underflow. The
    rows after the last full block join the last chunk as a block padded
    with rows of zeros (then ``stop - start < n_blocks * block``) when the
    blocks are gathered dense and there is neither L1 nor an L2 strength per
    coordinate; otherwise, or when the decay over the longer chunk would
    underflow, they form a chunk of their own.
    """
    n_rows = data.order.size
    m, block = data.batch_size, data.block
    # Wide sparse rows are never densified, so their gathered size is set by
    # their stored entries; sizing chunks by the dense width would make every
    # chunk a single block and repeat the per-chunk O(n_features) work.
    features, budget = data.X.shape[1], _CHUNK_BYTES
    if not data.dense_blocks:
        features = max(1, int(np.ceil(data.X.nnz / max(data.X.shape[0], 1))))
        # Their chunks are not cache-sized buffers, and larger ones spread
        # that O(n_features) work over more rows.
        budget = 16 * _CHUNK_BYTES
    # Per row: the gathered row, its internal copy, and a row of the block's
    # system when a block holds more than one mini-batch.
    system = block if block > m else 0
    width = 2 * features + 2 + data.Y.shape[1] + system
    per_chunk = max(1, budget // (8 * block * width))
    if data.products and data.rows is not None and data.l2_features is None:
        # Blocks run as products cost few calls each, so the calls per chunk
        # count: larger chunks of the prepared rows and residuals, each
        # block's matrix, its share of their products and starting weights.
        # Raw rows and a decay per coordinate keep chunks of the usual size,
        # since they need more buffers per row.
        k = data.Y.shape[1]
        side = features + 1 + k
        per_block = block * (side + k) + side * (2 * side + k)
        per_chunk = max(1, _PRODUCTS_CHUNK_BYTES // (8 * per_block))
    if data.decaying:
        log_decay = np.concatenate([[0.0], np.cumsum(np.log(data.decay))])
    pad = data.dense_blocks and data.l1 is None and data.l2_features is None
    start = 0
    while n_rows - start >= block:
        n_blocks = min(per_chunk, (n_rows - start) // block)
        if data.decaying:
            first = start // m
            ends = first + np.arange(1, n_blocks + 1) * (block // m)
            fits = log_decay[ends] - log_decay[first] >= _LOG_TINY
            n_blocks = max(1, int(np.count_nonzero(fits)))
        stop = start + n_blocks * block
        if pad and 0 < n_rows - stop < block:
            end = ceil(n_rows / m)
            if not data.decaying or log_decay[end] - log_decay[start // m] >= _LOG_TINY:
                yield start, n_rows, n_blocks + 1, block
                return
        yield start, stop, n_blocks, block
        start = stop
    if start < n_rows:
        yield start, n_rows, 1, n_rows - start


class _PassState:
    """Weights carried from chunk to chunk, and the running sums.

    ``w`` stacks the coefficients, the intercept and an identity block, so
    that ``[z, 1, -y] @ w`` is the residual of a row.
    """

    def __init__(self, data: _PassData, coef, intercept, average: bool):
        d, k = data.X.shape[1], data.Y.shape[1]
        self.w = np.zeros((d + 1 + k, k))
        self.w[:d] = np.asarray(coef, dtype=np.float64).reshape(d, k)
        self.w[d] = np.asarray(intercept, dtype=np.float64).reshape(k)
        self.w[d + 1 :].reshape(-1)[:: k + 1] = 1.0
        self.sq_loss = 0.0
        self.sums = np.zeros((d + 1, k)) if average else None

    def result(self, data: _PassData, vector: bool) -> SGDPassResult:
        """Package the weights in the shapes the caller passed: ``vector``
        when ``y`` was one-dimensional."""
        d = data.X.shape[1]
        coef, b = _split(self.w[: d + 1], vector)
        sums = (None, None)
        if self.sums is not None:
            sums = _split(self.sums, vector)
        return SGDPassResult(coef, b, float(self.sq_loss), *sums)


def _split(stacked: np.ndarray, vector: bool):
    """Split stacked ``[coef; intercept]`` into copies shaped for the caller."""
    if vector:
        return stacked[:-1, 0].copy(), float(stacked[-1, 0])
    return stacked[:-1].copy(), stacked[-1].copy()


class _ChunkPlan(NamedTuple):
    """Per-row and per-block factors of one chunk of rows."""

    weight: np.ndarray | None
    before: np.ndarray | None
    after: np.ndarray | None
    gain: np.ndarray
    intercept_gain: np.ndarray
    threshold: np.ndarray | None
    tail_weight: np.ndarray
    tail_count: np.ndarray
    total_weight: float
    total_count: int
    end_decay: float | np.ndarray
    feature_before: np.ndarray | None = None
    feature_after: np.ndarray | None = None


def _chunk_plan(
    data: _PassData, start: int, stop: int, n_blocks: int, block: int
) -> _ChunkPlan:
    """Decay products, row gains and averaging weights for rows start:stop.

    Rows of zeros pad the last block of a pass to ``n_blocks * block`` rows:
    their residuals and updates vanish whatever their factors, so they take
    those of the last row, which keeps the gains positive and the products
    finite.
    """
    if data.l2_features is not None:
        return _feature_decay_plan(data, start, stop, n_blocks)
    m, rows = data.batch_size, n_blocks * block
    first, last = start // m, ceil(stop / m)
    weight, gain = _row_gains(data, start, stop, first, last, rows)
    intercept_gain = gain if data.fit_intercept else np.zeros_like(gain)
    if not data.decaying:
        after = None
    else:
        after = np.cumprod(data.decay[first:last])
        if after[-1] == 1.0:
            after = None
    batch = None
    if after is not None or data.l1 is not None or data.average:
        # Chunks start with a mini-batch.
        batch = np.arange(rows) // m if m > 1 else np.arange(rows)
        if rows > stop - start:
            np.minimum(batch, last - first - 1, out=batch)
    counts = None
    if data.l1 is not None or data.average:
        counts = np.subtract(last - first, batch, dtype=np.float64)
    threshold = None
    per_block = (last - first) // n_blocks
    if data.l1 is not None:
        steps = _step_slice(data.steps, first, last)
        block_steps = steps.reshape(n_blocks, per_block).sum(axis=1)
        if after is not None:
            block_steps = block_steps / after[per_block - 1 :: per_block]
        threshold = block_steps[:, None] * data.l1
    if after is None:
        return _ChunkPlan(
            weight=weight,
            before=None,
            after=None,
            gain=gain,
            intercept_gain=intercept_gain,
            threshold=threshold,
            tail_weight=counts,
            tail_count=counts,
            total_weight=float(last - first),
            total_count=last - first,
            end_decay=1.0,
        )

    before = np.concatenate([[1.0], after[:-1]])
    tail = np.cumsum(after[::-1])[::-1]
    return _ChunkPlan(
        weight=weight,
        before=before[batch],
        after=after[batch],
        gain=gain / after[batch],
        intercept_gain=intercept_gain,
        threshold=threshold,
        tail_weight=tail[batch] if counts is not None else None,
        tail_count=counts,
        total_weight=float(tail[0]),
        total_count=last - first,
        end_decay=float(after[-1]),
    )


def _feature_decay_plan(data: _PassData, start: int, stop: int, n_blocks: int):
    """Chunk plan for an L2 strength per coordinate.

    The decay products are per coordinate, ``after[a, f]`` over the chunk's
    updates up to and including ``a``; the rows carry them (see
    :func:`_solve_dense`), so the plan's scalar products are those of a pass
    without decay. Averaging weights and L1 thresholds are per coordinate.
    """
    m = data.batch_size
    first, last = start // m, ceil(stop / m)
    weight, gain = _row_gains(data, start, stop, first, last, stop - start)
    steps = _step_slice(data.steps, first, last)
    products = _feature_products(steps, data.l2_features)
    before, after = products[:-1], products[1:]
    batch = np.arange(stop - start) // m
    counts = tail = threshold = None
    if data.l1 is not None or data.average:
        counts = (last - first - batch).astype(np.float64)
        tail = np.cumsum(after[::-1], axis=0)[::-1]
    if data.l1 is not None:
        per_block = (last - first) // n_blocks
        block_steps = steps.reshape(n_blocks, per_block).sum(axis=1)
        threshold = block_steps[:, None] / after[per_block - 1 :: per_block] * data.l1
    return _ChunkPlan(
        weight=weight,
        before=None,
        after=None,
        gain=gain,
        intercept_gain=gain if data.fit_intercept else np.zeros_like(gain),
        threshold=threshold,
        tail_weight=None if tail is None else tail[batch],
        tail_count=counts,
        total_weight=None if tail is None else tail[0][:, None],
        total_count=last - first,
        end_decay=after[-1][:, None],
        feature_before=before,
        feature_after=after,
    )


def _feature_products(steps: np.ndarray, l2: np.ndarray) -> np.ndarray:
    """Products ``prod_{a' < a} (1 - steps[a'] * l2)`` for ``a = 0, ...,
    len(steps)``, one row each (the first row is ones).

    Row by row, a cumulative product costs one call per update; with one
    step for the whole chunk (the usual case) the rows are built by
    doubling, ``p[k + i] = p[i] * p[k]``, in a few calls.
    """
    n = steps.size
    products = np.empty((n + 1, l2.size))
    products[0] = 1.0
    if n and steps.min() != steps.max():
        np.cumprod(1.0 - steps[:, None] * l2, axis=0, out=products[1:])
        return products
    if n:
        products[1] = 1.0 - steps[0] * l2
    k = 1
    while k < n:
        size = min(k, n - k)
        np.multiply(
            products[1 : size + 1], products[k], out=products[k + 1 : k + 1 + size]
        )
        k += size
    return products


def _step_slice(steps: np.ndarray | float, first: int, last: int) -> np.ndarray:
    """Steps of updates first:last."""
    if isinstance(steps, float):
        return np.full(last - first, steps)
    return steps[first:last]


def _row_gains(
    data: _PassData, start: int, stop: int, first: int, last: int, rows: int
):
    """Sample weights and gains ``g_j = eta s_j / m`` of rows start:stop,
    extended to ``rows`` rows with the values of the last one.

    The weights are None when all are one; the mini-batches are those of
    updates first:last, the pass's last one possibly shorter.
    """
    m = data.batch_size
    weight = None
    if data.sample_weight is not None:
        weight = _extend(data.sample_weight[data.order[start:stop]], rows)
    if isinstance(data.steps, float):
        gain = np.full(rows, data.steps / m)
        n_rows = data.order.size
        if m > 1 and stop == n_rows and n_rows % m:
            gain[(last - 1 - first) * m :] *= m / (n_rows % m)
    elif m == 1:
        gain = _extend(data.steps[start:stop], rows)
    else:
        steps = _step_slice(data.steps, first, last) / m
        n_rows = data.order.size
        if stop == n_rows and n_rows % m:
            steps[-1] *= m / (n_rows % m)
        gain = _extend(np.repeat(steps, m)[: stop - start], rows)
    if weight is not None:
        gain *= weight
    return weight, gain


def _extend(values: np.ndarray, rows: int) -> np.ndarray:
    """A copy of ``values`` extended to ``rows`` entries with its last one."""
    out = np.empty(rows)
    out[: values.size] = values
    out[values.size :] = values[-1]
    return out


def _run_chunk(
    data: _PassData,
    state: _PassState,
    space: "_Workspace",
    start: int,
    stop: int,
    n_blocks: int,
    block: int,
) -> None:
    """Apply the updates of rows start:stop, whole blocks (the last one
    possibly padded), to the state."""
    plan = _chunk_plan(data, start, stop, n_blocks, block)
    idx = data.order[start:stop]
    d = data.X.shape[1]
    w_start = state.w[: d + 1].copy() if state.sums is not None else None

    if data.dense_blocks:
        Q, R, shift, rows_sum = _solve_dense(
            data, space, state.w, idx, plan, n_blocks, block
        )
    else:
        Q, R, shift, rows_sum = _solve_sparse(data, state.w, idx, plan, n_blocks, block)

    if plan.weight is None:
        # Not np.vdot: a long BLAS dot product may wake threads, which can
        # cost milliseconds (see gdreg._sgd._average).
        state.sq_loss += float(np.einsum("ij,ij->", R, R))
    else:
        state.sq_loss += float(np.einsum("i,ij,ij->", plan.weight, R, R))
    if state.sums is not None:
        _add_sums(state.sums, w_start, rows_sum, Q, R, shift, plan)
    if data.decaying and np.any(plan.end_decay != 1.0):
        state.w[:d] *= plan.end_decay


def _residuals(Q: np.ndarray, plan: _ChunkPlan) -> np.ndarray:
    """Residuals ``r_j = q_j / g_j`` (zero where a row has no weight)."""
    gain = plan.gain
    if plan.weight is None or gain.min() > 0.0:
        return Q / gain[:, None]
    ratio = np.divide(1.0, gain, out=np.zeros_like(gain), where=gain > 0)
    return Q * ratio[:, None]


class _Workspace:
    """Buffers reused from chunk to chunk of a pass."""

    def __init__(self, data: _PassData):
        self.data = data
        self.rows = self.rows64 = self.Z = self.P = self.outer = None
        self.scratch = None
        self.M = self.tree = self.starts = self.R = None
        self.center = self.inv_scale = None
        self.ones = False

    def get(self, rows: int, n_blocks: int, block: int):
        """Return the gathered-rows buffer, the row buffer and the systems."""
        data = self.data
        d, k = data.X.shape[1], data.Y.shape[1]
        if self.Z is None or self.Z.shape[0] < rows:
            self.Z = np.empty((rows, d + 1 + k))
            self.ones = False
            if data.rows is None:
                self._transform_buffers(rows)
        size = n_blocks * block * block
        if block > data.batch_size and (self.P is None or self.P.size < size):
            self.P = np.empty(size)
            # Only one L2 strength for all coordinates couples the intercept
            # through a separate outer product.
            scalar_decay = data.decaying and data.l2_features is None
            self.outer = np.empty(size) if scalar_decay else None
        P = outer = None
        if block > data.batch_size:
            P = self.P[:size].reshape(n_blocks, block, block)
            if self.outer is not None:
                outer = self.outer[:size].reshape(n_blocks, block, block)
        if data.rows is not None:
            return None, None, self.Z[:rows], P, outer
        return self.rows[:rows], self.rows64[:rows], self.Z[:rows], P, outer

    def spare(self, size: int) -> np.ndarray:
        """Return a flat buffer of ``size`` values for a copy of rows."""
        if self.scratch is None or self.scratch.size < size:
            self.scratch = np.empty(size)
        return self.scratch[:size]

    def affine(self, n_blocks: int, block: int, k: int):
        """Return buffers for the blocks' matrices (zero where neither a
        product nor the identity is written), the products of the matrices
        within groups, the starting weights and the residuals."""
        width = self.data.X.shape[1] + 1 + k
        if self.M is None or self.M.shape[0] < n_blocks:
            self.M = np.zeros((n_blocks, width, width))
            self.tree = np.empty((n_blocks, width, width))
            self.starts = np.empty((n_blocks + 1, width, k))
        if self.R is None or self.R.size < n_blocks * block * k:
            self.R = np.empty(n_blocks * block * k)
        R = self.R[: n_blocks * block * k].reshape(n_blocks, block, k)
        return self.M[:n_blocks], self.tree, self.starts[: n_blocks + 1], R

    def _transform_buffers(self, rows: int) -> None:
        """Allocate the buffers that put raw rows in the internal space."""
        data = self.data
        d = data.X.shape[1]
        self.rows = np.empty((rows, d), dtype=data.X.dtype)
        self.rows64 = self.rows
        if data.X.dtype != np.float64:
            self.rows64 = np.empty((rows, d))
        if data.center is not None:
            self.center = np.tile(data.center, rows)
        if data.inv_scale is not None:
            self.inv_scale = np.tile(data.inv_scale, rows)


def _solve_dense(
    data: _PassData, space: _Workspace, w, idx, plan, n_blocks: int, block: int
):
    """Run the blocks of a chunk of rows gathered into a dense array; rows of
    zeros after those of ``idx`` fill the last block.

    In terms of ``q_j = (g_j / c'_j) r_j``, row ``t`` of the system divided by
    ``c_t`` reads ``(c'_t / (g_t c_t)) q_t + sum_{j < t} (z_t . z_j + k c'_j /
    c_t) q_j = z_t . \\hat w + (b - y_t) / c_t``, so the Gram of the rows
    ``[z, 1 / c, -y / c]`` gives both the matrix and the right-hand sides,
    and the update is ``\\hat w -= sum_j q_j z_j``, ``b -= k sum_j c'_j q_j``.

    With an L2 strength per coordinate the rows that update the weights
    differ from those that predict (see :func:`_feature_decay_rows`).

    Returns ``q`` of shape (rows, n_targets) (None without averaging when
    the blocks run as products, see :func:`_affine_blocks`), the residuals
    ``r``, the L1 shifts weighted for the averaging sums, and a function
    ``rows_sum(Q, tail, ones)`` computing ``sum_j tail_j * u_j q_j`` over the
    update rows ``u_j`` (``tail`` per row, or per row and coordinate), with
    the next column of the rows (ones without decay) when ``ones``.
    """
    d, k = data.X.shape[1], data.Y.shape[1]
    rows, rows64, Z, P, outer = space.get(n_blocks * block, n_blocks, block)
    real = idx.size
    before = None if plan.before is None else plan.before[:real]
    if rows is not None:
        rows, rows64 = rows[:real], rows64[:real]
    _dense_rows(data, space, idx, before, rows, rows64, Z[:real])
    if real < Z.shape[0]:
        Z[real:] = 0.0
        space.ones = False
    Z3 = Z.reshape(n_blocks, block, -1)
    U = Z
    if plan.feature_after is not None:
        U = _feature_decay_rows(Z, plan, d, data.batch_size)
    U3 = U.reshape(n_blocks, block, -1)
    if data.products:
        R = _affine_blocks(w, Z3, U3, plan, data, space)
        Q = R * plan.gain[:, None] if data.average else None
        shift = np.zeros((d, k))
    else:
        direct = None
        if P is None:
            before = 1.0 if plan.before is None else plan.before
            direct = (plan.gain * before).reshape(n_blocks, block)
        else:
            _block_systems(Z3, U3, P, outer, space, plan, data)
        loop = _loop_one_target if k == 1 else _loop_targets
        Q, shift = loop(w, Z3, U3, P, direct, plan, data)
        R = _residuals(Q, plan)

    def rows_sum(Q, tail, ones):
        if tail.ndim == 1:
            # A product over a strided slice of the rows costs less with
            # matmul than with dot, which copies it.
            top = d + 1 if ones else d
            return np.matmul((tail[:, None] * Q).T, U[:, :top]).T
        return np.dot((U[:, :d] * tail).T, Q)

    return Q, R, shift, rows_sum


def _feature_decay_rows(Z, plan: _ChunkPlan, d: int, m: int) -> np.ndarray:
    """Split the rows for per-coordinate decay: ``Z`` becomes ``[C_t z_t, 1,
    -y_t]`` in place, and the returned update rows are ``[z_j / C'_j, 1,
    0]``. The products are per mini-batch (``m`` rows each, the last one
    of the pass possibly shorter) and broadcast over its rows."""
    U = np.empty_like(Z)
    full = Z.shape[0] // m
    cut = full * m
    rows, update = Z[:cut, :d].reshape(full, m, d), U[:cut, :d].reshape(full, m, d)
    np.divide(rows, plan.feature_after[:full, None, :], out=update)
    rows *= plan.feature_before[:full, None, :]
    if cut < Z.shape[0]:
        np.divide(Z[cut:, :d], plan.feature_after[full], out=U[cut:, :d])
        Z[cut:, :d] *= plan.feature_before[full]
    U[:, d] = 1.0
    U[:, d + 1 :] = 0.0
    return U


def _dense_rows(data: _PassData, space: _Workspace, idx, before, rows, rows64, Z):
    """Gather rows into ``Z = [z, 1 / c, -y / c]``, float64 and C-ordered;
    ``before`` holds the decay products ``c`` or is None.

    The rows are gathered into a contiguous buffer and centred and scaled
    there as flat arrays (against tiled copies of ``center`` and
    ``1 / scale``), which avoids a broadcast over short rows; rows prepared
    by :func:`internal_rows` are gathered straight into ``Z``.
    """
    d = data.X.shape[1]
    if data.rows is not None:
        np.take(data.rows, idx, axis=0, out=Z, mode="clip")
        if before is not None:
            np.divide(1.0, before, out=Z[:, d])
            Z[:, d + 1 :] *= Z[:, d, None]
        return
    if sp.issparse(data.X):
        data.X[idx].toarray(out=rows)
    else:
        np.take(data.X, idx, axis=0, out=rows, mode="clip")
    flat, size = rows64.reshape(-1), rows64.size
    if rows64 is not rows:
        np.copyto(rows64, rows)
    if data.center is not None:
        np.subtract(flat, space.center[:size], out=flat)
    if data.inv_scale is not None:
        np.multiply(flat, space.inv_scale[:size], out=flat)
    if data.rotation is None:
        Z[:, :d] = rows64
    else:
        # A plain product: on these short, wide-chunk shapes BLAS's
        # triangular multiply was tens of times slower.
        np.matmul(rows64, data.rotation, out=Z[:, :d])

    if before is None:
        if not space.ones:
            space.Z[:, d] = 1.0
            space.ones = True
        np.negative(data.Y[idx], out=Z[:, d + 1 :])
    else:
        np.divide(1.0, before, out=Z[:, d])
        space.ones = False
        np.multiply(data.Y[idx], -Z[:, d, None], out=Z[:, d + 1 :])


def _block_systems(
    Z3, U3, P, outer, space: "_Workspace", plan: _ChunkPlan, data: _PassData
) -> None:
    """Fill ``P`` with the blocks' triangular matrices, ``P[b].T`` lower.

    ``P[b][j, t]`` couples row ``t`` to an earlier row ``j`` (the product of
    update row ``j`` of ``U3`` with row ``t`` of ``Z3``); entries within a
    mini-batch are zero and the diagonal holds ``c'_t / (g_t c_t)``; the
    entries above the diagonal of ``P[b].T`` are left as they come.
    """
    n_blocks, block, _ = Z3.shape
    m, d = data.batch_size, data.X.shape[1]
    joint = d + 1 if data.fit_intercept and plan.before is None else d
    # Batched products run about twice as fast on a contiguous right factor
    # as on a transposed view of the rows.
    right = space.spare(n_blocks * joint * block).reshape(n_blocks, joint, block)
    np.copyto(right, Z3[:, :, :joint].transpose(0, 2, 1))
    np.matmul(U3[:, :, :joint], right, out=P)
    if joint == d and data.fit_intercept:
        after = plan.after.reshape(n_blocks, block, 1)
        np.multiply(after, Z3[:, None, :, d], out=outer)
        P += outer
    if m > 1:
        # Only the squares of the mini-batches on the diagonal are read; a
        # chunk of leftover rows may end with a shorter mini-batch.
        step, full = P.strides, block // m * m
        squares = np.lib.stride_tricks.as_strided(
            P,
            shape=(n_blocks, block // m, m, m),
            strides=(step[0], m * (step[1] + step[2]), step[1], step[2]),
        )
        squares[...] = 0.0
        if full < block:
            P[:, full:, full:] = 0.0

    diagonal = P.reshape(n_blocks, -1)[:, :: block + 1]
    scaled = plan.gain if plan.before is None else plan.gain * plan.before
    if plan.weight is None:
        np.divide(1.0, scaled.reshape(n_blocks, block), out=diagonal)
        return
    # Rows of zero weight have no gain, an infinite diagonal and no update.
    with np.errstate(divide="ignore"):
        np.divide(1.0, scaled.reshape(n_blocks, block), out=diagonal)


def _affine_blocks(w, Z3, U3, plan: _ChunkPlan, data: _PassData, space):
    """Run blocks of one mini-batch each as products of small matrices.

    The rows of a block share one step factor ``g_b`` (``gain`` times the
    decay product ``c`` of its mini-batch), so the block maps the stacked
    weights ``w`` (coefficients, intercept, identity) to ``M_b w`` with ``M_b
    = I - F_b U_b^T Z_b``, ``F_b`` diagonal: ``g_b`` on the rows the update
    changes, ``g_b c'_b c_b`` on the intercept's when the decay keeps it
    apart, zero on the others. All the ``M_b`` of a chunk come from one
    batched product. The products of groups of consecutive ``M_b``, formed
    pairwise level by level, carry the weights from group to group, one
    small product per group; a batched product per position in the groups
    then gives the weights ``w_b`` at the start of every block, and the
    residuals ``c_b Z_b w_b`` are one batched product more.

    Returns the residuals, shape (rows, n_targets); ``w`` is updated in place.
    """
    n_blocks, block, width = Z3.shape
    d, k = data.X.shape[1], w.shape[1]
    top = d + 1 if data.fit_intercept else d
    before = None if plan.before is None else plan.before[::block]
    gain = plan.gain[::block] if before is None else plan.gain[::block] * before
    M, tree, starts, R = space.affine(n_blocks, block, k)
    np.matmul(U3[:, :, :top].transpose(0, 2, 1), Z3, out=M[:, :top])
    # Off their diagonal the rows from top on stay zero; scaling whole
    # matrices, by one factor when the chunk has one, is the fastest form.
    # One step for the pass and no decay leave only the pass's last
    # mini-batch with a gain of its own.
    flat = M.reshape(n_blocks, -1)
    if isinstance(data.steps, float) and before is None:
        np.multiply(flat[:-1], -gain[0], out=flat[:-1])
        np.multiply(flat[-1], -gain[-1], out=flat[-1])
    elif gain[0] == gain.min() == gain.max():
        np.multiply(flat, -gain[0], out=flat)
    else:
        np.multiply(flat, -gain[:, None], out=flat)
    if data.fit_intercept and before is not None:
        M[:, d] *= (plan.after[::block] * before)[:, None]
    diagonal = flat[:, :: width + 1]
    diagonal[:, :top] += 1.0
    diagonal[:, top:] = 1.0

    # Groups of about sqrt(n_blocks) blocks balance the loop over the groups
    # against the batched products spreading the weights within them.
    group = 1 << (n_blocks.bit_length() - 1) // 2
    n_groups = n_blocks // group
    full = n_groups * group
    grouped = level = M[:full].reshape(n_groups, group, width, width)
    while level.shape[1] > 1:
        half = n_groups * level.shape[1] // 2
        out = tree[:half].reshape(n_groups, -1, width, width)
        np.matmul(level[:, 1::2], level[:, 0::2], out=out)
        level, tree = out, tree[half:]
    starts[0] = w
    # Matrix-vector products cost less per call than matrix-matrix ones.
    vectors = starts[:, :, 0] if k == 1 else starts
    heads = vectors[: full + 1 : group]
    dot = np.dot
    for Mg, v, after in zip(level[:, 0], heads, heads[1:]):
        dot(Mg, v, out=after)
    inner = starts[:full].reshape(n_groups, group, width, k)
    for i in range(1, group):
        np.matmul(grouped[:, i - 1], inner[:, i - 1], out=inner[:, i])
    for b in range(full, n_blocks):
        dot(M[b], vectors[b], out=vectors[b + 1])
    w[:] = starts[n_blocks]

    np.matmul(Z3, starts[:n_blocks], out=R)
    if before is not None:
        R *= before[:, None, None]
    return R.reshape(-1, k)


def _loop_one_target(w, Z3, U3, P, direct, plan: _ChunkPlan, data: _PassData):
    """Block loop for one target: a product, a triangular solve, a product.

    The rows of ``Z3`` give the right-hand sides, those of ``U3`` (the same
    array unless the decay is per coordinate) update the weights.
    """
    n_blocks, block, width = Z3.shape
    d = data.X.shape[1]
    w = w[:, 0]
    joint = d + 1 if data.fit_intercept and plan.before is None else d
    head = w[:joint]
    change = np.empty(width)
    change_head = change[:joint]
    separate = data.fit_intercept and joint == d
    after = None if plan.after is None else plan.after.reshape(n_blocks, block)
    Q = np.empty((n_blocks, block))
    shift = np.zeros((d, 1))
    PT = None if P is None else P.transpose(0, 2, 1)
    dot, subtract, multiply, trsv = np.dot, np.subtract, np.multiply, blas.dtrsv
    if not separate and plan.threshold is None:
        if PT is None:
            for Zb, Ub, q, scale in zip(Z3, U3, Q, direct):
                dot(Zb, w, out=q)
                multiply(q, scale, out=q)
                dot(q, Ub, out=change)
                subtract(head, change_head, out=head)
        else:
            for Zb, Ub, q, Pb in zip(Z3, U3, Q, PT):
                dot(Zb, w, out=q)
                trsv(Pb, q, lower=1, overwrite_x=1)
                dot(q, Ub, out=change)
                subtract(head, change_head, out=head)
        return Q.reshape(-1, 1), shift
    if separate and plan.threshold is None:
        for b, (Zb, q, a) in enumerate(zip(Z3, Q, after)):
            dot(Zb, w, out=q)
            if PT is None:
                multiply(q, direct[b], out=q)
            else:
                trsv(PT[b], q, lower=1, overwrite_x=1)
            dot(q, Zb, out=change)
            subtract(head, change_head, out=head)
            w[d] -= dot(a, q)
        return Q.reshape(-1, 1), shift
    for b in range(n_blocks):
        Zb, q = Z3[b], Q[b]
        dot(Zb, w, out=q)
        if PT is None:
            multiply(q, direct[b], out=q)
        else:
            trsv(PT[b], q, lower=1, overwrite_x=1)
        dot(q, U3[b], out=change)
        subtract(head, change_head, out=head)
        if separate:
            w[d] -= dot(after[b], q)
        if plan.threshold is not None:
            shift[:, 0] += _soft_threshold(w[:d], plan.threshold[b], plan, b)
    return Q.reshape(-1, 1), shift


def _loop_targets(w, Z3, U3, P, direct, plan: _ChunkPlan, data: _PassData):
    """Block loop for several targets, with a multi-column triangular solve."""
    n_blocks, block, _ = Z3.shape
    d, k = data.X.shape[1], w.shape[1]
    joint = d + 1 if data.fit_intercept and plan.before is None else d
    head = w[:joint]
    separate = data.fit_intercept and joint == d
    after = None if plan.after is None else plan.after.reshape(n_blocks, block)
    Q = np.empty((n_blocks, k, block))
    shift = np.zeros((d, k))
    trsm = blas.dtrsm
    for b in range(n_blocks):
        q = Q[b]
        np.dot(w.T, Z3[b].T, out=q)
        if P is None:
            q *= direct[b]
        else:
            trsm(1.0, P[b].T, q.T, lower=1, overwrite_b=1)
        head -= np.dot(U3[b, :, :joint].T, q.T)
        if separate:
            w[d] -= np.dot(q, after[b])
        if plan.threshold is not None:
            shift += _soft_threshold(w[:d], plan.threshold[b][:, None], plan, b)
    return Q.transpose(0, 2, 1).reshape(-1, k), shift


def _soft_threshold(coef, threshold, plan: _ChunkPlan, b: int) -> np.ndarray:
    """Soft-threshold coef in place; return the change times its sum weight."""
    cut = np.clip(coef, -threshold, threshold)
    coef -= cut
    block_rows = plan.gain.size // plan.threshold.shape[0]
    weight = plan.tail_weight[(b + 1) * block_rows - 1]
    if np.ndim(weight) == 1 and cut.ndim == 2:
        weight = weight[:, None]
    return -weight * cut


def _add_sums(sums, w_start, rows_sum, Q, R, shift, plan: _ChunkPlan) -> None:
    """Add the chunk's sums of iterates, in true units, to ``sums``.

    ``rows_sum(Q, tail, ones)`` returns ``sum_j tail_j * z_j q_j`` over the
    rows of the chunk, with ``sum_j tail_j q_j`` appended when ``ones``.
    """
    d = sums.shape[0] - 1
    if plan.tail_weight is plan.tail_count and plan.intercept_gain is plan.gain:
        # Without decay the intercept's sum weighs the rows as the
        # coefficients' does: one product gives both.
        sums += plan.total_count * w_start - rows_sum(Q, plan.tail_weight, True)
    else:
        weighted = rows_sum(Q, plan.tail_weight, False)
        sums[:d] += plan.total_weight * w_start[:d] - weighted
        counted = np.dot(plan.intercept_gain * plan.tail_count, R)
        sums[d] += plan.total_count * w_start[d] - counted
    if plan.threshold is not None:
        sums[:d] += shift


def _solve_sparse(data: _PassData, w, idx, plan: _ChunkPlan, n_blocks, block):
    """Run the blocks of a chunk of sparse rows without densifying them.

    The centred, scaled rows are ``z = S - a`` with ``S`` the rows divided by
    ``scale`` and ``a = center / scale``. The coefficients are kept as ``v +
    gamma * a`` together with ``a . v``, so each block costs work in its
    stored entries plus O(n_features) only with L1.
    """
    d, k = data.X.shape[1], data.Y.shape[1]
    S, a = _scaled_rows(data, idx)
    u = S @ a
    aa = float(a @ a)
    # With one mini-batch per block no row of a block depends on another.
    M = None
    if block > data.batch_size:
        M = _sparse_block_systems(S, u, aa, plan, n_blocks, block, data)
    rows = np.repeat(np.arange(idx.size), np.diff(S.indptr))
    Y = data.Y[idx]

    v = w[:d].copy()
    gamma = np.zeros(k)
    av = a @ v
    R = np.empty((idx.size, k))
    shift = np.zeros((d, k))
    for b in range(n_blocks):
        sl = slice(b * block, (b + 1) * block)
        lo, hi = S.indptr[sl.start], S.indptr[sl.stop]
        cols, vals, rid = S.indices[lo:hi], S.data[lo:hi], rows[lo:hi] - sl.start
        sv = _sparse_products(v, cols, vals, rid, block)
        zw = sv + u[sl, None] * gamma - av - gamma * aa
        if plan.before is not None:
            zw *= plan.before[sl, None]
        r = zw + w[d] - Y[sl]
        if M is not None:
            r = _solve_unit_lower(M[b], r)
        R[sl] = r

        h = plan.gain[sl, None] * r
        _scatter_subtract(v, cols, vals, h[rid])
        gamma += h.sum(axis=0)
        av -= u[sl] @ h
        w[d] -= plan.intercept_gain[sl] @ r
        if plan.threshold is not None:
            coef = v + np.outer(a, gamma)
            shift += _soft_threshold(coef, plan.threshold[b][:, None], plan, b)
            v, gamma, av = coef, np.zeros(k), a @ coef

    w[:d] = v + np.outer(a, gamma)

    def rows_sum(Q, tail, ones):
        c = tail[:, None] * Q
        total = c.sum(axis=0)
        coef = S.T @ c - np.outer(a, total)
        return np.vstack([coef, total]) if ones else coef

    return plan.gain[:, None] * R, R, shift, rows_sum


def _sparse_products(v, cols, vals, rid, n_rows: int) -> np.ndarray:
    """``S_b @ v`` for the stored entries of a block, shape (n_rows, n_targets)."""
    if v.shape[1] == 1:
        products = np.bincount(rid, weights=vals * v[cols, 0], minlength=n_rows)
        return products[:, None]
    out = np.zeros((n_rows, v.shape[1]))
    np.add.at(out, rid, vals[:, None] * v[cols])
    return out


def _scatter_subtract(v, cols, vals, h) -> None:
    """``v -= S_b^T h`` in place, for the stored entries of a block; columns
    may repeat."""
    if v.shape[1] == 1:
        np.subtract.at(v[:, 0], cols, vals * h[:, 0])
    else:
        np.subtract.at(v, cols, vals[:, None] * h)


def _solve_unit_lower(M: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Solve ``M x = rhs`` for a C-ordered unit lower-triangular ``M``."""
    if rhs.shape[1] == 1:
        x = blas.dtrsv(M.T, rhs[:, 0].copy(), lower=0, trans=1, diag=1, overwrite_x=1)
        return x[:, None]
    return solve_triangular(M, rhs, lower=True, unit_diagonal=True)


def _scaled_rows(data: _PassData, idx: np.ndarray):
    """Return the CSR rows ``X[idx] / scale`` and ``center / scale``."""
    S = data.X[idx]
    d = S.shape[1]
    if data.scale is not None:
        S.data = S.data / data.scale[S.indices]
    a = np.zeros(d) if data.center is None else data.center.copy()
    if data.scale is not None:
        a /= data.scale
    return S, a


def _sparse_block_systems(S, u, aa: float, plan, n_blocks, block, data) -> np.ndarray:
    """Unit lower-triangular systems of the blocks of a chunk of sparse rows.

    The Grams of the blocks come from one sparse product in which the
    columns of each block are shifted apart, so only blocks' own pairs of
    rows meet; centring adds rank-one terms.
    """
    n_rows, d = S.shape
    rows = np.repeat(np.arange(n_rows), np.diff(S.indptr))
    shifted = S.indices.astype(np.int64) + (rows // block) * d
    T = sp.csr_matrix((S.data, shifted, S.indptr), shape=(n_rows, n_blocks * d))
    prod = (T @ T.T).tocoo()
    G = np.zeros((n_blocks, block, block))
    G[prod.row // block, prod.row % block, prod.col % block] = prod.data
    u3 = u.reshape(n_blocks, block)
    G += aa - u3[:, :, None] - u3[:, None, :]

    before = np.ones(n_rows) if plan.before is None else plan.before
    M = before.reshape(n_blocks, block, 1) * G * plan.gain.reshape(n_blocks, 1, block)
    M += plan.intercept_gain.reshape(n_blocks, 1, block)
    batch = np.arange(block) // data.batch_size
    M *= batch[:, None] > batch[None, :]
    M += np.eye(block)
    return M
