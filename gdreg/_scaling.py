"""Implicit centring and scaling of the design matrix.

The solvers work on ``Z = (X - center) * inv_scale`` without ever forming
``Z``: a product with ``Z`` or ``Z.T`` costs one product with ``X`` or
``X.T`` and a few operations on vectors, for dense and sparse ``X`` alike.
"""

import math

import numpy as np
import scipy.sparse as sp
from scipy.linalg import LinAlgError, eigh
from sklearn.utils.sparsefuncs import mean_variance_axis

from ._validation import array_namespace, widest_float

# Rows per chunk when a statistic of dense X is computed piecewise; keeps the
# temporary at a few megabytes whatever the number of rows.
_CHUNK_ELEMENTS = 1 << 19


def feature_statistics(X, sample_weight, *, fit_intercept, l2):
    """Per-feature centre and inverse scale of the internal coordinates.

    Parameters
    ----------
    X : ndarray or sparse matrix of shape (n_samples, n_features)
        The design, in the user's units. It is not copied.

    sample_weight : ndarray of shape (n_samples,)
        Non-negative weights with a positive sum.

    fit_intercept : bool
        Whether features are centred on their weighted mean. Without an
        intercept they are only scaled.

    l2 : float
        Strength of the L2 part of the penalty in the user's units.

    Returns
    -------
    center : ndarray of shape (n_features,)
        Weighted feature means, or zeros without an intercept.

    inv_scale : ndarray of shape (n_features,)
        ``1 / sqrt(m_j + l2)``, with ``m_j`` the weighted mean square of the
        centred feature: the inverse square root of the diagonal of the
        objective's Hessian (Jacobi scaling). Features that are constant
        (after centring) and unpenalised get 0, which removes them from the
        problem and gives them a zero coefficient.
    """
    mean, std = weighted_moments(X, sample_weight)
    return internal_coordinates(
        mean, std, fit_intercept=fit_intercept, l2=l2, dtype=X.dtype
    )


def weighted_moments(X, sample_weight):
    """Weighted column means and standard deviations of ``X``, in float64.

    The direct computation squares the data; when that could overflow or
    lose precision (values beyond about 1e150 or below 1e-140), each column
    is first divided by its largest magnitude. Dense ``X`` is read a chunk
    of rows at a time and never copied.
    """
    if type(X) is np.ndarray and X.size <= _CHUNK_ELEMENTS:
        moments = _small_moments(X, sample_weight)
        if moments is not None:
            return moments
    xp, device = array_namespace(X)
    wide = widest_float(xp, device)
    weights = xp.astype(sample_weight, wide)
    weights /= xp.sum(weights)
    unit = xp.ones(X.shape[1], dtype=wide, device=device)
    # Only NumPy (and libraries built on it) warn about overflow; the check
    # below handles it for every library.
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        mean, var = _moments(X, weights, unit)
        rescale = _needs_rescaling(mean, var)
    if rescale:
        unit = _column_magnitude(X)
        mean, var = _moments(X, weights, unit)
    return mean * unit, xp.sqrt(var) * unit


def _small_moments(X, sample_weight):
    """Weighted means and standard deviations of a NumPy array of at most
    one chunk, in a few whole-array operations; None when the values need
    the rescaled computation."""
    weights = np.asarray(sample_weight, dtype=np.float64)
    weights = weights / weights.sum()
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        mean = weights @ X
        centred = X - mean
        centred *= centred
        var = weights @ centred
        if _needs_rescaling(mean, var):
            return None
    return mean, np.sqrt(var)


def _moments(X, weights, unit):
    """Weighted mean and variance of ``X / unit`` per column."""
    if sp.issparse(X):
        scaled = X if np.all(unit == 1) else X @ sp.diags(1.0 / unit)
        scaled = sp.csr_matrix(scaled)
        mean, var = mean_variance_axis(
            scaled, axis=0, weights=weights.astype(scaled.dtype)
        )
        return mean.astype(np.float64), var.astype(np.float64)
    mean = _dense_mean(X, weights, unit)
    return mean, _dense_centred_mean_square(X, weights, mean, unit)


def _needs_rescaling(mean, var):
    xp, _ = array_namespace(mean)
    size = xp.abs(mean)
    return bool(
        xp.any(~xp.isfinite(var))
        or xp.any(size > 1e150)
        or xp.any((size > 0) & (size < 1e-140))
        or xp.any((var > 0) & (var < 1e-280))
    )


def _column_magnitude(X):
    """Largest absolute value per column, 1 for all-zero columns."""
    xp, device = array_namespace(X)
    wide = widest_float(xp, device)
    if sp.issparse(X):
        magnitude = abs(X).max(axis=0).toarray().ravel().astype(np.float64)
    else:
        magnitude = xp.zeros(X.shape[1], dtype=wide, device=device)
        for rows in _row_chunks(X):
            largest = xp.max(xp.abs(X[rows, ...]), axis=0)
            magnitude = xp.maximum(magnitude, xp.astype(largest, wide))
    return xp.where(magnitude > 0, magnitude, 1.0)


def internal_coordinates(mean, std, *, fit_intercept, l2, dtype):
    """Centre and inverse scale from feature means and standard deviations.

    See :func:`feature_statistics` for their meaning. Norms are formed with
    ``hypot`` so that no square overflows.
    """
    xp, _ = array_namespace(mean)
    if fit_intercept:
        center = mean
        spread = std
    else:
        center = xp.zeros_like(mean)
        spread = xp.hypot(std, mean)
    constant = spread <= 10 * xp.finfo(dtype).eps * xp.abs(mean)
    diag_root = xp.hypot(
        xp.where(constant, 0.0, spread), xp.full_like(spread, math.sqrt(l2))
    )
    positive = diag_root > 0
    inv_scale = xp.where(positive, 1.0 / xp.where(positive, diag_root, 1.0), 0.0)
    return (
        xp.astype(center, dtype, copy=False),
        xp.astype(inv_scale, dtype, copy=False),
    )


def _dense_mean(X, weights, unit):
    """Weighted column means of ``X / unit``, without copying ``X``."""
    xp, device = array_namespace(X)
    if X.dtype == weights.dtype and bool(xp.all(unit == 1)):
        return weights @ X
    total = xp.zeros(X.shape[1], dtype=weights.dtype, device=device)
    for rows in _row_chunks(X):
        total += weights[rows] @ (xp.astype(X[rows, ...], unit.dtype) / unit)
    return total


def _dense_centred_mean_square(X, weights, mean, unit):
    """Weighted mean of ``(X / unit - mean) ** 2`` per column."""
    xp, device = array_namespace(X)
    total = xp.zeros(X.shape[1], dtype=weights.dtype, device=device)
    scaled = not bool(xp.all(unit == 1))
    for rows in _row_chunks(X):
        block = xp.astype(X[rows, ...], unit.dtype, copy=True)
        if scaled:
            block /= unit
        block -= mean
        block *= block
        total += weights[rows] @ block
    return total


def _row_chunks(X):
    """Slices of rows holding about ``_CHUNK_ELEMENTS`` entries each."""
    n_samples, n_features = X.shape
    step = max(1, _CHUNK_ELEMENTS // max(n_features, 1))
    return [
        slice(start, min(start + step, n_samples))
        for start in range(0, n_samples, step)
    ]


class ScaledDesign:
    """The matrix ``Z = (X - center) * inv_scale`` as a linear operator.

    Parameters
    ----------
    X : ndarray or sparse matrix of shape (n_samples, n_features)
        The design in the user's units; kept by reference, never modified.

    center, inv_scale : ndarray of shape (n_features,)
        As returned by :func:`feature_statistics`.
    """

    def __init__(self, X, center, inv_scale):
        self.X = X
        self.center = center
        self.inv_scale = inv_scale
        self.xp, self.device = array_namespace(inv_scale)
        self._centred = bool(self.xp.any(center != 0))

    @property
    def shape(self):
        return self.X.shape

    def matvec(self, V):
        """Return ``Z @ V`` for ``V`` of shape (n_features,) or (n_features, k)."""
        U = V * _column(self.inv_scale, V)
        out = self.X @ U
        if self._centred:
            out -= self.center @ U
        return out

    def rmatvec(self, R):
        """Return ``Z.T @ R`` for ``R`` of shape (n_samples,) or (n_samples, k)."""
        out = self.X.T @ R
        if self._centred:
            out -= _column(self.center, out) * self.xp.sum(R, axis=0)
        out *= _column(self.inv_scale, out)
        return out

    def to_user_units(self, V, intercept):
        """Map internal coefficients to ``coef`` and ``intercept`` of ``X``.

        A coefficient beyond the floating-point range comes out infinite,
        for the caller to report (NumPy's overflow warnings are silenced).
        """
        with np.errstate(over="ignore", invalid="ignore"):
            coef = V * _column(self.inv_scale, V)
            intercept = intercept - self.center @ coef
        return coef, intercept

    def to_internal_units(self, coef, intercept):
        """Inverse of :meth:`to_user_units` on the span of non-constant features."""
        xp = self.xp
        intercept = intercept + self.center @ coef
        active = self.inv_scale > 0
        scale = xp.where(active, 1.0 / xp.where(active, self.inv_scale, 1.0), 0.0)
        return coef * _column(scale, coef), intercept


def _column(v, like):
    """View a per-feature vector so it broadcasts against ``like``'s rows."""
    return v if like.ndim == 1 else v[:, None]


def merge_moments(first, second):
    """Combine ``(weight_sum, mean, std)`` of two sets of rows into one."""
    w1, m1, s1 = first
    w2, m2, s2 = second
    xp, _ = array_namespace(m1)
    total = w1 + w2
    share = w2 / total
    delta = m2 - m1
    mean = m1 + share * delta
    unit = xp.maximum(xp.maximum(s1, s2), xp.abs(delta))
    unit = xp.where(unit > 0, unit, 1.0)
    var = (1 - share) * (s1 / unit) ** 2 + share * (s2 / unit) ** 2
    var += share * (1 - share) * (delta / unit) ** 2
    return total, mean, xp.sqrt(var) * unit


def _dense_chunk(X, rows, center, inv_scale):
    """Rows of ``X``, densified if sparse, centred and scaled, in float64."""
    if sp.issparse(X):
        block = X[rows].toarray()
    else:
        xp, device = array_namespace(X)
        block = xp.astype(X[rows, ...], widest_float(xp, device))
    return (block - center) * inv_scale


def scaled_gram(X, center, inv_scale, weights, Y=None):
    """``Z^T W Z`` and ``Z^T W Y`` in float64, a chunk of rows at a time.

    ``Z = (X - center) * inv_scale`` is formed one chunk of rows at a time,
    so the cost is one pass over ``X`` at matrix-product speed and the
    memory a chunk. ``weights`` are per-row (summing to one), or None for
    ``1 / n_samples`` each.
    """
    n_samples, n_features = X.shape
    xp, device = array_namespace(center)
    wide = widest_float(xp, device)
    gram = xp.zeros((n_features, n_features), dtype=wide, device=device)
    cross = None
    if Y is not None:
        cross = xp.zeros((n_features,) + tuple(Y.shape[1:]), dtype=wide, device=device)
    for rows in _row_chunks(X):
        Z = _dense_chunk(X, rows, center, inv_scale)
        if weights is None:
            gram += Z.T @ Z
            if Y is not None:
                cross += Z.T @ Y[rows, ...]
            continue
        weighted = Z * weights[rows, None]
        gram += weighted.T @ Z
        if Y is not None:
            cross += weighted.T @ Y[rows, ...]
    if weights is None:
        gram /= n_samples
        if Y is not None:
            cross /= n_samples
    return gram, cross


# Whitening is worth its extra matrix product per chunk of rows only when the
# scaled features are correlated enough to slow stochastic descent down.
_WHITEN_MIN_CONDITION = 10.0
_WHITEN_MAX_FEATURES = 500


def _whitening_covariance(X, sample_weight, center, inv_scale, gram):
    """The covariance ``C`` of the scaled rows (``gram`` when given), or
    None when the number of features rules whitening out."""
    n_features = X.shape[1]
    if n_features < 2 or n_features > _WHITEN_MAX_FEATURES:
        return None
    if gram is not None:
        return gram
    C, _ = scaled_gram(X, center, inv_scale, sample_weight / sample_weight.sum())
    return C


def whitening_rotation(X, sample_weight, center, inv_scale, gram=None):
    """Matrix ``S`` that whitens the scaled design, with its inverse.

    With ``C = Q diag(lam) Q^T`` the weighted covariance of ``Z = (X -
    center) * inv_scale`` (unit diagonal), ``S = Q diag(lam^-1/2) Q^T``
    makes ``Z @ S`` have identity covariance, so every direction of the
    least-squares problem has the same curvature. Directions whose variance
    is below ``1e-10`` of the largest (exact collinearity, up to rounding)
    are left with the largest direction's scale instead: they carry no
    information, and amplifying them would only amplify rounding errors.

    ``gram``, when given, is ``C`` already computed.

    Returns ``(S, S^-1, B)``, ``B`` the orthonormal basis of the informative
    directions (so that ``S^T C S = B B^T``), or None when ``C`` is already
    well conditioned or when there are too many features for a ``(d, d)``
    matrix to be cheap.
    """
    C = _whitening_covariance(X, sample_weight, center, inv_scale, gram)
    if C is None:
        return None
    lam, Q = np.linalg.eigh(C)
    top = lam[-1]
    if top <= 0 or lam[0] * _WHITEN_MIN_CONDITION >= top:
        return None
    informative = lam > 1e-10 * top
    factor = np.where(informative, 1.0 / np.sqrt(np.where(informative, lam, 1)), 1.0)
    factor[~informative] = 1.0 / np.sqrt(top)
    return (Q * factor) @ Q.T, (Q / factor) @ Q.T, Q[:, informative]


def penalised_whitening(X, sample_weight, center, inv_scale, penalty, gram=None):
    """Coordinates in which an L2-penalised least-squares problem is isotropic.

    With ``C`` the weighted covariance of ``Z = (X - center) * inv_scale``
    and ``L = diag(penalty)`` the penalty's curvature in those units, the
    Hessian is ``H = C + L``. The generalized eigenvectors ``Q`` of ``(L,
    H)`` satisfy ``Q^T H Q = I`` and ``Q^T L Q = diag(nu)``: in the
    coordinates ``u`` of ``Z @ Q`` every direction has unit curvature, and
    the penalty stays diagonal, ``nu_i u_i^2 / 2`` with ``0 <= nu_i <= 1``,
    so directions that only the penalty curves are reached as fast as the
    others. Features without spread (``inv_scale == 0``) keep a zero
    coordinate.

    ``gram``, when given, is ``C`` already computed.

    Returns ``((Q, Q^-1), nu)``, or None when ``H`` is already well
    conditioned, when there are too many features for a ``(d, d)`` matrix
    to be cheap, or when ``H`` is too close to singular to factor.
    """
    C = _whitening_covariance(X, sample_weight, center, inv_scale, gram)
    if C is None:
        return None
    penalty = np.asarray(penalty, dtype=np.float64)
    H = C + np.diag(penalty)
    idle = np.diag(H) <= 0
    H[idle, idle] = 1.0
    curvatures = np.linalg.eigvalsh(H)
    if curvatures[0] <= 0 or curvatures[0] * _WHITEN_MIN_CONDITION >= curvatures[-1]:
        return None
    try:
        nu, Q = eigh(np.diag(penalty), H)
    except LinAlgError:
        return None
    return (Q, Q.T @ H), np.clip(nu, 0.0, None)
