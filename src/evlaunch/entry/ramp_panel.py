"""One panel of new brands' ramps: monthly deliveries in months 1..24 after the first month on sale.

Three bundled tables give ramp points (`new_brand_ramps`, `more_brand_ramps`, `brand_ramps_extra`) on
different bases. A *ramp* is one brand's launch (brand and launch month: Tesla's Shanghai Model 3 in
2020-01 and Model Y in 2021-01 are two ramps). Month 1 is the launch month of the tables.

Reconciliation rule, month by month (vehicles per month):

1. Each row is put on one basis: company deliveries (rank 0) > wholesale / CPCA factory sales (1) >
   registrations / retail / insurance (2). Rows without a `basis` column are company deliveries unless
   their note says CPCA wholesale or domestic registrations.
2. A month's figure is the best-ranked basis that has one: company deliveries where they exist,
   wholesale where they do not, registrations only where both are missing. Each month keeps its basis.
3. Aggregates of up to a quarter (quarterly rows, "month_index a-b" combined rows) fill the months of
   their span that their own basis lacks: the aggregate minus that basis's known months in the span,
   split in proportion to the months' figures on another basis where every such month has one, else
   evenly. Longer aggregates (half-years, years) are not used: their bases conflict (XPeng 2019:
   16,608 vs 12,755). An aggregate smaller than its own known months is ignored.
4. Months still missing are *imputed* and flagged: between two known months linearly (capped by a
   bound a gap row states, e.g. "below ~3,669"); before the first known month on a straight line from
   zero (m / first * first figure); after the last known month flat at the last figure.

Facts at launch (price, pre-launch orders, capacity) come from the ramp and order tables where they
give them; the tables give no capacity at launch for these brands (firms.csv's capacities are later).
The market at launch is China's NEV sales (CAAM, `market_annual`) in the latest calendar year whose
figure was published before the launch month (the loader's as-of guard): what a forecaster knew then.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from evlaunch.data.catalogue import parse_period_end, parse_period_start
from evlaunch.data.loader import bundled_path, load_table, numeric

RAMP_TABLES = ("new_brand_ramps", "more_brand_ramps", "brand_ramps_extra")
ORDER_TABLES = ("new_brand_orders", "launch_orders_extra")
MARKET_TABLE = "market_annual"
MARKET_BASIS = "CAAM"  # the one basis with a figure for every year
BASES = ("company deliveries", "wholesale", "registrations")
HORIZON = 24
MAX_AGGREGATE_SPAN = 3  # months: a quarter


@dataclass(frozen=True)
class RampPanel:
    """`months`: one row per ramp and month 1..horizon (ramp, brand, month, deliveries, basis, how,
    published); `how` is 'month', 'aggregate' (split from a quarter or combined row) or 'imputed'.
    `ramps`: one row per ramp, indexed by ramp label, with launch month, first model, price at
    launch (CNY, low end of the range), pre-launch orders, the market at launch (`market_at_launch`,
    NEV sales per year, and `market_year`, NaN when no year was public), months known in 1..12 and 1..24, months
    imputed in 1..12, the last known month and the first-12-month cumulative deliveries."""

    months: pd.DataFrame
    ramps: pd.DataFrame

    def observed(self, ramp: str) -> pd.DataFrame:
        """A ramp's months with a figure from the tables (not imputed): month, deliveries."""
        rows = self.months[(self.months["ramp"] == ramp) & (self.months["how"] != "imputed")]
        return rows[["month", "deliveries"]].reset_index(drop=True)


@dataclass(frozen=True)
class Eligibility:
    """Which ramps can be scored: at least `min_known` of months 1..12 known from the tables, data up
    to month `min_last` or later (AITO stops at month 11; its month 12 is imputed flat), and at least
    `min_single` single-month figures (Li Auto L9 has only quarterly brand totals, Li ONE included)."""

    min_known: int = 8
    min_last: int = 11
    min_single: int = 3


def eligible_ramps(panel: RampPanel, rule: Eligibility = Eligibility()) -> tuple[list[str], dict[str, str]]:
    """Ramps that can be scored, and the others with the reason."""
    keep, excluded = [], {}
    for ramp, row in panel.ramps.iterrows():
        singles = int(((panel.months["ramp"] == ramp) & (panel.months["how"] == "month")).sum())
        if row["known_1_12"] < rule.min_known:
            excluded[ramp] = f"{row['known_1_12']} of months 1-12 known (< {rule.min_known})"
        elif row["last_known"] < rule.min_last:
            excluded[ramp] = f"data end at month {row['last_known']} (< {rule.min_last})"
        elif singles < rule.min_single:
            excluded[ramp] = (f"{singles} single-month figures (< {rule.min_single}; quarterly brand totals "
                              "only)")
        else:
            keep.append(str(ramp))
    return keep, excluded


def classify_basis(basis: object, note: object) -> str:
    """One of BASES for a row: from its `basis` cell where the table has one, else from its note."""
    text = "" if pd.isna(basis) else str(basis).lower()
    if text:
        if any(word in text for word in ("registration", "retail", "insur")):
            return "registrations"
        if "wholesale" in text:
            return "wholesale"
        return "company deliveries"
    remark = "" if pd.isna(note) else str(note).lower().strip()
    if remark.startswith("cpca wholesale"):
        return "wholesale"
    if remark.startswith("domestic registrations"):
        return "registrations"
    return "company deliveries"


def _launch(text: object) -> str | None:
    match = re.match(r"\s*(\d{4})-(\d{2})", "" if pd.isna(text) else str(text))
    return f"{match.group(1)}-{match.group(2)}" if match else None


def _month_number(launch: str, year: int, month: int) -> int:
    start = date.fromisoformat(launch + "-01")
    return (year - start.year) * 12 + month - start.month + 1


def span_of(launch: str, month_index: float, note: object) -> tuple[int, int] | None:
    """Months (first, last) since launch a row covers: its month index, else a 'month_index a-b' or
    'months a-b' in its note, else a 'Q<n> <year>' quarter; None for rows that name no such span."""
    if pd.notna(month_index):
        return int(month_index), int(month_index)
    remark = "" if pd.isna(note) else str(note)
    named = re.search(r"month(?:_index|s)\s+(\d+)\s*-\s*(\d+)", remark)
    if named:
        return int(named.group(1)), int(named.group(2))
    quarter = re.search(r"\bQ([1-4])[ -](\d{4})", remark)
    if quarter:
        first = _month_number(launch, int(quarter.group(2)), 3 * int(quarter.group(1)) - 2)
        return first, first + 2
    return None


def ramp_rows(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The ramp tables' fact rows in one long frame: ramp, brand, first_model, launch, first, last
    (month span), deliveries, basis, published, table, price_text, bound (an upper bound a gap row
    states for its month), order of the tables as given."""
    records = []
    for order, name in enumerate(RAMP_TABLES):
        if name not in tables:
            continue
        frame = tables[name]
        for _, row in frame.iterrows():
            launch = _launch(row.get("launch_month"))
            if launch is None:
                continue
            index = pd.to_numeric(pd.Series([row.get("month_index")]), errors="coerce").iloc[0]
            value = numeric(pd.Series([row.get("deliveries")])).iloc[0]
            bound = None
            if pd.isna(value):
                stated = re.search(r"below ~?([\d,]{3,})", str(row.get("note", "")))
                if stated is None or pd.isna(index):
                    continue
                bound = float(stated.group(1).replace(",", ""))
            span = span_of(launch, index, row.get("note"))
            if span is None or span[0] < 1 or span[1] - span[0] + 1 > MAX_AGGREGATE_SPAN:
                continue
            records.append({"brand": str(row["brand"]), "first_model": str(row.get("first_model", "")),
                            "launch": launch, "first": span[0], "last": span[1],
                            "deliveries": float(value) if pd.notna(value) else np.nan, "bound": bound,
                            "basis": classify_basis(row.get("basis"), row.get("note")),
                            "published": row.get("published"), "table": name, "order": order,
                            "price_text": row.get("price_cny_at_launch")})
    rows = pd.DataFrame.from_records(records, columns=[
        "brand", "first_model", "launch", "first", "last", "deliveries", "bound", "basis", "published", "table",
        "order", "price_text"])
    rows["ramp"] = _labels(rows)
    return rows


def _labels(rows: pd.DataFrame) -> pd.Series:
    """A ramp's label: the brand; a brand's later launches add their first model ('Tesla China Model Y')."""
    earliest = rows.groupby("brand")["launch"].transform("min")
    model = rows["first_model"].str.replace(r"\s*\(.*$", "", regex=True).str.split("/").str[0].str.strip()
    return np.where(rows["launch"] == earliest, rows["brand"], rows["brand"] + " " + model)


def _split(total: float, months: list[int], weights: list[float] | None) -> dict[int, float]:
    if weights is not None and all(w > 0 for w in weights):
        share = np.asarray(weights, float) / float(np.sum(weights))
    else:
        share = np.full(len(months), 1.0 / len(months))
    return {m: float(total * s) for m, s in zip(months, share)}


def reconcile(rows: pd.DataFrame, horizon: int = HORIZON) -> pd.DataFrame:
    """One ramp's rows (from `ramp_rows`) -> months 1..horizon with deliveries, basis, how, published.

    Applies the module's rule: best basis per month, quarter aggregates fill their own basis's missing
    months, the rest imputed (flagged). A ramp with no figure at all gives an empty frame."""
    per_basis = _figures_by_basis(rows)
    bounds = {int(r["first"]): float(r["bound"]) for _, r in rows[rows["bound"].notna()].iterrows()}
    months = np.arange(1, horizon + 1)
    chosen = _best_basis_per_month(per_basis, months)
    if not chosen:
        return pd.DataFrame(columns=["month", "deliveries", "basis", "how", "published"])
    return pd.DataFrame.from_records(_fill_months(chosen, months, bounds))


def _figures_by_basis(rows: pd.DataFrame) -> dict[str, dict[int, tuple[float, str, object]]]:
    """Per basis, month -> (deliveries, how, published): single-month figures first (earliest table order
    wins), then each quarter aggregate's residual split over its basis's missing months, in proportion to
    another basis's figures for those months when all are known and positive, else evenly (a negative
    residual is dropped)."""
    facts = rows[rows["deliveries"].notna()].sort_values(["order"], kind="stable")
    per_basis: dict[str, dict[int, tuple[float, str, object]]] = {b: {} for b in BASES}
    for _, row in facts[facts["first"] == facts["last"]].iterrows():
        per_basis[row["basis"]].setdefault(int(row["first"]), (float(row["deliveries"]), "month", row["published"]))
    for _, row in facts[facts["first"] != facts["last"]].iterrows():
        known = per_basis[row["basis"]]
        span = list(range(int(row["first"]), int(row["last"]) + 1))
        missing = [m for m in span if m not in known]
        residual = float(row["deliveries"]) - sum(known[m][0] for m in span if m in known)
        if not missing or residual < 0:
            continue
        others = [next((per_basis[b][m][0] for b in BASES if b != row["basis"] and m in per_basis[b]), None)
                  for m in missing]
        weights = None if any(w is None for w in others) else [w for w in others if w is not None]
        for m, value in _split(residual, missing, weights).items():
            known[m] = (value, "aggregate", row["published"])
    return per_basis


def _best_basis_per_month(per_basis: dict[str, dict[int, tuple[float, str, object]]],
                          months: np.ndarray) -> dict[int, tuple[float, str, str, object]]:
    """Month -> (deliveries, basis, how, published) from the best basis (BASES order) that has the month."""
    chosen = {}
    for m in months:
        for basis in BASES:
            if m in per_basis[basis]:
                value, how, published = per_basis[basis][m]
                chosen[int(m)] = (value, basis, how, published)
                break
    return chosen


def _fill_months(chosen: dict[int, tuple[float, str, str, object]], months: np.ndarray,
                 bounds: dict[int, float]) -> list[dict[str, object]]:
    """One record per month: the chosen figure, else imputed (linear from zero before the first known
    month, flat after the last, interpolated between) and capped by any stated upper bound."""
    known_months = np.array(sorted(chosen))
    known_values = np.array([chosen[m][0] for m in known_months])
    records = []
    for m in months:
        if m in chosen:
            value, basis, how, published = chosen[int(m)]
        else:
            if m < known_months[0]:
                value = known_values[0] * m / known_months[0]
            elif m > known_months[-1]:
                value = known_values[-1]
            else:
                value = float(np.interp(m, known_months, known_values))
            value = min(value, bounds.get(int(m), np.inf))
            basis, how, published = "", "imputed", None
        records.append({"month": int(m), "deliveries": float(value), "basis": basis, "how": how,
                        "published": published})
    return records


def _price_low(texts: pd.Series) -> float:
    for text in texts.dropna():
        match = re.search(r"(\d{1,3}(?:,\d{3})+|\d{5,})", str(text))
        if match:
            return float(match.group(1).replace(",", ""))
    return np.nan


def prelaunch_orders(orders: pd.DataFrame, brand: str, first_model: str, launch: str) -> float:
    """Largest order count public by the end of the launch month for the brand's first model (NaN if none)."""
    if orders.empty:
        return np.nan
    end = parse_period_end(launch)
    if end is None:  # no readable launch month: no order count can be dated before it
        return np.nan
    head = brand.split()[0].lower()
    model = re.sub(r"\s*\(.*$", "", first_model).strip().lower()
    hits = orders[orders["brand"].str.lower().str.startswith(head)
                  & orders["model"].str.lower().str.startswith(model)]
    values = [numeric(pd.Series([row["value"]])).iloc[0] for _, row in hits.iterrows()
              if (day := parse_period_start(row["date"])) is not None and day <= end]
    values = [v for v in values if pd.notna(v)]
    return float(max(values)) if values else np.nan


def market_at_launch(market: pd.DataFrame, launch: str) -> tuple[float, float]:
    """(NEV sales in vehicles per year, calendar year) of the latest year in `market` (rows of
    `market_annual` with their `published` dates, CAAM basis) published before the month `launch`
    ('YYYY-MM') starts; (NaN, NaN) if none was."""
    if market.empty:
        return np.nan, np.nan
    start = date.fromisoformat(launch + "-01")
    values = numeric(market["nev_sales"])
    public = market["published"].map(lambda day: day is not None and day < start).astype(bool)
    usable = market[public & values.notna() & market["basis"].astype(str).str.startswith(MARKET_BASIS)]
    if usable.empty:
        return np.nan, np.nan
    latest = usable.loc[pd.to_numeric(usable["year"]).idxmax()]
    return float(values[latest.name]), float(latest["year"])


def assemble_panel(tables: dict[str, pd.DataFrame], orders: pd.DataFrame | None = None,
                   horizon: int = HORIZON, market: pd.DataFrame | None = None) -> RampPanel:
    """The panel from the ramp tables' rows (as `load_table(...).rows`, gap rows included or not) and,
    optionally, the launch-order rows (brand, model, value, date) and the `market_annual` rows (year,
    nev_sales, basis, published) for each ramp's market at launch."""
    rows = ramp_rows(tables)
    market = market if market is not None else pd.DataFrame(columns=["year", "nev_sales", "basis", "published"])
    orders = orders if orders is not None else pd.DataFrame(columns=["brand", "model", "value", "date"])
    months, summary = [], []
    for ramp, group in rows.groupby("ramp", sort=False):
        frame = reconcile(group, horizon)
        if frame.empty:
            continue
        first = group.iloc[0]
        frame.insert(0, "ramp", ramp)
        frame.insert(1, "brand", first["brand"])
        months.append(frame)
        known = frame[frame["how"] != "imputed"]
        head = frame[frame["month"] <= 12]
        market_size, market_year = market_at_launch(market, first["launch"])
        summary.append({
            "ramp": ramp, "brand": first["brand"], "first_model": first["first_model"], "launch": first["launch"],
            "price_at_launch": _price_low(group["price_text"]),
            "prelaunch_orders": prelaunch_orders(orders, first["brand"], first["first_model"], first["launch"]),
            "capacity_at_launch": np.nan, "market_at_launch": market_size, "market_year": market_year,
            "known_1_12": int((known["month"] <= 12).sum()), "known_1_24": len(known),
            "imputed_1_12": int((head["how"] == "imputed").sum()),
            "last_known": int(known["month"].max()),
            "bases": ", ".join(f"{b} {n}" for b, n in known["basis"].value_counts().items()),
            "cum12": float(head["deliveries"].sum()),
        })
    panel_months = pd.concat(months, ignore_index=True) if months else pd.DataFrame(
        columns=["ramp", "brand", "month", "deliveries", "basis", "how", "published"])
    return RampPanel(panel_months, pd.DataFrame(summary).set_index("ramp") if summary else pd.DataFrame())


def panel_sources(paths: Mapping[str, str] | None = None) -> str:
    """The ramp tables the panel reads and their files (a scenario's own where `paths` names one), for messages:
    "table 'new_brand_ramps' (/path/new_brand_ramps.csv), table 'more_brand_ramps' (...), ..."."""
    paths = paths or {}
    return ", ".join(f"table '{name}' ({paths.get(name) or bundled_path(name)})" for name in RAMP_TABLES)


def load_ramp_panel(as_of: date | None = None, horizon: int = HORIZON,
                    paths: Mapping[str, str] | None = None) -> RampPanel:
    """The panel from the bundled tables, with only rows published by `as_of` (all rows if None); `paths`
    may name a scenario's own file for any of the tables (table name -> CSV path), as `load_table` takes."""
    paths = paths or {}
    tables = {}
    for name in RAMP_TABLES:
        frame = load_table(name, as_of, paths.get(name)).rows
        tables[name] = frame[~frame["gap"] | frame["note"].astype(str).str.contains("below", na=False)]
    orders = pd.concat([load_table(name, as_of, paths.get(name)).rows[["brand", "model", "value", "date"]]
                        for name in ORDER_TABLES], ignore_index=True)
    return assemble_panel(tables, orders, horizon, load_table(MARKET_TABLE, as_of, paths.get(MARKET_TABLE)).rows)
