"""Names of the per-draw output columns (`draws.parquet`, `simulate`'s outputs): one function per kind.

The schema — which columns exist, with their units — is declared in `simulation.outputs`; these pure
naming functions sit low in the layers so that every consumer (runs, analysis, report, web, cli) builds
names the same way without importing the simulation. The names are part of the contract (DESIGN.md):
changing one changes `draws.parquet`.
"""

from __future__ import annotations

# path-level outputs, one column per path: `path_column(path, NPV)` -> "own.npv"
LAUNCH_MONTH_INDEX = "launch_month_index"
MONTHS_LOST = "months_lost"
PATH_FAILED = "path_failed"
OPERATING_PATH = "operating_path"
NPV = "npv"
PEAK_CASH_NEED = "peak_cash_need"
BUDGET_EXCEEDED = "budget_exceeded"
BUDGET_NEEDED = "budget_needed"
AHEAD_OF_PLEDGE = "ahead_of_pledge_schedule"
EQUILIBRIUM_FAILURES = "equilibrium_failures"
# the order book (path-level): the month the expansion was ordered, deliveries in the first 12 months on sale
EXPANSION_ORDERED_MONTH = "expansion_ordered_month"
FIRST_12_MONTHS_DELIVERIES = "first_12_months_deliveries"

# per calendar year: `yearly(path, DELIVERIES, 2026)` -> "own.deliveries.2026"
ORDERS = "orders"
DELIVERIES = "deliveries"
REVENUE = "revenue"
SHARE = "share"
MARKET_TOTAL = "market_total"
NEV_SHARE = "nev_share"
INCUMBENT_PRICE_CHANGE = "incumbent_price_change"
GROSS_MARGIN = "gross_margin"
ENTRANT_PRICE = "entrant_price"
FRINGE_PRICE_CHANGE = "fringe_price_change"
CANCELLATIONS = "cancellations"
BACKLOG_END = "backlog_end"

# per region and calendar year: `regional(path, MARKET_REGION, "tier1", 2026)` -> "own.market_region.tier1.2026"
DELIVERIES_REGION = "deliveries_region"
MARKET_REGION = "market_region"
NEV_SHARE_REGION = "nev_share_region"

# per month: `monthly(path, DELIVERIES_MONTH, "2024-03")` -> "own.deliveries_month.2024-03"
DELIVERIES_MONTH = "deliveries_month"
NEV_SHARE_MONTH = "nev_share_month"
ORDERS_MONTH = "orders_month"
BACKLOG_MONTH = "backlog_month"

# per diversion group: `diversion(path, "BYD")` -> "own.diversion.BYD"
DIVERSION = "diversion"

# what entry does to buyers, and the announced rivals to the entrant, per calendar year (after the monthly
# columns): `yearly(path, SURPLUS_CHANGE, 2026)` -> "own.surplus_change.2026"
SURPLUS_CHANGE = "surplus_change"
ORDER_SHARE = "order_share"
ORDER_SHARE_WITHOUT_RIVALS = "order_share_without_rivals"
INCUMBENT_PROFIT_CHANGE = "incumbent_profit_change"
ENTRANT_VARIABLE_PROFIT = "entrant_variable_profit"
WELFARE_CHANGE = "welfare_change"

# per scheduled launch and diversion group: `rival_diversion(path, "Jiyue 01", "Tesla")`
RIVAL_DIVERSION = "rival_diversion"
ENTRANT_GROUP = "entrant"   # the entrant as a group a rival's buyers come from

# global outputs (one column per run, not per path)
AWARENESS_MIDPOINT_DRAWN = "product.awareness_midpoint_drawn"
AWARENESS_WIDTH_DRAWN = "product.awareness_width_drawn"
AWARENESS_PRIOR_DRAWN = "product.awareness_prior_drawn"
LAUNCH_ORDERS_DRAWN = "product.launch_orders_drawn"
PUBLIC_CHARGERS_END = "market.public_chargers.end"
PRICE_COEFFICIENT = "market.price_coefficient"


def path_column(path: str, name: str) -> str:
    """A path-level output, e.g. `path_column("own", NPV)` = "own.npv"."""
    return f"{path}.{name}"


def yearly(path: str, name: str, year: int | str) -> str:
    """A path's output for one calendar year, e.g. "own.deliveries.2026"."""
    return f"{path}.{name}.{year}"


def regional(path: str, name: str, region: str, year: int | str) -> str:
    """A path's output for one region and calendar year, e.g. "own.market_region.tier1.2026"."""
    return f"{path}.{name}.{region}.{year}"


def monthly(path: str, name: str, month: str) -> str:
    """A path's output for one month ('YYYY-MM'), e.g. "own.deliveries_month.2024-03"."""
    return f"{path}.{name}.{month}"


def fringe_yearly(path: str, group: str, year: int | str) -> str:
    """A re-priced 'other' product's price change versus no entrant in a calendar year, e.g.
    "own.fringe_price_change.other BEV low.2026"."""
    return f"{path}.{FRINGE_PRICE_CHANGE}.{group}.{year}"


def diversion(path: str, group: str) -> str:
    """The share of a path's first-year buyers diverted from `group` (or 'outside'), e.g. "own.diversion.BYD"."""
    return f"{path}.{DIVERSION}.{group}"


def rival_diversion(path: str, rival: str, group: str) -> str:
    """The share of a scheduled launch's buyers in its first 12 months on sale who would otherwise have bought
    from `group` (the entrant: ENTRANT_GROUP; nothing: 'outside'), e.g. "own.rival_diversion.Jiyue 01.Tesla"."""
    return f"{path}.{RIVAL_DIVERSION}.{rival}.{group}"


def rival_diversion_prefix(path: str, rival: str) -> str:
    """The prefix shared by a launch's diversion columns on a path ("own.rival_diversion.Jiyue 01.")."""
    return f"{path}.{RIVAL_DIVERSION}.{rival}."


def diversion_prefix(path: str) -> str:
    """The prefix shared by a path's diversion columns ("own.diversion.")."""
    return f"{path}.{DIVERSION}."
