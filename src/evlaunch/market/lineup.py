"""The base-period product set: models on sale with sourced sales, plus 'other' products by powertrain.

Models with a sourced sales figure become individual products. Everything else sold in the base
period goes to three aggregates ('other BEV', 'other PHEV', 'other ICE') so that the market totals
from the monthly series still hold; a powertrain named in `split` gets two, by price band ('other BEV
low' and 'other BEV high', priced by the bands 'other_BEV_low' and 'other_BEV_high'). Unknown prices are filled from the scenario's price bands, which
are named assumptions the Monte Carlo varies; nothing is filled silently.

A model's price is the entry trim's guide price in force for most of the base period (`base_period_prices.csv`,
read from the lineup table's own notes: e.g. the Tesla Model 3 at 229,900 from 2023-01-06, not the refreshed
model's 259,900-295,900 of October 2023), consistently with announced rivals, which enter at their entry prices.
Where that table says the sources give no base-period price, the model's price is unknown and the scenario
states it (`market.missing_price_band.<model>`, the model's name with '_' for anything not a letter or digit);
a model the table does not list takes the lineup's lowest (entry) price.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from evlaunch.data import Table, load_table, numeric
from evlaunch.errors import DataError
from evlaunch.market.history import month_range

FRINGE_POWERTRAINS = ("BEV", "PHEV", "ICE")
FRINGE_BANDS = ("low", "high")
# the 'other' aggregates: one per powertrain, or two per powertrain split by price band (market.fringe_low_share)
OTHER_PRODUCTS = tuple(f"other {p}" for p in FRINGE_POWERTRAINS) + tuple(
    f"other {p} {band}" for p in FRINGE_POWERTRAINS for band in FRINGE_BANDS)
SUMMED_MONTHLY = re.compile(r"sum of \d+ monthly rows")
POWERTRAIN_GROUPS = {"BEV": "BEV", "PHEV": "PHEV", "EREV": "PHEV", "ICE": "ICE", "ICE/HEV": "ICE", "HEV": "ICE"}


@dataclass(frozen=True)
class Lineup:
    """Products of the base period. Prices in CNY (guide price incl. VAT); sales in vehicles/month."""

    names: tuple[str, ...]
    groups: tuple[str, ...]
    powertrains: tuple[str, ...]           # 'BEV', 'PHEV' or 'ICE'
    segments: tuple[str, ...]
    known_price: np.ndarray                # [J] CNY, NaN where the data give no price
    price_band: tuple[str, ...]            # key into market.missing_price_band for unknown prices (segment,
                                           # 'other_X[_band]', or a model's own: price_band_of_model)
    monthly_sales: np.ndarray              # [J] vehicles/month, NaN for the 'other' aggregates
    sales_basis: tuple[str, ...]           # what each sales figure is (and its caveat)
    sources: tuple[str, ...]
    range_km: np.ndarray | None = None     # [J] sourced range (CLTC in lineup_2023), NaN where unknown
    battery_kwh: np.ndarray | None = None  # [J] sourced battery size, NaN where unknown
    bodies: tuple[str, ...] | None = None  # body label ('SUV', 'sedan', 'hatch', ...; 'mixed' for aggregates)
    adas: np.ndarray | None = None         # [J] 1 where the data name an ADAS feature, NaN where unknown

    @property
    def range_band(self) -> tuple[str, ...]:
        """Each product's `dynamics.missing_range_band` key: a listed model's segment label, an 'other'
        aggregate's own band ('other_BEV_low'); `price_band` differs for a model priced by its own assumption."""
        return tuple(band if name in OTHER_PRODUCTS else segment
                     for name, band, segment in zip(self.names, self.price_band, self.segments))

    @property
    def is_nev(self) -> np.ndarray:
        return np.array([p in ("BEV", "PHEV") for p in self.powertrains])

    def index(self, name: str) -> int:
        if name not in self.names:
            raise DataError(f"model {name!r} is not an individual product of the base lineup; "
                            f"individual products: {', '.join(n for n in self.names if n not in OTHER_PRODUCTS)}")
        return self.names.index(name)


def _months_covered(basis: str, default: int) -> int:
    """How many months a lineup sales figure covers, read from its stated basis ('H1' = 6)."""
    if re.search(r"\bH1\b", basis):
        return 6
    match = re.search(r"sum of (\d+) monthly", basis)
    return int(match.group(1)) if match else default


def fringe_names(split: Collection[str] = ()) -> list[str]:
    """The 'other' products: 'other X' per powertrain X, or 'other X low' and 'other X high' for X in `split`."""
    return [name for p in FRINGE_POWERTRAINS
            for name in ([f"other {p} {band}" for band in FRINGE_BANDS] if p in split else [f"other {p}"])]


def build_lineup(table_name_or_path: str, as_of: date, monthly_estimates: list[str],
                 base_months: tuple[str, str], monthly_path: str | None = None,
                 split: Collection[str] = ()) -> Lineup:
    """Read a lineup table (bundled name or user path) and form the base-period products.

    `monthly_estimates` names models without a sales figure whose base-period rate is estimated as the
    mean of their visible monthly BEV registrations in `base_months` (a stated assumption: months in
    which the model was below the top list are unknown, so this overstates slightly). A sales figure the
    table sums from monthly registrations ('sum of 9 monthly rows Jan-Sep 2023') is replaced by the mean
    of the monthly rows public at the as-of date within `base_months`: lineup_2023's sums include
    September rows published in November 2023, after the reference scenario's as-of date. The monthly
    rows come from `monthly_path` (a user's china_bev_monthly_by_model) when given, else the bundled table.
    A listed model's prices must be in order and its base-period sales rate positive.
    """
    table_name, table = _read_lineup_table(table_name_or_path, as_of)
    rows = table.rows[~table.rows["gap"]]
    sales_column = next(c for c in rows.columns if c.startswith("sales_") and c != "sales_basis")
    default_months = 12 if sales_column == "sales_2020" else 9
    sales = numeric(rows[sales_column])
    summed = sales.notna() & rows["sales_basis"].astype(str).str.contains(SUMMED_MONTHLY)
    by_model = None
    if monthly_estimates or summed.any():
        # the loader keeps only the monthly rows published by the as-of date
        by_model = load_table("china_bev_monthly_by_model", as_of, monthly_path).rows
        by_model = by_model[(by_model["month"] >= base_months[0]) & (by_model["month"] <= base_months[1])]
    n_base = len(month_range(*base_months))
    if by_model is not None:
        brands = np.array([str(b).lower() for b in by_model["brand"]], dtype=object)
        models = np.array([str(m).lower() for m in by_model["model"]], dtype=object)
    base_prices = _base_period_prices(table_name, as_of)
    records = []
    for (_, row), units in zip(rows.iterrows(), sales):
        powertrain = POWERTRAIN_GROUPS.get(str(row["powertrain"]).strip())
        if powertrain is None:
            continue
        visible = None if by_model is None else by_model[_same_models(brands, models, str(row["model"]))]
        rated = _base_rate(row, units, visible, monthly_estimates, base_months, n_base, default_months)
        if rated is None:
            continue
        records.append(_product_record(table_name, table.path, row, powertrain, *rated,
                                       base_prices.get(str(row["model"]))))
    for missing in sorted(set(monthly_estimates) - {r[0] for r in records}):
        raise DataError(f"market.estimate_sales_from_monthly names {missing!r}, which is not a {table_name} "
                        f"model without a sales figure")
    for name in fringe_names(split):
        powertrain = name.split()[1]
        records.append((name, "other", powertrain, "mixed", np.nan, name.replace(" ", "_"), np.nan,
                        "derived: market total minus the listed models", "derived from the monthly totals",
                        np.nan, np.nan, "mixed", np.nan))
    columns = list(zip(*records))
    return Lineup(tuple(columns[0]), tuple(columns[1]), tuple(columns[2]), tuple(columns[3]),
                  np.array(columns[4], float), tuple(columns[5]), np.array(columns[6], float),
                  tuple(columns[7]), tuple(columns[8]), np.array(columns[9], float), np.array(columns[10], float),
                  tuple(columns[11]), np.array(columns[12], float))


def _read_lineup_table(table_name_or_path: str, as_of: date) -> tuple[str, Table]:
    """The lineup table's name ('lineup_2023' for a user's CSV, which has its columns) and the table."""
    is_path = table_name_or_path.endswith(".csv")
    table_name = "lineup_2023" if is_path else table_name_or_path
    if table_name not in ("lineup_2023", "lineup_2020"):
        raise DataError(f"data.lineup must be 'lineup_2023', 'lineup_2020' or a path to a CSV with their columns; "
                        f"got {table_name_or_path!r}")
    return table_name, load_table(table_name, as_of, table_name_or_path if is_path else None)


def _base_rate(row: pd.Series, units: float, visible: pd.DataFrame | None, monthly_estimates: list[str],
               base_months: tuple[str, str], n_base: int, default_months: int) -> tuple[float, str] | None:
    """A lineup row's base-period sales rate (vehicles/month) and what it is, or None for a model
    without a sales figure that is not to be estimated from the monthly rows (it joins 'other').

    `units` is the row's sales figure (NaN when absent); `visible` the row's monthly registration rows
    public at the as-of date within `base_months` (None when no monthly rows were read); `n_base` the
    number of base months; `default_months` the months a figure covers when its basis does not say.
    """
    basis = str(row["sales_basis"])
    if not math.isnan(units) and SUMMED_MONTHLY.search(basis) and visible is not None and not visible.empty:
        # the lineup's figure sums monthly rows, some published after the as-of date: use the public ones
        rate = float(numeric(visible["bev_registrations"]).mean())
        basis = (f"mean of the {len(visible)} public monthly registration rows {base_months[0]}..{base_months[1]}"
                 f" (china_bev_monthly_by_model.csv){'' if len(visible) == n_base else '; months below the top list unknown'}"
                 f"; the lineup's '{basis}' includes rows published after the as-of date")
        return rate, basis
    if not math.isnan(units):
        return units / _months_covered(basis, default_months), basis
    if row["model"] in monthly_estimates:
        if visible.empty:
            raise DataError(f"no monthly registrations of {row['model']!r} are public in "
                            f"{base_months[0]}..{base_months[1]} to estimate its sales from")
        rate = float(numeric(visible["bev_registrations"]).mean())
        return rate, (f"assumption: mean of {len(visible)} visible monthly registration rows "
                      f"{base_months[0]}..{base_months[1]} (months below the top list unknown)")
    return None


def _base_period_prices(table_name: str, as_of: date) -> dict[str, float]:
    """Model -> the entry trim's price in force for most of the base period of `table_name`, CNY (NaN where
    the sources give none), from `base_period_prices` rows public at `as_of`."""
    rows = load_table("base_period_prices", as_of).rows
    rows = rows[~rows["gap"] & (rows["lineup"] == table_name)]
    return dict(zip(rows["model"].astype(str), numeric(rows["price_cny"]).astype(float)))


def price_band_of_model(model: str) -> str:
    """The `market.missing_price_band` key of a model whose base-period price the sources lack: its name with
    '_' for every run of characters that are not letters or digits ('BYD Seal' -> 'BYD_Seal')."""
    return re.sub(r"[^0-9A-Za-z]+", "_", model).strip("_")


def _product_record(table_name: str, table_path: str, row: pd.Series, powertrain: str, rate: float,
                    basis: str, base_price: float | None) -> tuple:
    """One listed model as a product record (the Lineup fields in order), after checking that its prices
    are in order and its sales rate (vehicles/month) is positive. The price, CNY, is `base_price` (the entry
    trim's price in force in the base period, `base_period_prices`); NaN there means the sources give none,
    so the model takes its own price band (`price_band_of_model`); None (not listed) the lineup's lowest price."""
    price_min, price_max = numeric(pd.Series([row["price_min_cny"], row["price_max_cny"]]))
    if price_min > price_max or (math.isnan(price_min) and not math.isnan(price_max)):
        raise DataError(f"table {table_name!r}: {table_path}, model {row['model']!r}: got price_min_cny "
                        f"{row['price_min_cny']!r} and price_max_cny {row['price_max_cny']!r}; expected a "
                        f"minimum price no higher than the maximum (or only a minimum)")
    if not (math.isfinite(rate) and rate > 0):
        raise DataError(f"table {table_name!r}: {table_path}, model {row['model']!r}: its base-period sales "
                        f"rate is {rate!r} vehicles/month ({basis}); expected a positive number (remove "
                        f"models that did not sell from the lineup)")
    price = price_min if base_price is None else base_price
    band = price_band_of_model(str(row["model"])) if math.isnan(price) and not math.isnan(price_min) else row["segment"]
    return (row["model"], row["group"], powertrain, row["segment"], price, band,
            rate, basis, row["source"], _number(row.get("range_km_cltc")), _number(row.get("battery_kwh")),
            _text(row.get("body")), 1.0 if _text(row.get("adas")) else np.nan)


def _text(cell: object) -> str:
    """A cell as stripped text ('' when empty)."""
    return "" if cell is None or (isinstance(cell, float) and math.isnan(cell)) else str(cell).strip()


def _number(text: object) -> float:
    """A cell as a number (NaN when empty or not a plain number, e.g. '510/620')."""
    value = pd.to_numeric(str(text).replace(",", "").strip(), errors="coerce") if text is not None else np.nan
    return float(value) if pd.notna(value) else np.nan


def _same_models(brands: np.ndarray, models: np.ndarray, lineup_name: str) -> np.ndarray:
    """Which monthly rows are the lineup's model: monthly rows split brand and model ('Tesla', 'Model 3'),
    lineup rows join them ('Tesla Model 3'); `brands` and `models` are the monthly rows' names, lower-cased."""
    lineup_name = lineup_name.lower()
    return np.array([brand in lineup_name and model in lineup_name for brand, model in zip(brands, models)],
                    dtype=bool)
