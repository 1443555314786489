"""Data sources for the benchmarks: CSV folders, OpenML, and offline fallbacks."""

import csv
import gzip
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SHARED_DIR = REPO_ROOT.parent / "shared" / "data" / "uci"


@dataclass
class Dataset:
    """A regression problem with its provenance."""

    name: str
    X: np.ndarray
    y: np.ndarray
    source: str
    feature_names: list = field(default_factory=list)
    n_rows_full: int = 0


def read_csv_gz(path):
    """Read a gzip CSV whose last column is named ``target``."""
    with gzip.open(path, "rt", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        rows = [[float(value) for value in row] for row in reader if row]

    if header[-1] != "target":
        raise ValueError(
            f"{path}: the last column must be 'target'; got {header[-1]!r}"
        )
    values = np.asarray(rows, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] != len(header):
        raise ValueError(f"{path}: rows do not match the header width {len(header)}")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{path}: contains non-finite values")
    return values[:, :-1], values[:, -1], header[:-1]


def resolve_data_dir(cli_value):
    """Pick the CSV folder: the flag, then GDREG_DATA_DIR, then the shared folder."""
    if cli_value:
        return Path(cli_value), "--data-dir"
    env_value = os.environ.get("GDREG_DATA_DIR")
    if env_value:
        return Path(env_value), "GDREG_DATA_DIR"
    if DEFAULT_SHARED_DIR.is_dir():
        return DEFAULT_SHARED_DIR, "default folder ../shared/data/uci"
    return None, "no folder found"


def load_csv_dir(data_dir):
    """Load every ``*.csv.gz`` in ``data_dir``, sorted by name."""
    datasets = []
    for path in sorted(Path(data_dir).glob("*.csv.gz")):
        X, y, names = read_csv_gz(path)
        datasets.append(
            Dataset(
                name=path.name.removesuffix(".csv.gz"),
                X=X,
                y=y,
                source=f"csv {path}",
                feature_names=names,
                n_rows_full=X.shape[0],
            )
        )
    return datasets


def load_openml(names):
    """Fetch named OpenML data sets through scikit-learn's cache."""
    from sklearn.datasets import fetch_openml

    datasets = []
    for name in names:
        try:
            bunch = fetch_openml(name=name, as_frame=True, parser="auto")
        except Exception as exc:
            raise SystemExit(
                f"error: could not fetch OpenML data set {name!r} "
                f"({type(exc).__name__}: {exc}). Fetching needs network access "
                "unless the set is already in scikit-learn's cache "
                "(~/scikit_learn_data, or SCIKIT_LEARN_DATA)."
            ) from exc
        frame = bunch.data.select_dtypes(include="number")
        target = np.asarray(bunch.target, dtype=np.float64)
        X = frame.to_numpy(dtype=np.float64)
        keep = np.all(np.isfinite(X), axis=1) & np.isfinite(target)
        if frame.shape[1] == 0:
            raise SystemExit(f"error: OpenML data set {name!r} has no numeric feature")
        datasets.append(
            Dataset(
                name=f"openml_{name}",
                X=X[keep],
                y=target[keep],
                source=f"openml {name} (numeric columns, {int((~keep).sum())} rows "
                "with missing values dropped)",
                feature_names=list(frame.columns),
                n_rows_full=int(keep.sum()),
            )
        )
    return datasets


def make_badly_scaled(n_samples=3000, random_state=0):
    """Synthetic data with feature scales from 1e-4 to 1e4 and near-collinearity."""
    rng = np.random.default_rng(random_state)
    n_base = 10
    Z = rng.standard_normal((n_samples, n_base))
    near_copy = Z[:, [0]] + 1e-3 * rng.standard_normal((n_samples, 1))
    near_sum = Z[:, [1]] + Z[:, [2]] + 1e-3 * rng.standard_normal((n_samples, 1))
    Z = np.hstack([Z, near_copy, near_sum])

    scales = 10.0 ** np.linspace(-4, 4, Z.shape[1])
    rng.shuffle(scales)
    offsets = rng.choice([0.0, 1.0, 1e3], size=Z.shape[1]) * scales
    X = Z * scales + offsets

    w_standardised = rng.uniform(0.5, 2.0, size=Z.shape[1]) * rng.choice(
        [-1, 1], Z.shape[1]
    )
    y = Z @ w_standardised + 3.0 + 0.5 * rng.standard_normal(n_samples)
    return Dataset(
        name="synthetic_badly_scaled",
        X=X,
        y=y,
        source="synthetic, seeded: scales 1e-4..1e4, two near-collinear columns",
        feature_names=[f"x{j}" for j in range(X.shape[1])],
        n_rows_full=n_samples,
    )


def load_fallbacks():
    """Data sets that need no download: diabetes and a synthetic badly-scaled set."""
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True, scaled=False)
    diabetes = Dataset(
        name="diabetes",
        X=np.asarray(X, dtype=np.float64),
        y=np.asarray(y, dtype=np.float64),
        source="scikit-learn bundled diabetes (unscaled)",
        feature_names=[f"x{j}" for j in range(X.shape[1])],
        n_rows_full=X.shape[0],
    )
    return [diabetes, make_badly_scaled()]


def cap_rows(dataset, max_rows, random_state=0):
    """Keep a seeded random subset of at most ``max_rows`` rows."""
    n = dataset.X.shape[0]
    if not max_rows or n <= max_rows:
        return dataset
    rng = np.random.default_rng(random_state)
    keep = np.sort(rng.choice(n, size=max_rows, replace=False))
    return Dataset(
        name=dataset.name,
        X=dataset.X[keep],
        y=dataset.y[keep],
        source=dataset.source,
        feature_names=dataset.feature_names,
        n_rows_full=n,
    )


def collect(data_dir=None, openml=None, fallbacks=False, only=None):
    """Gather the data sets for a run and a one-line description of the sources.

    Returns ``(datasets, notes)`` where ``notes`` lists how each source was chosen.
    """
    datasets, notes = [], []
    folder, how = resolve_data_dir(data_dir)
    if folder is not None:
        if not folder.is_dir():
            raise SystemExit(f"error: data folder {folder} ({how}) does not exist")
        found = load_csv_dir(folder)
        notes.append(f"{len(found)} CSV data set(s) from {folder} ({how})")
        datasets += found
    else:
        notes.append("no CSV folder (flag, GDREG_DATA_DIR or ../shared/data/uci)")

    if openml:
        found = load_openml(openml)
        notes.append(f"{len(found)} OpenML data set(s): {', '.join(openml)}")
        datasets += found

    if fallbacks or not datasets:
        found = load_fallbacks()
        reason = "requested" if fallbacks else "nothing else was found"
        notes.append(f"offline fallbacks ({reason}): diabetes, synthetic_badly_scaled")
        datasets += found

    if only:
        wanted = set(only)
        missing = wanted - {d.name for d in datasets}
        if missing:
            raise SystemExit(
                f"error: unknown data set(s): {', '.join(sorted(missing))}"
            )
        datasets = [d for d in datasets if d.name in wanted]
    return datasets, notes
