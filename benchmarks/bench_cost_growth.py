"""How the simulation's cost grows with the number of products, consumer types (regions) and months.

Times `simulate` on the same 1,000 draws of the reference scenario, changing one dimension at a time:
- products: extra scheduled competitor launches (each a copy of the Jiyue 01 entry) on top of the base lineup;
- consumer types: taste types per region (1, 4, 8, 16; the reference has 8) and the number of regions
  (1, 2, 4, 8 equal-weight regions);
- months: the horizon.
Prints a table of seconds per 1,000 draws and the growth factor against the smallest case.

    python benchmarks/bench_cost_growth.py [--draws 1000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import re
import time
from pathlib import Path

from evlaunch.config.scenario import parse_scenario
from evlaunch.runs.sampling import sample_draws
from evlaunch.simulation.simulate import prepare, simulate

REFERENCE = Path(__file__).resolve().parent.parent / "scenarios" / "xiaomi-2023.toml"


def with_launches(text: str, extra: int) -> str:
    block = text[text.index("[[competition.launches]]"):text.index("[finance]")]
    return text.replace("[finance]", block * extra + "[finance]", 1) if extra else text


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


def seconds(text: str, draws: int, repeats: int) -> float:
    model = prepare(parse_scenario(text, "bench"), REFERENCE.parent)
    inputs = sample_draws(model, 1, 0, draws)
    simulate(model, inputs)  # warm-up (numba compilation, caches)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        simulate(model, inputs)
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    text = REFERENCE.read_text(encoding="utf-8")
    cases = [("products", f"+{n} launches", with_launches(text, n)) for n in (0, 10, 30)]
    cases += [("taste types", f"{n} per region", with_types(text, n)) for n in (1, 4, 8, 16)]
    cases += [("regions", f"{n} regions", with_regions(text, n)) for n in (1, 2, 4, 8)]
    cases += [("months", f"{n} months", with_horizon(text, n)) for n in (24, 62, 120, 240)]
    print(f"{'dimension':<16}{'case':<16}{'s per 1,000 draws':>20}{'x smallest':>12}")
    smallest: dict[str, float] = {}
    for dimension, label, variant in cases:
        cost = seconds(variant, args.draws, args.repeats) * 1000 / args.draws
        smallest.setdefault(dimension, cost)
        print(f"{dimension:<16}{label:<16}{cost:>20.3f}{cost / smallest[dimension]:>12.2f}")


if __name__ == "__main__":
    main()
