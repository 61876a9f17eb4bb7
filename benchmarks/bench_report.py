"""Report benchmark: the time to build report.html for a 2,000-draw run, and PAWN ours vs SALib's.

Builds the report of a finished run (by default the reference scenario run now for 2,000 draws, without
its report, into a temporary directory; or `--run DIR` for an existing run directory) several times in
this process and keeps the fastest build (after one warm-up build, which pays one-time imports); then
the same build with SALib's `pawn.analyze` in place of ours; then the report's own PAWN workload (each
path's NPV over its inputs, the recommended path's NPV, launch month and NPV gap) with ours and with
SALib's side by side, checking that both give the same rankings and indices.

    python benchmarks/bench_report.py                 # runs 2,000 draws first (a minute or two)
    python benchmarks/bench_report.py --run runs/xiaomi-2023

The last line reads `report: seconds=<x> pawn_speedup=<y>` (x: the fastest build, wall seconds; y: SALib's
PAWN time over ours on the report's workload).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

DEFAULT_SCENARIO = Path(__file__).resolve().parent.parent / "scenarios" / "xiaomi-2023.toml"


def salib_pawn(x: np.ndarray, y: np.ndarray, slices: int = 10):
    """SALib's PAWN (the reference), shaped like `evlaunch.analysis.pawn.pawn`'s result."""
    from SALib.analyze import pawn

    from evlaunch.analysis.pawn import PawnResult

    problem = {"num_vars": x.shape[1], "names": [f"x{i}" for i in range(x.shape[1])],
               "bounds": [[0.0, 1.0]] * x.shape[1]}
    logging.getLogger("SALib").setLevel(logging.ERROR)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        result = pawn.analyze(problem, x, y, S=slices, print_to_console=False)
    return PawnResult(np.full((slices, x.shape[1]), np.nan), np.asarray(result["median"], float))


@contextlib.contextmanager
def pawn_backend(function):
    """The report's PAWN computed by `function` for the duration of the block."""
    from evlaunch.report import sensitivity

    ours = sensitivity.pawn
    sensitivity.pawn = function
    try:
        yield
    finally:
        sensitivity.pawn = ours


def load_run(out: Path):
    from evlaunch.config.scenario import parse_scenario
    from evlaunch.runs.draw_table import DrawTable
    from evlaunch.runs.runner import _model

    text = (out / "scenario.toml").read_text(encoding="utf-8")
    parse_scenario(text, str(out / "scenario.toml"))  # its own messages for a damaged file
    model = _model(text, str(out / "scenario.toml"), str(out))
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    # the scenario as a run passes it to the report: with quantities resolved from the data (an estimated
    # NEV trend), which the report's sections sample (`section_times` fails on the unresolved one)
    return model.scenario, model, DrawTable.open(out), summary


def time_builds(out: Path, scenario, model, table, summary, repeats: int) -> tuple[float, float, bytes]:
    """Fastest wall and CPU seconds of `repeats` builds (after a warm-up), and the report's bytes."""
    from evlaunch.report.build import write_report

    path = out / "bench-report.html"
    write_report(path, scenario, model, table, summary)
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        write_report(path, scenario, model, table, summary)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    data = path.read_bytes()
    path.unlink()
    return min(walls), min(cpus), data


def section_times(scenario, model, table, summary) -> list[tuple[str, float]]:
    """Wall seconds of each report section in one build."""
    from evlaunch.report.build import CHART_DRAWS, SECTIONS, ReportContext
    from evlaunch.report.draws import ReportDraws

    context = ReportContext(scenario, model, ReportDraws(table, CHART_DRAWS), summary)
    times = []
    for build in SECTIONS:
        started = time.perf_counter()
        build(context)
        times.append((build.__name__, time.perf_counter() - started))
    return times


def pawn_workload(scenario, model, table, summary) -> list[tuple[dict[str, np.ndarray], np.ndarray]]:
    """The (inputs, output) pairs the report ranks: each path's NPV over the inputs that can move it, and the
    recommended path's NPV, launch month and NPV gap to the runner-up over all inputs."""
    from evlaunch.config.scenario import uncertain_parameters
    from evlaunch.report.paths import DRIVER_DRAWS, fallback_chain
    from evlaunch.report.sensitivity import PAWN_DRAWS

    names = [n for n in sorted(uncertain_parameters(scenario)) + list(model.event_names) if n in table.columns]
    chosen = summary["recommended_path"]["name"]
    others = sorted((p for p in summary["paths"] if p != chosen),
                    key=lambda p: -(summary["paths"][p]["npv"]["mean"] or -math.inf))
    work = []
    data = table.to_numpy(names + [f"{p}.npv" for p in scenario.paths], limit=DRIVER_DRAWS)
    inputs = {n: data[n].astype(float) for n in names}
    for path in scenario.paths:
        chain = fallback_chain(scenario, path)
        relevant = {n: v for n, v in inputs.items() if not n.startswith("paths.") or n.split(".")[1] in chain}
        work.append((relevant, data[f"{path}.npv"].astype(float)))
    data = table.to_numpy(names + [f"{chosen}.npv", f"{chosen}.launch_month_index"]
                          + ([f"{others[0]}.npv"] if others else []), limit=PAWN_DRAWS)
    inputs = {n: data[n].astype(float) for n in names}
    work.append((inputs, data[f"{chosen}.npv"].astype(float)))
    work.append((inputs, np.minimum(data[f"{chosen}.launch_month_index"], scenario.horizon_months).astype(float)))
    if others:
        work.append((inputs, (data[f"{chosen}.npv"] - data[f"{others[0]}.npv"]).astype(float)))
    return work


def time_pawn(work, repeats: int) -> tuple[float, list, float, list]:
    from evlaunch.report.sensitivity import pawn_ranking

    def timed(function) -> tuple[float, list]:
        best, rankings = math.inf, []
        with pawn_backend(function):
            for _ in range(repeats):
                started = time.perf_counter()
                rankings = [pawn_ranking(inputs, output) for inputs, output in work]
                best = min(best, time.perf_counter() - started)
        return best, rankings

    from evlaunch.analysis.pawn import pawn

    ours, our_rankings = timed(pawn)
    theirs, their_rankings = timed(salib_pawn)
    return ours, our_rankings, theirs, their_rankings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, help="a finished run directory (default: run the scenario now)")
    parser.add_argument("--scenario", type=Path, default=DEFAULT_SCENARIO)
    parser.add_argument("--draws", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=2023)
    parser.add_argument("--repeats", type=int, default=5, help="builds timed (the fastest is reported)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="evlaunch-bench-report-") as tmp:
        out = args.run
        if out is None:
            from evlaunch.runs.runner import RunOptions, run_scenario

            out = Path(tmp) / "run"
            print(f"running {args.scenario.name} for {args.draws:,} draws (no report) ...", flush=True)
            run_scenario(args.scenario, out, RunOptions(draws=args.draws, seed=args.seed, report=False))
        scenario, model, table, summary = load_run(out)
        print(f"run: {out} ({table.n_rows:,} draws x {len(table.columns):,} columns)")

        wall, cpu, ours_bytes = time_builds(out, scenario, model, table, summary, args.repeats)
        with pawn_backend(salib_pawn):
            salib_wall, salib_cpu, salib_bytes = time_builds(out, scenario, model, table, summary,
                                                             max(1, args.repeats // 2))
        print(f"\n{'report build':<34} {'wall s':>8} {'cpu s':>8}")
        print(f"{f'ours (fastest of {args.repeats})':<34} {wall:>8.3f} {cpu:>8.3f}")
        print(f"{'with SALib PAWN':<34} {salib_wall:>8.3f} {salib_cpu:>8.3f}")
        print(f"{'ratio':<34} {salib_wall / wall:>8.1f} {salib_cpu / cpu:>8.1f}")
        print(f"same report.html bytes: {'yes' if ours_bytes == salib_bytes else 'NO'}")

        print(f"\n{'section (one build)':<34} {'wall s':>8}")
        for name, seconds in section_times(scenario, model, table, summary):
            print(f"{name:<34} {seconds:>8.3f}")

        work = pawn_workload(scenario, model, table, summary)
        ours, our_rankings, theirs, their_rankings = time_pawn(work, max(1, args.repeats // 2))
        same_order = all([n for n, _ in a] == [n for n, _ in b] for a, b in zip(our_rankings, their_rankings))
        gap = max((abs(x - y) for a, b in zip(our_rankings, their_rankings) for (_, x), (_, y) in zip(a, b)),
                  default=0.0)
        calls = sum(len(inputs) + 1 for inputs, _ in work)
        print(f"\nPAWN on the report's workload ({len(work)} outputs, {calls} inputs ranked, 10 slices each)")
        print(f"{'ours':<34} {ours:>8.3f} s")
        print(f"{'SALib pawn.analyze':<34} {theirs:>8.3f} s")
        print(f"{'speed-up':<34} {theirs / ours:>8.1f} x")
        print(f"same rankings: {'yes' if same_order else 'NO'}; largest index difference {gap:.1e}")
    print(f"report: seconds={wall:.3f} pawn_speedup={theirs / ours:.1f}")
    return 0 if same_order and gap <= 1e-12 and ours_bytes == salib_bytes else 1


if __name__ == "__main__":
    raise SystemExit(main())
