"""The penalised least-squares objective in internal coordinates.

With ``Z`` the implicitly centred and scaled design (see ``_scaling``),
normalised sample weights ``w`` (summing to one) and centred targets ``y``,
the objective of the coefficients ``v`` is

    f(v) = 1/2 sum_i w_i (y_i - z_i . v)^2 + 1/2 v . (l2 * v) + sum_j l1_j |v_j|

where ``l2`` and ``l1`` are per-coordinate strengths. Its smooth part is the
quadratic ``1/2 v . H v - v . c + 1/2 yy`` with ``H = Z^T W Z + diag(l2)``,
``c = Z^T W y`` and ``yy = y . W y``. With several targets, ``v`` and ``y``
have one column per target and the objective is the sum over columns.
"""

from ._scaling import _column, scaled_gram
from ._validation import namespace, widest_float


class Quadratic:
    """The smooth part of the objective, reached through products with ``H``.

    Parameters
    ----------
    design : ScaledDesign
        The operator ``Z``.

    y : ndarray of shape (n_samples,) or (n_samples, n_targets)
        Targets, centred when the model has an intercept.

    weights : ndarray of shape (n_samples,) or None
        Sample weights summing to one; None means ``1 / n_samples`` each.

    l2 : ndarray of shape (n_features,)
        Per-coordinate L2 strengths.

    unit : float, default=1.0
        Factor from objective values here to the units the user sees;
        solvers multiply reported values by it.
    """

    def __init__(self, design, y, weights, l2, unit=1.0):
        self._keep(design, weights, l2, unit)
        xp = design.xp
        weighted_y = self._weigh(xp.asarray(y, copy=True))
        self.c = design.rmatvec(weighted_y)
        self.yy = xp.sum(y * weighted_y, axis=0)

    def _keep(self, design, weights, l2, unit):
        """Store what every form of the objective holds."""
        self.design = design
        self.weights = weights
        self.l2 = l2
        self.unit = unit
        self.n_hvp = 0

    def _weigh(self, R):
        """Multiply the rows of ``R`` by the sample weights, in place."""
        if self.weights is None:
            R /= R.shape[0]
        else:
            R *= _column(self.weights, R)
        return R

    def hvp(self, V):
        """Return ``H @ V``: one product with ``Z`` and one with ``Z.T``."""
        self.n_hvp += 1
        out = self.design.rmatvec(self._weigh(self.design.matvec(V)))
        out += V * _column(self.l2, V)
        return out

    def value(self, V, HV):
        """Smooth objective per target, from ``V`` and ``H @ V``."""
        return 0.5 * self.yy + namespace(V).sum(V * (0.5 * HV - self.c), axis=0)

    def gradient(self, HV):
        """Gradient of the smooth part, from ``H @ V``."""
        return HV - self.c


class GramQuadratic(Quadratic):
    """The smooth part of the objective with ``H`` formed once.

    One pass over ``X`` at matrix-product speed forms ``Z^T W Z`` (a
    ``(d, d)`` matrix); every later product with ``H`` then costs ``d^2``
    instead of two passes over ``X``. The iterates are those of
    :class:`Quadratic` up to rounding. Dense ``X`` only.
    """

    def __init__(self, design, y, weights, l2, unit=1.0):
        self._keep(design, weights, l2, unit)
        xp, device = design.xp, design.device
        wide = widest_float(xp, device)
        y64 = xp.astype(y, wide)
        gram, cross = scaled_gram(
            design.X, design.center, design.inv_scale, weights, y64
        )
        # The identity times a row of strengths is the diagonal matrix.
        n_features = l2.shape[0]
        eye = xp.eye(n_features, dtype=wide, device=device)
        self.hessian = xp.astype(gram + eye * xp.astype(l2, wide), y.dtype)
        self.c = xp.astype(cross, y.dtype)
        w = 1 / y.shape[0] if weights is None else _column(weights, y)
        self.yy = xp.astype(xp.sum(w * y64 * y64, axis=0), y.dtype)

    def hvp(self, V):
        """Return ``H @ V`` from the stored matrix."""
        self.n_hvp += 1
        return self.hessian @ V


def l1_value(V, l1):
    """The L1 part of the objective per target."""
    if l1 is None:
        return 0.0
    xp = namespace(V)
    return xp.sum(xp.abs(V) * _column(l1, V), axis=0)


def soft_threshold(V, threshold):
    """Proximal operator of ``threshold * |v|``, coordinate-wise."""
    xp = namespace(V)
    excess = xp.abs(V) - threshold
    return xp.sign(V) * xp.maximum(excess, xp.zeros_like(excess))


def min_norm_subgradient(V, G, l1):
    """Smallest element of the subdifferential of the objective at ``V``.

    ``G`` is the gradient of the smooth part at ``V``; its norm is zero
    exactly at a minimiser.
    """
    if l1 is None:
        return G
    xp = namespace(V)
    l1 = _column(l1, V)
    return xp.where(V != 0, G + l1 * xp.sign(V), soft_threshold(G, l1))
