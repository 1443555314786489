"""Cost of GDLinearRegressor on tall dense data, against reference runs.

Measures, on dense float64 data with mixed feature scales and correlated
columns, in one process with interleaved repeats (medians reported):

- the default fit's time relative to ``LinearRegression().fit`` on the same
  data, with the training objective of both, and the same for a fit that
  does not precompute ``Z^T Z`` (two passes over X per iteration);
- the time of one iteration relative to the pair ``X @ w``, ``X.T @ r`` on
  the same array (a fit with ``max_iter=k + 1`` minus one with ``max_iter=1``,
  divided by ``k``, plain gradient descent with a fixed step);
- the peak memory a fit allocates beyond its inputs (``tracemalloc`` in a
  fresh subprocess), relative to the size of X.

Usage: ``python benchmarks/gd_cost.py [--repeats 5] [--sizes 1000000x20,200000x50]``
"""

import argparse
import json
import subprocess
import sys
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LinearRegression

from gdreg import GDLinearRegressor


def make_data(n_samples, n_features, seed=0):
    """Correlated Gaussian features in units from 1e-3 to 1e4, with offsets."""
    rng = np.random.default_rng(seed)
    mixing = np.eye(n_features) + 0.3 * rng.standard_normal((n_features, n_features))
    units = np.logspace(-3, 4, n_features)
    X = (rng.standard_normal((n_samples, n_features)) @ mixing) * units
    X += rng.uniform(-5, 5, n_features) * units
    coef = rng.standard_normal(n_features) / units
    y = X @ coef + 3.0 + rng.standard_normal(n_samples)
    return np.ascontiguousarray(X), y


def objective(X, y, coef, intercept):
    return 0.5 * np.mean((y - X @ coef - intercept) ** 2)


def timed(func):
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def measure_speed(n_samples, n_features, repeats, extra_iterations=20):
    X, y = make_data(n_samples, n_features)
    w, r = np.ones(n_features), np.ones(n_samples)
    plain = dict(learning_rate=0.1, acceleration="none", tol=0.0, precompute=False)
    no_gram = GDLinearRegressor(precompute=False)
    times = {"lr": [], "gd": [], "gd_no_gram": [], "pair": [], "iteration": []}
    for _ in range(repeats):
        times["lr"].append(timed(lambda: LinearRegression().fit(X, y)))
        times["gd"].append(timed(lambda: GDLinearRegressor().fit(X, y)))
        times["gd_no_gram"].append(timed(lambda: no_gram.fit(X, y)))
        times["pair"].append(timed(lambda: (X @ w, X.T @ r)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            long = timed(
                lambda: GDLinearRegressor(max_iter=extra_iterations + 1, **plain).fit(
                    X, y
                )
            )
            short = timed(lambda: GDLinearRegressor(max_iter=1, **plain).fit(X, y))
        times["iteration"].append((long - short) / extra_iterations)
    median = {key: float(np.median(value)) for key, value in times.items()}
    gd = GDLinearRegressor().fit(X, y)
    lr = LinearRegression().fit(X, y)
    return {
        "shape": f"{n_samples} x {n_features}",
        "gd_over_lr": median["gd"] / median["lr"],
        "gd_seconds": median["gd"],
        "lr_seconds": median["lr"],
        "gd_no_gram_over_lr": median["gd_no_gram"] / median["lr"],
        "gd_n_iter": gd.n_iter_,
        "gd_objective": objective(X, y, gd.coef_, gd.intercept_),
        "lr_objective": objective(X, y, lr.coef_, lr.intercept_),
        "iteration_over_pair": median["iteration"] / median["pair"],
        "pair_seconds": median["pair"],
    }


_MEMORY_CHILD = """
import sys, tracemalloc
sys.path.insert(0, {root!r})
sys.path.insert(0, {here!r})
from gd_cost import make_data
from gdreg import GDLinearRegressor
X, y = make_data({n}, {d})
for precompute in ("auto", False):
    tracemalloc.start()
    GDLinearRegressor(precompute=precompute).fit(X, y)
    print(tracemalloc.get_traced_memory()[1], X.nbytes)
    tracemalloc.stop()
"""


def measure_memory(n_samples, n_features):
    from pathlib import Path

    here = Path(__file__).resolve().parent
    code = _MEMORY_CHILD.format(
        root=str(here.parent), here=str(here), n=n_samples, d=n_features
    )
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    peak, peak_no_gram, size = int(output[0]), int(output[2]), int(output[1])
    return {
        "x_mb": size / 2**20,
        "peak_mb": peak / 2**20,
        "peak_over_x": peak / size,
        "peak_no_gram_over_x": peak_no_gram / size,
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sizes", default="1000000x20,200000x50")
    args = parser.parse_args(argv)
    for size in args.sizes.split(","):
        n_samples, n_features = (int(v) for v in size.split("x"))
        result = measure_speed(n_samples, n_features, args.repeats)
        result.update(measure_memory(n_samples, n_features))
        print(json.dumps(result))


if __name__ == "__main__":
    main()
