"""The output schema: every per-draw column `simulate` returns (and `draws.parquet` stores), declared once.

Kinds of column, each named by a function of `config.columns` (re-exported here):
- path-level, one per path: `path_column(path, NPV)` -> "own.npv";
- per calendar year: `yearly(path, DELIVERIES, 2026)` -> "own.deliveries.2026";
- per region and calendar year: `regional(path, MARKET_REGION, "large_cities", 2026)`;
- per month: `monthly(path, DELIVERIES_MONTH, "2024-03")` (float32);
- per diversion group (firms, fringe aggregates, 'outside'): `diversion(path, "BYD")`;
- global, one per run: `AWARENESS_MIDPOINT_DRAWN`, ... .
`output_names(scenario, regions, groups)` lists them all in `simulate`'s order.
"""

from __future__ import annotations

from dataclasses import dataclass

from evlaunch.config import columns
from evlaunch.config.columns import (
    diversion,
    diversion_prefix,
    monthly,
    path_column,
    regional,
    yearly,
)
from evlaunch.config.scenario import Scenario
from evlaunch.market.lineup import OTHER_PRODUCTS, Lineup
from evlaunch.supply.repricing import OUTSIDE

__all__ = ["OutputColumn", "PATH_OUTPUTS", "YEARLY_OUTPUTS", "REGIONAL_OUTPUTS", "MONTHLY_OUTPUTS",
           "DIVERSION_OUTPUT", "GLOBAL_OUTPUTS", "output_names", "diversion_group_names", "path_column", "yearly",
           "regional", "monthly", "diversion", "diversion_prefix"]


@dataclass(frozen=True)
class OutputColumn:
    """One kind of output column: its name (the last part of a path's column), unit and meaning."""

    name: str
    unit: str
    meaning: str


PATH_OUTPUTS = (
    OutputColumn(columns.LAUNCH_MONTH_INDEX, "months after the start",
                 "first month on sale (0 = the start month); inf when the car never launches"),
    OutputColumn(columns.MONTHS_LOST, "months", "spent on failed paths before the producing one was taken up"),
    OutputColumn(columns.PATH_FAILED, "0/1", "the path itself failed (whether or not a fallback rescued it)"),
    OutputColumn(columns.OPERATING_PATH, "index", "scenario order of the path that produces; -1 if none"),
    OutputColumn(columns.NPV, "CNY", "net present value at the start, terminal value included"),
    OutputColumn(columns.PEAK_CASH_NEED, "CNY", "largest cumulative cash outflow, undiscounted"),
    OutputColumn(columns.BUDGET_EXCEEDED, "0/1", "the peak cash need exceeds the pledged budget"),
)
# per re-priced 'other' product and calendar year, with `competition.reprice` and `market.fringe` "bertrand":
# `columns.fringe_yearly(path, "other BEV low", 2026)`
FRINGE_OUTPUT = OutputColumn(columns.FRINGE_PRICE_CHANGE, "fraction",
                             "an 'other' product's (fringe's) unit-weighted price change versus no entrant")
# only with Bertrand re-pricing (`competition.reprice = "bertrand"`)
EQUILIBRIUM_OUTPUT = OutputColumn(columns.EQUILIBRIUM_FAILURES, "count",
                                  "price re-solves that did not converge (prices kept)")
YEARLY_OUTPUTS = (
    OutputColumn(columns.ORDERS, "vehicles", "the entrant's orders in the calendar year"),
    OutputColumn(columns.DELIVERIES, "vehicles", "the entrant's deliveries"),
    OutputColumn(columns.REVENUE, "CNY", "the entrant's revenue net of VAT"),
    OutputColumn(columns.SHARE, "fraction", "the entrant's deliveries / new-car sales"),
    OutputColumn(columns.MARKET_TOTAL, "vehicles", "new-car sales of the whole calendar year"),
    OutputColumn(columns.NEV_SHARE, "fraction", "NEV sales / new-car sales"),
    OutputColumn(columns.INCUMBENT_PRICE_CHANGE, "fraction",
                 "named incumbent BEVs' unit-weighted price change versus no entrant"),
)
REGIONAL_OUTPUTS = (
    OutputColumn(columns.DELIVERIES_REGION, "vehicles", "the entrant's deliveries in the region"),
    OutputColumn(columns.MARKET_REGION, "vehicles", "new-car sales in the region"),
    OutputColumn(columns.NEV_SHARE_REGION, "fraction", "NEV sales / new-car sales in the region"),
)
MONTHLY_OUTPUTS = (
    OutputColumn(columns.DELIVERIES_MONTH, "vehicles", "the entrant's deliveries in the month (float32)"),
    OutputColumn(columns.NEV_SHARE_MONTH, "fraction", "NEV share of the month's new-car sales (float32)"),
)
DIVERSION_OUTPUT = OutputColumn(columns.DIVERSION, "fraction",
                                "share of the entrant's buyers in its first 12 months on sale who would "
                                "otherwise have bought from the group (or nothing: 'outside')")
GLOBAL_OUTPUTS = (
    OutputColumn(columns.AWARENESS_MIDPOINT_DRAWN, "months", "the awareness ramp's midpoint used in the draw"),
    OutputColumn(columns.AWARENESS_WIDTH_DRAWN, "months", "the awareness ramp's width used in the draw"),
    OutputColumn(columns.PUBLIC_CHARGERS_END, "charging points", "public charging points at the horizon"),
    OutputColumn(columns.PRICE_COEFFICIENT, "utility per CNY", "calibrated price coefficient alpha (negative)"),
)


def diversion_group_names(lineup: Lineup, launch_groups: list[str]) -> list[str]:
    """The diversion groups in order: the base lineup's groups (each 'other' aggregate its own), the
    launches' groups, then 'outside' (as `supply.repricing.diversion_groups`)."""
    base = [name if name in OTHER_PRODUCTS else group for name, group in zip(lineup.names, lineup.groups)]
    return list(dict.fromkeys([*base, *launch_groups, OUTSIDE]))


def repriced_fringe(scenario: Scenario) -> bool:
    """Whether the 'other' products re-price (`competition.reprice` and `market.fringe` both "bertrand")."""
    return scenario.competition.reprice == "bertrand" and scenario.market.fringe == "bertrand"


def output_names(scenario: Scenario, groups: list[str]) -> list[str]:
    """Every column `simulate` returns for `scenario`, in its order; `groups`: the diversion groups."""
    names: list[str] = []
    for path in scenario.paths:
        names += [path_column(path, output.name) for output in PATH_OUTPUTS]
        if scenario.competition.reprice == "bertrand":
            names.append(path_column(path, EQUILIBRIUM_OUTPUT.name))
        names += [diversion(path, group) for group in groups]
        fringe = [g for g in groups if g in OTHER_PRODUCTS] if repriced_fringe(scenario) else []
        for year in scenario.years:
            names += [yearly(path, output.name, year) for output in YEARLY_OUTPUTS]
            names += [columns.fringe_yearly(path, group, year) for group in fringe]
            names += [regional(path, output.name, region, year) for region in scenario.regions
                      for output in REGIONAL_OUTPUTS]
        names += [monthly(path, output.name, month) for month in scenario.months for output in MONTHLY_OUTPUTS]
    return names + [output.name for output in GLOBAL_OUTPUTS]
