"""How the simulation's cost grows with paths, products, consumer types, regions and months: the
coefficients behind `evlaunch.runs.cost` (the estimate `validate` and `run` print before they simulate).

Each case is the reference scenario with one dimension changed, measured in a fresh subprocess:
`simulate` of a small and a larger batch of draws after a warm-up (numba compilation), giving a
fixed cost per `simulate` call (F, seconds: per chunk in a run) and a cost per draw (V, seconds), and
the process's peak resident memory (the base), and the working memory per draw: the growth of the
peak memory numpy allocates within one call (tracemalloc) from the small to the large batch. Times are
CPU seconds of the process (one BLAS thread, as in a run), so they are what an idle core takes even
when the machine is busy with other work. Dimensions:
- paths: copies of the own-licence path (1, 4, 12; the reference has 4 paths of 2-3 stages);
- products: extra scheduled competitor launches (each a copy of the Jiyue 01 entry) on top of the base lineup;
- consumer types: taste types per region (2, 8, 32; the reference has 8) and regions (1, 2, 8);
- months: the horizon (24, 62, 240).
It prints the table, then the growth exponents e (cost ∝ dimension**e, the log-log slope between
the smallest and the largest case of each dimension) as the Python literal `runs/cost.py` holds.
`--limits` also measures a scenario at every schema limit and compares it with the estimate.

    python benchmarks/bench_cost_growth.py [--small 8] [--large 128] [--limits]
"""

from __future__ import annotations

import argparse
import json
import math
import re
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

REFERENCE = Path(__file__).resolve().parent.parent / "scenarios" / "xiaomi-2023.toml"


def with_launches(text: str, extra: int) -> str:
    """`extra` more copies of the scenario's first scheduled launch, each under a name of its own."""
    start = text.index("[[competition.launches]]")
    end = text.find("[[competition.launches]]", start + 1)
    block = text[start:end if end > 0 else text.index("[finance]")]
    copies = "".join(re.sub(r'(?m)^name = "([^"]*)"', rf'name = "\1 copy {k}"', block) for k in range(extra))
    return text.replace("[finance]", copies + "[finance]", 1) if extra else text


def launch_count(text: str) -> int:
    return text.count("[[competition.launches]]")


def with_regions(text: str, count: int) -> str:
    start, end = text.index("[regions.large_cities]"), text.index("[dynamics]")
    regions = "".join(
        f"[regions.r{k}]\nlabel = \"region {k}\"\nweight = {1 / count!r}\nprice_sensitivity = {0.7 + 0.3 * k / count!r}\n"
        f"charging_share = {1 / count!r}\ncharging_growth_extra = 0.0\nplate_utility = 0.0\ncampaign_utility = 0.0\n\n"
        for k in range(count))
    return text[:start] + regions + text[end:]


def with_types(text: str, per_region: int) -> str:
    return re.sub(r"(?m)^types_per_region = \d+", f"types_per_region = {per_region}", text)


def with_horizon(text: str, months: int) -> str:
    return re.sub(r"(?m)^horizon_months = \d+", f"horizon_months = {months}", text)


def with_paths(text: str, count: int, stages: int | None = None) -> str:
    """`count` copies of the own-licence path (named p0, p1, ...), each with `stages` copies of its first
    stage (its own stages if None), replacing the scenario's paths."""
    start, end = text.index("[paths.own]"), text.index("[competition]")
    own = text[start:text.index("[paths.BAIC]")]
    head, stage_text = own[:own.index("[[paths.own.stages]]")], own[own.index("[[paths.own.stages]]"):]
    if stages is not None:
        first = stage_text[:stage_text.index("[[paths.own.stages]]", 1)].replace("under_way = true", "")
        stage_text = first * stages
    blocks = [head.replace("[paths.own]", f"[paths.p{k}]") + stage_text.replace("[[paths.own.stages]]",
                                                                                  f"[[paths.p{k}.stages]]")
              for k in range(count)]
    return text[:start] + "".join(blocks) + text[end:]


def with_shocks(text: str, count: int) -> str:
    start, end = text.index("[supply_shocks.chip_shortage]"), text.index("[regions.")
    block = text[start:end]
    return text[:start] + "".join(block.replace("chip_shortage", f"shock{k}") for k in range(count)) + text[end:]


def at_schema_limits(text: str) -> str:
    """The reference scenario grown to every size limit of the schema: 240 months, 64 types in each of
    8 regions, 12 paths of 12 stages, 50 competitor launches, 10 supply shocks."""
    text = with_regions(with_types(with_horizon(text, 240), 64), 8)
    return with_paths(with_shocks(with_launches(text, 50 - launch_count(text)), 10), 12, 12)


def measure(text: str, small: int, large: int) -> dict[str, float]:
    """Fixed cost per simulate call, cost per draw and peak RSS (MiB) of one scenario, in this process."""
    from threadpoolctl import threadpool_limits

    from evlaunch.config.scenario import parse_scenario
    from evlaunch.runs.cost import dimensions
    from evlaunch.runs.sampling import design, sample_inputs
    from evlaunch.simulation.simulate import prepare, simulate

    model = prepare(parse_scenario(text, "bench"), REFERENCE.parent)
    sampling = design(model.scenario, 1, model.event_names)
    simulate(model, sample_inputs(model.scenario, sampling, 0, 2))  # warm-up (numba compilation, caches)
    seconds, peak_mib = {}, {}
    for n in (small, large):
        inputs = sample_inputs(model.scenario, sampling, 0, n)
        started = time.process_time()
        with threadpool_limits(limits=1, user_api="blas"):  # as a run's chunks are computed
            simulate(model, inputs)
        seconds[n] = time.process_time() - started
        peak_mib[n] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    traced_mib = {}
    tracemalloc.start()  # numpy reports its buffers to tracemalloc: the working memory of one simulate call
    for n in (small, large):
        inputs = sample_inputs(model.scenario, sampling, 0, n)
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        simulate(model, inputs)
        traced_mib[n] = (tracemalloc.get_traced_memory()[1] - before) / 2**20
        del inputs
    tracemalloc.stop()
    per_draw = max((seconds[large] - seconds[small]) / (large - small), 1e-9)
    return {**dimensions(model).as_dict(), "fixed_s": max(seconds[small] - small * per_draw, 1e-6),
            "per_draw_s": per_draw, "rss_mib": peak_mib[large], "base_mib": peak_mib[small],
            "per_draw_mib": max((traced_mib[large] - traced_mib[small]) / (large - small), 1e-4), "draws": large}


def measure_in_subprocess(text: str, small: int, large: int) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".toml", encoding="utf-8", delete=False) as handle:
        handle.write(text)
    try:
        output = subprocess.run([sys.executable, __file__, "--measure", handle.name, "--small", str(small),
                                 "--large", str(large)], check=True, capture_output=True, text=True).stdout
    finally:
        Path(handle.name).unlink()
    return json.loads(output.strip().splitlines()[-1])


def cases(text: str) -> list[tuple[str, str, str]]:
    """(dimension, label, scenario text), smallest case of each dimension first."""
    found = [("paths", f"{n} paths", with_paths(text, n)) for n in (1, 4, 12)]
    found += [("products", f"+{n} launches", with_launches(text, n)) for n in (0, 20, 50 - launch_count(text))]
    found += [("types", f"{n} per region", with_types(text, n)) for n in (2, 8, 32)]
    found += [("regions", f"{n} regions", with_regions(text, n)) for n in (1, 2, 8)]
    found += [("months", f"{n} months", with_horizon(text, n)) for n in (24, 62, 240)]
    return found


DIMENSION_FIELD = {"paths": "paths", "products": "products", "types": "types", "regions": "regions", "months": "months"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=8, help="draws in the small batch")
    parser.add_argument("--large", type=int, default=128, help="draws in the large batch")
    parser.add_argument("--limits", action="store_true", help="also measure a scenario at every schema limit")
    parser.add_argument("--only-limits", action="store_true", help="measure only the scenario at the limits")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # internal: measure one scenario file
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(Path(args.measure).read_text(encoding="utf-8"), args.small, args.large)))
        return
    text = REFERENCE.read_text(encoding="utf-8")
    if args.only_limits:
        limits(text)
        return
    print(f"{'dimension':<10}{'case':<16}{'F s/call':>10}{'V ms/draw':>11}{'peak MiB':>10}")
    results: dict[str, list[dict[str, float]]] = {}
    for dimension, label, variant in cases(text):
        row = measure_in_subprocess(variant, args.small, args.large)
        results.setdefault(dimension, []).append(row)
        print(f"{dimension:<10}{label:<16}{row['fixed_s']:>10.3f}{row['per_draw_s'] * 1e3:>11.2f}{row['rss_mib']:>10.0f}",
              flush=True)
    exponents: dict[str, dict[str, float]] = {"fixed_s": {}, "per_draw_s": {}, "per_draw_mib": {}}
    for dimension, rows in results.items():
        field = DIMENSION_FIELD[dimension]
        first, last = rows[0], rows[-1]
        for quantity in exponents:
            exponents[quantity][field] = round(math.log(last[quantity] / first[quantity])
                                               / math.log(last[field] / first[field]), 2)
    reference = results["paths"][1]
    print("\nreference:", json.dumps({k: reference[k] for k in ("paths", "products", "types", "regions", "months", "fixed_s",
                                                                 "per_draw_s", "base_mib", "per_draw_mib")}))
    print("exponents:", json.dumps(exponents))
    if args.limits:
        limits(text)


def limits(text: str) -> None:
    """Measure the scenario at every schema limit (2 and 4 draws) and compare it with the estimate."""
    from evlaunch.runs.cost import estimate_from_dimensions

    row = measure_in_subprocess(at_schema_limits(text), 2, 4)
    print("limits:", json.dumps(row))
    dims = {k: row[k] for k in ("paths", "products", "types", "regions", "months")}
    for n in (4, 64):
        guess = estimate_from_dimensions(**dims, draws=n, chunk_size=n)
        print(f"limits, {n} draws: measured {row['fixed_s'] + n * row['per_draw_s']:.1f} s and "
              f"{row['base_mib'] + n * row['per_draw_mib']:.0f} MiB; estimated {guess.seconds:.1f} s and "
              f"{guess.memory_bytes / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
