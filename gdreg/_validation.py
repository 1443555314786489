"""Checks of parameters and inputs.

This module is the one place where gdreg imports scikit-learn's private
helpers, so that a change in scikit-learn's internals touches one file.
"""

from contextlib import contextmanager, nullcontext
from numbers import Integral, Real

import numpy as np
from sklearn.utils._param_validation import (
    Interval,
    StrOptions,
    validate_parameter_constraints,
)
from sklearn.utils.validation import _check_sample_weight, check_array

try:
    from sklearn.callback import CallbackSupportMixin
    from sklearn.callback._callback_support import callback_management_context
except ImportError:  # scikit-learn before 1.9 has no callback API

    class CallbackSupportMixin:
        """Stand-in for scikit-learn versions without ``sklearn.callback``."""

    def callback_management_context(estimator):
        return nullcontext()


__all__ = [
    "CallbackSupportMixin",
    "Integral",
    "Interval",
    "Real",
    "StrOptions",
    "callback_management_context",
    "check_parameters",
    "check_sample_weight",
    "check_finite_result",
    "check_target",
    "naming_input",
]

_WHAT_IS_ALLOWED = {
    "X": "a 2-D array or sparse matrix of finite real numbers, one row per sample",
    "y": "a 1-D or 2-D array of finite real numbers, one row per sample",
}


@contextmanager
def naming_input(name):
    """Make errors raised while checking an input name it and say what is
    allowed, keeping the original message and exception type."""
    try:
        yield
    except (TypeError, ValueError) as exc:
        message = str(exc)
        # scikit-learn's messages about the number or names of features
        # already say what was expected.
        if (
            message.startswith(f"{name} ")
            or "features, but" in message
            or "feature names" in message
        ):
            raise
        raise type(exc)(
            f"{name} is not valid input: {message.rstrip('.')}. {name} must be "
            f"{_WHAT_IS_ALLOWED[name]}."
        ) from exc


def check_target(y, X):
    """Check the targets ``y`` against ``X``; return them in ``X``'s dtype."""
    if y is None:
        raise ValueError(
            "This regressor requires y to be passed, but the target y is None; "
            "pass one target value (or row of targets) per row of X."
        )
    with naming_input("y"):
        y = check_array(
            y,
            ensure_2d=False,
            dtype=X.dtype,
            input_name="y",
            ensure_min_samples=0,
        )
    if y.shape[0] != X.shape[0]:
        raise ValueError(
            f"X has {X.shape[0]} samples but y has {y.shape[0]}; pass one target "
            "value (or row of targets) per row of X."
        )
    return y


def check_parameters(estimator) -> None:
    """Validate the estimator's parameters against its declared constraints."""
    validate_parameter_constraints(
        estimator._parameter_constraints,
        estimator.get_params(deep=False),
        caller_name=type(estimator).__name__,
    )


def check_sample_weight(sample_weight, X, dtype) -> np.ndarray:
    """Return validated sample weights as a new array of ``dtype``.

    Weights must be finite and non-negative, with a positive sum. The input is
    never modified: a copy is returned whenever ``sample_weight`` is given.
    """
    if sample_weight is None:
        return np.ones(X.shape[0], dtype=dtype)
    sample_weight = _check_sample_weight(
        sample_weight,
        X,
        dtype=dtype,
        ensure_non_negative=True,
        copy=True,
    )
    if not np.all(np.isfinite(sample_weight)):
        raise ValueError(
            "sample_weight contains NaN or infinity; every weight must be a "
            "finite non-negative number."
        )
    if not sample_weight.sum() > 0:
        raise ValueError(
            "sample_weight sums to zero; at least one sample needs a positive weight."
        )
    return sample_weight


def check_finite_result(name, coef, intercept, remedy) -> None:
    """Raise ``FloatingPointError`` if a fitted result is not finite."""
    if np.all(np.isfinite(coef)) and np.all(np.isfinite(intercept)):
        return
    raise FloatingPointError(
        f"{name} produced non-finite coefficients; the fit was discarded and "
        f"the estimator left as it was. {remedy}"
    )
