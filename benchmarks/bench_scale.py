"""Scale benchmark: draws per second and peak memory of chunked Monte Carlo execution.

For 1e3, 1e4, 1e5 and 1e6 draws (up to --max-draws) it runs the model in this process ("local") and on
a temporary dask LocalCluster with 1 and 2 worker processes, then computes the summary statistics
of the draw table. Each case runs in a fresh subprocess so its peak RSS (`resource.getrusage`) is its
own; `tracemalloc` adds the peak of Python/numpy allocations in the driver. Everything is written to
a temporary directory that is removed afterwards. Cluster run times include starting and closing the
LocalCluster (about 2 s), which dominates small draw counts.

    python benchmarks/bench_scale.py                      # full table (a few minutes on 2 cores)
    python benchmarks/bench_scale.py --max-draws 10000    # quick look

The model comes from `make_chunk_fn(scenario_path, seed)` below: evlaunch's own once
`evlaunch.runner.make_chunk_fn` exists, a synthetic stand-in of similar shape until then.
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

DRAW_COUNTS = (1_000, 10_000, 100_000, 1_000_000)
MODES = ("local", "workers=1", "workers=2")
DEFAULT_SCENARIO = Path(__file__).resolve().parent.parent / "scenarios" / "xiaomi-2023.toml"
HORIZON_MONTHS = 72
PRICE_ITERATIONS = 8  # makes the stand-in cost tens of microseconds per draw, like a small model


def synthetic_chunk(start: int, stop: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Stand-in model: per-draw launch month, 72-month sales ramp and cash path from (seed, draw index).

    Per-draw uniforms come from a splitmix64 hash of the draw index, so any chunking gives the same rows.
    """
    index = np.arange(start, stop, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = index * np.uint64(0x9E3779B97F4A7C15) + np.uint64(seed)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z ^= z >> np.uint64(31)
    u = ((z >> np.uint64(11)).astype(np.float64) + 0.5) / 2.0**53
    delay = 18.0 + 12.0 * u  # months from decision to launch
    months = np.arange(HORIZON_MONTHS, dtype=np.float64)[None, :]
    ramp = 1.0 / (1.0 + np.exp(-(months - delay[:, None] - 6.0) / 2.0))
    sales = 12_000.0 * (0.5 + u)[:, None] * ramp * (months >= delay[:, None])  # cars per month
    price = np.full_like(sales, 250_000.0)
    for _ in range(PRICE_ITERATIONS):  # stand-in for the incumbents' re-pricing fixed point
        price = 0.5 * price + 0.5 * (200_000.0 + 50_000.0 / (1.0 + sales / 10_000.0))
    sales = sales * (250_000.0 / price) ** 0.8
    cash = np.cumsum(sales * 25_000.0 - 4e8, axis=1)  # CNY
    return {
        "launch_month": np.where(u < 0.05, np.inf, delay),
        "sales_total": sales.sum(axis=1),
        "cash_min_cny": cash.min(axis=1),
        "cash_end_cny": cash[:, -1],
        "profitable": cash[:, -1] > 0,
        "share_peak": (sales.max(axis=1) / 1.2e6).astype(np.float32),
    }


# ---------------------------------------------------------------------------------------------------
# HOOK (lead: wire the real model here). `evlaunch.runner.make_chunk_fn(scenario_path, seed)` must
# return a picklable chunk_fn(start, stop) -> dict[str, np.ndarray]; until evlaunch.runner defines it
# the synthetic stand-in above is used and the table's "model" column says so.
# ---------------------------------------------------------------------------------------------------
def make_chunk_fn(scenario_path: Path, seed: int):
    """(chunk_fn, label): the evlaunch model for the scenario if available, else the synthetic one."""
    if importlib.util.find_spec("evlaunch.runner") is not None:
        import evlaunch.runner  # errors inside the runner propagate: a broken model must not look fast

        make_model_chunk_fn = getattr(evlaunch.runner, "make_chunk_fn", None)
        if make_model_chunk_fn is not None:
            return make_model_chunk_fn(scenario_path, seed), f"model:{Path(scenario_path).stem}"
    return functools.partial(synthetic_chunk, seed=seed), "synthetic"


def auto_chunk_size(n_draws: int) -> int:
    """Enough chunks to keep two workers busy, few enough that per-chunk overhead stays small."""
    return int(min(10_000, max(250, n_draws // 16)))


def run_case(n_draws: int, mode: str, chunk_size: int | None, scenario: Path, seed: int) -> dict:
    """One measurement, meant to run in a fresh process: returns timings and peak memory."""
    import dask

    from evlaunch.uncertainty.execution import execute

    chunk_fn, label = make_chunk_fn(scenario, seed)
    workers = None if mode == "local" else int(mode.split("=")[1])
    with tempfile.TemporaryDirectory(prefix="evlaunch-bench-") as tmp, dask.config.set(
        {"temporary-directory": tmp}
    ):
        tracemalloc.start()
        started = time.perf_counter()
        table = execute(
            chunk_fn, n_draws, chunk_size=min(chunk_size or auto_chunk_size(n_draws), n_draws), out_dir=Path(tmp) / "run",
            run_fingerprint=f"bench-{label}-{seed}", workers=workers,
        )
        run_s = time.perf_counter() - started
        started = time.perf_counter()
        table.stats()
        stats_s = time.perf_counter() - started
        _, traced_peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    kib = 1 if sys.platform != "darwin" else 1 / 1024  # ru_maxrss is KiB on Linux, bytes on macOS
    return {
        "model": label,
        "draws": n_draws,
        "mode": mode,
        "run_s": run_s,
        "draws_per_s": n_draws / run_s,
        "stats_s": stats_s,
        "driver_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * kib / 1024,
        "worker_rss_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * kib / 1024,
        "traced_peak_mib": traced_peak / 2**20,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-draws", type=float, default=1e6, help="largest draw count to run (default 1e6)")
    parser.add_argument("--chunk-size", type=int, default=None,
                        help="draws per chunk (default: draws / 16, within 250..10000, so 2 workers share work)")
    parser.add_argument("--modes", default=",".join(MODES), help=f"comma-separated subset of {','.join(MODES)}")
    parser.add_argument("--scenario", type=Path, default=DEFAULT_SCENARIO, help="scenario file for the real model")
    parser.add_argument("--seed", type=int, default=2023)
    parser.add_argument("--case", nargs=2, metavar=("DRAWS", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.case:  # child process: one measurement as JSON on stdout
        result = run_case(int(args.case[0]), args.case[1], args.chunk_size, args.scenario, args.seed)
        print(json.dumps(result))
        return 0

    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = set(modes) - set(MODES)
    if unknown:
        parser.error(f"unknown mode(s) {sorted(unknown)}; choose from {MODES}")
    counts = [n for n in DRAW_COUNTS if n <= args.max_draws] or [int(args.max_draws)]
    header = f"{'model':<12} {'draws':>9} {'mode':<10} {'run s':>8} {'draws/s':>10} {'stats s':>8} " \
             f"{'driver RSS MiB':>14} {'worker RSS MiB':>14} {'traced MiB':>10}"
    print(header)
    print("-" * len(header))
    for n in counts:
        for mode in modes:
            command = [sys.executable, os.path.abspath(__file__), "--case", str(n), mode,
                       "--scenario", str(args.scenario), "--seed", str(args.seed)]
            if args.chunk_size is not None:
                command += ["--chunk-size", str(args.chunk_size)]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                print(f"{'':<12} {n:>9} {mode:<10} FAILED:\n{done.stderr[-2000:]}")
                return 1
            r = json.loads(done.stdout.strip().splitlines()[-1])
            print(f"{r['model']:<12} {r['draws']:>9} {r['mode']:<10} {r['run_s']:>8.2f} {r['draws_per_s']:>10.0f} "
                  f"{r['stats_s']:>8.2f} {r['driver_rss_mib']:>14.0f} {r['worker_rss_mib']:>14.0f} "
                  f"{r['traced_peak_mib']:>10.1f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
