"""Cost of GDLinearRegressor on a Dask cluster, against the in-memory fit.

Starts a ``LocalCluster`` (by default 2 worker processes with one thread
each), makes dense float64 data on the workers (``dask.array.random``, never
on the client) and keeps it there (``persist``), then measures for each
number of row chunks:

- the time of one iteration without the Gram matrix (``precompute=False``,
  one distributed reduction per iteration): a fit with ``max_iter=k + 1``
  minus one with ``max_iter=1``, divided by ``k``, plain gradient descent
  with a fixed step;
- the time of a whole default fit (the Gram matrix formed by one
  distributed reduction, then the solver on the client) and of a whole fit
  with ``precompute=False``;
- the largest relative difference between the coefficients of the
  distributed and the in-memory fits.

The same data is then computed in a fresh process and the same fits are
timed in memory there, so the client's peak resident memory (read with
``resource.getrusage``) shows what the distributed fits cost the client; it
is printed next to the size of X. Finally the coefficients of fits run to
``tol=1e-12`` on the cluster and in memory are compared.

Usage: ``python benchmarks/dask_cost.py [--rows 2000000] [--features 50]
[--chunks 8,32] [--workers 2] [--iterations 10]``
"""

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from gdreg import GDLinearRegressor

PLAIN = dict(learning_rate=0.1, acceleration="none", tol=0.0, precompute=False)


def make_data(n_samples, n_features, n_chunks, seed=0):
    """Correlated features in units from 1e-3 to 1e4 with offsets, on the workers."""
    import dask.array as da

    rng = np.random.default_rng(seed)
    mixing = np.eye(n_features) + 0.3 * rng.standard_normal((n_features, n_features))
    units = np.logspace(-3, 4, n_features)
    offsets = rng.uniform(-5, 5, n_features) * units
    coef = rng.standard_normal(n_features) / units
    rows = -(-n_samples // n_chunks)
    source = da.random.default_rng(seed)
    Z = source.standard_normal((n_samples, n_features), chunks=(rows, n_features))
    X = (Z @ mixing) * units + offsets
    y = X @ coef + 3.0 + source.standard_normal(n_samples, chunks=rows)
    return X, y


def timed(func):
    start = time.perf_counter()
    result = func()
    return time.perf_counter() - start, result


def fit(X, y, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return GDLinearRegressor(**params).fit(X, y)


def iteration_time(X, y, iterations):
    """Seconds per iteration of plain gradient descent without the Gram matrix."""
    one, _ = timed(lambda: fit(X, y, max_iter=1, **PLAIN))
    many, _ = timed(lambda: fit(X, y, max_iter=iterations + 1, **PLAIN))
    return (many - one) / iterations


def peak_rss_mb():
    """The process's peak resident memory so far, in MB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10


def relative_difference(a, b):
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))


def measure(X, y, iterations):
    """Iteration time, fit times and the fits (default, and without Gram)."""
    per_iteration = iteration_time(X, y, iterations)
    gram_time, gram_fit = timed(lambda: fit(X, y))
    hvp_time, hvp_fit = timed(lambda: fit(X, y, precompute=False))
    exact = fit(X, y, tol=1e-12, max_iter=10_000)
    print(
        f"{per_iteration * 1e3:7.1f} ms per iteration (precompute=False); fit "
        f"{gram_time:6.2f} s (Gram, {gram_fit.n_iter_} iterations), "
        f"{hvp_time:6.2f} s (precompute=False, {hvp_fit.n_iter_} iterations)"
    )
    return exact.coef_


def in_memory(args, n_chunks):
    """The reference: the same data computed locally, fitted in memory."""
    import dask

    with dask.config.set(scheduler="threads"):
        X, y = dask.compute(*make_data(args.rows, args.features, n_chunks))
    print("in memory: ", end="")
    coef = measure(X, y, args.iterations)
    np.save(args.save, coef)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--features", type=int, default=50)
    parser.add_argument("--chunks", default="8,32")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--save", help=argparse.SUPPRESS)
    args = parser.parse_args()
    chunk_counts = [int(c) for c in args.chunks.split(",")]
    if args.save:
        return in_memory(args, max(chunk_counts))

    import dask
    from dask.distributed import Client, LocalCluster, wait

    n, d = args.rows, args.features
    print(f"X: {n} x {d} float64, {n * d * 8 / 2**20:.0f} MB; {args.workers} workers")
    print(f"client peak RSS after imports: {peak_rss_mb():.0f} MB")
    coefs = {}
    with (
        LocalCluster(
            n_workers=args.workers, threads_per_worker=1, dashboard_address=None
        ) as cluster,
        Client(cluster),
    ):
        # One data set for every chunking: made in the finest chunks, then
        # rechunked on the workers.
        X0, y0 = make_data(n, d, max(chunk_counts))
        for n_chunks in chunk_counts:
            rows = -(-n // n_chunks)
            X, y = dask.persist(X0.rechunk((rows, d)), y0.rechunk(rows))
            wait([X, y])
            print(f"{n_chunks:3d} chunks: ", end="")
            coefs[n_chunks] = measure(X, y, args.iterations)
            del X, y
        print(f"client peak RSS after the distributed fits: {peak_rss_mb():.0f} MB")

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "coef.npy")
        command = [sys.executable, __file__, "--save", path]
        for name in ("rows", "features", "chunks", "iterations"):
            command += [f"--{name}", str(getattr(args, name))]
        subprocess.run(command, check=True)
        reference = np.load(path)
    for n_chunks, coef in coefs.items():
        difference = relative_difference(coef, reference)
        print(
            f"{n_chunks:3d} chunks: largest relative coefficient difference to "
            f"the in-memory fit at tol=1e-12: {difference:.1e}"
        )


if __name__ == "__main__":
    main()
