"""Environment record, results.csv, summary tables and report.md."""

import csv
import datetime
import platform
from collections import Counter

import numpy as np
from _methods import REFERENCE

CSV_COLUMNS = [
    "dataset",
    "method",
    "split",
    "r2",
    "rmse",
    "fit_seconds",
    "time_ratio",
    "n_iter",
    "status",
    "warning_category",
    "warning_message",
    "error",
    "n_train",
    "n_features",
    "repeats",
]
STATUSES = ["ok", "warned", "raised", "nonfinite"]


def cpu_model():
    """The CPU model name from /proc/cpuinfo, or the platform's description."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(gdreg_note):
    """Versions, BLAS, CPU and date, as (label, value) pairs."""
    import numpy
    import scipy
    import sklearn

    pairs = [
        ("date", datetime.datetime.now().astimezone().isoformat(timespec="seconds")),
        ("python", platform.python_version()),
        ("numpy", numpy.__version__),
        ("scipy", scipy.__version__),
        ("scikit-learn", sklearn.__version__),
        ("gdreg", gdreg_note),
        ("cpu", f"{cpu_model()} ({_cpu_count()} logical CPUs)"),
        ("platform", platform.platform()),
        ("load average at report time", _load_average()),
    ]
    try:
        from threadpoolctl import threadpool_info

        for pool in threadpool_info():
            pairs.append(
                (
                    f"threadpool {pool.get('user_api')}",
                    f"{pool.get('internal_api')} {pool.get('version')} "
                    f"({pool.get('architecture', '')}, "
                    f"{pool.get('num_threads')} threads, "
                    f"{pool.get('threading_layer', '')})",
                )
            )
    except ImportError:
        pairs.append(("threadpools", "threadpoolctl not installed"))
    return pairs


def _load_average():
    import os

    try:
        return " / ".join(f"{value:.2f}" for value in os.getloadavg()) + " (1/5/15 min)"
    except OSError:
        return "n/a"


def _cpu_count():
    import os

    return os.cpu_count()


def write_csv(rows, path):
    """One row per data set, method and split."""
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({key: _csv_value(row.get(key, "")) for key in CSV_COLUMNS})


def _csv_value(value):
    if isinstance(value, float):
        return "" if np.isnan(value) else repr(value)
    return value


def summarise(rows):
    """Per data set and method: means, medians and status counts."""
    groups = {}
    for row in rows:
        groups.setdefault((row["dataset"], row["method"]), []).append(row)
    reference_r2 = {
        dataset: np.mean([r["r2"] for r in group])
        for (dataset, method), group in groups.items()
        if method == REFERENCE
    }
    summary = []
    for (dataset, method), group in groups.items():
        r2 = np.array([r["r2"] for r in group], dtype=float)
        rmse = np.array([r["rmse"] for r in group], dtype=float)
        finite = np.isfinite(r2)
        n_iter = [r["n_iter"] for r in group if r["n_iter"] != ""]
        counts = Counter(r["status"] for r in group)
        mean_r2 = float(r2.mean()) if finite.all() else np.nan
        summary.append(
            {
                "dataset": dataset,
                "method": method,
                "r2_mean": mean_r2,
                "r2_std": float(r2.std()) if finite.all() else np.nan,
                "r2_mean_finite": float(r2[finite].mean()) if finite.any() else np.nan,
                "r2_diff": mean_r2 - reference_r2.get(dataset, np.nan),
                "rmse_mean": float(rmse.mean()) if finite.all() else np.nan,
                "rmse_std": float(rmse.std()) if finite.all() else np.nan,
                "time_ratio": float(np.nanmedian([r["time_ratio"] for r in group])),
                "fit_seconds": float(np.median([r["fit_seconds"] for r in group])),
                "n_iter": float(np.median(n_iter)) if n_iter else np.nan,
                "counts": counts,
                "n_splits": len(group),
                "warnings": sorted(
                    {r["warning_category"] for r in group if r["warning_category"]}
                ),
                "errors": sorted({r["error"] for r in group if r["error"]}),
            }
        )
    return summary


def _fmt(value, spec):
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "n/a" if value is None or np.isnan(value) else str(value)
    return format(value, spec)


def _short(value):
    return f"{value:.4f}" if abs(value) < 1e3 else f"{value:.3g}"


def _r2_text(entry):
    if np.isfinite(entry["r2_mean"]):
        return f"{_short(entry['r2_mean'])} ± {_short(entry['r2_std'])}"
    if np.isfinite(entry["r2_mean_finite"]):
        return f"{_short(entry['r2_mean_finite'])} (finite splits only)"
    return "n/a"


def _status_text(counts):
    return ", ".join(f"{counts[s]} {s}" for s in STATUSES if counts.get(s))


def summary_table(summary, methods_order):
    """Markdown table, one row per data set and method."""
    order = {name: i for i, name in enumerate(methods_order)}
    lines = [
        "| data set | method | test R² mean ± std | ΔR² vs LR | RMSE mean ± std "
        "| time ratio to LR (median) | fit ms (median) | n_iter (median) | status |",
        "|---|---|---|---:|---|---:|---:|---:|---|",
    ]
    for entry in sorted(
        summary, key=lambda e: (e["dataset"], order.get(e["method"], 99))
    ):
        rmse = (
            f"{entry['rmse_mean']:.4g} ± {entry['rmse_std']:.2g}"
            if np.isfinite(entry["rmse_mean"])
            else "n/a"
        )
        diff = entry["r2_diff"]
        lines.append(
            f"| {entry['dataset']} | {entry['method']} | {_r2_text(entry)} "
            f"| {_fmt(diff, '+.1e') if entry['method'] != REFERENCE else ''} "
            f"| {rmse} | {_fmt(entry['time_ratio'], '.3g')} "
            f"| {_fmt(1e3 * entry['fit_seconds'], '.3g')} "
            f"| {_fmt(entry['n_iter'], '.0f')} | {_status_text(entry['counts'])} |"
        )
    return "\n".join(lines)


def check_failures(summary, gdreg_methods, tolerance=2e-3):
    """Reasons to fail ``--check``; an empty list means the check passed."""
    failures = []
    if not gdreg_methods:
        return ["no gdreg estimator was available to check"]
    for entry in summary:
        if entry["method"] not in gdreg_methods:
            continue
        where = f"{entry['method']} on {entry['dataset']}"
        if entry["counts"].get("raised"):
            failures.append(f"{where} raised: {'; '.join(entry['errors'])[:200]}")
        if entry["counts"].get("nonfinite"):
            failures.append(f"{where} returned non-finite coefficients or predictions")
        diff = entry["r2_diff"]
        if not entry["counts"].get("raised") and not entry["counts"].get("nonfinite"):
            if not np.isfinite(diff) or diff < -tolerance:
                failures.append(
                    f"{where}: mean test R² {entry['r2_mean']:.5f} is "
                    f"{-diff:.2e} below LinearRegression's (allowed {tolerance:g})"
                )
    return failures
