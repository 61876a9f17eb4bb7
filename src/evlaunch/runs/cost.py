"""What a run will cost before it starts: time and peak memory from the scenario's dimensions.

The simulation is vectorised over the draws of a chunk and loops over paths and months, so one
`simulate` call on a chunk of n draws takes about F + V * n seconds: a fixed cost F per call (per
chunk) and a cost V per draw. Both, and the working memory per draw M, grow as powers of the
dimensions d = (paths, products, consumer types per region, regions, months), measured one dimension
at a time by `benchmarks/bench_cost_growth.py` from the reference scenario (`REFERENCE`):

    F(d) = F_ref * prod_i (d_i / ref_i) ** e_F[i]        (same for V and M with their exponents)

    seconds ≈ (chunks * F + draws * V) / workers
    peak memory ≈ BASE_MIB + max(M * chunk size, SUMMARY_MIB)                       (in this process)
                  BASE_MIB + SUMMARY_MIB + workers * (BASE_MIB + M * chunk size)    (--workers N)

products = base lineup + scheduled competitor launches + the entrant; consumer types are per region.
Measured 2026-12-01 on this project's build machine (2 shared cores, AMD EPYC, Linux x86-64) as CPU seconds of one process, i.e. what an idle core takes; a busy machine takes longer.
The estimate matches the reference and the scenario at every schema limit, gives 0.6-1.2x the
measured cost per draw of each one-dimension case, and agrees with benchmarks/bench_scale.py (1e5
draws on 2 workers: ~6 min and ~1.5 GiB estimated, 7.5 min and 1.5 GiB measured). Read it as an
order of magnitude,
meant to warn before minutes or gigabytes are spent, not to schedule. Re-measure with the benchmark
and update the constants below when the model's loop changes.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

__all__ = [
    "MAX_MEMORY_BYTES_WITHOUT_CONFIRMATION",
    "MAX_SECONDS_WITHOUT_CONFIRMATION",
    "CostEstimate",
    "Dimensions",
    "dimensions",
    "estimate",
    "estimate_from_dimensions",
]

MAX_SECONDS_WITHOUT_CONFIRMATION = 600.0  # `run` asks for --yes above 10 minutes ...
MAX_MEMORY_BYTES_WITHOUT_CONFIRMATION = 8 * 2**30  # ... or 8 GiB


@dataclass(frozen=True)
class Dimensions:
    """The sizes that drive a run's cost."""

    paths: int      # entry paths
    products: int   # base lineup + scheduled launches + the entrant
    types: int      # consumer types per region
    regions: int    # regions
    months: int     # horizon

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


# Measured by benchmarks/bench_cost_growth.py on 2026-12-01 on the project's build machine (AMD EPYC, 2 cores
# shared with other jobs; Linux x86-64, Python 3.11, numpy 2, numba 0.6x): CPU seconds of one process with one
# BLAS thread, batches of 8 and 128 draws, working memory traced by tracemalloc.
REFERENCE = Dimensions(paths=4, products=24, types=8, regions=2, months=62)
FIXED_S = 0.25             # F_ref: seconds per simulate call (per chunk)
PER_DRAW_S = 0.0068        # V_ref: seconds per draw (~150 draws/s)
PER_DRAW_MIB = 0.057       # M_ref: working memory per draw of a chunk, MiB
BASE_MIB = 400.0           # interpreter, libraries, data tables and the prepared model (peak RSS, 380-400 MiB)
SUMMARY_MIB = 256.0        # DrawTable's column budget while the summary is built (draw_table.DEFAULT_MEMORY_BUDGET)
# The growth with each dimension alone (log-log slope from its smallest to its largest case: paths 1-12,
# products 24-74, types per region 2-32, regions 1-8, months 24-240):
MEASURED_EXPONENTS = {
    "fixed_s": {"paths": 0.79, "products": 0.16, "types": 0.0, "regions": 0.0, "months": 0.75},
    "per_draw_s": {"paths": 0.77, "products": 0.51, "types": 0.61, "regions": 0.96, "months": 0.78},
    "per_draw_mib": {"paths": 0.07, "products": 0.61, "types": 0.58, "regions": 0.79, "months": 0.35},
}
# Dimensions grown together cost more than the product of their separate growths (more consumer types make
# every path-month's re-pricing dearer, ...). The scenario at every schema limit (12 paths of 12 stages, 73
# products, 64 types in 8 regions, 240 months, 10 shocks) measured F = 2.6 s, V = 4.04 s/draw and 4.6 MiB per
# draw, 1.31x, 1.26x and 1.24x the measured exponents' log-prediction; the exponents used are scaled by these
# factors, so the estimate matches both the reference and that scenario.
JOINT_GROWTH = {"fixed_s": 1.31, "per_draw_s": 1.26, "per_draw_mib": 1.24}
EXPONENTS = {quantity: {name: value * JOINT_GROWTH[quantity] for name, value in measured.items()}
             for quantity, measured in MEASURED_EXPONENTS.items()}


@dataclass(frozen=True)
class CostEstimate:
    """Estimated wall time (s) and peak memory (bytes) of simulating `draws` draws."""

    dimensions: Dimensions
    draws: int
    seconds: float
    memory_bytes: float

    @property
    def needs_confirmation(self) -> bool:
        """Above the thresholds (10 minutes or 8 GiB) a run should be confirmed (`--yes`)."""
        return (self.seconds > MAX_SECONDS_WITHOUT_CONFIRMATION
                or self.memory_bytes > MAX_MEMORY_BYTES_WITHOUT_CONFIRMATION)

    def describe(self) -> str:
        """One line for the user, e.g. "estimated ~3 min and ~0.6 GiB for 2,000 draws (4 paths x ...)"."""
        d = self.dimensions
        return (f"estimated ~{format_seconds(self.seconds)} and ~{self.memory_bytes / 2**30:.1f} GiB for "
                f"{self.draws:,} draws ({d.paths} paths x {d.products} products x {d.types} consumer types x "
                f"{d.regions} regions x {d.months} months)")


def format_seconds(seconds: float) -> str:
    """Rounded for humans: "40 s", "12 min", "3.5 h"."""
    if seconds < 90:
        return f"{max(seconds, 1):.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _scale(quantity: str, dims: Dimensions) -> float:
    factor = 1.0
    for name, exponent in EXPONENTS[quantity].items():
        factor *= (max(getattr(dims, name), 1) / getattr(REFERENCE, name)) ** exponent
    return factor


def estimate_from_dimensions(paths: int, products: int, types: int, regions: int, months: int, *, draws: int,
                             chunk_size: int, workers: int | None = None) -> CostEstimate:
    """The cost of `draws` draws in chunks of `chunk_size` on `workers` processes (None: this one)."""
    dims = Dimensions(int(paths), int(products), int(types), int(regions), int(months))
    parallel = max(1, workers or 1)
    chunk = max(1, min(int(chunk_size), int(draws)))
    chunks = math.ceil(draws / chunk)
    seconds = (chunks * FIXED_S * _scale("fixed_s", dims) + draws * PER_DRAW_S * _scale("per_draw_s", dims)) / parallel
    working_mib = PER_DRAW_MIB * _scale("per_draw_mib", dims) * chunk
    summary_mib = SUMMARY_MIB if draws > chunk else 0.0
    if workers:  # the driver builds the summary; each worker process holds its own libraries, model and chunk
        memory_mib = BASE_MIB + summary_mib + workers * (BASE_MIB + working_mib)
    else:  # simulating, then summarising, in this process
        memory_mib = BASE_MIB + max(working_mib, summary_mib)
    return CostEstimate(dims, int(draws), seconds, memory_mib * 2**20)


def dimensions(model) -> Dimensions:
    """The dimensions of a prepared model (`simulation.simulate.Model`: its scenario and base lineup)."""
    scenario = model.scenario
    return Dimensions(paths=len(scenario.paths),
                      products=len(model.lineup.names) + len(scenario.competition.launches) + 1,
                      types=scenario.market.tastes.types_per_region, regions=len(scenario.regions),
                      months=scenario.horizon_months)


def estimate(model, draws: int, chunk_size: int, workers: int | None = None) -> CostEstimate:
    """The estimated cost of simulating `draws` draws of a prepared model (see the module docstring)."""
    return estimate_from_dimensions(**dimensions(model).as_dict(), draws=draws, chunk_size=chunk_size,
                                    workers=workers)
