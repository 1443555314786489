"""PNG figures for report.md; matplotlib is imported only here, with Agg."""

import numpy as np
from _methods import REFERENCE

COLOURS = {
    "LinearRegression": "#000000",
    "SGDRegressor(raw)": "#b0b0b0",
    "Scaler+SGDRegressor": "#7f7f7f",
    "GDLinearRegressor": "#d62728",
    "SGDLinearRegressor": "#1f77b4",
    "SGDLinearRegressor(b=1)": "#2ca02c",
    "SGDLinearRegressor(b=64)": "#9467bd",
}
MARKERS = {
    "SGDRegressor(raw)": "v",
    "Scaler+SGDRegressor": "^",
    "GDLinearRegressor": "o",
    "SGDLinearRegressor": "s",
    "SGDLinearRegressor(b=1)": "D",
    "SGDLinearRegressor(b=64)": "P",
}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def convergence_figure(result, path):
    """Gap to the exact minimum against seconds (left) and passes (right)."""
    plt = _pyplot()
    fig, (ax_time, ax_pass) = plt.subplots(
        1, 2, figsize=(13, 4.2), constrained_layout=True
    )
    for name, trace in result["traces"].items():
        if "gap" not in trace:
            continue
        style = {"color": COLOURS.get(name, None), "label": name, "lw": 1.6}
        time_gap = np.asarray(trace["time_gap"], dtype=float)
        seconds = np.asarray(trace["seconds"], dtype=float)
        finite = np.isfinite(time_gap) & (seconds > 0)
        marker = "o" if name == "GDLinearRegressor" else None
        ax_time.plot(seconds[finite], time_gap[finite], marker=marker, ms=3, **style)
        gap = np.asarray(trace["gap"], dtype=float)
        finite = np.isfinite(gap)
        ax_pass.plot(np.asarray(trace["passes"])[finite], gap[finite], **style)

    excess = result["raw_lr_excess"]
    for ax in (ax_time, ax_pass):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.grid(True, which="major", alpha=0.3)
        if np.isfinite(excess) and excess > 1e-9:
            ax.axhline(
                excess, color="black", ls=":", lw=1.2, label="LinearRegression (raw)"
            )
        ax.axhline(1e-6, color="0.6", ls="--", lw=0.8)
    ax_time.set_xlabel("wall time (s)")
    ax_pass.set_xlabel("passes over the training data (iterations or epochs)")
    ax_time.set_ylabel("(objective − minimum) / minimum")
    fig.legend(
        *ax_pass.get_legend_handles_labels(), loc="outside right center", fontsize=8
    )
    fig.suptitle(
        f"{result['dataset']}: training objective gap (n_train={result['n_train']}); "
        "dashed line at 1e-6"
    )
    fig.savefig(path, dpi=110)
    plt.close(fig)


def summary_figure(summary, methods_order, path, tolerance=2e-3):
    """ΔR² to LinearRegression (top) and time ratio to it (bottom), per data set."""
    plt = _pyplot()
    datasets = sorted({e["dataset"] for e in summary})
    methods = [m for m in methods_order if m != REFERENCE]
    lookup = {(e["dataset"], e["method"]): e for e in summary}
    width = 0.8 / max(len(methods), 1)
    x = np.arange(len(datasets))

    fig, (ax_r2, ax_time) = plt.subplots(
        2,
        1,
        figsize=(max(8, 1.0 * len(datasets) + 3), 8),
        sharex=True,
        constrained_layout=True,
    )
    linthresh = 1e-4
    floor = -1e3
    for i, method in enumerate(methods):
        offset = x - 0.4 + width * (i + 0.5)
        diffs, ratios = [], []
        for dataset in datasets:
            entry = lookup.get((dataset, method))
            diffs.append(entry["r2_diff"] if entry else np.nan)
            ratios.append(entry["time_ratio"] if entry else np.nan)
        diffs = np.asarray(diffs, dtype=float)
        shown = np.clip(diffs, floor, None)
        style = {"color": COLOURS.get(method), "marker": MARKERS.get(method, "o")}
        ax_r2.scatter(offset, shown, s=36, label=method, **style)
        missing = ~np.isfinite(diffs)
        if missing.any():
            ax_r2.scatter(
                offset[missing],
                np.full(missing.sum(), floor),
                s=60,
                c="red",
                marker="x",
            )
        ax_time.scatter(offset, ratios, s=36, **style)

    ax_r2.set_yscale("symlog", linthresh=linthresh)
    ax_r2.axhspan(-tolerance, tolerance, color="green", alpha=0.12, lw=0)
    ax_r2.axhline(0, color="black", lw=0.8)
    ax_r2.set_ylim(floor * 2, 1)
    ax_r2.set_ylabel(
        f"mean test R² − LinearRegression's\n(symlog, linear within ±{linthresh:g})"
    )
    ax_r2.set_title(
        f"Green band: within ±{tolerance:g} of LinearRegression. "
        f"Clipped at {floor:g}; red × = no finite score."
    )
    fig.legend(loc="outside upper center", ncol=min(len(methods), 6), fontsize=9)
    ax_time.set_yscale("log")
    ax_time.axhline(1, color="black", lw=0.8)
    ax_time.set_ylabel("fit time / LinearRegression's\n(median over splits, log)")
    ax_time.set_xticks(x)
    ax_time.set_xticklabels(datasets, rotation=30, ha="right")
    for ax in (ax_r2, ax_time):
        ax.grid(True, axis="y", alpha=0.3)
        for boundary in x[:-1] + 0.5:
            ax.axvline(boundary, color="0.85", lw=0.8)
    fig.savefig(path, dpi=110)
    plt.close(fig)
