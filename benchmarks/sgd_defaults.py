"""Epochs and test R² of SGDLinearRegressor's defaults over splits and seeds.

For every data set, each of ``--splits`` random 80/20 splits is fitted with
``--seeds`` random states; the script prints the mean number of epochs, the
mean test R² minus ``LinearRegression``'s over all fits, the lowest such
mean over the seeds of one split, and the lowest single fit. Parameters of
the estimator can be overridden to compare a candidate default with the
current one, for example::

    python benchmarks/sgd_defaults.py
    python benchmarks/sgd_defaults.py --param tol=1e-3
    python benchmarks/sgd_defaults.py --param batch_size=1 --datasets wine_red,yacht

The data come from the same places as in ``run.py`` (``--data-dir``, then
``GDREG_DATA_DIR``, then ``../shared/data/uci``, else the offline fallbacks).
No time is measured: epochs are what a schedule controls, and they do not
depend on the machine's load.
"""

import argparse
import ast
import warnings

import numpy as np
from _data import collect
from sklearn.linear_model import LinearRegression
from sklearn.metrics import r2_score
from sklearn.model_selection import train_test_split

from gdreg import SGDLinearRegressor


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--data-dir", help="folder of *.csv.gz files")
    parser.add_argument("--datasets", help="comma-separated subset of data set names")
    parser.add_argument("--splits", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an SGDLinearRegressor parameter (a Python literal), repeatable",
    )
    return parser.parse_args(argv)


def parse_params(pairs):
    """``["tol=1e-3", "batch_size=1"]`` -> ``{"tol": 0.001, "batch_size": 1}``."""
    params = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"error: --param wants NAME=VALUE; got {pair!r}")
        try:
            params[name] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            params[name] = value
    return params


def study(dataset, params, n_splits, n_seeds):
    """Epochs and R² differences of the fits on one data set."""
    epochs, deltas, split_means = [], [], []
    for split in range(n_splits):
        X_train, X_test, y_train, y_test = train_test_split(
            dataset.X, dataset.y, test_size=0.2, random_state=split
        )
        exact = LinearRegression().fit(X_train, y_train).score(X_test, y_test)
        split_deltas = []
        for seed in range(n_seeds):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                reg = SGDLinearRegressor(random_state=seed, **params)
                reg.fit(X_train, y_train)
            epochs.append(reg.n_iter_)
            split_deltas.append(r2_score(y_test, reg.predict(X_test)) - exact)
        deltas += split_deltas
        split_means.append(np.mean(split_deltas))
    return np.mean(epochs), np.mean(deltas), min(split_means), min(deltas)


def main(argv=None):
    args = parse_args(argv)
    params = parse_params(args.param)
    only = args.datasets.split(",") if args.datasets else None
    datasets, notes = collect(args.data_dir, only=only)
    for note in notes:
        print(f"note: {note}")
    print(f"SGDLinearRegressor({', '.join(f'{k}={v!r}' for k, v in params.items())})")
    print(
        f"{'data set':<24}{'epochs':>8}{'mean dR2':>11}"
        f"{'worst split':>13}{'worst fit':>11}"
    )
    all_epochs = []
    for dataset in datasets:
        epochs, mean, split, single = study(dataset, params, args.splits, args.seeds)
        all_epochs.append(epochs)
        print(
            f"{dataset.name:<24}{epochs:>8.2f}{mean:>+11.1e}{split:>+13.1e}{single:>+11.1e}",
            flush=True,
        )
    print(f"{'mean over data sets':<24}{np.mean(all_epochs):>8.2f}")


if __name__ == "__main__":
    main()
