"""Benchmark gdreg's estimators against scikit-learn on regression data sets.

Usage::

    python benchmarks/run.py                 # full run, results in benchmarks/results/
    python benchmarks/run.py --quick         # a short run (under two minutes)
    python benchmarks/run.py --quick --check # exit 1 if a gdreg estimator falls short
    python benchmarks/run.py --scale         # also the large-data timings (scale.py)

See benchmarks/README.md for every option and for what the report contains.
"""

import argparse
import shlex
import sys
import time
from pathlib import Path

import numpy as np
from _convergence import convergence_for_dataset, first_reaching
from _data import REPO_ROOT, cap_rows, collect
from _harness import run_dataset
from _methods import REFERENCE, available_methods
from _report import (
    check_failures,
    environment,
    summarise,
    summary_table,
    write_csv,
)

QUICK = {
    "splits": 2,
    "repeats": 1,
    "max_rows": 4000,
    "conv_epochs": 15,
    "conv_budget": 0.5,
}
FULL = {
    "splits": 5,
    "repeats": 3,
    "max_rows": 0,
    "conv_epochs": 100,
    "conv_budget": 10.0,
}


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--data-dir",
        help="folder of *.csv.gz files (default: $GDREG_DATA_DIR, else "
        "../shared/data/uci beside the repository, else the offline fallbacks)",
    )
    parser.add_argument(
        "--openml",
        help="comma-separated OpenML data set names, fetched through its cache",
    )
    parser.add_argument(
        "--fallbacks",
        action="store_true",
        help="also run the offline fallbacks (diabetes, synthetic badly scaled)",
    )
    parser.add_argument("--datasets", help="comma-separated subset of data set names")
    parser.add_argument("--out", default=str(REPO_ROOT / "benchmarks" / "results"))
    parser.add_argument(
        "--quick", action="store_true", help="fewer splits, repeats, rows"
    )
    parser.add_argument("--splits", type=int, help="random 80/20 splits (5; quick: 2)")
    parser.add_argument(
        "--repeats", type=int, help="timing repeats per fit (3; quick: 1)"
    )
    parser.add_argument(
        "--max-rows",
        type=int,
        help="cap on rows per data set, 0 for none (quick: 4000)",
    )
    parser.add_argument(
        "--timeout", type=float, default=120.0, help="seconds before a fit is stopped"
    )
    parser.add_argument(
        "--conv-epochs", type=int, help="epochs per SGD curve (100; quick 15)"
    )
    parser.add_argument(
        "--conv-budget", type=float, help="seconds per SGD curve (10; quick 0.5)"
    )
    parser.add_argument("--no-convergence", action="store_true")
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument(
        "--scale", action="store_true", help="also run scale.py (see --scale-args)"
    )
    parser.add_argument(
        "--scale-args",
        default="",
        help='options passed on to scale.py, e.g. "--small" or "--rows 200000"',
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="exit 1 if a gdreg estimator raised, was non-finite, or has mean test "
        "R² more than 2e-3 below LinearRegression's on a data set",
    )
    args = parser.parse_args(argv)
    preset = QUICK if args.quick else FULL
    for key, value in preset.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def _log_row(counter, total):
    def log(row):
        counter[0] += 1
        if row["status"] in ("raised", "nonfinite"):
            detail = row["error"][:80] or "non-finite coefficients or predictions"
        else:
            detail = f"R2={row['r2']:.4g}"
        n_iter = f" n_iter={row['n_iter']}" if row["n_iter"] != "" else ""
        warned = f" [{row['warning_category']}]" if row["warning_category"] else ""
        print(
            f"[{counter[0]:>4}/{total}] {row['dataset']:<22} split {row['split']} "
            f"{row['method']:<25} {row['status']:<9} {detail} "
            f"fit={row['fit_seconds'] * 1e3:.1f}ms ({row['time_ratio']:.2g}x LR)"
            f"{n_iter}{warned}",
            flush=True,
        )

    return log


def convergence_table(results):
    """Markdown: per data set, the minimum, raw LR's excess, and each curve's reach."""
    lines = [
        "| data set | minimum f* | LinearRegression (raw) excess | method "
        "| final gap | passes to 1e-3 | passes to 1e-6 | seconds to 1e-6 "
        "| passes run | notes |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    for result in results:
        first = True
        for name, trace in result["traces"].items():
            head = (
                f"| {result['dataset']} | {result['minimum_standardised']:.6g} "
                f"| {result['raw_lr_excess']:.2e} "
                if first
                else "| | | "
            )
            first = False
            if "gap" not in trace:
                lines.append(f"{head}| {name} | | | | | | {trace.get('error', '')} |")
                continue
            notes = [
                text for text in (trace.get("warnings"), trace.get("error")) if text
            ]
            if "curve_last" in trace and np.isfinite(trace["final_objective"]):
                mismatch = abs(trace["curve_last"] - trace["final_objective"])
                mismatch /= max(trace["final_objective"], 1e-300)
                if mismatch > 1e-6:
                    notes.append(
                        f"loss_curve_[-1] differs from the objective by {mismatch:.1e}"
                    )
            lines.append(
                f"{head}| {name} | {trace['final_gap']:.2e} "
                f"| {_num(first_reaching(trace, 1e-3, 'passes', 'gap'))} "
                f"| {_num(first_reaching(trace, 1e-6, 'passes', 'gap'))} "
                f"| {_num(first_reaching(trace, 1e-6, 'seconds', 'time_gap'), '.3g')} "
                f"| {trace['n_iter']} | {'; '.join(notes)} |"
            )
    return "\n".join(lines)


def _num(value, spec=".0f"):
    return "never" if not np.isfinite(value) else format(value, spec)


def write_report(args, path, context):
    """Assemble report.md from the pieces gathered during the run."""
    out = Path(args.out)
    lines = [
        "# gdreg benchmark against scikit-learn",
        "",
        f"Command: `{context['command']}`  ",
        f"Wall time of the run: {context['elapsed']:.1f} s"
        + (" (`--quick`)" if args.quick else ""),
        "",
        "## Environment",
        "",
        "| | |",
        "|---|---|",
        *[f"| {label} | {value} |" for label, value in context["environment"]],
        "",
        "## Data",
        "",
        *[f"- {note}" for note in context["data_notes"]],
        "",
        "| data set | rows used (of) | features | source |",
        "|---|---:|---:|---|",
        *[
            f"| {d.name} | {d.X.shape[0]} ({d.n_rows_full}) | {d.X.shape[1]} "
            f"| {d.source} |"
            for d in context["datasets"]
        ],
        "",
        "## Methods",
        "",
        *[f"- `{m.name}`: `{m.description}`" for m in context["methods"]],
        "",
        *[f"- {note}" for note in context["method_notes"]],
        "",
        "Default settings throughout, except `random_state` set to the split's seed "
        "where an estimator has one (so a run can be repeated).",
        "",
        "## Protocol",
        "",
        f"{args.splits} random 80/20 splits (`train_test_split`, "
        f"seeds 0..{args.splits - 1})"
        + (
            f", at most {args.max_rows} rows per data set (seeded subsample)"
            if args.max_rows
            else ""
        )
        + f". Fit time is the median of {args.repeats} repeat(s) in this one process, "
        "interleaved: the repeat loop is outside, the methods inside. Time ratio = "
        "fit time / LinearRegression's fit time on the same split. Status: `ok`; "
        "`warned` (any warning during fit); `raised` (an exception, including the "
        f"{args.timeout:g} s time limit per fit); `nonfinite` (non-finite `coef_`, "
        "`intercept_` or test predictions). Scores and status come from the first "
        "repeat.",
        "",
        "## Summary",
        "",
        summary_table(context["summary"], [m.name for m in context["methods"]]),
        "",
    ]
    if (out / "summary.png").exists():
        lines += ["![R² difference and time ratio](summary.png)", ""]
    warned = [e for e in context["summary"] if e["warnings"] or e["errors"]]
    if warned:
        lines += ["### Warnings and errors", ""]
        for entry in warned:
            text = ", ".join(entry["warnings"])
            if entry["errors"]:
                text += (
                    ("; " if text else "")
                    + "errors: "
                    + " | ".join(entry["errors"])[:300]
                )
            lines.append(f"- {entry['dataset']} / {entry['method']}: {text}")
        messages = {}
        for row in context["rows"]:
            if row["warning_message"]:
                messages.setdefault(row["method"], row["warning_message"])
        lines += ["", "First warning message per method:", ""]
        lines += [f'- {method}: "{message}"' for method, message in messages.items()]
        lines.append("")
    if context["convergence"]:
        lines += [
            "## Convergence on the training objective",
            "",
            "Objective f = (1/2n)·‖y − Xw − b‖² on the training rows of split 0, "
            "computed from each model's predictions. The minimum f* is the "
            "least-squares solution on standardised features (`scipy.linalg.lstsq` "
            "on the centred, scaled design); the gap is (f − f*)/f*. The column "
            "*LinearRegression (raw) excess* is (f_LR − f*)/f* for `LinearRegression` "
            "on raw features. "
            "`GDLinearRegressor`: *passes* are iterations, from `loss_curve_` of one "
            "default fit; the time axis comes from separate fresh fits with `max_iter` "
            "on a geometric grid up to that fit's `n_iter_`, each timed as a whole "
            "(setup included; the fastest of up to five fits) and scored from its "
            "predictions. SGD methods: "
            f"`partial_fit` epoch by epoch (at most {args.conv_epochs} epochs or "
            f"{args.conv_budget:g} s per curve), the clock stopped while the objective "
            "is evaluated; the scaler's fit and transform time is counted for "
            "`Scaler+SGDRegressor`. ConvergenceWarning is silenced here only.",
            "",
            convergence_table(context["convergence"]),
            "",
        ]
        for result in context["convergence"]:
            image = f"convergence_{result['dataset']}.png"
            if (out / image).exists():
                lines += [f"![{result['dataset']}]({image})", ""]
    if context.get("check_lines"):
        lines += ["## Check", "", *[f"- {line}" for line in context["check_lines"]], ""]
    if context.get("scale_report"):
        lines += [context["scale_report"], ""]
    Path(path).write_text("\n".join(lines))


def main(argv=None):
    args = parse_args(argv)
    started = time.perf_counter()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    openml = [name.strip() for name in args.openml.split(",")] if args.openml else None
    only = (
        [name.strip() for name in args.datasets.split(",")] if args.datasets else None
    )
    datasets, data_notes = collect(args.data_dir, openml, args.fallbacks, only)
    datasets = [cap_rows(d, args.max_rows) for d in datasets]
    methods, method_notes = available_methods()
    for note in data_notes + method_notes:
        print(f"note: {note}", flush=True)

    total = len(datasets) * len(methods) * args.splits
    log = _log_row([0], total)
    rows = []
    for dataset in datasets:
        rows += run_dataset(
            dataset, methods, args.splits, args.repeats, args.timeout, log
        )
    write_csv(rows, out / "results.csv")
    summary = summarise(rows)

    convergence = []
    if not args.no_convergence:
        for dataset in datasets:
            t0 = time.perf_counter()
            result = convergence_for_dataset(
                dataset, methods, 0, args.conv_epochs, args.conv_budget
            )
            convergence.append(result)
            print(
                f"convergence {dataset.name}: raw LinearRegression excess "
                f"{result['raw_lr_excess']:.2e}, "
                + ", ".join(
                    f"{name} gap {trace.get('final_gap', np.nan):.1e}"
                    for name, trace in result["traces"].items()
                )
                + f" ({time.perf_counter() - t0:.1f}s)",
                flush=True,
            )

    if not args.no_plots:
        from _plots import convergence_figure, summary_figure

        summary_figure(summary, [m.name for m in methods], out / "summary.png")
        for result in convergence:
            convergence_figure(result, out / f"convergence_{result['dataset']}.png")

    context = {
        "command": "python "
        + " ".join(shlex.quote(a) for a in [sys.argv[0], *sys.argv[1:]]),
        "environment": environment(method_notes[0]),
        "data_notes": data_notes,
        "datasets": datasets,
        "methods": methods,
        "method_notes": method_notes,
        "summary": summary,
        "rows": rows,
        "convergence": convergence,
    }

    if args.scale:
        import scale

        context["scale_report"] = scale.main(shlex.split(args.scale_args), out_dir=out)

    gdreg_names = {m.name for m in methods if m.package == "gdreg"}
    failures = check_failures(summary, gdreg_names) if args.check else []
    if args.check:
        context["check_lines"] = failures or ["passed"]
    context["elapsed"] = time.perf_counter() - started
    write_report(args, out / "report.md", context)
    print(
        f"wrote {out / 'results.csv'} and {out / 'report.md'} "
        f"in {context['elapsed']:.1f} s"
    )
    missing = [note for note in method_notes if note.startswith("left out")]
    if missing:
        print("note: " + "; ".join(missing))

    if args.check:
        if failures:
            print("CHECK FAILED:", file=sys.stderr)
            for failure in failures:
                print(f"  - {failure}", file=sys.stderr)
            return 1
        n_sets = len({e["dataset"] for e in summary})
        print(
            f"check passed: {len(gdreg_names)} gdreg estimator(s) on {n_sets} data "
            f"set(s), none raised or non-finite, mean test R² within 2e-3 of "
            f"{REFERENCE}"
            + (f" ({len(missing)} gdreg method(s) left out)" if missing else "")
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
