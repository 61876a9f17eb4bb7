"""Scale benchmark: draws per second against the arithmetic floor, disk per draw, identical summaries.

Part 1 (always): one process, `--draws` draws (default 10,000) of the reference scenario, then of the
FIXED WORKLOAD (benchmarks/fixed_workload/: a frozen copy of the reference scenario as of 2026-12-01 and of
the data tables a scenario can replace, so that later model growth does not move the target). Each runs
`runs.runner.run_scenario` (chunks in this process, the summary, draws.parquet; no report) in a fresh
subprocess and reports seconds and draws/s per phase (prepare, simulate, summarise), MB on disk per 1,000
draws (all of the run directory but the scenario file; and per file), and the FLOOR measured in the same run on this machine:

    floor s/draw = (share evaluations per draw + equilibrium evaluations per draw) x t_eval

* share evaluations per draw = consumer types (regions x types per region) x products x months x (paths + 1:
  the no-entrant market and each path), from the scenario's dimensions (`runs.cost.dimensions`);
* equilibrium evaluations per draw = sum over every `solve_prices` call of the run of markets x zeta-map
  evaluations x types x products, counted on a 200-draw run of the same scenario (the solver's own
  iteration counts);
* t_eval = seconds per type-product evaluation of a fused numba kernel (utility, exp, the type's logit
  denominator, the share and its type-weighted sum), timed here on a market of the scenario's size.

The ratio draws/s : floor draws/s says how far the model is from what the arithmetic allows.

Part 2 (`--modes`, optional): the same run in each mode ("local", "workers=1", "workers=2": a temporary dask
LocalCluster) checking that all write byte-identical summary.json files, with peak memory per mode.

    python benchmarks/bench_scale.py --draws 10000                         # part 1; last line: scale: ...
    python benchmarks/bench_scale.py --draws 1000 --modes local,workers=2  # and the identity check

The last line is exactly
`scale: draws_per_s=<x> floor_draws_per_s=<y> fixed_workload_draws_per_s=<w> mb_per_1000_draws=<z>`
(x, y and z for the current reference scenario, w for the fixed workload; draws/s of the simulation phase).
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

import numba
import numpy as np

HERE = Path(__file__).resolve().parent
DEFAULT_SCENARIO = HERE.parent / "scenarios" / "xiaomi-2023.toml"
FIXED_WORKLOAD = HERE / "fixed_workload" / "xiaomi-2023.toml"
MODES = ("local", "workers=1", "workers=2")
COUNT_DRAWS = 200  # draws of the run that counts equilibrium evaluations


def run_case(n_draws: int, mode: str, chunk_size: int | None, scenario: Path, seed: int) -> dict:
    """One measurement, meant to run in a fresh process: timings, disk, peak memory and the summary's hash."""
    import dask

    from evlaunch.runs.runner import DEFAULT_CHUNK, RunOptions, run_scenario

    workers = None if mode == "local" else int(mode.split("=")[1])
    with tempfile.TemporaryDirectory(prefix="evlaunch-bench-") as tmp, dask.config.set({"temporary-directory": tmp}):
        started = time.perf_counter()
        result = run_scenario(scenario, Path(tmp) / "run", RunOptions(
            draws=n_draws, seed=seed, chunk_size=chunk_size or DEFAULT_CHUNK, workers=workers, report=False))
        wall = time.perf_counter() - started
        digest = hashlib.sha256(result.summary_path.read_bytes()).hexdigest()[:16]
        run_dir = Path(tmp) / "run"
        files = {str(f.relative_to(run_dir)): f.stat().st_size for f in sorted(run_dir.rglob("*"))
                 if f.is_file() and f.name != "scenario.toml"}  # the scenario is the user's input, not output
        disk = sum(files.values())
    kib = 1 if sys.platform != "darwin" else 1 / 1024  # ru_maxrss is KiB on Linux, bytes on macOS
    return {
        "draws": n_draws, "mode": mode, "wall_s": wall, **{k: v for k, v in result.timings.items()},
        "driver_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * kib / 1024,
        "worker_rss_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * kib / 1024,
        "mb_per_1000_draws": disk / 1e6 / n_draws * 1000, "summary_sha256": digest,
        "mb_per_1000_draws_by_file": {name: size / 1e6 / n_draws * 1000 for name, size in files.items() if size},
    }


# -- the floor -------------------------------------------------------------------------------------


@numba.njit(cache=False, fastmath=True)  # a bound, not a model result: let the compiler vectorise exp
def _fused_shares(delta, price, alpha, tastes, weights, out):  # pragma: no cover - compiled
    """Shares of J products for T consumer types, summed with the types' weights, in one pass per type:
    u = delta + tastes[t] - alpha[t] * price; s = exp(u) / (1 + sum exp(u)). Returns the outside share."""
    n_types, n_products = tastes.shape
    outside = 0.0
    out[:] = 0.0
    buffer = np.empty(n_products)
    for t in range(n_types):
        total = 1.0
        for j in range(n_products):
            e = np.exp(delta[j] + tastes[t, j] - alpha[t] * price[j])
            buffer[j] = e
            total += e
        w = weights[t] / total
        for j in range(n_products):
            out[j] += w * buffer[j]
        outside += w
    return outside


def seconds_per_evaluation(n_types: int, n_products: int, repeats: int = 20_000) -> float:
    """Best-of-5 seconds per type-product share evaluation of the fused kernel on a [types x products] market."""
    rng = np.random.default_rng(0)
    delta, price = rng.normal(size=n_products), rng.uniform(0.5, 3.0, size=n_products)
    alpha, tastes = rng.uniform(0.5, 2.0, size=n_types), rng.normal(size=(n_types, n_products))
    weights, out = np.full(n_types, 1.0 / n_types), np.empty(n_products)
    _fused_shares(delta, price, alpha, tastes, weights, out)  # compile
    best = np.inf
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(repeats):
            _fused_shares(delta, price, alpha, tastes, weights, out)
        best = min(best, time.perf_counter() - started)
    return best / (repeats * n_types * n_products)


def count_work(scenario: Path, seed: int, n_draws: int = COUNT_DRAWS) -> dict:
    """Per-draw share and equilibrium evaluations (type x product) of `scenario`, meant for a fresh process."""
    from evlaunch.runs import cost, runner, sampling
    from evlaunch.supply import repricing

    model = runner.load_model(scenario)
    dims = cost.dimensions(model)
    types = dims.types * dims.regions
    shares = types * dims.products * dims.months * (dims.paths + 1)
    counted = {"equilibrium": 0}
    solve = repricing.solve_prices

    def counting_solve(problem, **kwargs):
        result = solve(problem, **kwargs)
        products = np.shape(problem.delta)[1]
        counted["equilibrium"] += int(np.sum(result.iterations)) * types * products
        return result

    repricing.solve_prices = counting_solve
    try:
        sampling.simulate_draws(model, seed, 0, n_draws)
    finally:
        repricing.solve_prices = solve
    return {"types": types, "products": dims.products, "months": dims.months, "paths": dims.paths,
            "share_evals": shares, "equilibrium_evals": counted["equilibrium"] / n_draws}


def _child(args: list[str]) -> dict:
    done = subprocess.run([sys.executable, os.path.abspath(__file__), *args], capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        raise SystemExit(f"benchmark case {args} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _phase_rows(label: str, r: dict) -> list[str]:
    rows = []
    for phase in ("prepare_s", "simulate_s", "summarise_s", "total_s"):
        seconds = r.get(phase, float("nan"))
        rate = r["draws"] / seconds if seconds > 0 else float("inf")
        rows.append(f"{label:<16} {phase[:-2]:<10} {seconds:>9.2f} {rate:>10.0f}")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--draws", type=int, default=10_000, help="draws per run (default 10,000)")
    parser.add_argument("--chunk-size", type=int, default=None, help="draws per chunk (default: evlaunch's)")
    parser.add_argument("--modes", default="", help=f"also compare modes (comma-separated subset of {','.join(MODES)})")
    parser.add_argument("--scenario", type=Path, default=DEFAULT_SCENARIO)
    parser.add_argument("--seed", type=int, default=2023)
    parser.add_argument("--case", nargs=2, metavar=("DRAWS", "MODE"), help=argparse.SUPPRESS)
    parser.add_argument("--count", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    common = ["--scenario", str(args.scenario), "--seed", str(args.seed)]
    if args.chunk_size is not None:
        common += ["--chunk-size", str(args.chunk_size)]

    if args.case:  # child process: one measurement as JSON on stdout
        print(json.dumps(run_case(int(args.case[0]), args.case[1], args.chunk_size, args.scenario, args.seed)))
        return 0
    if args.count:
        print(json.dumps(count_work(args.scenario, args.seed)))
        return 0

    work = _child(["--count", *common])
    t_eval = seconds_per_evaluation(work["types"], work["products"])
    floor_s = (work["share_evals"] + work["equilibrium_evals"]) * t_eval
    reference = _child(["--case", str(args.draws), "local", *common])
    fixed_args = ["--scenario", str(FIXED_WORKLOAD), "--seed", str(args.seed)] + common[4:]
    fixed = _child(["--case", str(args.draws), "local", *fixed_args])
    draws_per_s = args.draws / reference["simulate_s"]
    floor_draws_per_s = 1.0 / floor_s
    print(f"scenario {args.scenario.name}: {work['types']} consumer types x {work['products']} products x "
          f"{work['months']} months x {work['paths'] + 1} markets (no entrant + paths)")
    print(f"per draw: {work['share_evals']:.3g} share evaluations + {work['equilibrium_evals']:.3g} equilibrium "
          f"evaluations (type x product); fused kernel {t_eval * 1e9:.2f} ns each -> floor {floor_s * 1e3:.3f} ms/draw")
    header = f"{'run':<16} {'phase':<10} {'seconds':>9} {'draws/s':>10}"
    print(header)
    print("-" * len(header))
    for line in _phase_rows("reference", reference) + _phase_rows("fixed workload", fixed):
        print(line)
    print(f"{'floor':<16} {'simulate':<10} {args.draws * floor_s:>9.2f} {floor_draws_per_s:>10.0f}")
    print(f"ratio floor / reference simulate: {floor_draws_per_s / draws_per_s:.1f}x; disk "
          f"{reference['mb_per_1000_draws']:.2f} MB per 1,000 draws (reference), "
          f"{fixed['mb_per_1000_draws']:.2f} (fixed workload)")
    print("disk per 1,000 draws (reference): " + ", ".join(
        f"{name} {mb:.2f} MB" for name, mb in reference["mb_per_1000_draws_by_file"].items()))
    if args.modes:
        if not _compare_modes(args, common):
            return 1
    print(f"scale: draws_per_s={draws_per_s:.1f} floor_draws_per_s={floor_draws_per_s:.1f} "
          f"fixed_workload_draws_per_s={args.draws / fixed['simulate_s']:.1f} "
          f"mb_per_1000_draws={reference['mb_per_1000_draws']:.2f}")
    return 0


def _compare_modes(args: argparse.Namespace, common: list[str]) -> bool:
    """Run every mode; print wall time, memory and the summary hash; whether the summaries are identical."""
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = set(modes) - set(MODES)
    if unknown:
        raise SystemExit(f"unknown mode(s) {sorted(unknown)}; choose from {MODES}")
    header = (f"{'draws':>9} {'mode':<10} {'wall s':>8} {'draws/s':>8} {'driver RSS MiB':>14} "
              f"{'worker RSS MiB':>14} {'MB/1000':>8} {'summary sha256':>16}")
    print(header)
    print("-" * len(header))
    digests = set()
    for mode in modes:
        r = _child(["--case", str(args.draws), mode, *common])
        digests.add(r["summary_sha256"])
        print(f"{r['draws']:>9} {r['mode']:<10} {r['wall_s']:>8.1f} {r['draws'] / r['wall_s']:>8.0f} "
              f"{r['driver_rss_mib']:>14.0f} {r['worker_rss_mib']:>14.0f} {r['mb_per_1000_draws']:>8.2f} "
              f"{r['summary_sha256']:>16}", flush=True)
    print(f"summaries identical across {', '.join(modes)}: {'yes' if len(digests) == 1 else 'NO'}")
    return len(digests) == 1


if __name__ == "__main__":
    raise SystemExit(main())
