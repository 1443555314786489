"""Fitting under a stopwatch, status classification, and the split protocol."""

import signal
import threading
import warnings
from contextlib import contextmanager
from time import perf_counter

import numpy as np
from _methods import REFERENCE, final_step
from sklearn.model_selection import train_test_split


class FitTimeoutError(Exception):
    """Raised inside a fit that exceeded its time limit."""


@contextmanager
def time_limit(seconds):
    """Interrupt the body after ``seconds`` of wall time (main thread, POSIX)."""
    usable = (
        seconds
        and hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
    )
    if not usable:
        yield
        return

    def _interrupt(signum, frame):
        raise FitTimeoutError(f"fit stopped after the time limit of {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, _interrupt)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def timed_fit(estimator, X, y, timeout=None):
    """Fit and return ``(seconds, error text or None, caught warnings)``."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = perf_counter()
        try:
            with time_limit(timeout):
                estimator.fit(X, y)
            error = None
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}".replace("\n", " ")[:300]
        seconds = perf_counter() - start
    return seconds, error, list(caught)


def safe_predict(estimator, X):
    """Predict with floating-point warnings silenced; ``None`` if predict fails."""
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return np.asarray(estimator.predict(X), dtype=np.float64)
    except Exception:
        return None


def scores(y_true, y_pred):
    """Test R^2 and RMSE, computed without raising on huge values."""
    with np.errstate(all="ignore"):
        residual = y_true - y_pred
        sse = float(residual @ residual)
        centred = y_true - y_true.mean()
        sst = float(centred @ centred)
        return 1.0 - sse / sst, float(np.sqrt(sse / y_true.size))


def describe_warnings(caught):
    """Unique warning categories and the first message, as short text."""
    if not caught:
        return "", ""
    categories = sorted({w.category.__name__ for w in caught})
    first = str(caught[0].message).replace("\n", " ")[:200]
    return ";".join(categories), first


def evaluate(estimator, error, caught, X_test, y_test):
    """Classify one fit as ok, warned, raised or nonfinite, with its scores."""
    row = {"r2": np.nan, "rmse": np.nan, "n_iter": "", "error": error or ""}
    row["warning_category"], row["warning_message"] = describe_warnings(caught)
    if error:
        row["status"] = "raised"
        return row

    step = final_step(estimator)
    n_iter = getattr(step, "n_iter_", None)
    if n_iter is not None:
        row["n_iter"] = int(np.max(n_iter))
    parts = [
        np.ravel(getattr(step, "coef_", [])),
        np.ravel(getattr(step, "intercept_", 0)),
    ]
    coef_finite = all(np.all(np.isfinite(np.asarray(p, dtype=float))) for p in parts)
    prediction = safe_predict(estimator, X_test)
    if prediction is None:
        row["status"] = "raised"
        row["error"] = "predict failed after fit"
        return row
    if not coef_finite or not np.all(np.isfinite(prediction)):
        row["status"] = "nonfinite"
        return row

    row["r2"], row["rmse"] = scores(y_test, prediction)
    row["status"] = "warned" if caught else "ok"
    return row


def run_dataset(dataset, methods, n_splits, repeats, timeout, log):
    """All splits of one data set; returns one row per method and split."""
    rows = []
    for split in range(n_splits):
        X_train, X_test, y_train, y_test = train_test_split(
            dataset.X, dataset.y, test_size=0.2, random_state=split
        )
        times = {m.name: [] for m in methods}
        results = {}
        for repeat in range(repeats):
            for method in methods:
                if (
                    method.name in results
                    and results[method.name]["status"] == "raised"
                ):
                    continue
                estimator = method.make(seed=split)
                seconds, error, caught = timed_fit(estimator, X_train, y_train, timeout)
                times[method.name].append(seconds)
                if repeat == 0:
                    results[method.name] = evaluate(
                        estimator, error, caught, X_test, y_test
                    )

        reference = (
            float(np.median(times[REFERENCE])) if times.get(REFERENCE) else np.nan
        )
        for method in methods:
            seconds = float(np.median(times[method.name]))
            row = {
                "dataset": dataset.name,
                "method": method.name,
                "split": split,
                "n_train": X_train.shape[0],
                "n_features": X_train.shape[1],
                "fit_seconds": seconds,
                "time_ratio": seconds / reference if reference > 0 else np.nan,
                "repeats": len(times[method.name]),
                **results[method.name],
            }
            rows.append(row)
            log(row)
    return rows
