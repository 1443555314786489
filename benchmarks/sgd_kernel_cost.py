"""Time one pass of the blocked SGD kernel against one epoch of SGDRegressor.

Each round times, in turn, ``SGDRegressor(max_iter=1, tol=None,
shuffle=True)`` fitting one epoch and one kernel pass per batch size
(including the shuffle and the gathering of rows) on the same dense float64
data; the medians over the rounds and their ratios are printed.

A pass is timed as ``SGDLinearRegressor.fit`` runs its epochs: on the rows
already put in the internal space by ``internal_rows``, built once per fit.
That one-time cost is printed too, as is a pass on the raw rows (each chunk
centred and scaled as it is gathered, as ``partial_fit`` and data too large
for the internal copy are run). Run with

    python benchmarks/sgd_kernel_cost.py [--rounds 7] [--n-samples 200000] \
        [--l2 0] [--per-feature] [--sparse-rows 0]

``--l2`` is the penalty strength ``alpha`` (SGDRegressor keeps its default
``alpha=1e-4``); 0, the default, times the kernel without decay terms, as
``SGDLinearRegressor()`` runs it. With ``--per-feature`` the kernel gets the
strengths an L2 penalty has in the estimator's scaled coordinates, ``alpha
/ (var_j + alpha)``, one per feature; without it one strength for all.

``--sparse-rows N`` also times passes over N CSR rows with 100,000 features
and 0.1% of entries stored (batch sizes 1 and 32, rows transformed as they
are read, since such rows are never densified), against ``SGDRegressor`` on
the same matrix.

On a shared machine, interleaving the runs makes the ratios fair even when
the absolute times drift.
"""

import argparse
import time
import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import SGDRegressor

from gdreg._kernels import internal_rows, max_row_norm_sq, sgd_pass


def make_data(n_samples, n_features, seed):
    """Dense standard-normal rows with a noisy linear target."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_samples, n_features))
    y = X @ rng.standard_normal(n_features) + 0.5 * rng.standard_normal(n_samples)
    return X, y


def time_sklearn(X, y, seed):
    """Seconds for one epoch of SGDRegressor with its default penalty."""
    model = SGDRegressor(max_iter=1, tol=None, shuffle=True, random_state=seed)
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    return time.perf_counter() - start


def time_kernel(X, y, center, scale, eta, batch_size, l2, seed, rows):
    """Seconds for one kernel pass, the shuffle included; ``rows`` are the
    prepared internal rows, or None to transform the raw rows as they come."""
    n, d = X.shape
    n_updates = -(-n // batch_size)
    start = time.perf_counter()
    order = np.random.default_rng(seed).permutation(n)
    steps = np.full(n_updates, eta)
    sgd_pass(
        X, y, None, order, np.zeros(d), 0.0, steps,
        l2=l2, center=center, scale=scale, batch_size=batch_size, rows=rows,
    )  # fmt: skip
    return time.perf_counter() - start


def time_preparation(X, y, center, scale):
    """Seconds to build the internal rows once, and the rows."""
    start = time.perf_counter()
    rows = internal_rows(X, y, center, scale)
    return time.perf_counter() - start, rows


def run_shape(n_samples, n_features, batch_sizes, alpha, per_feature, rounds):
    """Interleave the timings for one shape and print the medians."""
    X, y = make_data(n_samples, n_features, seed=n_features)
    center, scale = X.mean(axis=0), X.std(axis=0)
    l2 = alpha / (scale**2 + alpha) if per_feature else alpha
    eta = 0.5 / (max_row_norm_sq(X, center, scale) + 1.0)
    times = {"sklearn": [], "prepare": []}
    times |= {(m, raw): [] for m in batch_sizes for raw in (False, True)}
    for r in range(rounds):
        times["sklearn"].append(time_sklearn(X, y, r))
        seconds, rows = time_preparation(X, y, center, scale)
        times["prepare"].append(seconds)
        for m in batch_sizes:
            for raw in (False, True):
                args = (X, y, center, scale, eta, m, l2, r, None if raw else rows)
                times[m, raw].append(time_kernel(*args))
    base = np.median(times["sklearn"])
    prepare = np.median(times["prepare"])
    print(f"{n_samples} x {n_features}: SGDRegressor epoch {1e3 * base:.1f} ms")
    print(f"  internal rows, once per fit {1e3 * prepare:6.1f} ms  "
          f"ratio {prepare / base:.2f}")  # fmt: skip
    for m in batch_sizes:
        t, t_raw = np.median(times[m, False]), np.median(times[m, True])
        print(
            f"  batch_size={m:<3d} pass {1e3 * t:6.1f} ms  ratio {t / base:.2f}"
            f"   (raw rows {1e3 * t_raw:6.1f} ms  ratio {t_raw / base:.2f})"
        )


def run_sparse(n_samples, rounds, n_features=100_000, density=0.001):
    """Interleave passes over wide sparse rows with SGDRegressor epochs."""
    rng = np.random.default_rng(0)
    X = sp.random(n_samples, n_features, density=density, format="csr", rng=rng)
    y = X @ rng.standard_normal(n_features) + 0.1 * rng.standard_normal(n_samples)
    center = np.asarray(X.mean(axis=0)).ravel()
    variance = np.asarray(X.multiply(X).mean(axis=0)).ravel() - center**2
    scale = np.sqrt(np.where(variance > 0, variance, 1.0))
    eta = 0.5 / (max_row_norm_sq(X, center, scale) + 1.0)
    times = {"sklearn": [], 1: [], 32: []}
    for r in range(rounds):
        times["sklearn"].append(time_sklearn(X, y, r))
        for m in (1, 32):
            times[m].append(time_kernel(X, y, center, scale, eta, m, 0.0, r, None))
    base = np.median(times["sklearn"])
    print(
        f"CSR {n_samples} x {n_features}, density {density}: "
        f"SGDRegressor epoch {1e3 * base:.1f} ms"
    )
    for m in (1, 32):
        t = np.median(times[m])
        print(f"  batch_size={m:<3d} pass {1e3 * t:6.1f} ms  ratio {t / base:.2f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--n-samples", type=int, default=200_000)
    parser.add_argument("--l2", type=float, default=0.0)
    parser.add_argument("--per-feature", action="store_true")
    parser.add_argument("--sparse-rows", type=int, default=0)
    args = parser.parse_args()
    for n_features in (50, 10):
        run_shape(
            args.n_samples, n_features, (1, 64), args.l2, args.per_feature,
            args.rounds,
        )  # fmt: skip
    if args.sparse_rows:
        run_sparse(args.sparse_rows, args.rounds)


if __name__ == "__main__":
    main()
