"""Checks of parameters and inputs.

This module is the one place where gdreg imports scikit-learn's private
helpers, so that a change in scikit-learn's internals touches one file.
"""

import functools
from contextlib import contextmanager, nullcontext
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn import get_config
from sklearn.utils._array_api import (
    _is_numpy_namespace,
    _max_precision_float_dtype,
    get_namespace_and_device,
)
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


try:
    from sklearn.utils._array_api import check_same_namespace, move_to
except ImportError:  # scikit-learn before 1.8 has neither helper

    def move_to(*arrays, xp, device):
        """Stand-in that moves arrays through ``xp.asarray``."""
        moved = tuple(
            a if a is None or sp.issparse(a) else xp.asarray(a, device=device)
            for a in arrays
        )
        return moved[0] if len(moved) == 1 else moved

    def check_same_namespace(X, estimator, *, attribute, method):
        """Stand-in that checks nothing: predict converts ``X`` as it can."""


__all__ = [
    "CallbackSupportMixin",
    "Integral",
    "Interval",
    "Real",
    "StrOptions",
    "array_namespace",
    "callback_management_context",
    "check_parameters",
    "check_predict_namespace",
    "check_sample_weight",
    "check_finite_result",
    "check_target",
    "is_numpy_namespace",
    "namespace",
    "naming_input",
    "to_namespace",
    "to_numpy",
    "widest_float",
]


def array_namespace(*arrays):
    """The array namespace and device of ``arrays``.

    NumPy's (through scikit-learn's wrapper) unless array API dispatch is
    on; sparse matrices always count as NumPy. NumPy arrays are recognised
    by type: asking scikit-learn costs about ten microseconds, and a fit
    asks many times.
    """
    present = [a for a in arrays if a is not None]
    if present and all(isinstance(a, (np.ndarray, np.generic)) for a in present):
        return _numpy_namespace(get_config()["array_api_dispatch"])
    xp, _, device = get_namespace_and_device(*arrays)
    return xp, device


@functools.cache
def _numpy_namespace(dispatch):
    """Namespace and device that scikit-learn gives NumPy arrays, with array
    API dispatch on or off (``dispatch``, the current setting)."""
    xp, _, device = get_namespace_and_device(np.zeros(0))
    return xp, device


def namespace(*arrays):
    """The array namespace of ``arrays``, as :func:`array_namespace`."""
    return array_namespace(*arrays)[0]


def is_numpy_namespace(xp):
    """Whether ``xp`` is NumPy, or scikit-learn's wrapper of it."""
    return _is_numpy_namespace(xp)


def is_numpy_data(*arrays):
    """Whether ``arrays`` are NumPy data (NumPy arrays or scalars, or sparse
    matrices), as :func:`array_namespace` would say, checked by type first
    because it runs once per epoch."""
    if all(
        isinstance(a, (np.ndarray, np.generic, float)) or sp.issparse(a) for a in arrays
    ):
        return True
    return is_numpy_namespace(array_namespace(*arrays)[0])


def widest_float(xp, device):
    """The most precise floating dtype of ``xp`` on ``device``.

    float64 everywhere but on devices without it, where it is float32.
    """
    return _max_precision_float_dtype(xp, device)


def to_namespace(*arrays, xp, device):
    """Move arrays (None passes through) to ``xp`` and ``device``.

    Does nothing without array API dispatch, so that array-likes reach the
    usual checks as the user gave them.
    """
    if not get_config()["array_api_dispatch"]:
        return arrays[0] if len(arrays) == 1 else arrays
    return move_to(*arrays, xp=xp, device=device)


def to_numpy(X):
    """``X`` as NumPy data: arrays of other libraries are copied to the CPU.

    Does nothing without array API dispatch, and to sparse matrices, NumPy
    arrays and array-likes such as lists and data frames.
    """
    if not get_config()["array_api_dispatch"] or _is_numpy_namespace(namespace(X)):
        return X
    return move_to(X, xp=np, device="cpu")


def check_predict_namespace(X, estimator):
    """Refuse ``X`` from another namespace or device than the fitted model."""
    check_same_namespace(X, estimator, attribute="coef_", method="predict")


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
    if _is_plain_target(y, X):
        # What check_array would return, without its overhead.
        return y
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


# Parameter values already found valid, per estimator class and parameter:
# plain values only (None, bool, int, float, str), which cannot change.
_VALID_PARAMETERS = set()
_VALID_PARAMETERS_MAX = 4096
_PLAIN_TYPES = (type(None), bool, int, float, str)


@functools.cache
def _parameter_names(cls):
    return tuple(cls._get_param_names())


def _is_plain_target(y, X):
    """Whether ``y`` is a finite NumPy array of ``X``'s dtype with one row
    per row of ``X`` and one or two dimensions (at least one column)."""
    return (
        type(y) is np.ndarray
        and type(X) is np.ndarray
        and y.dtype == X.dtype
        and (y.ndim == 1 or (y.ndim == 2 and y.shape[1] > 0))
        and y.shape[0] == X.shape[0]
        and bool(np.isfinite(y).all())
    )


def check_parameters(estimator) -> None:
    """Validate the estimator's parameters against its declared constraints.

    Validation costs tens of microseconds, a sizeable share of a fit on a
    few hundred samples, so plain values that passed are remembered and not
    checked again.
    """
    cls = type(estimator)
    unchecked, passed = {}, []
    for name in _parameter_names(cls):
        value = getattr(estimator, name)
        key = (cls, name, type(value), value) if type(value) in _PLAIN_TYPES else None
        if key is None or key not in _VALID_PARAMETERS:
            unchecked[name] = value
            passed.append(key)
    if not unchecked:
        return
    validate_parameter_constraints(
        estimator._parameter_constraints, unchecked, caller_name=cls.__name__
    )
    if len(_VALID_PARAMETERS) >= _VALID_PARAMETERS_MAX:
        _VALID_PARAMETERS.clear()
    _VALID_PARAMETERS.update(key for key in passed if key is not None)


def check_sample_weight(sample_weight, X, dtype):
    """Return validated sample weights as a new array of ``dtype``.

    Weights must be finite and non-negative, with a positive sum. The input is
    never modified: a copy is returned whenever ``sample_weight`` is given.
    """
    xp, device = array_namespace(X)
    if sample_weight is None:
        return xp.ones(X.shape[0], dtype=dtype, device=device)
    sample_weight = _check_sample_weight(
        sample_weight,
        X,
        dtype=dtype,
        ensure_non_negative=True,
        copy=True,
    )
    if not bool(xp.all(xp.isfinite(sample_weight))):
        raise ValueError(
            "sample_weight contains NaN or infinity; every weight must be a "
            "finite non-negative number."
        )
    if not float(xp.sum(sample_weight)) > 0:
        raise ValueError(
            "sample_weight sums to zero; at least one sample needs a positive weight."
        )
    return sample_weight


def check_finite_result(name, coef, intercept, remedy) -> None:
    """Raise ``FloatingPointError`` if a fitted result is not finite."""
    xp = namespace(coef)
    if bool(xp.all(xp.isfinite(coef))) and bool(xp.all(xp.isfinite(intercept))):
        return
    raise FloatingPointError(
        f"{name} produced non-finite coefficients; the fit was discarded and "
        f"the estimator left as it was. {remedy}"
    )
