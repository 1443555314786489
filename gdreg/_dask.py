"""Full-batch fitting and prediction on row-chunked Dask collections.

``GDLinearRegressor.fit`` hands a Dask array or DataFrame to :func:`fit_dask`.
The rows stay on the workers; only per-feature summaries travel to the
client, in at most two passes over the data before the solver starts:

1. per chunk of rows, the weighted moments of the features and the targets,
   merged pairwise into the moments of all rows (the feature centres and
   scales, the target offset and the target scale follow from them);
2. per chunk, either ``Z^T W Z`` and ``Z^T W y`` summed over the chunks,
   after which the solver runs on the ``(d, d)`` matrix on the client, or
   only ``Z^T W y``, after which every product with the Hessian is one more
   distributed reduction, ``Z^T W (Z V)`` (one ``dask.compute`` each).

The solvers are those of the in-memory fit, unchanged: they see the
objective through the interface of :class:`~gdreg._objective.Quadratic`.

This module imports Dask only inside its functions, so gdreg works without
it; :func:`is_dask_collection` answers False without importing anything when
Dask has not been imported.
"""

import sys

import numpy as np
from sklearn.utils.validation import check_is_fitted, validate_data

from ._base import Problem
from ._gd import _square
from ._objective import GramQuadratic, Quadratic
from ._scaling import (
    ScaledDesign,
    _column,
    internal_coordinates,
    merge_moments,
    scaled_gram,
    weighted_moments,
)

# Partial results combined by one task in the tree reductions.
_FAN_IN = 4


def is_dask_collection(obj) -> bool:
    """Whether ``obj`` is a Dask collection; never imports Dask itself."""
    if "dask" not in sys.modules:
        return False
    from dask.base import is_dask_collection as is_collection

    return bool(is_collection(obj))


def fit_dask(estimator, X, y, sample_weight):
    """Fit a ``GDLinearRegressor`` on Dask data without gathering ``X``.

    Parameters
    ----------
    estimator : GDLinearRegressor
        The estimator to fit; its ``coef_`` and ``intercept_`` are NumPy.

    X : dask array or dask DataFrame of shape (n_samples, n_features)
        Training data, chunked along the rows.

    y : dask array, dask Series or DataFrame, or array-like
        Targets, one row per row of ``X``.

    sample_weight : dask array, dask Series, array-like or None
        Non-negative weights.

    Returns
    -------
    estimator : GDLinearRegressor
        The fitted estimator.
    """
    with estimator._all_or_nothing():
        estimator._check_parameters()
        method = estimator._method()
        warm = estimator.warm_start and hasattr(estimator, "coef_")
        data = _ChunkedData.from_inputs(estimator, X, y, sample_weight, reset=not warm)
        use_gram = estimator._use_gram(data.X)
        if not use_gram:
            data = data.persist()

        stats = data.statistics()
        problem, offset, weight_sum = _make_problem(estimator, data, stats)
        quad = _make_quadratic(data, problem, offset, weight_sum, use_gram)
        V0 = estimator._initial_coef(problem)

        result = estimator._solve(method, quad, problem, V0, data.dtype, None)
        estimator._store_result(problem, result)
        estimator._warn_if_not_converged(result)
    return estimator


def predict_dask(estimator, X):
    """Predict lazily: a Dask array of predictions, one chunk per row chunk."""
    check_is_fitted(estimator)
    validate_data(estimator, _schema(X), skip_check_array=True, reset=False)
    X = _rows_in_one_chunk(_features(X, unknown_lengths=True))
    coef = np.asarray(estimator.coef_, dtype=X.dtype)
    intercept = np.asarray(estimator.intercept_, dtype=X.dtype)
    if coef.ndim == 1:
        return X.map_blocks(_predict_chunk, coef, intercept, drop_axis=1)
    return X.map_blocks(
        _predict_chunk, coef, intercept, chunks=(X.chunks[0], (coef.shape[0],))
    )


def _predict_chunk(block, coef, intercept):
    """``block @ coef.T + intercept`` for one chunk of rows."""
    return block @ coef.T + intercept


class _ChunkedData:
    """``X``, ``y`` and the weights as Dask arrays with the same row chunks.

    ``X`` has a single chunk across its columns, so each task sees whole
    rows; ``weights`` is None when no sample weights were given.
    """

    def __init__(self, X, y, weights):
        self.X = X
        self.y = y
        self.weights = weights
        self.dtype = X.dtype
        self.n_samples = X.shape[0]

    @classmethod
    def from_inputs(cls, estimator, X, y, sample_weight, *, reset):
        """Check and align the inputs; set the feature count and names."""
        validate_data(estimator, _schema(X), skip_check_array=True, reset=reset)
        X = _rows_in_one_chunk(_features(X, unknown_lengths=False))
        if X.shape[0] < 1:
            raise ValueError("X has 0 samples; at least one sample is required to fit.")
        if y is None:
            raise ValueError(
                "This regressor requires y to be passed, but the target y is "
                "None; pass one target value (or row of targets) per row of X."
            )
        y = _aligned(y, X, "y").astype(X.dtype)
        if y.ndim not in (1, 2):
            raise ValueError(
                f"y must be 1-D or 2-D, one row per sample; got {y.ndim} dimensions."
            )
        weights = None
        if sample_weight is not None:
            weights = _aligned(sample_weight, X, "sample_weight").astype(X.dtype)
            if weights.ndim != 1:
                raise ValueError(
                    "sample_weight must be 1-D, one weight per sample; got shape "
                    f"{weights.shape}."
                )
        return cls(X, y, weights)

    def persist(self):
        """Keep the chunks in the workers' memory for the passes to come."""
        import dask

        X, y, weights = dask.persist(self.X, self.y, self.weights)
        return type(self)(X, y, weights)

    def chunks(self, targets):
        """Per row chunk, the delayed ``(X, y, weights)`` blocks.

        ``y`` is None unless ``targets``; ``weights`` is None without weights.
        """
        xs = self.X.to_delayed().ravel()
        ys = self.y.to_delayed().ravel() if targets else [None] * len(xs)
        ws = [None] * len(xs) if self.weights is None else self.weights.to_delayed()
        return list(zip(xs, ys, ws))

    def reduce(self, chunk_func, combine, *args, targets=True):
        """Apply ``chunk_func(X, y, w, *args)`` per chunk; combine in a tree.

        The whole reduction is one ``dask.compute``: one round trip between
        the client and the cluster, returning only the combined result.
        """
        import dask

        parts = [
            dask.delayed(chunk_func, pure=True)(xb, yb, wb, *args)
            for xb, yb, wb in self.chunks(targets)
        ]
        while len(parts) > 1:
            parts = [
                dask.delayed(_combine_all, pure=True)(combine, *parts[i : i + _FAN_IN])
                for i in range(0, len(parts), _FAN_IN)
            ]
        (result,) = dask.compute(parts[0])
        return result

    def statistics(self):
        """First pass: moments of features and targets, checks of the values."""
        stats = self.reduce(_chunk_statistics, _merge_statistics)
        if not stats["finite_X"]:
            raise ValueError(
                "X is not valid input: it contains NaN or infinity. X must be a "
                "2-D array of finite real numbers, one row per sample."
            )
        if not stats["finite_y"]:
            raise ValueError(
                "y is not valid input: it contains NaN or infinity. y must be a "
                "1-D or 2-D array of finite real numbers, one row per sample."
            )
        if self.weights is not None:
            _check_weights(stats)
        return stats


def _schema(X):
    """What scikit-learn reads feature names and counts from.

    A dask DataFrame is lazy, so scikit-learn does not see its columns; its
    empty pandas counterpart (``_meta``) has the same columns.
    """
    import dask.dataframe as dd

    return X._meta if isinstance(X, dd.DataFrame) else X


def _features(X, *, unknown_lengths):
    """``X`` as a floating-point Dask array; DataFrames become arrays."""
    import dask.array as da
    import dask.dataframe as dd

    if isinstance(X, dd.DataFrame):
        X = X.to_dask_array(lengths=None if unknown_lengths else True)
    elif not isinstance(X, da.Array):
        raise TypeError(
            "X must be a dask array or dask DataFrame for a distributed fit; got "
            f"{type(X).__name__}."
        )
    if X.ndim != 2:
        raise ValueError(
            f"X must be 2-D, one row per sample; got {X.ndim} dimensions. "
            "Reshape a single feature with X.reshape(-1, 1)."
        )
    if not isinstance(X._meta, np.ndarray):
        raise TypeError(
            "X must be a dask array of NumPy chunks; got chunks of type "
            f"{type(X._meta).__name__}. Convert them with X.map_blocks(np.asarray) "
            "or densify them."
        )
    if X.dtype not in (np.float32, np.float64):
        X = X.astype(np.float64)
    if not unknown_lengths and np.isnan(X.shape[0]):
        X = X.compute_chunk_sizes()
    return X


def _rows_in_one_chunk(X):
    """Rechunk so that every chunk holds whole rows."""
    return X if X.numblocks[1] == 1 else X.rechunk({1: -1})


def _aligned(values, X, name):
    """``values`` as a Dask array with the row chunks of ``X``."""
    import dask.array as da
    import dask.dataframe as dd

    if isinstance(values, (dd.DataFrame, dd.Series)):
        values = values.to_dask_array(lengths=True)
    elif not isinstance(values, da.Array):
        values = np.asarray(values)
        chunks = (X.chunks[0],) + tuple((size,) for size in values.shape[1:])
        if values.shape[:1] == X.shape[:1]:
            values = da.from_array(values, chunks=chunks)
        else:
            values = da.from_array(values)
    if np.isnan(values.shape[0]):
        values = values.compute_chunk_sizes()
    if values.shape[0] != X.shape[0]:
        raise ValueError(
            f"X has {X.shape[0]} samples but {name} has {values.shape[0]}; pass "
            "one value per row of X."
        )
    if values.ndim == 2 and values.numblocks[1] > 1:
        values = values.rechunk({1: -1})
    if values.chunks[0] != X.chunks[0]:
        values = values.rechunk({0: X.chunks[0]})
    return values


def _combine_all(combine, *parts):
    """Fold ``combine`` over the partial results of several chunks."""
    result = parts[0]
    for part in parts[1:]:
        result = combine(result, part)
    return result


def _chunk_statistics(X, y, w, *args):
    """Moments and value checks of one chunk of rows."""
    y = y.reshape(len(y), -1)
    weights = np.ones(len(X), dtype=X.dtype) if w is None else w
    stats = {
        "finite_X": bool(np.isfinite(X).all()),
        "finite_y": bool(np.isfinite(y).all()),
        "finite_w": bool(np.isfinite(weights).all()),
        "w_min": float(weights.min(initial=np.inf)),
        "w_max": float(weights.max(initial=-np.inf)),
        "y_min": y.min(axis=0, initial=np.inf).astype(np.float64),
        "y_max": y.max(axis=0, initial=-np.inf).astype(np.float64),
        "X_moments": None,
        "y_moments": None,
    }
    valid = stats["finite_X"] and stats["finite_y"] and stats["finite_w"]
    total = weights.sum(dtype=np.float64)
    if valid and stats["w_min"] >= 0 and total > 0:
        stats["X_moments"] = (total, *weighted_moments(X, weights))
        stats["y_moments"] = (total, *weighted_moments(y, weights))
    return stats


def _merge_statistics(first, second):
    """Combine the statistics of two sets of rows."""
    return {
        "finite_X": first["finite_X"] and second["finite_X"],
        "finite_y": first["finite_y"] and second["finite_y"],
        "finite_w": first["finite_w"] and second["finite_w"],
        "w_min": min(first["w_min"], second["w_min"]),
        "w_max": max(first["w_max"], second["w_max"]),
        "y_min": np.minimum(first["y_min"], second["y_min"]),
        "y_max": np.maximum(first["y_max"], second["y_max"]),
        "X_moments": _merge_optional(first["X_moments"], second["X_moments"]),
        "y_moments": _merge_optional(first["y_moments"], second["y_moments"]),
    }


def _merge_optional(first, second):
    """Merge two ``(weight_sum, mean, std)``; None stands for no weight."""
    if first is None:
        return second
    if second is None:
        return first
    return merge_moments(first, second)


def _check_weights(stats):
    """The checks of the in-memory fit, on the reduced weight statistics."""
    if not stats["finite_w"]:
        raise ValueError(
            "sample_weight contains NaN or infinity; every weight must be a "
            "finite non-negative number."
        )
    if stats["w_min"] < 0:
        raise ValueError(
            f"sample_weight has negative values (smallest {stats['w_min']:.4g}); "
            "every weight must be a finite non-negative number."
        )
    if stats["X_moments"] is None:
        raise ValueError(
            "sample_weight sums to zero; at least one sample needs a positive weight."
        )


def _make_problem(estimator, data, stats):
    """The counterpart of ``_make_problem`` from the reduced statistics.

    Returns the problem, the target offset in float64 and the sum of the
    sample weights (None when they are all equal: the chunks then weigh each
    row by ``1 / n_samples``). ``problem.weights`` is None: the weights stay
    on the workers, and each chunk divides its own by their sum.
    """
    l1, l2 = estimator._penalty_strengths()
    weight_sum, mean, std = stats["X_moments"]
    center, inv_scale = internal_coordinates(
        mean, std, fit_intercept=estimator.fit_intercept, l2=l2, dtype=data.dtype
    )
    y_shape = data.y.shape[1:]
    if estimator.fit_intercept:
        y_offset = stats["y_moments"][1].reshape(y_shape)
    else:
        y_offset = np.zeros(y_shape)
    deviation = np.maximum(
        stats["y_max"].reshape(y_shape) - y_offset,
        y_offset - stats["y_min"].reshape(y_shape),
    )
    y_scale = float(np.max(deviation, initial=0.0))
    y_scale = y_scale if 0 < y_scale < np.inf else 1.0
    uniform = data.weights is None or stats["w_min"] == stats["w_max"]
    problem = Problem(
        design=ScaledDesign(data.X, center, inv_scale),
        y=((data.y.astype(np.float64) - y_offset) / y_scale).astype(data.dtype),
        y_offset=y_offset.astype(data.dtype),
        y_scale=y_scale,
        weights=None,
        l1=(l1 / y_scale * inv_scale) if l1 > 0 else None,
        l2=(l2 * inv_scale**2).astype(data.dtype),
    )
    return problem, y_offset, None if uniform else weight_sum


def _make_quadratic(data, problem, y_offset, weight_sum, use_gram):
    """Second pass: the objective, with ``H`` formed once or as an operator."""
    design = problem.design
    unit = _square(problem.y_scale)
    args = (
        design.center,
        design.inv_scale,
        y_offset,
        problem.y_scale,
        weight_sum,
        data.n_samples,
    )
    if use_gram:
        gram, cross, yy = data.reduce(_chunk_gram, _add, *args)
        return _ReducedGramQuadratic(gram, cross, yy, problem.l2, unit)
    XtR, r_sum, yy = data.reduce(_chunk_cross, _add, *args)
    c = _finish_rmatvec(XtR, r_sum, design)
    yy = yy.astype(data.dtype)
    return _DistributedQuadratic(data, problem, weight_sum, c, yy, unit)


def _scaled_targets(y, y_offset, y_scale, dtype):
    """Targets of one chunk in internal units, as the in-memory fit has them."""
    return ((y.astype(np.float64) - y_offset) / y_scale).astype(dtype)


def _chunk_weights(w, weight_sum, n_samples, n_rows, dtype):
    """The chunk's share of the normalised weights (summing to one overall)."""
    if weight_sum is None:
        return np.full(n_rows, 1.0 / n_samples, dtype=dtype)
    return (w / weight_sum).astype(dtype)


def _chunk_gram(X, y, w, center, inv_scale, y_offset, y_scale, weight_sum, n):
    """This chunk's part of ``Z^T W Z``, ``Z^T W y`` and ``y . W y``."""
    Y = _scaled_targets(y, y_offset, y_scale, X.dtype).astype(np.float64)
    if weight_sum is None:
        gram, cross = scaled_gram(X, center, inv_scale, None, Y)
        share = len(X) / n
        gram *= share
        cross *= share
        weights = np.full(len(X), 1.0 / n)
    else:
        weights = (w / weight_sum).astype(np.float64)
        gram, cross = scaled_gram(X, center, inv_scale, weights, Y)
    yy = np.sum(_column(weights, Y) * Y * Y, axis=0)
    return gram, cross, yy


def _chunk_cross(X, y, w, center, inv_scale, y_offset, y_scale, weight_sum, n):
    """This chunk's part of ``X^T W y``, the column sums of ``W y``, ``y . W y``."""
    Y = _scaled_targets(y, y_offset, y_scale, X.dtype)
    R = Y * _column(_chunk_weights(w, weight_sum, n, len(X), X.dtype), Y)
    return X.T @ R, R.sum(axis=0), np.sum(Y * R, axis=0)


def _chunk_hvp(X, y, w, U, shift, weight_sum, n):
    """This chunk's part of ``X^T W (X U - shift)`` and of its column sums."""
    R = X @ U
    if shift is not None:
        R -= shift
    R *= _column(_chunk_weights(w, weight_sum, n, len(X), X.dtype), R)
    return X.T @ R, R.sum(axis=0)


def _add(first, second):
    """Add two tuples of partial sums element by element."""
    return tuple(a + b for a, b in zip(first, second))


def _finish_rmatvec(XtR, r_sum, design):
    """``Z^T R`` from ``X^T R`` and the column sums of ``R``."""
    out = XtR
    if design._centred:
        out = out - np.multiply.outer(design.center, r_sum)
    return out * _column(design.inv_scale, out)


class _ReducedGramQuadratic(GramQuadratic):
    """The objective with ``H`` formed by a distributed reduction.

    Behaves as :class:`~gdreg._objective.GramQuadratic` built in memory: the
    matrix and ``c`` are summed over the chunks in float64 and stored in the
    data's dtype.
    """

    def __init__(self, gram, cross, yy, l2, unit):
        dtype = l2.dtype
        self._keep(None, None, l2, unit)
        self.hessian = (gram + np.diag(l2.astype(np.float64))).astype(dtype)
        self.c = cross.astype(dtype)
        self.yy = yy.astype(dtype)


class _DistributedQuadratic(Quadratic):
    """The objective whose every product with ``H`` is one distributed pass.

    ``hvp`` sends ``V`` to each chunk, which returns ``X_b^T W_b (X_b U -
    shift)`` and its column sums; these are summed in a tree on the cluster
    and only the sum, ``d`` (times the number of targets) plus one numbers,
    reaches the client.
    """

    def __init__(self, data, problem, weight_sum, c, yy, unit):
        self._keep(problem.design, None, problem.l2, unit)
        self.data = data
        self.weight_sum = weight_sum
        self.c = c
        self.yy = yy

    def hvp(self, V):
        """Return ``H @ V`` by one reduction over the chunks."""
        self.n_hvp += 1
        design = self.design
        U = V * _column(design.inv_scale, V)
        shift = design.center @ U if design._centred else None
        XtR, r_sum = self.data.reduce(
            _chunk_hvp,
            _add,
            U,
            shift,
            self.weight_sum,
            self.data.n_samples,
            targets=False,
        )
        out = _finish_rmatvec(XtR, r_sum, design).astype(V.dtype, copy=False)
        out += V * _column(self.l2, V)
        return out
