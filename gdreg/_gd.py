"""Full-batch gradient descent: ``GDLinearRegressor``."""

import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning

from ._base import BaseGDRegressor, FitHooks
from ._objective import GramQuadratic, Quadratic
from ._solvers import (
    DivergenceError,
    largest_curvature,
    solve_cg,
    solve_proximal_gradient,
)
from ._validation import (
    Interval,
    Real,
    StrOptions,
    check_finite_result,
    namespace,
)

# Above this many features the (d, d) matrix of precompute='auto' costs more
# memory and time per step than it saves.
_GRAM_MAX_FEATURES = 2000


class GDLinearRegressor(BaseGDRegressor):
    """Linear regression fitted by full-batch gradient descent.

    Minimises the mean squared error with the one-half factor, plus an
    optional L2, L1 or elastic-net penalty, using the gradient over all
    samples at every step. Features may be given in any units: the solver
    centres and scales them internally without copying ``X``, and returns
    coefficients in the units of ``X``.

    Parameters
    ----------
    penalty : {'l2', 'l1', 'elasticnet'} or None, default=None
        The penalty on the coefficients (never on the intercept). None fits
        plain least squares.

    alpha : float, default=1e-4
        Strength of the penalty; ignored when ``penalty`` is None.

    l1_ratio : float, default=0.15
        Share of L1 in the elastic-net penalty, between 0 and 1; used only
        with ``penalty='elasticnet'``.

    fit_intercept : bool, default=True
        Whether to fit an intercept. If False the model passes through the
        origin.

    learning_rate : 'auto' or float, default='auto'
        The step size. 'auto' chooses it from the data so that the iterates
        cannot diverge (exact line search along conjugate directions, or a
        backtracking step on the curvature of each move). A positive float
        ``eta`` runs the textbook update ``v <- v - eta * gradient`` in the
        scaled coordinates described in the Notes; a step too large for the
        data raises ``ValueError`` that gives the largest stable value.

    acceleration : {'auto', 'cg', 'nesterov', 'none'}, default='auto'
        How the descent is sped up. 'cg' is conjugate gradients: each step
        combines the new gradient with the previous direction and has the
        exactly minimising length; it needs ``learning_rate='auto'`` and no
        L1 part in the penalty. 'nesterov' is Nesterov's accelerated
        (proximal) gradient with adaptive restarts. 'none' is plain
        (proximal) gradient descent. 'auto' picks 'cg' when it applies,
        else 'nesterov' with ``learning_rate='auto'`` and 'none' with a
        float learning rate.

    precompute : 'auto' or bool, default='auto'
        Whether to form the matrix ``Z^T W Z`` of the scaled features once
        (one pass over ``X`` at matrix-product speed, ``n_features ** 2``
        memory) and compute every gradient from it, instead of making two
        passes over ``X`` per iteration. The iterates are the same up to
        rounding. 'auto' precomputes for dense ``X`` with at most 2000
        features and at least twice as many samples as features.

    max_iter : int, default=1000
        Largest number of iterations.

    tol : float, default=1e-6
        Stop when the norm of the gradient (for an L1 penalty: of the
        smallest subgradient) in the scaled coordinates has fallen to
        ``tol`` times the gradient norm at zero coefficients. Zero gradient
        means the minimum is reached, so this measures closeness to it, not
        a slowdown of progress. For
        float32 input the tolerance used is at least ``1e-4``, about what
        single precision can resolve.

    warm_start : bool, default=False
        Whether to start from the previous fit's coefficients.

    verbose : int, default=0
        If positive, print one line per iteration: the objective, the step
        and the gradient ratio compared with ``tol``.

    Attributes
    ----------
    coef_ : ndarray of shape (n_features,) or (n_targets, n_features)
        Coefficients, in the units of ``X``.

    intercept_ : float or ndarray of shape (n_targets,)
        The intercept; 0 when ``fit_intercept=False``.

    n_iter_ : int
        Number of iterations run.

    loss_curve_ : list of float
        The objective after each iteration (summed over targets). For
        targets beyond about 1e154 the objective itself exceeds the range of
        float64 and is recorded as infinity; the fit is unaffected.

    n_features_in_ : int
        Number of features seen during fit.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Feature names seen during fit, when ``X`` has string column names.

    See Also
    --------
    SGDLinearRegressor : The same model by stochastic gradient descent.
    sklearn.linear_model.LinearRegression : The closed-form solution.
    sklearn.linear_model.ElasticNet : Coordinate descent for the penalised
        objective.

    Notes
    -----
    With sample weights :math:`s_i`, the objective is

    .. math::

        E(w, b) = \\frac{1}{2 \\sum_i s_i} \\sum_i s_i (y_i - x_i \\cdot w - b)^2
                  + \\alpha \\left(\\rho \\lVert w \\rVert_1
                  + \\frac{1 - \\rho}{2} \\lVert w \\rVert_2^2\\right)

    with :math:`\\rho` = ``l1_ratio`` (0 for 'l2', 1 for 'l1'). Its gradient
    is :math:`\\nabla_w E = -\\frac{1}{\\sum s} \\sum_i s_i
    (y_i - x_i \\cdot w - b) x_i + \\alpha (1 - \\rho) w` (plus the L1
    subgradient), and a gradient step is :math:`w \\leftarrow w - \\eta
    \\nabla_w E`.

    The solver works in coordinates :math:`z_{ij} = (x_{ij} - \\mu_j) / d_j`
    with :math:`\\mu_j` the weighted feature mean (0 without an intercept)
    and :math:`d_j = \\sqrt{m_j + \\alpha (1 - \\rho)}`, :math:`m_j` the
    weighted mean square of the centred feature: the square root of the
    diagonal of the objective's Hessian. There, every feature has unit
    curvature whatever its units, so a single step size suits all of them;
    products with :math:`Z` cost one product with ``X`` and never copy it.
    Without a penalty this is the usual standardisation, and a float
    ``learning_rate`` gives the iterates of textbook gradient descent on
    standardised features, mapped back to the units of ``X``. Centring
    makes the intercept's gradient independent of :math:`w`, so the
    intercept is held at its optimal value throughout. Features that are
    constant get a zero coefficient.

    Scaling does not cure near-collinear features. Conjugate gradients
    handles them well (at most ``n_features`` steps in exact arithmetic),
    which is why it is the default without an L1 part; with one, the
    accelerated proximal method may need many more iterations on such data.

    With scikit-learn's ``array_api_dispatch`` switched on, dense ``X`` from
    any library that follows the array API standard (PyTorch,
    array-api-strict, ...) is used as it is: every product with ``X`` runs
    in that library and on the device of ``X``, ``y`` and ``sample_weight``
    are moved there, and ``coef_``, ``intercept_`` and the predictions are
    arrays of the same library and device. ``predict`` refuses data from
    another library or device than the fit's. Sparse ``X`` is always
    handled by NumPy and SciPy.

    Examples
    --------
    >>> import numpy as np
    >>> from gdreg import GDLinearRegressor
    >>> X = np.array([[1.0, 200.0], [2.0, 100.0], [3.0, 400.0], [4.0, 300.0]])
    >>> y = X @ np.array([2.0, 0.01]) + 1.0
    >>> reg = GDLinearRegressor().fit(X, y)
    >>> np.round(reg.coef_, 6)
    array([2.  , 0.01])
    >>> round(float(reg.intercept_), 6)
    1.0
    """

    _array_api = True

    _parameter_constraints: dict = {
        **BaseGDRegressor._parameter_constraints,
        "learning_rate": [
            StrOptions({"auto"}),
            Interval(Real, 0, None, closed="neither"),
        ],
        "acceleration": [StrOptions({"auto", "cg", "nesterov", "none"})],
        "precompute": [StrOptions({"auto"}), "boolean"],
    }

    def __init__(
        self,
        *,
        penalty=None,
        alpha=1e-4,
        l1_ratio=0.15,
        fit_intercept=True,
        learning_rate="auto",
        acceleration="auto",
        precompute="auto",
        max_iter=1000,
        tol=1e-6,
        warm_start=False,
        verbose=0,
    ):
        self.penalty = penalty
        self.alpha = alpha
        self.l1_ratio = l1_ratio
        self.fit_intercept = fit_intercept
        self.learning_rate = learning_rate
        self.acceleration = acceleration
        self.precompute = precompute
        self.max_iter = max_iter
        self.tol = tol
        self.warm_start = warm_start
        self.verbose = verbose

    def fit(self, X, y, sample_weight=None):
        """Fit the model by full-batch gradient descent.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training data; CSR and CSC matrices are used without densifying.

        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Targets.

        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative weights; integer weights are equivalent to repeating
            samples.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        from ._dask import fit_dask, is_dask_collection

        if is_dask_collection(X):
            return fit_dask(self, X, y, sample_weight)
        with self._all_or_nothing():
            return self._fit(X, y, sample_weight)

    def _fit(self, X, y, sample_weight):
        self._check_parameters()
        method = self._method()
        hooks = FitHooks(self, X, y, sample_weight, self.max_iter, "iteration")
        X, y, sample_weight = self._validate_fit_data(
            X, y, sample_weight, reset=not (self.warm_start and hasattr(self, "coef_"))
        )

        problem = self._make_problem(X, y, sample_weight)
        objective = GramQuadratic if self._use_gram(X) else Quadratic
        quad = objective(
            problem.design,
            problem.y,
            problem.weights,
            problem.l2,
            unit=_square(problem.y_scale),
        )
        V0 = self._initial_coef(problem)
        hooks.begin(self._user_solution(problem, V0) if hooks.per_step else None)

        result = self._solve(
            method,
            quad,
            problem,
            V0,
            X.dtype,
            lambda V: hooks.step(lambda: self._user_solution(problem, V)),
        )
        self._store_result(problem, result)
        hooks.end()
        self._warn_if_not_converged(result)
        return self

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.array_api_support = True
        return tags

    def _store_result(self, problem, result):
        """Store a solver's result, refusing non-finite coefficients."""
        coef, intercept = problem.design.to_user_units(
            result.coef * problem.y_scale, problem.y_offset
        )
        check_finite_result(
            type(self).__name__,
            coef,
            intercept,
            "The data may hold values too large for the floating-point type; "
            "rescale X and y.",
        )
        self._store_solution(problem, result.coef)
        self.n_iter_ = result.n_iter
        self.loss_curve_ = result.loss_curve

    def _warn_if_not_converged(self, result):
        """``ConvergenceWarning`` when ``max_iter`` ended the solver."""
        if result.converged or result.stopped:
            return
        warnings.warn(
            f"{type(self).__name__} did not converge: after "
            f"max_iter={self.max_iter} iterations the gradient norm is "
            f"{result.grad_ratio:.2e} times its initial value, above "
            f"tol={self.tol}. Increase max_iter, or use "
            "learning_rate='auto' and acceleration='auto' for the fastest "
            "solver.",
            ConvergenceWarning,
        )

    def _use_gram(self, X):
        """Whether to form ``Z^T W Z`` once instead of using ``X`` each step."""
        if self.precompute != "auto":
            if self.precompute and sp.issparse(X):
                raise ValueError(
                    "precompute=True needs dense X; got a sparse matrix. Use "
                    "precompute='auto' or False."
                )
            return self.precompute
        n_samples, n_features = X.shape
        return (
            not sp.issparse(X)
            and n_features <= _GRAM_MAX_FEATURES
            and n_samples >= 2 * n_features
        )

    def _method(self):
        """Resolve ``acceleration='auto'`` and reject impossible combinations."""
        has_l1 = self.penalty in ("l1", "elasticnet") and self.alpha > 0
        if self.penalty == "elasticnet" and self.l1_ratio == 0:
            has_l1 = False
        auto_step = self.learning_rate == "auto"
        if self.acceleration == "cg":
            if not auto_step:
                raise ValueError(
                    "acceleration='cg' chooses its own step lengths, so it needs "
                    f"learning_rate='auto'; got learning_rate={self.learning_rate!r}."
                    " Use acceleration='none' or 'nesterov' with a fixed step."
                )
            if has_l1:
                raise ValueError(
                    "acceleration='cg' does not handle the L1 part of "
                    f"penalty={self.penalty!r}; use acceleration='nesterov' or "
                    "'auto'."
                )
            return "cg"
        if self.acceleration == "auto":
            if auto_step and not has_l1:
                return "cg"
            return "nesterov" if auto_step else "none"
        return self.acceleration

    def _solve(self, method, quad, problem, V0, dtype, on_iteration):
        """Run the chosen solver; translate divergence into a clear error."""
        xp = namespace(V0)
        tol = self.tol if dtype == xp.float64 else max(self.tol, 1e-4)
        report = self._reporter()
        if method == "cg":
            return solve_cg(
                quad,
                V0,
                tol=tol,
                max_iter=self.max_iter,
                report=report,
                on_iteration=on_iteration,
            )
        step = None if self.learning_rate == "auto" else float(self.learning_rate)
        try:
            return solve_proximal_gradient(
                quad,
                problem.l1,
                V0,
                step=step,
                momentum=method == "nesterov",
                tol=tol,
                max_iter=self.max_iter,
                report=report,
                on_iteration=on_iteration,
            )
        except DivergenceError as exc:
            curvature = largest_curvature(quad, V0.shape, dtype)
            bound = (2.0 if method == "none" else 1.0) / curvature
            raise ValueError(
                f"learning_rate={self.learning_rate} is too large for this data: "
                f"the objective rose from {exc.start_value * quad.unit:.4g} to "
                f"{exc.value * quad.unit:.4g} by iteration {exc.iteration}. With "
                f"acceleration={method!r} the step must stay below about "
                f"{bound:.3g} here (from the largest curvature of the scaled "
                "problem). Pass a smaller learning_rate, or "
                "learning_rate='auto', which chooses a safe step itself."
            ) from None


def _square(value):
    """``value ** 2``, infinite rather than an error when it overflows."""
    with np.errstate(over="ignore"):
        return float(np.float64(value) ** 2)
