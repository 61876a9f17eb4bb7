"""Facts about the market's past that the model is anchored to, read from the sourced tables.

Only rows public at the scenario's as-of date are used (the loader withholds later ones): the
monthly market size and its seasonality, BEV registrations, the NEV share history, charging points
and the battery pack price.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import pandas as pd

from evlaunch.data import load_table, numeric
from evlaunch.errors import DataError


@dataclass(frozen=True)
class MarketHistory:
    """Sourced history as of a date. Volumes in vehicles per month; prices in US$ per kWh."""

    as_of: date
    monthly_total: dict[str, float]          # all passenger-car registrations by 'YYYY-MM'
    monthly_bev: dict[str, float]            # BEV registrations by 'YYYY-MM' (top models + 'other')
    seasonality: np.ndarray                  # [12] mean ratio of a calendar month to its year's mean
    nev_share_by_year: dict[int, float]      # passenger NEV share of passenger sales, CAAM basis
    phev_to_bev_by_year: dict[int, float]    # PHEV / BEV sales, CAAM basis
    public_chargers_by_year: dict[int, float]
    pack_usd_per_kwh_by_year: dict[int, float]  # China pack price where given, else global average
    paths: dict[str, str] = field(default_factory=dict)  # file each table was read from, by table name
    pv_sales_by_year: dict[int, float] = field(default_factory=dict)  # passenger-vehicle sales, CAAM basis

    def base_month_totals(self, first: str, last: str, series: str = "total") -> np.ndarray:
        """Monthly values between two 'YYYY-MM' months inclusive (error if any month is not public)."""
        values = self.monthly_total if series == "total" else self.monthly_bev
        months = [m for m in sorted(values) if first <= m <= last]
        expected = month_range(first, last)
        missing = sorted(set(expected) - set(months))
        if missing:
            table = "china_cars_monthly_total" if series == "total" else "china_bev_monthly_by_model"
            raise DataError(f"table {table!r}: {self.paths.get(table, table + '.csv')}: no {series} registrations "
                            f"public by {self.as_of} for months {', '.join(missing)} of field market.base_period "
                            f"(monthly figures appear about five weeks after the month); expected every month of "
                            f"the base period")
        return np.array([values[m] for m in expected])

    def nev_log_odds_slope(self, years: int = 4) -> float:
        """Slope per year of log(NEV share / (1 - share)) over the last `years` public years."""
        known = sorted(self.nev_share_by_year.items())[-years:]
        if len(known) < 2:
            raise DataError(f"table 'market_annual': {self.paths.get('market_annual', 'market_annual.csv')}: fewer "
                            f"than two years of NEV share (CAAM rows with pv_sales and nev_pv_sales) are public by "
                            f"{self.as_of}; expected at least two")
        x = np.array([year for year, _ in known], float)
        share = np.array([value for _, value in known])
        return float(np.polyfit(x, np.log(share / (1 - share)), 1)[0])

    def latest(self, series: dict[int, float]) -> tuple[int, float]:
        year = max(series)
        return year, series[year]


def month_range(first: str, last: str) -> list[str]:
    """'YYYY-MM' labels from `first` to `last`, inclusive."""
    year, month = int(first[:4]), int(first[5:7])
    months = []
    while f"{year:04d}-{month:02d}" <= last:
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def load_history(as_of: date, tables: dict[str, str] | None = None) -> MarketHistory:
    """Read the history tables as of a date (optionally from a user's own copies of them)."""
    tables = tables or {}
    totals_table = load_table("china_cars_monthly_total", as_of, tables.get("china_cars_monthly_total"))
    totals = totals_table.rows
    monthly_total = dict(zip(totals["month"], numeric(totals["all_car_registrations"])))
    bev_table = load_table("china_bev_monthly_by_model", as_of, tables.get("china_bev_monthly_by_model"))
    bev = bev_table.rows
    bev = bev.assign(units=numeric(bev["bev_registrations"]))
    monthly_bev = bev.groupby("month")["units"].sum().to_dict()

    frame = np.array([[int(m[:4]), int(m[5:7]), v] for m, v in monthly_total.items()], float)
    seasonality = np.ones(12)
    if len(frame):
        full_years = [y for y in np.unique(frame[:, 0]) if (frame[:, 0] == y).sum() == 12]
        ratios = np.array([frame[frame[:, 0] == y][:, 2] / frame[frame[:, 0] == y][:, 2].mean()
                           for y in full_years])
        if len(ratios):
            months_of = [frame[frame[:, 0] == y][:, 1].astype(int) - 1 for y in full_years]
            seasonality = np.zeros(12)
            for ratio, months in zip(ratios, months_of):
                seasonality[months] += ratio
            seasonality /= len(ratios)

    annual_table = load_table("market_annual", as_of, tables.get("market_annual"))
    annual, annual_path = annual_table.rows, annual_table.path
    caam = annual[annual["basis"].str.startswith("CAAM")]
    nev_share, phev_ratio, pv_sales = _caam_series(caam, annual_path)

    chargers_table = load_table("charging_points", as_of, tables.get("charging_points"))
    chargers = chargers_table.rows
    public = {int(y): v for y, v in zip(chargers["year"], numeric(chargers["public_chargers"])) if not math.isnan(v)}
    packs_table = load_table("battery_pack_cost", as_of, tables.get("battery_pack_cost"))
    packs = packs_table.rows
    pack_price = {}
    for _, row in packs.iterrows():
        china, world = numeric_value(row["china_usd_per_kwh"]), numeric_value(row["usd_per_kwh"])
        if china or world:
            pack_price[int(row["year"])] = china or world
    chargers_path, packs_path = chargers_table.path, packs_table.path
    for name, series, table, path in (("NEV share", nev_share, "market_annual", annual_path),
                                      ("public chargers", public, "charging_points", chargers_path),
                                      ("pack price", pack_price, "battery_pack_cost", packs_path)):
        if not series:
            raise DataError(f"table {table!r}: {path}: no {name} figures are public by {as_of}; expected at least one")
    return MarketHistory(as_of, monthly_total, monthly_bev, seasonality, nev_share, phev_ratio, public, pack_price,
                         {"china_cars_monthly_total": totals_table.path, "china_bev_monthly_by_model": bev_table.path,
                          "market_annual": annual_path, "charging_points": chargers_path}, pv_sales)


def _caam_series(caam: pd.DataFrame, annual_path: str) -> tuple[dict[int, float], dict[int, float], dict[int, float]]:
    """(passenger NEV share, PHEV/BEV ratio, passenger-vehicle sales) by year from the CAAM rows of market_annual."""
    nev_share, phev_ratio, pv_sales = {}, {}, {}
    for _, row in caam.iterrows():
        year = int(row["year"])
        pv, nev_pv = numeric_value(row["pv_sales"]), numeric_value(row["nev_pv_sales"])
        if pv:
            pv_sales[year] = pv
        if pv and nev_pv:
            if nev_pv >= pv:
                raise DataError(f"table 'market_annual': {annual_path}, year {year} ({row['basis']}): got "
                                f"nev_pv_sales {row['nev_pv_sales']!r} and pv_sales {row['pv_sales']!r}; expected "
                                f"passenger NEV sales below all passenger sales")
            nev_share[year] = nev_pv / pv
        bev_units, phev_units = numeric_value(row["bev_sales"]), numeric_value(row["phev_sales"])
        if bev_units and phev_units:
            phev_ratio[year] = phev_units / bev_units
    return nev_share, phev_ratio, pv_sales


def numeric_value(text: object) -> float | None:
    """A single cell as a number, or None when empty/unknown."""
    if text is None:
        return None
    value = pd.to_numeric(str(text).replace(",", "").strip(), errors="coerce")
    return None if pd.isna(value) else float(value)
