"""Scale benchmark: draws per second, peak memory and identical summaries of whole runs of the reference scenario.

Each case is `evlaunch.runs.runner.run_scenario` (simulation in chunks, the streamed summary, draws.parquet;
no report) in a fresh subprocess, so its peak resident memory (`resource.getrusage`, the driver and,
for dask, its worker processes) is its own. Modes: this process ("local") and a temporary dask
LocalCluster with 1 or 2 worker processes (run times include starting it, ~2-4 s). For every draw
count it checks that all modes wrote byte-identical summary.json files.

    python benchmarks/bench_scale.py                        # 1e3, 1e4 and 1e5 draws, all modes
    python benchmarks/bench_scale.py --draws 1000000 --modes workers=2   # the 1e6 run (~1.5 h on 2 cores)

Peak memory is bounded by the chunk (default 500 draws) and the summary's column reads, not by the
number of draws: compare the RSS column across draw counts.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DRAW_COUNTS = (1_000, 10_000, 100_000)
MODES = ("local", "workers=1", "workers=2")
DEFAULT_SCENARIO = Path(__file__).resolve().parent.parent / "scenarios" / "xiaomi-2023.toml"


def run_case(n_draws: int, mode: str, chunk_size: int | None, scenario: Path, seed: int) -> dict:
    """One measurement, meant to run in a fresh process: timings, peak memory and the summary's hash."""
    import dask

    from evlaunch.runs.runner import DEFAULT_CHUNK, RunOptions, run_scenario

    workers = None if mode == "local" else int(mode.split("=")[1])
    with tempfile.TemporaryDirectory(prefix="evlaunch-bench-") as tmp, dask.config.set({"temporary-directory": tmp}):
        started = time.perf_counter()
        result = run_scenario(scenario, Path(tmp) / "run", RunOptions(
            draws=n_draws, seed=seed, chunk_size=chunk_size or DEFAULT_CHUNK, workers=workers, report=False))
        wall = time.perf_counter() - started
        digest = hashlib.sha256(result.summary_path.read_bytes()).hexdigest()[:16]
        disk = sum(f.stat().st_size for f in (Path(tmp) / "run").rglob("*") if f.is_file())
    kib = 1 if sys.platform != "darwin" else 1 / 1024  # ru_maxrss is KiB on Linux, bytes on macOS
    return {
        "draws": n_draws, "mode": mode, "wall_s": wall, "simulate_s": result.timings["simulate_s"],
        "summarise_s": result.timings["summarise_s"], "draws_per_s": n_draws / wall,
        "driver_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * kib / 1024,
        "worker_rss_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * kib / 1024,
        "disk_mib": disk / 2**20, "summary_sha256": digest,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--draws", type=int, nargs="+", default=list(DRAW_COUNTS), help="draw counts to run")
    parser.add_argument("--chunk-size", type=int, default=None, help="draws per chunk (default: evlaunch's)")
    parser.add_argument("--modes", default=",".join(MODES), help=f"comma-separated subset of {','.join(MODES)}")
    parser.add_argument("--scenario", type=Path, default=DEFAULT_SCENARIO)
    parser.add_argument("--seed", type=int, default=2023)
    parser.add_argument("--case", nargs=2, metavar=("DRAWS", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.case:  # child process: one measurement as JSON on stdout
        print(json.dumps(run_case(int(args.case[0]), args.case[1], args.chunk_size, args.scenario, args.seed)))
        return 0

    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = set(modes) - set(MODES)
    if unknown:
        parser.error(f"unknown mode(s) {sorted(unknown)}; choose from {MODES}")
    header = (f"{'draws':>9} {'mode':<10} {'wall s':>8} {'draws/s':>8} {'summary s':>9} {'driver RSS MiB':>14} "
              f"{'worker RSS MiB':>14} {'disk MiB':>9} {'summary sha256':>16}")
    print(header)
    print("-" * len(header))
    for n in args.draws:
        digests = set()
        for mode in modes:
            command = [sys.executable, os.path.abspath(__file__), "--case", str(n), mode,
                       "--scenario", str(args.scenario), "--seed", str(args.seed)]
            if args.chunk_size is not None:
                command += ["--chunk-size", str(args.chunk_size)]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                print(f"{n:>9} {mode:<10} FAILED:\n{done.stderr[-2000:]}")
                return 1
            r = json.loads(done.stdout.strip().splitlines()[-1])
            digests.add(r["summary_sha256"])
            print(f"{r['draws']:>9} {r['mode']:<10} {r['wall_s']:>8.1f} {r['draws_per_s']:>8.0f} "
                  f"{r['summarise_s']:>9.1f} {r['driver_rss_mib']:>14.0f} {r['worker_rss_mib']:>14.0f} "
                  f"{r['disk_mib']:>9.0f} {r['summary_sha256']:>16}", flush=True)
        if len(modes) > 1:
            print(f"{'':>9} summaries identical across {', '.join(modes)}: {'yes' if len(digests) == 1 else 'NO'}")
            if len(digests) != 1:
                return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
