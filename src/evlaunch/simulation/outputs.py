"""The output schema: every per-draw column `simulate` returns (and `draws.parquet` stores), declared once.

Kinds of column, each named by a function of `config.columns` (re-exported here):
- path-level, one per path: `path_column(path, NPV)` -> "own.npv";
- per calendar year: `yearly(path, DELIVERIES, 2026)` -> "own.deliveries.2026";
- per region and calendar year: `regional(path, MARKET_REGION, "large_cities", 2026)`;
- per month: `monthly(path, DELIVERIES_MONTH, "2024-03")` (float32);
- per diversion group (firms, fringe aggregates, 'outside'): `diversion(path, "BYD")`;
- what entry does to buyers and the rivals to the entrant, per calendar year (after the monthly columns):
  `yearly(path, SURPLUS_CHANGE, 2026)`, ...; then per scheduled launch and group (the diversion groups and
  the entrant): `rival_diversion(path, "Jiyue 01", "Tesla")`;
- the order book of each path (`ORDER_BOOK_OUTPUTS`, `ORDER_BOOK_YEARLY`, `ORDER_BOOK_MONTHLY`);
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
           "ORDER_BOOK_OUTPUTS", "ORDER_BOOK_YEARLY", "ORDER_BOOK_MONTHLY", "order_book_names",
           "DIVERSION_OUTPUT", "ENTRY_OUTPUTS", "RIVAL_DIVERSION_OUTPUT", "GLOBAL_OUTPUTS", "output_names",
           "diversion_group_names", "path_column", "yearly",
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
    OutputColumn(columns.BUDGET_EXCEEDED, "0/1", "the peak cumulative cash need exceeds the budget available "
                 "(the pledge's total less what was spent before the start)"),
    OutputColumn(columns.BUDGET_NEEDED, "CNY", "the smallest total budget that covers the peak cash need: peak "
                 "cash need + spent before the start (exceeded exactly when the budget is below it)"),
    OutputColumn(columns.AHEAD_OF_PLEDGE, "0/1", "pacing: the cumulative cash need exceeds the cash paid in by the "
                 "pledge schedule (less what was spent before the start) in some month"),
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
    OutputColumn(columns.GROSS_MARGIN, "fraction", "the entrant's (revenue - cost of goods) / revenue, both net "
                 "of VAT; cost of goods = unit cost + partner fee + variable cost; NaN without deliveries"),
    OutputColumn(columns.ENTRANT_PRICE, "CNY", "the entrant's delivery-weighted guide price incl. VAT; NaN "
                 "without deliveries"),
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
ORDER_BOOK_OUTPUTS = (
    OutputColumn(columns.EXPANSION_ORDERED_MONTH, "months after the start",
                 "month the entrant ordered the next plant phase under the scenario's expansion rule; inf: never"),
    OutputColumn(columns.FIRST_12_MONTHS_DELIVERIES, "vehicles",
                 "deliveries in the first 12 months on sale (fewer months if the horizon ends); 0: never on sale"),
)
ORDER_BOOK_YEARLY = (
    OutputColumn(columns.CANCELLATIONS, "vehicles", "orders cancelled while waiting in the calendar year"),
    OutputColumn(columns.BACKLOG_END, "vehicles", "orders waiting at the year's end (or the horizon's)"),
)
ORDER_BOOK_MONTHLY = (
    OutputColumn(columns.ORDERS_MONTH, "vehicles", "the entrant's orders in the month, those waiting at the "
                 "launch included (float32)"),
    OutputColumn(columns.BACKLOG_MONTH, "vehicles", "orders waiting at the month's end (float32)"),
)
DIVERSION_OUTPUT = OutputColumn(columns.DIVERSION, "fraction",
                                "share of the entrant's buyers in its first 12 months on sale who would "
                                "otherwise have bought from the group (or nothing: 'outside'); the months' "
                                "diversion ratios weighted by their deliveries")
ENTRY_OUTPUTS = (
    OutputColumn(columns.SURPLUS_CHANGE, "CNY",
                 "change in consumer surplus from the entrant's launch in the calendar year: log-sum over consumer "
                 "types and regions, with versus without the entrant (incumbents' prices as they would be without "
                 "it: Bertrand counterfactual, or no entry cut); the incumbents' price response counts for every "
                 "buyer, the entrant's own car only for the buyers whose car is delivered (a cancelled buyer buys "
                 "their second choice)"),
    OutputColumn(columns.ORDER_SHARE, "fraction", "the entrant's orders / new-car buyers' choices (orders basis)"),
    OutputColumn(columns.ORDER_SHARE_WITHOUT_RIVALS, "fraction",
                 "the same had the scheduled competitor launches not come, at the same prices (their buyers "
                 "re-choose as in each consumer type's logit)"),
    OutputColumn(columns.INCUMBENT_PROFIT_CHANGE, "CNY",
                 "change in the re-priced incumbents' (the fringe included) variable profit net of VAT, sum of "
                 "(price - marginal cost) x units, with versus without the entrant (cancelled buyers' second "
                 "choices included); NaN with fixed prices (no costs recovered)"),
    OutputColumn(columns.ENTRANT_VARIABLE_PROFIT, "CNY",
                 "the entrant's revenue less cost of goods, net of VAT (before R&D, opex and capex)"),
    OutputColumn(columns.WELFARE_CHANGE, "CNY",
                 "consumer-surplus change + incumbents' profit change + the entrant's variable profit (taxes and "
                 "subsidies left out)"),
)
RIVAL_DIVERSION_OUTPUT = OutputColumn(columns.RIVAL_DIVERSION, "fraction",
                                      "share of a scheduled launch's buyers in its first 12 months on sale (draws "
                                      "where it happens) who would otherwise have bought from the group, the "
                                      "entrant ('entrant') or nothing ('outside'): second choices")
GLOBAL_OUTPUTS = (
    OutputColumn(columns.AWARENESS_MIDPOINT_DRAWN, "months", "the delivery ramp's midpoint used in the draw "
                 "(production months; the name is kept for the contract)"),
    OutputColumn(columns.AWARENESS_WIDTH_DRAWN, "months", "the delivery ramp's logistic width used in the draw"),
    OutputColumn(columns.AWARENESS_PRIOR_DRAWN, "fraction", "share of potential buyers who consider the car from "
                 "its launch (1 when the scenario sets no prior)"),
    OutputColumn(columns.LAUNCH_ORDERS_DRAWN, "vehicles", "orders waiting at the launch (0 when the scenario sets "
                 "none)"),
    OutputColumn(columns.PUBLIC_CHARGERS_END, "charging points", "public charging points at the horizon"),
    OutputColumn(columns.PRICE_COEFFICIENT, "utility per CNY", "calibrated price coefficient alpha (negative)"),
)


def diversion_group_names(lineup: Lineup, launch_groups: list[str]) -> list[str]:
    """The diversion groups in order: the base lineup's groups (each 'other' aggregate its own), the
    launches' groups, then 'outside' (as `supply.repricing.diversion_groups`)."""
    base = [name if name in OTHER_PRODUCTS else group for name, group in zip(lineup.names, lineup.groups)]
    return list(dict.fromkeys([*base, *launch_groups, OUTSIDE]))


def rival_groups(groups: list[str]) -> list[str]:
    """The groups a scheduled launch's buyers come from: the diversion groups, then the entrant."""
    return [*groups, columns.ENTRANT_GROUP]


def order_book_names(path: str, scenario: Scenario) -> list[str]:
    """A path's order-book columns in `simulate`'s order: path-level, then by year, then by month."""
    names = [path_column(path, output.name) for output in ORDER_BOOK_OUTPUTS]
    names += [yearly(path, output.name, year) for year in scenario.years for output in ORDER_BOOK_YEARLY]
    return names + [monthly(path, output.name, month) for month in scenario.months for output in ORDER_BOOK_MONTHLY]


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
        names += order_book_names(path, scenario)
        fringe = [g for g in groups if g in OTHER_PRODUCTS] if repriced_fringe(scenario) else []
        for year in scenario.years:
            names += [yearly(path, output.name, year) for output in YEARLY_OUTPUTS]
            names += [columns.fringe_yearly(path, group, year) for group in fringe]
            names += [regional(path, output.name, region, year) for region in scenario.regions
                      for output in REGIONAL_OUTPUTS]
        names += [monthly(path, output.name, month) for month in scenario.months for output in MONTHLY_OUTPUTS]
        names += [yearly(path, output.name, year) for year in scenario.years for output in ENTRY_OUTPUTS]
        names += [columns.rival_diversion(path, launch.name, group) for launch in scenario.competition.launches
                  for group in rival_groups(groups)]
    return names + [output.name for output in GLOBAL_OUTPUTS]
