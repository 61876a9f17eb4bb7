"""Reported gross margins of carmakers (firm_margins.csv) as public at a scenario's as-of date.

What the Bertrand first-order conditions' implied margins (p - c) / p are matched to when
`market.price_sensitivity = "china_margins"` (`supply.repricing.calibrate_market`). Per firm the row of
the latest reporting period public at the as-of date is used; within one period a vehicle or automotive
margin is preferred to the company's gross margin (which mixes in other businesses, e.g. BYD's electronics).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

import numpy as np

from evlaunch.data import load_table, numeric
from evlaunch.errors import ScenarioError

VEHICLE_TYPES = ("vehicle margin", "automotive gross margin")  # preferred to "company gross margin"


@dataclass(frozen=True)
class ReportedMargin:
    """One firm's reported gross margin (fraction) with the row it comes from."""

    firm: str
    value: float
    period: str
    margin_type: str
    published: str
    source: str


def period_end(period: str) -> tuple[int, int]:
    """(year, last month) a reporting period ends: '2022' -> (2022, 12), '2023Q2' -> (2023, 6),
    'H1 2023' -> (2023, 6); a period it cannot read raises ValueError."""
    text = period.strip()
    if match := re.fullmatch(r"(\d{4})", text):
        return int(match[1]), 12
    if match := re.fullmatch(r"(\d{4})\s*Q([1-4])", text):
        return int(match[1]), 3 * int(match[2])
    if match := re.fullmatch(r"H([12])\s*(\d{4})", text):
        return int(match[2]), 6 * int(match[1])
    raise ValueError(f"unreadable reporting period {period!r}")


def reported_margins(as_of: date, firms: list[str], path: str | None = None) -> dict[str, ReportedMargin]:
    """Each firm's latest reported margin public at `as_of` (module docstring); `path` a user's table.
    A firm with no such row raises a ScenarioError naming market.margin_firms."""
    rows = load_table("firm_margins", as_of, path).rows
    rows = rows[~rows["gap"]]
    values = numeric(rows["value"])
    found = {}
    for firm in firms:
        mine = [(period_end(str(row["period"])), str(row["margin_type"]).startswith(VEHICLE_TYPES), value, row)
                for (_, row), value in zip(rows.iterrows(), values) if row["firm"] == firm and np.isfinite(value)]
        if not mine:
            raise ScenarioError(f"field market.margin_firms: firm {firm!r} has no row in firm_margins.csv public by "
                                f"{as_of.isoformat()}; expected firms with a reported margin by then (or "
                                f"market.price_sensitivity = 'us_elasticity')")
        _, _, value, row = max(mine, key=lambda item: (item[0], item[1]))
        found[firm] = ReportedMargin(firm, float(value), str(row["period"]), str(row["margin_type"]),
                                     str(row["published"])[:10], str(row["source"]))
    return found
