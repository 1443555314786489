"""Full-batch solvers for the objective of ``_objective``.

Every solver sees the objective only through ``Quadratic.hvp`` (one product
with ``Z`` and one with ``Z.T``) and the L1 strengths, so the same code runs
on any design operator. All of them stop when the norm of the smallest
subgradient, per target, has fallen below ``tol`` times its value at the
zero coefficients (the gradient there is ``-c``): a measure of closeness to
the minimum, not of progress, and the same whatever the starting point.

The arrays stay in the namespace and on the device of the starting point
(NumPy, or another array API library under scikit-learn's
``array_api_dispatch``); only the scalars that steer the loop become Python
floats.
"""

import math
from dataclasses import dataclass, field

import numpy as np

from ._objective import l1_value, min_norm_subgradient, soft_threshold
from ._validation import array_namespace, namespace, widest_float


@dataclass
class SolverResult:
    """What a solver returns: internal coefficients and its trace."""

    coef: object
    n_iter: int = 0
    converged: bool = False
    loss_curve: list = field(default_factory=list)
    grad_ratio: float = 0.0
    stopped: bool = False


class DivergenceError(ArithmeticError):
    """A user-given step made the objective grow or leave the finite range."""

    def __init__(self, iteration, start_value, value):
        super().__init__(iteration, start_value, value)
        self.iteration = iteration
        self.start_value = start_value
        self.value = value


class _Monitor:
    """Track the stopping criterion, the loss curve, verbose output and the
    per-iteration hook, which may ask the solver to stop."""

    def __init__(self, c, S0, tol, report, unit=1.0, on_iteration=None):
        self.xp = namespace(c)
        at_zero, at_start = _column_norm(c), _column_norm(S0)
        self.unit = unit
        self.reference = self.xp.where(at_zero > 0, at_zero, at_start)
        self.tol = tol
        self.report = report
        self.on_iteration = on_iteration
        self.stopped = False
        self.loss_curve = []
        self.grad_ratio = self._ratio(S0)

    def _ratio(self, S):
        return float(self.xp.max(_safe_divide(_column_norm(S), self.reference)))

    def done(self):
        return self.grad_ratio <= self.tol

    def record(self, objective, S, step, V):
        self.grad_ratio = self._ratio(S)
        self.loss_curve.append(float(self.xp.sum(objective)) * self.unit)
        if self.report is not None:
            self.report(
                len(self.loss_curve), self.loss_curve[-1], step, self.grad_ratio
            )
        if self.on_iteration is not None:
            self.stopped = bool(self.on_iteration(V))

    def result(self, coef):
        return SolverResult(
            coef=coef,
            n_iter=len(self.loss_curve),
            converged=self.done(),
            loss_curve=self.loss_curve,
            grad_ratio=self.grad_ratio,
            stopped=self.stopped,
        )


def _column_norm(A):
    xp, device = array_namespace(A)
    return xp.sqrt(xp.sum(A * A, axis=0, dtype=widest_float(xp, device)))


def _safe_divide(num, den):
    """``num / den`` where ``den`` is positive, zero elsewhere."""
    xp = namespace(num, den)
    positive = den > 0
    return xp.where(positive, num / xp.where(positive, den, 1.0), 0.0)


def _start(quad, V0):
    """``H @ V0`` without a product when starting from zero."""
    xp = namespace(V0)
    if not bool(xp.any(V0 != 0)):
        return xp.zeros_like(V0)
    return quad.hvp(V0)


def solve_cg(
    quad, V0, *, tol: float, max_iter: int, report=None, on_iteration=None
) -> SolverResult:
    """Conjugate gradients on the smooth objective (no L1 part).

    Gradient descent along directions that mix the new gradient with the
    previous direction, each with the exactly minimising step. The gradient is
    updated by recurrence; before declaring convergence it is recomputed from
    scratch, and the method restarts from the true gradient if the two
    disagree.

    Parameters
    ----------
    quad : Quadratic
        The smooth objective.

    V0 : ndarray of shape (n_features,) or (n_features, n_targets)
        Starting point; not modified.

    tol : float
        Relative gradient norm at which to stop.

    max_iter : int
        Largest number of iterations (products with ``H``, restarts aside).

    report : callable or None
        Called as ``report(iteration, objective, step, grad_ratio)``.

    on_iteration : callable or None
        Called as ``on_iteration(V)`` after each iteration, with the current
        coefficients (not to be kept: they change in place); a true return
        value stops the solver.

    Returns
    -------
    result : SolverResult
    """
    xp = namespace(V0)
    V = xp.asarray(V0, copy=True)
    G = quad.gradient(_start(quad, V))
    monitor = _Monitor(quad.c, G, tol, report, quad.unit, on_iteration)
    P = -G
    gg = xp.sum(G * G, axis=0)
    while not monitor.done() and len(monitor.loss_curve) < max_iter:
        HP = quad.hvp(P)
        step = _safe_divide(gg, xp.sum(P * HP, axis=0))
        V += step * P
        G += step * HP
        monitor.record(quad.value(V, G + quad.c), G, float(xp.max(step)), V)
        if monitor.stopped:
            break
        if monitor.done():
            G = quad.gradient(quad.hvp(V))
            monitor.grad_ratio = monitor._ratio(G)
            if not monitor.done():
                P = -G
                gg = xp.sum(G * G, axis=0)
                continue
        gg_new = xp.sum(G * G, axis=0)
        P = -G + _safe_divide(gg_new, gg) * P
        gg = gg_new
    return monitor.result(V)


def solve_proximal_gradient(
    quad,
    l1,
    V0,
    *,
    step: float | None,
    momentum: bool,
    tol: float,
    max_iter: int,
    report=None,
    on_iteration=None,
) -> SolverResult:
    """Proximal gradient descent, optionally accelerated with restarts.

    Each iteration takes ``V <- prox(Y - step * grad(Y))``, where the
    proximal map is soft-thresholding for the L1 part (the identity without
    it), so with ``momentum=False`` and no L1 part this is plain gradient
    descent. With momentum, ``Y`` extrapolates along the last move
    (Nesterov's scheme) and the momentum is reset whenever the last move
    pointed against the gradient step, which keeps the iterates from
    oscillating on ill-conditioned problems.

    Parameters
    ----------
    quad : Quadratic
        The smooth part of the objective.

    l1 : ndarray of shape (n_features,) or None
        Per-coordinate L1 strengths.

    V0 : ndarray of shape (n_features,) or (n_features, n_targets)
        Starting point; not modified.

    step : float or None
        A fixed step size. None chooses it by backtracking: the curvature of
        each move is measured from products already at hand and the step is
        halved until it is no larger than the inverse curvature, so the
        iterates cannot diverge.

    momentum : bool
        Whether to accelerate.

    tol : float
        Relative norm of the smallest subgradient at which to stop.

    max_iter : int
        Largest number of accepted iterations.

    report : callable or None
        Called as ``report(iteration, objective, step, grad_ratio)``.

    on_iteration : callable or None
        Called as ``on_iteration(V)`` after each accepted iteration; a true
        return value stops the solver.

    Returns
    -------
    result : SolverResult

    Raises
    ------
    DivergenceError
        When a fixed ``step`` makes the objective grow above its starting
        value or become non-finite.
    """
    xp, device = array_namespace(V0)
    X_prev = xp.asarray(V0, copy=True)
    HX = _start(quad, X_prev)
    f_start = quad.value(X_prev, HX) + l1_value(X_prev, l1)
    S0 = min_norm_subgradient(X_prev, quad.gradient(HX), l1)
    monitor = _Monitor(quad.c, S0, tol, report, quad.unit, on_iteration)
    Y, HY = X_prev, HX
    shape = tuple(quad.yy.shape)
    first = 1.0 if step is None else step
    steps = xp.full(shape, first, dtype=V0.dtype, device=device)
    t = xp.ones(shape, dtype=widest_float(xp, device), device=device)
    l1_col = None if l1 is None else (l1 if V0.ndim == 1 else l1[:, None])
    while not monitor.done() and len(monitor.loss_curve) < max_iter:
        V = Y - steps * quad.gradient(HY)
        if l1_col is not None:
            V = soft_threshold(V, steps * l1_col)
        HV = quad.hvp(V)
        if step is None:
            too_long, steps = _backtrack(V - Y, HV - HY, steps)
            if too_long:
                continue
        objective = quad.value(V, HV) + l1_value(V, l1)
        if step is not None:
            _check_divergence(len(monitor.loss_curve) + 1, f_start, objective)
        S = min_norm_subgradient(V, quad.gradient(HV), l1)
        monitor.record(objective, S, float(xp.max(steps)), V)
        if monitor.stopped:
            X_prev = V
            break
        if momentum:
            restart = xp.sum((Y - V) * (V - X_prev), axis=0) > 0
            t_next = xp.where(restart, 1.0, 0.5 * (1 + xp.sqrt(1 + 4 * t * t)))
            beta = xp.astype(xp.where(restart, 0.0, (t - 1) / t_next), V.dtype)
            Y = V + beta * (V - X_prev)
            HY = HV + beta * (HV - HX)
            t = t_next
        else:
            Y, HY = V, HV
        X_prev, HX = V, HV
    return monitor.result(X_prev)


def _backtrack(D, HD, steps):
    """Shorten the steps of the targets whose move ``D`` was too long.

    A step is safe when it is at most the inverse of the curvature
    ``D . H D / D . D`` along the move just taken.
    """
    xp = namespace(D)
    curvature = _safe_divide(xp.sum(D * HD, axis=0), xp.sum(D * D, axis=0))
    too_long = curvature * steps > 1 + 1e-6
    if not bool(xp.any(too_long)):
        return False, steps
    shorter = xp.minimum(0.5 * steps, 1 / xp.where(too_long, curvature, 1.0))
    return True, xp.astype(xp.where(too_long, shorter, steps), steps.dtype)


def _check_divergence(iteration, f_start, objective):
    xp = namespace(f_start)
    total, start = float(xp.sum(objective)), float(xp.sum(f_start))
    if not math.isfinite(total) or total > start + 1e-9 * abs(start):
        raise DivergenceError(iteration, start, total)


def largest_curvature(quad, shape, dtype, n_iter=30, seed=0):
    """Estimate the largest eigenvalue of ``H`` by power iteration.

    The starting vector is drawn with NumPy and moved to the namespace and
    device of ``quad.c``, so that every namespace starts from the same one.
    """
    xp, device = array_namespace(quad.c)
    start = np.random.default_rng(seed).standard_normal(shape[0])
    V = xp.asarray(start, dtype=dtype, device=device)
    value = 0.0
    for _ in range(n_iter):
        norm = float(xp.sqrt(xp.sum(V * V)))
        if norm == 0:
            break
        V /= norm
        HV = quad.hvp(V)
        value = float(xp.sum(V * HV))
        V = HV
    return value
