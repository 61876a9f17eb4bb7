"""What each bundled table is, and when each of its rows became public.

Every bundled table carries a `source` and a `note` on each row. The model may only use a row
that was public at a scenario's "as of" date, so each table says how a row's publication date
follows from its period (see the data README: monthly registrations appear about five weeks after
the month ends, annual figures in the following January).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

import pandas as pd

_MONTHLY_LAG = timedelta(days=35)


def _month_end(year: int, month: int) -> date:
    first_next = date(year + (month == 12), month % 12 + 1, 1)
    return first_next - timedelta(days=1)


def parse_period_start(text: str) -> date | None:
    """First day of the period a loose date string names ('2021-02 (mid)', '2023', '2018-06-12')."""
    match = re.match(r"\s*(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?", str(text))
    if not match:
        return None
    year, month, day = match.group(1), match.group(2), match.group(3)
    return date(int(year), int(month or 1), int(day or 1))


def parse_period_end(text: str) -> date | None:
    """Last day of the period a loose date string names ('2023' -> 2023-12-31, '2023-06' -> 2023-06-30)."""
    match = re.match(r"\s*(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?", str(text))
    if not match:
        return None
    year, month, day = match.group(1), match.group(2), match.group(3)
    if day:
        return date(int(year), int(month), int(day))
    if month:
        return _month_end(int(year), int(month))
    return date(int(year), 12, 31)


def _monthly(column: str) -> Callable[[pd.Series], date | None]:
    def published(row: pd.Series) -> date | None:
        end = parse_period_end(row[column])
        return None if end is None else end + _MONTHLY_LAG

    return published


def _annual(column: str, lag_days: int = 31) -> Callable[[pd.Series], date | None]:
    def published(row: pd.Series) -> date | None:
        end = parse_period_end(str(row[column])[:4])
        return None if end is None else end + timedelta(days=lag_days)

    return published


def _dated(column: str) -> Callable[[pd.Series], date | None]:
    def published(row: pd.Series) -> date | None:
        return parse_period_start(row[column])

    return published


def _fixed(day: date) -> Callable[[pd.Series], date | None]:
    return lambda row: day


def _study_year(row: pd.Series) -> date | None:
    """A study is public from January of the year in its citation, e.g. 'Li, Tong (2017)'."""
    match = re.search(r"\((\d{4})\)", str(row["study"]))
    return date(int(match.group(1)), 1, 1) if match else None


def _ramp_month(row: pd.Series) -> date | None:
    """A ramp row is public five weeks after its month; rows without a month index (quarters, years,
    calendar months of mature brands) are dated from the period their note names, else conservatively
    at the end of the 24-month window."""
    start = parse_period_start(row["launch_month"])
    index = pd.to_numeric(row["month_index"], errors="coerce")
    if start is not None and pd.notna(index):
        month_number = start.month - 1 + int(index) - 1
        return _month_end(start.year + month_number // 12, month_number % 12 + 1) + _MONTHLY_LAG
    note = str(row["note"])
    calendar_month = re.search(r"(\d{4})-(\d{2})", note)
    if calendar_month:
        return _month_end(int(calendar_month.group(1)), int(calendar_month.group(2))) + _MONTHLY_LAG
    period_year = re.search(r"(?:yearly|Q\d|quarterly Q\d|Q\d-)\s*(\d{4})", note) or re.search(r"(\d{4})", note)
    if period_year:
        return date(int(period_year.group(1)), 12, 31) + timedelta(days=31)
    if start is not None:
        return _month_end(start.year + 2, start.month) + _MONTHLY_LAG
    return None


def _published_or(fallback: Callable[[pd.Series], date | None]) -> Callable[[pd.Series], date | None]:
    """The row's own `published` cell ('2022-08-02', '2019-06 (approx)' -> the month's last day, an upper
    bound), else `fallback` for rows that leave it empty."""
    def published(row: pd.Series) -> date | None:
        text = row.get("published")
        day = None if pd.isna(text) else parse_period_end(str(text))
        return day if day is not None else fallback(row)

    return published


@dataclass(frozen=True)
class TableInfo:
    """A bundled table: its file, what it holds, its basis, and how its rows' publication dates follow."""

    name: str
    description: str
    published: Callable[[pd.Series], date | None]
    basis: str = ""
    keys: tuple[str, ...] = ()


CATALOGUE: dict[str, TableInfo] = {
    info.name: info
    for info in [
        TableInfo("market_annual", "China vehicle and NEV sales by year, 2013-2023",
                  _annual("year"), "CAAM wholesale rows and CPCA retail rows (see 'basis')", keys=("year", "basis")),
        TableInfo("china_cars_monthly_total", "All new passenger-car registrations per month, 2018-01..2023-10",
                  _monthly("month"), "registrations (Open-EV-Charts from CleanTechnica / EV Volumes)", keys=("month",)),
        TableInfo("china_bev_monthly_by_model", "BEV registrations per month by model (top sellers + 'other')",
                  _monthly("month"), "registrations; a model missing from a month was below the top list", keys=("month", "brand", "model")),
        TableInfo("policy_timeline", "Purchase subsidy, purchase-tax exemption, dual credit, entry rules, "
                  "rural campaigns, plate rules, charging plans", _dated("date"), "announcement dates", keys=("date", "jurisdiction", "instrument")),
        TableInfo("policy_schedule", "Purchase subsidy by range band, purchase-tax relief, rural campaigns and plate "
                  "privileges by effective date (derived from policy_timeline)", _dated("announced"),
                  "announcement dates; each row cites its policy_timeline rows", keys=(
                      "effective_from", "effective_to", "instrument", "powertrain", "range_min_km", "range_max_km",
                      "announced")),
        TableInfo("charging_points", "Public and total charging points at year end, 2014-2023",
                  _annual("year"), "year-end stock, EVCIPA/NEA", keys=("year",)),
        TableInfo("battery_pack_cost", "BloombergNEF average battery pack price, US$/kWh, 2013-2023",
                  _annual("year", lag_days=0), "BNEF December survey", keys=("year",)),
        TableInfo("elasticities", "Published effects of subsidies, chargers and prices on EV/car demand",
                  _study_year, "studies in several markets; China own-price elasticity not found", keys=("quantity", "market", "years", "study")),
        TableInfo("products_2020", "First thin list of top models with 2020 sales (superseded by lineup_2020)",
                  _fixed(date(2021, 1, 31)), keys=("model", "brand", "group", "powertrain", "segment", "body")),
        TableInfo("products_2023", "First thin list of top models with 2023 sales (full year: published Jan 2024)",
                  _fixed(date(2024, 1, 31)), keys=("model", "brand", "group", "powertrain", "segment", "body")),
        TableInfo("lineup_2020", "Models on sale in 2020 with prices, range, battery and full-year sales",
                  _fixed(date(2021, 1, 31)), "calibration base of the 2021 scenario", keys=("model", "brand", "group", "powertrain", "segment", "body")),
        TableInfo("lineup_2023", "Models on sale in 2023 with prices, range, battery and Jan-Sep sales",
                  _fixed(date(2023, 10, 31)), "calibration base of the 2023 scenario", keys=("model", "brand", "group", "powertrain", "segment", "body")),
        TableInfo("firms", "Carmakers by year: sales, NEV sales, plants, capacity, utilisation, licence",
                  _annual("year"), keys=("firm", "year")),
        TableInfo("entrants", "What was public about tech companies entering car making", _dated("date"), keys=("entrant", "date", "event")),
        TableInfo("new_brand_ramps", "Monthly deliveries of new EV brands' first 24 months (reference class)",
                  _ramp_month, "whole-brand deliveries", keys=("brand", "backer", "first_model", "segment", "launch_month", "month_index")),
        TableInfo("new_brand_orders", "Launch-order events of new EV brands", _dated("date"), keys=("brand", "model", "event", "date")),
    ]
}

# The new-brand ramp panel's further tables (issue 12): each row's own `published` date where it gives one.
CATALOGUE.update({
    info.name: info
    for info in [
        TableInfo("more_brand_ramps", "More new-brand ramp points: Tesla Model Y (Shanghai) registrations, AITO, "
                  "XPeng and Li Auto quarters, Leapmotor and Neta", _published_or(_ramp_month),
                  "company deliveries, except Model Y rows (domestic registrations; see each note)",
                  keys=("brand", "backer", "first_model", "segment", "launch_month", "month_index", "published")),
        TableInfo("brand_ramps_extra", "More monthly ramp points: XPeng G3, AITO M5, GAC Aion S, Zeekr months 16-24, "
                  "Leapmotor, Neta, Deepal, Avatr, Li Auto month 1", _published_or(_ramp_month),
                  "per-row `basis`: company deliveries, wholesale or registrations",
                  keys=("brand", "backer", "first_model", "segment", "launch_month", "month_index", "basis",
                        "published")),
        TableInfo("launch_orders_extra", "Order counts at launches before 2023-10-31, with deposit terms",
                  _published_or(_dated("date")), "company claims (see each note on deposits)",
                  keys=("brand", "model", "event", "date", "published")),
        TableInfo("firm_margins", "Reported gross margins of Chinese carmakers, 2021-2023",
                  _published_or(_annual("period")), "vehicle margin where reported, else company gross margin",
                  keys=("firm", "period", "margin_type", "published")),
    ]
})
