"""Large-data timings and peak memory: tall dense data and a sparse text-like set.

Usage::

    python benchmarks/scale.py          # 2e6 x 100 dense, 2e5 x 1e5 sparse, GD goals
    python benchmarks/scale.py --small  # every row count divided by ten
    python benchmarks/scale.py --rows 200000 --sparse-rows 20000 --sparse-features 10000

Every measurement runs in a fresh Python process that loads the data from a
temporary ``.npy``/``.npz`` file, so that its peak resident memory
(``ru_maxrss``) minus the peak after loading is what the fit itself needed.
Results go to ``scale.csv`` and ``scale.md`` in ``--out``.
"""

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
SPARSE_SCALER = "Scaler(with_mean=False)+SGDRegressor"
TARGET_GAP = 1e-3


def make_dense(path, n_rows, n_features, seed=0, chunk=100_000):
    """Tall dense data with feature scales from 1e-3 to 1e3 and offsets; 80/20 split."""
    rng = np.random.default_rng(seed)
    scales = 10.0 ** rng.uniform(-3, 3, n_features)
    offsets = rng.choice([0.0, 1.0, 10.0], n_features) * scales
    w = rng.standard_normal(n_features)
    n_train = int(0.8 * n_rows)
    for part, start, stop in (("train", 0, n_train), ("test", n_train, n_rows)):
        X = np.empty((stop - start, n_features))
        y = np.empty(stop - start)
        for first in range(0, stop - start, chunk):
            last = min(first + chunk, stop - start)
            Z = rng.standard_normal((last - first, n_features))
            y[first:last] = (
                Z @ w
                + 2.0
                + rng.standard_normal(last - first) * np.sqrt(n_features / 4)
            )
            X[first:last] = Z * scales + offsets
        np.save(path / f"X_{part}.npy", X)
        np.save(path / f"y_{part}.npy", y)
        del X


def make_sparse(path, n_rows, n_features, density, seed=0):
    """Text-like CSR data: Zipf-like column frequencies, tf-idf-like values."""
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    per_row = np.maximum(rng.poisson(density * n_features, n_rows), 1)
    popularity = 1.0 / (np.arange(n_features) + 20.0) ** 1.05
    popularity /= popularity.sum()
    columns = rng.choice(n_features, size=per_row.sum(), p=popularity)
    rows = np.repeat(np.arange(n_rows), per_row)
    counts = rng.geometric(0.6, size=columns.size).astype(np.float64)
    X = sp.csr_matrix((counts, (rows, columns)), shape=(n_rows, n_features))
    X.sum_duplicates()
    document_frequency = np.bincount(X.indices, minlength=n_features)
    idf = np.log((1 + n_rows) / (1 + document_frequency)) + 1
    X.data = np.log1p(X.data) * idf[X.indices]
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
    X = sp.diags(1 / np.maximum(norms, 1e-12)) @ X
    X = X.tocsr()

    w = rng.standard_normal(n_features) * (rng.random(n_features) < 0.2) * 5.0
    signal = X @ w
    y = signal + 1.0 + 0.5 * signal.std() * rng.standard_normal(n_rows)
    n_train = int(0.8 * n_rows)
    sp.save_npz(path / "X_train.npz", X[:n_train], compressed=False)
    sp.save_npz(path / "X_test.npz", X[n_train:], compressed=False)
    np.save(path / "y_train.npy", y[:n_train])
    np.save(path / "y_test.npy", y[n_train:])


def _max_rss_bytes():
    usage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return usage if sys.platform == "darwin" else usage * 1024


def _reset_peak():
    """Make the peak resident size restart from the current one (Linux only).

    Without this, a transient peak from imports or loading would hide the
    fit's own allocations.
    """
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def _load(path, part):
    path = Path(path)
    if (path / f"X_{part}.npz").exists():
        import scipy.sparse as sp

        X = sp.load_npz(path / f"X_{part}.npz").tocsr()
    else:
        X = np.load(path / f"X_{part}.npy")
    return X, np.load(path / f"y_{part}.npy")


def _nbytes(X):
    if hasattr(X, "indices"):
        return X.data.nbytes + X.indices.nbytes + X.indptr.nbytes
    return X.nbytes


def _factory(name):
    """An estimator factory by method name, in the worker process."""
    from _methods import available_methods
    from sklearn.linear_model import SGDRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if name == SPARSE_SCALER:
        return lambda seed=0: make_pipeline(
            StandardScaler(with_mean=False), SGDRegressor(random_state=seed)
        )
    methods, _ = available_methods()
    for method in methods:
        if method.name == name:
            return method.make
    raise KeyError(f"unknown method {name!r}")


def _r2(model, X, y):
    from _harness import safe_predict, scores

    prediction = safe_predict(model, X)
    if prediction is None or not np.all(np.isfinite(prediction)):
        return float("nan")
    return scores(y, prediction)[0]


def worker_memory(spec):
    """One default fit: time, n_iter_, test R^2, peak memory above the loaded data."""
    X, y = _load(spec["data"], "train")
    X_test, y_test = _load(spec["data"], "test")
    from _harness import safe_predict, scores, timed_fit  # noqa: F401
    from _methods import final_step

    make = _factory(spec["method"])
    reset = _reset_peak()
    baseline = _max_rss_bytes()

    model = make(seed=0)
    seconds, error, caught = timed_fit(model, X, y)
    peak = _max_rss_bytes()
    result = {
        "fit_seconds": seconds,
        "extra_bytes": peak - baseline,
        "x_bytes": _nbytes(X),
        "peak_reset": reset,
        "error": error or "",
        "warnings": sorted({w.category.__name__ for w in caught}),
    }
    if not error:
        n_iter = getattr(final_step(model), "n_iter_", None)
        result["n_iter"] = int(np.max(n_iter)) if n_iter is not None else None
        result["r2"] = _r2(model, X_test, y_test)
        result["traced_bytes"] = _traced_peak(make, X, y)
    return result


def _traced_peak(make, X, y):
    """Peak of the allocations tracemalloc sees (numpy buffers included) in a fit.

    Unlike the resident-size peak, this does not depend on whether the
    allocator reuses memory the process already holds; memory that BLAS or
    LAPACK allocate themselves is not seen.
    """
    import tracemalloc
    import warnings

    tracemalloc.start()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            make(seed=0).fit(X, y)
        return tracemalloc.get_traced_memory()[1]
    except Exception:
        return None
    finally:
        tracemalloc.stop()


def _quiet_fit(model, X, y):
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = time.perf_counter()
        model.fit(X, y)
        return time.perf_counter() - start


def _gd_per_iteration(cls, X, y, repeats):
    """Seconds per GD iteration: (default fit - 1-iteration fit) / (n_iter_ - 1).

    Both fits are timed as the fastest of ``repeats``; also returns the plain
    fit time divided by ``n_iter_`` (setup included) and the fitted model.
    """
    t_one = min(_quiet_fit(cls(max_iter=1), X, y) for _ in range(repeats))
    t_full, model = np.inf, None
    for _ in range(repeats):
        candidate = cls()
        seconds = _quiet_fit(candidate, X, y)
        if seconds < t_full:
            t_full, model = seconds, candidate
    n_iter = int(model.n_iter_)
    difference = (t_full - t_one) / (n_iter - 1) if n_iter > 1 else float("nan")
    return difference, t_full / n_iter, model


def worker_speed(spec):
    """Time per pass and time to reach the reference test R^2 minus 1e-3."""
    X, y = _load(spec["data"], "train")
    X_test, y_test = _load(spec["data"], "test")
    target = (
        spec["reference_r2"] - TARGET_GAP if spec["reference_r2"] is not None else None
    )
    budget = spec["budget"]
    name = spec["method"]
    make = _factory(name)

    if name == "GDLinearRegressor":
        cls = make().__class__
        difference, per_fit, _ = _gd_per_iteration(cls, X, y, 3)
        per_pass = difference if difference > 0 else per_fit
        how = (
            "(fit - 1-iteration fit) / (n_iter_ - 1)"
            if difference > 0
            else "fit / n_iter_"
        )
        reached, reached_iter, spent, max_iter = None, None, 0.0, 1
        while target is not None and spent < budget:
            model = cls(max_iter=max_iter)
            seconds = _quiet_fit(model, X, y)
            spent += seconds
            if _r2(model, X_test, y_test) >= target:
                reached, reached_iter = seconds, int(model.n_iter_)
                break
            if model.n_iter_ < max_iter:
                break
            max_iter *= 2
        return {
            "per_pass": per_pass,
            "per_pass_how": how,
            "time_to_target": reached,
            "passes_to_target": reached_iter,
            "how": "fresh fits with max_iter 1, 2, 4, ...; the first that reaches",
        }

    import warnings

    from sklearn.exceptions import ConvergenceWarning

    scaled = name in ("Scaler+SGDRegressor", SPARSE_SCALER)
    elapsed = 0.0
    if scaled:
        pipeline = make(seed=0)
        scaler, model = pipeline.steps[0][1], pipeline.steps[-1][1]
        start = time.perf_counter()
        X = scaler.fit_transform(X)
        elapsed = time.perf_counter() - start
        X_test = scaler.transform(X_test)
    else:
        model = make(seed=0)
    epochs, reached, r2 = [], None, float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        while elapsed < budget and len(epochs) < spec["max_epochs"]:
            start = time.perf_counter()
            model.partial_fit(X, y)
            epochs.append(time.perf_counter() - start)
            elapsed += epochs[-1]
            r2 = _r2(model, X_test, y_test)
            if target is not None and r2 >= target:
                reached = elapsed
                break
            if not np.isfinite(r2):
                break
    return {
        "per_pass": float(np.median(epochs)) if epochs else None,
        "per_pass_how": "median partial_fit epoch",
        "time_to_target": reached,
        "passes_to_target": len(epochs) if reached is not None else None,
        "last_r2": r2,
        "epochs_run": len(epochs),
        "how": "partial_fit epochs, clock stopped while scoring",
    }


def worker_gd_goals(spec):
    """GD against LinearRegression and against its two products per iteration."""
    from _convergence import exact_minimum, objective_from_prediction
    from _harness import safe_predict
    from sklearn.linear_model import LinearRegression

    X, y = _load(spec["data"], "train")
    cls = _factory("GDLinearRegressor")().__class__
    repeats = spec["repeats"]
    lr_times, gd_times = [], []
    for _ in range(repeats):
        lr = LinearRegression()
        lr_times.append(_quiet_fit(lr, X, y))
        gd = cls()
        gd_times.append(_quiet_fit(gd, X, y))

    difference, per_fit, _ = _gd_per_iteration(cls, X, y, repeats)

    w = np.random.default_rng(0).standard_normal(X.shape[1])
    pair_times = []
    for _ in range(max(20, 10 * repeats)):
        start = time.perf_counter()
        r = X @ w
        X.T @ r
        pair_times.append(time.perf_counter() - start)

    return {
        "lr_seconds": float(np.median(lr_times)),
        "gd_seconds": float(np.median(gd_times)),
        "gd_n_iter": int(gd.n_iter_),
        "gd_objective": objective_from_prediction(y, safe_predict(gd, X)),
        "lr_objective": objective_from_prediction(y, safe_predict(lr, X)),
        "minimum": exact_minimum(X, y),
        "per_iter": difference,
        "per_iter_with_setup": per_fit,
        "pair_seconds": float(np.median(pair_times)),
    }


WORKERS = {"memory": worker_memory, "speed": worker_speed, "gd_goals": worker_gd_goals}


def run_worker(spec, timeout):
    """Run one measurement in a fresh interpreter; a dict with ``error`` on failure."""
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        json.dumps(spec),
    ]
    # A fixed mmap threshold makes every large array fresh pages that count in
    # the peak, instead of reusing heap memory the process already holds.
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072"}
    start = time.perf_counter()
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, env=env
        )
    except subprocess.TimeoutExpired:
        return {"error": f"stopped after the {timeout:g} s limit per measurement"}
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = done.stderr.strip().splitlines()[-1:] or [
            f"exit status {done.returncode}"
        ]
        return {"error": tail[0][:300]}
    result = json.loads(lines[-1])
    result["wall_seconds"] = time.perf_counter() - start
    return result


def _mb(value):
    return f"{value / 2**20:.1f}" if value is not None else "n/a"


def _s(value, spec=".3g"):
    return format(value, spec) if isinstance(value, (int, float)) else "n/a"


def run_suite(label, folder, methods, args, csv_rows):
    """Memory and speed for each method on one data set; markdown lines."""
    print(f"scale {label}: LinearRegression (reference)", flush=True)
    reference = run_worker(
        {"task": "memory", "data": str(folder), "method": "LinearRegression"},
        args.timeout,
    )
    ref_r2 = reference.get("r2") if not reference.get("error") else None
    lines = [
        f"### {label}",
        "",
        "Reference: `LinearRegression().fit` took "
        f"{_s(reference.get('fit_seconds'))} s, test R² {_s(ref_r2, '.5f')}, "
        f"peak extra memory {_mb(reference.get('extra_bytes'))} MB"
        + (f" (did not run: {reference['error']})" if reference.get("error") else "")
        + f"; X is {_mb(reference.get('x_bytes'))} MB. Target: test R² ≥ reference − "
        f"{TARGET_GAP:g}.",
        "",
        "| method | default fit s | n_iter | test R² | peak extra MB "
        "| traced peak MB | extra / size of X | s per pass | time to target s "
        "| passes to target | notes |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    csv_rows.append(
        {"dataset": label, "method": "LinearRegression", **_flat(reference)}
    )
    for name in methods:
        print(f"scale {label}: {name}", flush=True)
        memory = run_worker(
            {"task": "memory", "data": str(folder), "method": name}, args.timeout
        )
        speed = run_worker(
            {
                "task": "speed",
                "data": str(folder),
                "method": name,
                "reference_r2": ref_r2,
                "budget": args.budget,
                "max_epochs": args.max_epochs,
            },
            args.timeout,
        )
        notes = []
        if memory.get("error"):
            notes.append(f"default fit: {memory['error']}")
        if speed.get("error"):
            notes.append(f"speed: {speed['error']}")
        if memory.get("warnings"):
            notes.append("warned: " + ", ".join(memory["warnings"]))
        if speed.get("time_to_target") is None and not speed.get("error"):
            notes.append(
                f"target not reached ({speed.get('epochs_run', '?')} epochs, "
                f"last R² {_s(speed.get('last_r2'), '.4g')})"
                if "epochs_run" in speed
                else "target not reached within the budget"
            )
        ratio = (
            memory["extra_bytes"] / memory["x_bytes"]
            if memory.get("x_bytes") and memory.get("extra_bytes") is not None
            else None
        )
        lines.append(
            f"| {name} | {_s(memory.get('fit_seconds'))} "
            f"| {memory.get('n_iter', 'n/a')} "
            f"| {_s(memory.get('r2'), '.5f')} | {_mb(memory.get('extra_bytes'))} "
            f"| {_mb(memory.get('traced_bytes'))} "
            f"| {_s(ratio, '.2f')} | {_s(speed.get('per_pass'))} "
            f"| {_s(speed.get('time_to_target'))} "
            f"| {speed.get('passes_to_target') or 'n/a'} "
            f"| {'; '.join(notes)} |"
        )
        csv_rows.append(
            {"dataset": label, "method": name, **_flat(memory), **_flat(speed)}
        )
        print("  " + lines[-1], flush=True)
    return lines + [""]


def _flat(result):
    return {key: value for key, value in result.items() if not isinstance(value, list)}


def gd_goals(n_rows, n_features, folder, args):
    """Markdown rows for GDLinearRegressor's three goals on one dense size."""
    make_dense(folder, n_rows, n_features, seed=1)
    goals = run_worker(
        {"task": "gd_goals", "data": str(folder), "repeats": args.repeats}, args.timeout
    )
    memory = run_worker(
        {"task": "memory", "data": str(folder), "method": "GDLinearRegressor"},
        args.timeout,
    )
    label = f"{n_rows:,} x {n_features}"
    if goals.get("error") or memory.get("error"):
        return (
            f"| {label} | {goals.get('error', '')} {memory.get('error', '')} |"
            + " |" * 7
        )
    minimum = goals["minimum"]
    pair = goals["pair_seconds"]
    return (
        f"| {label} | {goals['gd_seconds']:.3g} / {goals['lr_seconds']:.3g} "
        f"= **{goals['gd_seconds'] / goals['lr_seconds']:.2f}x** (goal ≤ 0.5) "
        f"| {goals['gd_n_iter']} "
        f"| {(goals['gd_objective'] - minimum) / minimum:.1e} "
        f"| {(goals['lr_objective'] - minimum) / minimum:.1e} "
        f"| {goals['per_iter'] * 1e3:.3g} ms / {pair * 1e3:.3g} ms "
        f"= **{goals['per_iter'] / pair:.2f}x** (goal ≤ 1.15); with setup: "
        f"{goals['per_iter_with_setup'] / pair:.2f}x "
        f"| {_mb(memory['extra_bytes'])} MB / {_mb(memory['x_bytes'])} MB "
        f"= **{memory['extra_bytes'] / memory['x_bytes']:.3f}**; traced peak "
        f"{_mb(memory.get('traced_bytes'))} MB "
        f"(n + d floats = {_mb(8 * (n_rows * 0.8 + n_features))} MB) |"
    )


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--small", action="store_true", help="divide every size by ten")
    parser.add_argument(
        "--rows", type=int, default=2_000_000, help="dense rows (train+test)"
    )
    parser.add_argument("--features", type=int, default=100)
    parser.add_argument("--sparse-rows", type=int, default=200_000)
    parser.add_argument("--sparse-features", type=int, default=100_000)
    parser.add_argument("--density", type=float, default=0.001)
    parser.add_argument(
        "--gd-sizes",
        default="1000000x20,200000x50",
        help="dense sizes for GDLinearRegressor's goals, ROWSxFEATURES[,...]",
    )
    parser.add_argument(
        "--skip", default="", help="comma-separated: dense,sparse,goals"
    )
    parser.add_argument(
        "--budget", type=float, default=60.0, help="seconds per speed run"
    )
    parser.add_argument("--max-epochs", type=int, default=50)
    parser.add_argument(
        "--repeats", type=int, default=3, help="timing repeats for the goals"
    )
    parser.add_argument(
        "--timeout", type=float, default=900.0, help="seconds per subprocess"
    )
    parser.add_argument("--out", default=str(REPO_ROOT / "benchmarks" / "results"))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.small:
        args.rows //= 10
        args.sparse_rows //= 10
        args.sparse_features //= 10
        args.gd_sizes = ",".join(
            f"{int(size.split('x')[0]) // 10}x{size.split('x')[1]}"
            for size in args.gd_sizes.split(",")
        )
    return args


def main(argv=None, out_dir=None):
    """Run the scale benchmarks; returns the markdown section."""
    args = parse_args(argv)
    if args.worker:
        spec = json.loads(args.worker)
        print(json.dumps(WORKERS[spec["task"]](spec)))
        return ""

    out = Path(out_dir or args.out)
    out.mkdir(parents=True, exist_ok=True)
    skip = set(filter(None, args.skip.split(",")))
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _methods import available_methods
    from _report import environment

    methods, notes = available_methods()
    names = [m.name for m in methods if m.name != "LinearRegression"]
    for note in notes:
        print(f"note: {note}", flush=True)
    started = time.perf_counter()
    csv_rows = []
    lines = [
        "## Scale",
        "",
        *[f"- {note}" for note in notes],
        "",
        "Each number comes from a fresh Python process that loads the data from a "
        "temporary file. *Peak extra* = `ru_maxrss` after the fit minus `ru_maxrss` "
        "after loading the data, the peak having been reset there (`clear_refs`) "
        "so that earlier transient peaks do not hide the fit's own; it can still "
        "read low (even 0) when the allocator reuses memory the process already "
        "holds. *Traced peak*: the peak of `tracemalloc` (numpy buffers included, "
        "BLAS workspaces not) during a second, separate fit in the same process. "
        "*s per pass*: median `partial_fit` epoch for the SGD methods; for "
        "GDLinearRegressor (default fit − fit with `max_iter=1`) / (n_iter_ − 1), "
        "each the fastest of three. "
        "*Time to target*: SGD methods run `partial_fit` epochs (the clock stopped "
        "while scoring) until the test R² is within "
        f"{TARGET_GAP:g} of LinearRegression's, at most {args.max_epochs} epochs or "
        f"{args.budget:g} s; GDLinearRegressor is refitted from scratch with "
        "`max_iter` = 1, 2, 4, ... and the time of the first fit that reaches the "
        "target is reported.",
        "",
    ]
    folder = Path(tempfile.mkdtemp(prefix="gdreg-scale-"))
    try:
        if "dense" not in skip:
            print(f"scale: making dense {args.rows} x {args.features}", flush=True)
            make_dense(folder, args.rows, args.features)
            label = f"dense {args.rows:,} x {args.features} float64, mixed scales"
            lines += run_suite(label, folder, names, args, csv_rows)
            for path in folder.iterdir():
                path.unlink()
        if "sparse" not in skip:
            print(
                f"scale: making sparse {args.sparse_rows} x {args.sparse_features}",
                flush=True,
            )
            make_sparse(folder, args.sparse_rows, args.sparse_features, args.density)
            label = (
                f"sparse CSR {args.sparse_rows:,} x {args.sparse_features:,}, "
                f"density {args.density:g}, text-like"
            )
            sparse_names = [
                SPARSE_SCALER if name == "Scaler+SGDRegressor" else name
                for name in names
            ]
            sparse_names.insert(
                sparse_names.index(SPARSE_SCALER), "Scaler+SGDRegressor"
            )
            lines += run_suite(label, folder, sparse_names, args, csv_rows)
            for path in folder.iterdir():
                path.unlink()
        if "goals" not in skip and "GDLinearRegressor" in names:
            lines += [
                "### GDLinearRegressor goals (dense float64, mixed feature scales)",
                "",
                "Fit times are medians of interleaved repeats in one process. "
                "Objective gaps are relative to the least-squares minimum on "
                "standardised features. The matrix-vector pair is "
                "`r = X @ w; X.T @ r` on the same array. Memory comes from a separate "
                "process fitting only GDLinearRegressor. Per iteration = (default fit "
                "− fit with `max_iter=1`) / (n_iter_ − 1), each the fastest of the "
                "repeats; *with setup* = fit time / n_iter_.",
                "",
                "| n x d | fit time GD / LR | GD n_iter | GD objective gap "
                "| LR objective gap | per iteration / matvec pair | peak extra / X |",
                "|---|---|---:|---:|---:|---|---|",
            ]
            for size in args.gd_sizes.split(","):
                n_rows, n_features = (int(part) for part in size.lower().split("x"))
                print(
                    f"scale: GDLinearRegressor goals on {n_rows} x {n_features}",
                    flush=True,
                )
                lines.append(gd_goals(n_rows, n_features, folder, args))
                print("  " + lines[-1], flush=True)
                for path in folder.iterdir():
                    path.unlink()
            lines.append("")
        elif "goals" not in skip:
            lines += [
                "GDLinearRegressor is not available: its goals were not measured.",
                "",
            ]
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    lines.append(f"Scale run wall time: {time.perf_counter() - started:.0f} s.")
    _write_csv(csv_rows, out / "scale.csv")
    header = ["# gdreg scale benchmark", "", "| | |", "|---|---|"]
    header += [f"| {label} | {value} |" for label, value in environment(notes[0])]
    text = "\n".join(lines)
    (out / "scale.md").write_text("\n".join(header) + "\n\n" + text + "\n")
    print(f"wrote {out / 'scale.md'} and {out / 'scale.csv'}")
    return text


def _write_csv(rows, path):
    import csv

    keys = []
    for row in rows:
        keys += [key for key in row if key not in keys]
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    main()
