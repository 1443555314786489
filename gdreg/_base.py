"""What the gradient-descent regressors share: parameters, data, predict."""

import math
from contextlib import contextmanager

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.utils.extmath import safe_sparse_dot
from sklearn.utils.validation import check_is_fitted, validate_data

from ._scaling import ScaledDesign, _column, feature_statistics
from ._validation import (
    CallbackSupportMixin,
    Integral,
    Interval,
    Real,
    StrOptions,
    array_namespace,
    callback_management_context,
    check_parameters,
    check_predict_namespace,
    check_sample_weight,
    check_target,
    naming_input,
    to_namespace,
    to_numpy,
    widest_float,
)


class Problem:
    """A fit's data in internal coordinates, ready for a solver.

    Attributes
    ----------
    design : ScaledDesign
        The implicitly centred and scaled features.

    y : ndarray
        Targets minus ``y_offset``, divided by ``y_scale``.

    y_offset : float or ndarray
        The internal intercept: the weighted mean of the targets with an
        intercept, zero without.

    y_scale : float
        The largest centred target magnitude. Solving for targets of order
        one keeps squares of targets near 1e200 from overflowing;
        coefficients and objective values scale back exactly.

    weights : ndarray or None
        Sample weights normalised to sum to one; None when all are equal.

    l1, l2 : ndarray of shape (n_features,) or None
        Penalty strengths per internal coordinate, for the scaled targets.
    """

    def __init__(self, design, y, y_offset, y_scale, weights, l1, l2):
        self.design = design
        self.y = y
        self.y_offset = y_offset
        self.y_scale = y_scale
        self.weights = weights
        self.l1 = l1
        self.l2 = l2


def _is_plain_design(X):
    """Whether ``X`` is a finite two-dimensional NumPy array of float64 or
    float32 with at least one row and one column."""
    return (
        type(X) is np.ndarray
        and X.ndim == 2
        and X.dtype in (np.float64, np.float32)
        and X.shape[0] > 0
        and X.shape[1] > 0
        and bool(np.isfinite(X).all())
    )


class BaseGDRegressor(CallbackSupportMixin, RegressorMixin, BaseEstimator):
    """Shared parameters, data handling and prediction.

    Subclasses implement ``fit``; this class turns validated data into a
    :class:`Problem` and stores solutions as ``coef_`` and ``intercept_``.
    With scikit-learn 1.9 or later it also takes callbacks
    (``set_callbacks``), which :class:`FitHooks` calls during fits.

    Subclasses whose solvers are written for any array API namespace set
    ``_array_api = True``; the others see NumPy data only, as arrays of other
    libraries are copied to NumPy when array API dispatch is on.
    """

    _array_api = False

    _parameter_constraints: dict = {
        "penalty": [StrOptions({"l2", "l1", "elasticnet"}), None],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "l1_ratio": [Interval(Real, 0, 1, closed="both")],
        "fit_intercept": ["boolean"],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "warm_start": ["boolean"],
        "verbose": ["verbose"],
    }

    def __sklearn_is_fitted__(self):
        return hasattr(self, "coef_")

    @contextmanager
    def _all_or_nothing(self):
        """Restore the estimator's attributes if the block raises.

        A failed fit then leaves the estimator unfitted, or as its previous
        fit left it, never half-updated. Callbacks started in the block are
        ended (their ``teardown``) whether it raises or not.
        """
        saved = dict(self.__dict__)
        try:
            with callback_management_context(self):
                yield
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(saved)
            raise

    def _validate_fit_data(self, X, y, sample_weight, reset):
        """Check ``X``, ``y`` and ``sample_weight``; ``y`` gets ``X``'s dtype."""
        X = self._validate_features(X, reset=reset)
        xp, device = array_namespace(X)
        y, sample_weight = to_namespace(y, sample_weight, xp=xp, device=device)
        y = check_target(y, X)
        sample_weight = check_sample_weight(sample_weight, X, X.dtype)
        return X, y, sample_weight

    def _validate_features(self, X, reset):
        """Check ``X``; errors name it and say what it must hold."""
        if not self._array_api:
            X = to_numpy(X)
        if reset and _is_plain_design(X):
            # What scikit-learn's validation does with such an array when a
            # fit starts, without its overhead (a tenth of a millisecond,
            # much of a fit on a few hundred rows).
            self.n_features_in_ = X.shape[1]
            if hasattr(self, "feature_names_in_"):
                del self.feature_names_in_
            return X
        xp, _ = array_namespace(X)
        with naming_input("X"):
            return validate_data(
                self,
                X,
                reset=reset,
                accept_sparse=["csr", "csc"],
                dtype=[xp.float64, xp.float32],
            )

    def _penalty_strengths(self):
        """The L1 and L2 strengths of the penalty in the user's units."""
        if self.penalty is None:
            return 0.0, 0.0
        rho = {"l1": 1.0, "l2": 0.0, "elasticnet": self.l1_ratio}[self.penalty]
        return self.alpha * rho, self.alpha * (1.0 - rho)

    def _make_problem(self, X, y, sample_weight):
        """Centre and scale implicitly; map the penalty to internal units."""
        l1, l2 = self._penalty_strengths()
        center, inv_scale = feature_statistics(
            X, sample_weight, fit_intercept=self.fit_intercept, l2=l2
        )
        design = ScaledDesign(X, center, inv_scale)
        xp, device = design.xp, design.device
        uniform = bool(xp.all(sample_weight == sample_weight[0]))
        weights = None if uniform else sample_weight / xp.sum(sample_weight)
        wide = widest_float(xp, device)
        y = xp.astype(y, wide)
        if not self.fit_intercept:
            y_offset = xp.zeros(tuple(y.shape[1:]), dtype=wide, device=device)
        elif weights is None:
            y_offset = xp.mean(y, axis=0)
        else:
            w = _column(xp.astype(weights, wide), y)
            y_offset = xp.sum(y * w, axis=0) / xp.sum(w)
        y -= y_offset
        y_scale = float(xp.max(xp.abs(y))) if math.prod(y.shape) else 0.0
        y_scale = y_scale if 0 < y_scale < math.inf else 1.0
        y /= y_scale
        return Problem(
            design=design,
            y=xp.astype(y, X.dtype),
            y_offset=xp.astype(y_offset, X.dtype),
            y_scale=y_scale,
            weights=weights,
            l1=(l1 / y_scale * inv_scale) if l1 > 0 else None,
            l2=xp.astype(l2 * inv_scale**2, X.dtype),
        )

    def _initial_coef(self, problem):
        """Zero, or the previous solution in internal units with warm start."""
        design = problem.design
        xp, device = design.xp, design.device
        shape = (design.shape[1],) + tuple(problem.y.shape[1:])
        dtype = problem.y.dtype
        if not (self.warm_start and hasattr(self, "coef_")):
            return xp.zeros(shape, dtype=dtype, device=device)
        coef = xp.asarray(to_namespace(self.coef_, xp=xp, device=device))
        coef = xp.reshape(_transpose(xp.astype(coef, dtype)), shape) / problem.y_scale
        zero = xp.zeros(shape[1:], dtype=dtype, device=device)
        V, _ = design.to_internal_units(coef, zero)
        return V

    def _store_solution(self, problem, V):
        """Set ``coef_`` and ``intercept_`` from internal coefficients."""
        for name, value in self._user_solution(problem, V).items():
            setattr(self, name, value)

    def _user_solution(self, problem, V):
        """``coef_`` and ``intercept_`` for internal coefficients ``V``."""
        xp = problem.design.xp
        coef, intercept = problem.design.to_user_units(
            V * problem.y_scale, problem.y_offset
        )
        dtype = problem.y.dtype
        intercept = xp.astype(xp.asarray(intercept), dtype)
        return {
            "coef_": xp.astype(_transpose(coef), dtype),
            "intercept_": intercept if intercept.ndim else intercept[()],
        }

    def _reporter(self):
        """The per-iteration printer used when ``verbose`` is on, else None."""
        if not self.verbose:
            return None
        name = type(self).__name__

        def report(iteration, objective, step, grad_ratio):
            print(
                f"{name}: iteration {iteration}, objective {objective:.6e}, "
                f"step {step:.3e}, gradient ratio {grad_ratio:.3e}"
            )

        return report

    def predict(self, X):
        """Predict with the fitted linear model.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Samples.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,) or (n_samples, n_targets)
            ``X @ coef_.T + intercept_``.
        """
        check_is_fitted(self)
        from ._dask import is_dask_collection, predict_dask

        if is_dask_collection(X):
            return predict_dask(self, X)
        if self._array_api:
            check_predict_namespace(X, self)
        return self._linear_predict(self._validate_features(X, reset=False))

    def _linear_predict(self, X):
        """``X @ coef_.T + intercept_`` for already validated ``X``."""
        xp, _ = array_namespace(X)
        coef = _transpose(xp.astype(self.coef_, X.dtype, copy=False))
        return safe_sparse_dot(X, coef, dense_output=True) + self.intercept_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.target_tags.multi_output = True
        return tags

    def _check_parameters(self):
        check_parameters(self)


def _transpose(A):
    """``A.T`` for a matrix; a vector is its own transpose."""
    return A.T if A.ndim == 2 else A


class FitHooks:
    """Call an estimator's callbacks for one fit and for each of its steps.

    The fit is the root task, with up to ``max_steps`` subtasks named
    ``step_name`` (iterations or epochs). The hooks of each step get the
    training data, the sample weights as metadata when the user gave some,
    and the coefficients at the step's start and end, from which the
    callback machinery builds a fitted copy of the estimator on demand. With
    scikit-learn versions lacking ``sklearn.callback`` every method does
    nothing.

    Parameters
    ----------
    estimator : BaseGDRegressor
        The estimator being fitted; its parameters are already validated.

    X, y : array-like
        The training data as the user gave it, so that callbacks that
        predict see the same feature names as the fit.

    sample_weight : array-like or None
        The user's sample weights, None when none were given.

    max_steps : int
        Largest number of steps.

    step_name : str
        The name of a step's task, shown by progress bars.
    """

    def __init__(self, estimator, X, y, sample_weight, max_steps, step_name):
        self.estimator = estimator
        self.data = {
            "X": X,
            "y": y,
            "metadata": None
            if sample_weight is None
            else {"sample_weight": sample_weight},
        }
        self.step_name = step_name
        self.context = None
        if hasattr(estimator, "_init_callback_context"):
            self.context = estimator._init_callback_context(max_subtasks=max_steps)
        # Steps cost nothing extra unless a callback is there to hear them.
        self.per_step = bool(getattr(estimator, "_skl_callbacks", None))
        self.previous = None

    def begin(self, solution=None):
        """Start the fit; ``solution`` holds the starting coefficients."""
        self.previous = solution
        if self.context is not None:
            self.context.call_on_fit_task_begin(estimator=self.estimator, **self.data)

    def step(self, solution):
        """End one step at ``solution``, a dict or a callable returning
        ``coef_`` and ``intercept_``; return True when a callback asks the
        fit to stop."""
        if not self.per_step:
            return False
        solution = solution() if callable(solution) else solution
        context = self.context.subcontext(task_name=self.step_name)
        context.call_on_fit_task_begin(
            estimator=self.estimator,
            reconstruction_attributes=self.previous,
            **self.data,
        )
        self.previous = solution
        return context.call_on_fit_task_end(
            estimator=self.estimator,
            reconstruction_attributes=solution,
            **self.data,
        )

    def end(self):
        """End the fit; the estimator holds its final coefficients."""
        if self.context is not None:
            self.context.call_on_fit_task_end(
                estimator=self.estimator, reconstruction_attributes={}, **self.data
            )
