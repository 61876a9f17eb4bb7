"""What each bundled table is, and when each of its rows became public.

Every bundled table carries a `source` and a `note` on each row. The model may only use a row
that was public at a scenario's "as of" date, so each table says how a row's publication date
follows from its period (see the data README: monthly registrations appear about five weeks after
the month ends, annual figures in the following January).

Each table also declares its columns' schema once (`Column`: what a cell must be — a month, a year,
a date, a number within a range, one of a few words — and whether it may be empty) and which columns
identify a row (`unique`); the loader applies both to the bundled tables and to a user's own copies.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

import pandas as pd

_MONTHLY_LAG = timedelta(days=35)
FIRST_YEAR, LAST_YEAR = 1990, 2100  # plausible years of a row about China's car market
# A loose period: 'YYYY', 'YYYY-MM' or 'YYYY-MM-DD' at the start of the cell (ASCII digits only).
PERIOD = re.compile(r"\s*([0-9]{4})(?:-([0-9]{2}))?(?:-([0-9]{2}))?", re.ASCII)


def _day(year: int, month: int, day: int) -> date | None:
    """The date, or None when it does not exist (2018-02-30, month 13, year 0)."""
    try:
        return date(year, month, day)
    except (ValueError, OverflowError):
        return None


def _month_end(year: int, month: int) -> date | None:
    if not (1 <= month <= 12 and 1 <= year <= 9998):
        return None
    first_next = date(year + (month == 12), month % 12 + 1, 1)
    return first_next - timedelta(days=1)


def parse_period_start(text: str) -> date | None:
    """First day of the period a loose date string names ('2021-02 (mid)', '2023', '2018-06-12');
    None when it names none or no real day ('2018-02-30', '2023-13')."""
    match = PERIOD.match(str(text))
    if not match:
        return None
    year, month, day = match.group(1), match.group(2), match.group(3)
    return _day(int(year), int(month or 1), int(day or 1))


def parse_period_end(text: str) -> date | None:
    """Last day of the period a loose date string names ('2023' -> 2023-12-31, '2023-06' -> 2023-06-30);
    None when it names none or no real day."""
    match = PERIOD.match(str(text))
    if not match:
        return None
    year, month, day = match.group(1), match.group(2), match.group(3)
    if day:
        return _day(int(year), int(month), int(day))
    if month:
        return _month_end(int(year), int(month))
    return _day(int(year), 12, 31)


def _plus(day: date | None, lag: timedelta) -> date | None:
    return None if day is None or day.year >= 9999 else day + lag


def _monthly(column: str) -> Callable[[pd.Series], date | None]:
    def published(row: pd.Series) -> date | None:
        return _plus(parse_period_end(row[column]), _MONTHLY_LAG)

    return published


def _annual(column: str, lag_days: int = 31) -> Callable[[pd.Series], date | None]:
    def published(row: pd.Series) -> date | None:
        return _plus(parse_period_end(str(row[column])[:4]), timedelta(days=lag_days))

    return published


def _dated(column: str) -> Callable[[pd.Series], date | None]:
    def published(row: pd.Series) -> date | None:
        return parse_period_start(row[column])

    return published


def _fixed(day: date) -> Callable[[pd.Series], date | None]:
    return lambda row: day


def _study_year(row: pd.Series) -> date | None:
    """A study is public from January of the year in its citation, e.g. 'Li, Tong (2017)'."""
    match = re.search(r"\(([0-9]{4})\)", str(row["study"]))
    return _day(int(match.group(1)), 1, 1) if match else None


def _ramp_month(row: pd.Series) -> date | None:
    """A ramp row is public five weeks after its month; rows without a month index (quarters, years,
    calendar months of mature brands) are dated from the period their note names, else conservatively
    at the end of the 24-month window."""
    start = parse_period_start(row["launch_month"])
    index = pd.to_numeric(row["month_index"], errors="coerce")
    if start is not None and pd.notna(index) and math.isfinite(index) and 1 <= index <= 1200:
        month_number = start.month - 1 + int(index) - 1
        return _plus(_month_end(start.year + month_number // 12, month_number % 12 + 1), _MONTHLY_LAG)
    note = str(row["note"])
    calendar_month = re.search(r"([0-9]{4})-(0[1-9]|1[0-2])", note)
    if calendar_month and _month_end(int(calendar_month.group(1)), int(calendar_month.group(2))):
        return _plus(_month_end(int(calendar_month.group(1)), int(calendar_month.group(2))), _MONTHLY_LAG)
    period_year = (re.search(r"(?:yearly|Q[0-9]|quarterly Q[0-9]|Q[0-9]-)\s*([0-9]{4})", note)
                   or re.search(r"([0-9]{4})", note))
    if period_year and _day(int(period_year.group(1)), 12, 31):
        return _plus(_day(int(period_year.group(1)), 12, 31), timedelta(days=31))
    if start is not None:
        return _plus(_month_end(start.year + 2, start.month), _MONTHLY_LAG)
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
class Column:
    """What a table's cells in one column must be.

    `kind`: 'text'; 'month' ('YYYY-MM'); 'year' ('YYYY'); 'date' ('YYYY-MM-DD'); 'period' (a cell that
    starts with 'YYYY', 'YYYY-MM' or 'YYYY-MM-DD', e.g. '2021-02 (mid)'); 'number' (a finite decimal
    number within [low, high], thousands commas allowed); 'integer' (a whole number within [low, high]);
    'choice' (one of `choices`). Years must lie within FIRST_YEAR..LAST_YEAR. An empty cell is allowed
    unless `required`. A number or period column with `remarks` may hold a remark instead of a figure
    or date (read as unknown, e.g. '25914 (BAIC BluePark/BJEV)', '(not found)').
    """

    name: str
    kind: str = "text"
    required: bool = False
    low: float = -math.inf
    high: float = math.inf
    choices: tuple[str, ...] = ()
    remarks: bool = False

    def expectation(self) -> str:
        """What a cell must be, in words (for error messages)."""
        if self.kind == "month":
            return f"a month as YYYY-MM (ASCII digits, month 01-12, year {FIRST_YEAR}..{LAST_YEAR})"
        if self.kind == "year":
            return f"a year as YYYY within {FIRST_YEAR}..{LAST_YEAR}"
        if self.kind == "date":
            return f"a date as YYYY-MM-DD that exists, year {FIRST_YEAR}..{LAST_YEAR}"
        if self.kind == "period":
            return f"a date starting YYYY, YYYY-MM or YYYY-MM-DD that exists, year {FIRST_YEAR}..{LAST_YEAR}"
        if self.kind in ("number", "integer"):
            what = "a whole number" if self.kind == "integer" else "a finite number"
            return f"{what} within [{self.low:g}, {self.high:g}]"
        if self.kind == "choice":
            return f"one of {', '.join(self.choices)}"
        return "text"


def _text(name: str, required: bool = False) -> Column:
    return Column(name, "text", required)


def _count(name: str, high: float = 1e9, low: float = 0.0, remarks: bool = False) -> Column:
    """Vehicles, chargers or other counts: non-negative and finite."""
    return Column(name, "number", low=low, high=high, remarks=remarks)


def _price(name: str) -> Column:
    """CNY per vehicle, as a scenario's product.price."""
    return Column(name, "number", low=1_000.0, high=1e8)


_LINEUP = (
    _text("model", True), _text("brand"), _text("group"), _text("powertrain", True), _text("segment"),
    _text("body"), _price("price_min_cny"), _price("price_max_cny"),
    Column("range_km_cltc", "number", low=10, high=2_000), Column("battery_kwh", "number", low=1, high=300),
    _text("adas"), _text("sales_basis"))
_PRODUCTS = (
    _text("model", True), _price("price_min_cny"), _price("price_max_cny"),
    Column("range_km_cltc", "number", low=10, high=2_000))
COLUMNS: dict[str, tuple[Column, ...]] = {
    "market_annual": (
        Column("year", "year", True), _count("pv_sales"), _count("nev_sales"), _count("nev_pv_sales"),
        _count("bev_sales"), _count("phev_sales"), Column("nev_share", "number", low=0, high=1),
        _text("basis", True)),
    "china_cars_monthly_total": (Column("month", "month", True), _count("all_car_registrations", low=1)),
    "china_bev_monthly_by_model": (
        Column("month", "month", True), _text("brand"), _text("model", True), _count("bev_registrations", 1e8)),
    "policy_timeline": (Column("date", "period", True), _text("instrument", True)),
    "policy_schedule": (
        Column("effective_from", "date", True), Column("effective_to", "date"),
        Column("instrument", "choice", True, choices=(
            "purchase subsidy", "purchase-tax exemption", "rural NEV campaign", "large-city NEV plate privilege")),
        Column("powertrain", "choice", True, choices=("BEV", "PHEV", "NEV")),
        Column("range_min_km", "number", low=0, high=2_000), Column("range_max_km", "number", low=0, high=2_000),
        Column("amount_cny", "number", low=0, high=1e6), Column("relief_fraction", "number", low=0, high=1),
        Column("cap_cny", "number", low=0, high=1e7), _price("price_cap_cny"),
        Column("active", "number", low=0, high=1), Column("announced", "date", True)),
    "charging_points": (
        Column("year", "year", True), _count("public_chargers", low=1), _count("all_chargers_incl_private", low=1)),
    "battery_pack_cost": (
        Column("year", "year", True), Column("usd_per_kwh", "number", low=1, high=10_000),
        Column("china_usd_per_kwh", "number", low=1, high=10_000)),
    "elasticities": (_text("quantity", True), _count("value", low=-math.inf, high=math.inf, remarks=True)),
    "products_2020": (*_PRODUCTS, _count("sales_2020")),
    "products_2023": (*_PRODUCTS, _count("sales_2023")),
    "lineup_2020": (*_LINEUP, _count("sales_2020", 1e8, low=1)),
    "lineup_2023": (*_LINEUP, _count("sales_2023_jan_sep", 1e8, low=1)),
    "firms": (
        _text("firm", True), Column("year", "year", True), _count("total_sales"), _count("nev_sales", remarks=True)),
    "entrants": (_text("entrant", True), Column("date", "period", remarks=True), _text("event", True)),
    "new_brand_ramps": (
        _text("brand", True), Column("launch_month", "month"), Column("month_index", "integer", low=1, high=240),
        _count("deliveries", 1e8), _count("cumulative", 1e9)),
    "new_brand_orders": (_text("brand", True), _count("value", 1e8), Column("date", "period", True)),
    "base_period_prices": (
        _text("lineup", True), _text("model", True), _text("base_period", True), _price("price_cny"),
        _text("in_force")),
    "announced_rivals": (
        _text("rival", True), _text("event", True), Column("date", "period", True), Column("published", "period"),
        Column("powertrain", "choice", choices=("BEV", "PHEV", "EREV", "ICE")), _text("segment"), _text("body"),
        _price("price_min_cny"), _price("price_max_cny"), Column("range_km_cltc", "number", low=10, high=2_000),
        Column("battery_kwh", "number", low=1, high=300)),
}
# Columns that identify a row: no two rows may share them (a repeated row would be counted twice).
UNIQUE: dict[str, tuple[str, ...]] = {
    "market_annual": ("year", "basis"), "china_cars_monthly_total": ("month",),
    "china_bev_monthly_by_model": ("month", "brand", "model"), "charging_points": ("year",),
    "battery_pack_cost": ("year",), "lineup_2020": ("model",), "lineup_2023": ("model",), "firms": ("firm", "year"),
    "new_brand_ramps": ("brand", "launch_month", "month_index"), "announced_rivals": ("rival", "event"),
    "base_period_prices": ("lineup", "model"),
}
# The tables a scenario may replace with its own copy (`[data.tables]`); the lineup is `data.lineup`.
USER_TABLES = ("china_cars_monthly_total", "china_bev_monthly_by_model", "market_annual", "charging_points",
               "battery_pack_cost", "policy_schedule", "firms", "new_brand_ramps")


@dataclass(frozen=True)
class TableInfo:
    """A bundled table: its file, what it holds, its basis, and how its rows' publication dates follow."""

    name: str
    description: str
    published: Callable[[pd.Series], date | None]
    basis: str = ""
    keys: tuple[str, ...] = ()
    package_only: bool = False  # compiled for the package, with no copy in ../shared/data

    @property
    def columns(self) -> tuple[Column, ...]:
        """The schema of the columns the model reads (others are free text)."""
        return COLUMNS.get(self.name, ())

    @property
    def unique(self) -> tuple[str, ...]:
        """Columns no two rows may share (empty: no check)."""
        return UNIQUE.get(self.name, ())


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
                      "announced"), package_only=True),
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
        TableInfo("forecasts_of_the_time", "Published forecasts of China's NEV sales, NEV share and total sales for "
                  "2019-2023 (CAAM, CPCA, MIIT, CATARC, brokers), each with the date it was made",
                  _dated("published"), "each row's own basis (CAAM wholesale, CPCA retail, other); compare on it",
                  keys=("target_year", "quantity", "basis", "forecaster", "published")),
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
        TableInfo("xiaomi_reach", "Xiaomi's consumer reach as public by 2023-10-31: MIUI users, AIoT devices, "
                  "stores, China phone share", _published_or(_dated("as_of")), "company results and analysts' "
                  "shipment shares (see each source)", keys=("quantity", "as_of", "published")),
    ]
})

# Compiled for the package (issue 13: the rivals announced by the reference scenario's date); no shared copy.
CATALOGUE["announced_rivals"] = TableInfo(
    "announced_rivals", "Competitor launches announced or made by 2023-10-31: HIMA (AITO M7 refresh, Luxeed S7, "
    "AITO M9), Jiyue 01, Tesla's Model 3 refresh, Apple's reported car", _published_or(_dated("date")),
    "company announcements and press reports, each row dated by its source's publication", keys=("rival", "event"),
    package_only=True)

# Compiled for the package (issue 12: each lineup model's price in force in its lineup's base period, read from
# the lineup tables' own notes and sources); no shared copy.
CATALOGUE["base_period_prices"] = TableInfo(
    "base_period_prices", "The entry trim's guide price in force for most of each lineup's base period, per "
    "model, as the lineup tables' notes give it (empty where they give none)", _published_or(_dated("published")),
    "lineup_2023.csv / lineup_2020.csv notes and sources", keys=("lineup", "model"), package_only=True)
