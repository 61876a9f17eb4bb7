"""Purchase policy by month, read from the sourced table `policy_schedule.csv` as of the scenario's date.

`policy_schedule.csv` is derived from `policy_timeline.csv` (each row cites the timeline rows and URLs
it comes from; arithmetic is marked "derived"). Its instruments:

- `purchase subsidy`: the central subsidy by powertrain and range band (CNY per vehicle, paid to the
  maker and passed to the buyer: it lowers the buyer's effective price), with a pre-subsidy price cap
  in 2020-2022; it ended 2022-12-31;
- `purchase-tax exemption`: NEVs are relieved of `relief_fraction` of the 10% purchase tax (on the
  price net of VAT), up to `cap_cny` per vehicle;
- `rural NEV campaign` and `large-city NEV plate privilege`: when they are in force (`active`); what
  they are worth to buyers is a scenario assumption by region (see `market.regions`).

Which rule applies in a month (evaluated on the 15th) for a powertrain, as known on the as-of date:

1. only rows announced on or before the as-of date exist for the scenario (the loader withholds the rest);
2. a *rule* is the set of rows sharing instrument, effective window and announcement date; among the
   rules whose window covers the month, the latest announced wins (a later notice supersedes a plan);
3. a month after the as-of date that no known rule covers keeps the last known rule (the one that took
   effect most recently): a rule announced after the as-of date is unknown to the scenario, so the last
   known rule is assumed to continue; a month up to the as-of date that no rule covers has none.

Amounts the sources do not give are empty (unknown, never zero): applying one raises a `DataError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path

import numba as nb
import numpy as np
import pandas as pd

from evlaunch.config.scenario import month_number
from evlaunch.data import load_table, numeric
from evlaunch.errors import DataError

PURCHASE_TAX_RATE = 0.10  # of the price net of VAT (policy_timeline 2014-09-01: "10% vehicle purchase tax")
SUBSIDY = "purchase subsidy"
TAX_EXEMPTION = "purchase-tax exemption"
RURAL_CAMPAIGN = "rural NEV campaign"
PLATE_PRIVILEGE = "large-city NEV plate privilege"
INSTRUMENTS = (SUBSIDY, TAX_EXEMPTION, RURAL_CAMPAIGN, PLATE_PRIVILEGE)
POWERTRAINS = ("BEV", "PHEV", "NEV")
EVALUATION_DAY = 15
CONTINUATION_NOTE = ("A rule announced after the as-of date is unknown to the scenario: where no known rule "
                     "covers a month after the as-of date, the last known rule is assumed to continue.")


def month_day(month: int, day: int = EVALUATION_DAY) -> date:
    """The date a month (months since year 0) is evaluated on."""
    return date(month // 12, month % 12 + 1, day)


@dataclass(frozen=True)
class Rule:
    """Rows of one notice for one instrument and effective window (e.g. the 2021 subsidy by band)."""

    instrument: str
    start: date
    end: date | None                 # inclusive; None = open (no end announced with the rule)
    announced: date
    powertrain: np.ndarray           # [r] 'BEV' | 'PHEV' | 'NEV'
    range_min: np.ndarray            # [r] km, inclusive (NaN = no minimum)
    range_max: np.ndarray            # [r] km, exclusive (NaN = no maximum)
    amount: np.ndarray               # [r] CNY (NaN = unknown)
    relief: np.ndarray               # [r] fraction of the purchase tax waived
    cap: np.ndarray                  # [r] CNY, most relief per vehicle (NaN = no cap)
    price_cap: np.ndarray            # [r] CNY, highest pre-subsidy price that qualifies (NaN = none)
    active: np.ndarray               # [r] 1 in force, 0 not (campaigns, plate privileges)
    sources: tuple[str, ...]
    notes: tuple[str, ...]

    def covers(self, day: date) -> bool:
        return self.start <= day and (self.end is None or day <= self.end)

    def rows_for(self, powertrain: str) -> np.ndarray:
        return (self.powertrain == powertrain) | (self.powertrain == "NEV")

    def describe(self, powertrain: str) -> str:
        """The rule's values for a powertrain in words (for reports)."""
        rows = np.flatnonzero(self.rows_for(powertrain))
        parts = []
        for r in rows:
            if self.instrument == SUBSIDY:
                amount = "unknown" if np.isnan(self.amount[r]) else f"CNY {self.amount[r]:,.0f}"
                band = _band(self.range_min[r], self.range_max[r]) if self.powertrain[r] != "NEV" else ""
                parts.append(f"{band}{': ' if band else ''}{amount}")
            elif self.instrument == TAX_EXEMPTION:
                cap = "" if np.isnan(self.cap[r]) else f" up to CNY {self.cap[r]:,.0f}"
                parts.append(f"{self.relief[r]:.0%} of the tax waived{cap}")
            else:
                parts.append("in force" if self.active[r] >= 0.5 else "not in force")
        price_caps = {float(c) for c in self.price_cap[rows] if not np.isnan(c)}
        text = "; ".join(parts) if parts else "none"
        if price_caps:
            text += f" (only if price ≤ CNY {min(price_caps):,.0f})"
        return text

    @property
    def source(self) -> str:
        return " | ".join(dict.fromkeys(self.sources))


def _band(low: float, high: float) -> str:
    if np.isnan(low) and np.isnan(high):
        return ""
    if np.isnan(high):
        return f"≥{low:.0f} km"
    if np.isnan(low):
        return f"<{high:.0f} km"
    return f"{low:.0f}-{high:.0f} km"


@dataclass(frozen=True)
class AppliedRule:
    """The rule applied to a powertrain in a month, and whether it is assumed to continue past its window."""

    rule: Rule | None
    continued: bool


def _date(text: object, field: str, line: int, path: str) -> date | None:
    text = "" if text is None or (isinstance(text, float) and np.isnan(text)) else str(text).strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise DataError(f"table 'policy_schedule': {path} line {line}, column {field}: got {text!r}; "
                        f"expected a date as YYYY-MM-DD") from None


class PolicySchedule:
    """The policy rules known on an as-of date, with lookups by month, powertrain, price and range."""

    def __init__(self, rows: pd.DataFrame, as_of: date, path: str = "policy_schedule.csv"):
        self.as_of = as_of
        self.path = path
        rows = rows[~rows["gap"]] if "gap" in rows.columns else rows
        rows = rows.reset_index(drop=True)
        starts, ends, announced = [], [], []
        for index, row in rows.iterrows():
            line = int(index) + 2
            instrument = str(row["instrument"]).strip()
            if instrument not in INSTRUMENTS:
                raise DataError(f"table 'policy_schedule': {path} line {line}, column instrument: got {instrument!r}; "
                                f"expected one of {', '.join(INSTRUMENTS)}")
            if str(row["powertrain"]).strip() not in POWERTRAINS:
                raise DataError(f"table 'policy_schedule': {path} line {line}, column powertrain: got "
                                f"{row['powertrain']!r}; expected one of {', '.join(POWERTRAINS)}")
            start = _date(row["effective_from"], "effective_from", line, path)
            when = _date(row["announced"], "announced", line, path)
            if start is None or when is None:
                raise DataError(f"table 'policy_schedule': {path} line {line}: effective_from and announced are "
                                f"required")
            starts.append(start)
            ends.append(_date(row["effective_to"], "effective_to", line, path))
            announced.append(when)
        frame = rows.assign(_start=starts, _end=ends, _announced=announced)
        number = {column: numeric(frame[column]).to_numpy(float) for column in
                  ("range_min_km", "range_max_km", "amount_cny", "relief_fraction", "cap_cny", "price_cap_cny",
                   "active")}
        rules: dict[str, list[Rule]] = {name: [] for name in INSTRUMENTS}
        keys = list(zip(frame["instrument"].str.strip(), frame["_start"], frame["_end"], frame["_announced"]))
        for key in dict.fromkeys(keys):
            members = np.array([k == key for k in keys])
            rules[key[0]].append(Rule(
                key[0], key[1], key[2], key[3], frame["powertrain"].str.strip().to_numpy()[members],
                number["range_min_km"][members], number["range_max_km"][members], number["amount_cny"][members],
                np.nan_to_num(number["relief_fraction"][members], nan=0.0), number["cap_cny"][members],
                number["price_cap_cny"][members], np.nan_to_num(number["active"][members], nan=1.0),
                tuple(frame["source"][members].astype(str)), tuple(frame["note"][members].fillna("").astype(str))))
        self.rules = {name: tuple(items) for name, items in rules.items()}
        self._cache: dict[tuple[str, str, int], AppliedRule] = {}
        self._month_terms: dict[int, MonthTerms] = {}

    # -- which rule applies -------------------------------------------------------------------------
    def applied(self, instrument: str, powertrain: str, month: int) -> AppliedRule:
        """The rule in force for `powertrain` ('BEV' or 'PHEV') in `month` (months since year 0)."""
        key = (instrument, powertrain, int(month))
        if key not in self._cache:
            day = month_day(int(month))
            candidates = [rule for rule in self.rules[instrument] if rule.rows_for(powertrain).any()]
            covering = [rule for rule in candidates if rule.covers(day)]
            if covering:
                chosen = AppliedRule(max(covering, key=lambda r: (r.announced, r.start)), False)
            elif day > self.as_of:
                started = [rule for rule in candidates if rule.start <= day]
                chosen = AppliedRule(max(started, key=lambda r: (r.start, r.announced)), True) if started \
                    else AppliedRule(None, False)
            else:
                chosen = AppliedRule(None, False)
            self._cache[key] = chosen
        return self._cache[key]

    def active(self, instrument: str, powertrain: str, month: int) -> float:
        """1.0 when a campaign / privilege is in force for the powertrain in the month, else 0.0."""
        rule = self.applied(instrument, powertrain, month).rule
        if rule is None:
            return 0.0
        rows = np.flatnonzero(rule.rows_for(powertrain))
        return float(rule.active[rows].max()) if len(rows) else 0.0

    # -- money --------------------------------------------------------------------------------------
    def subsidy(self, price: np.ndarray, powertrains, range_km: np.ndarray | None, month: int) -> np.ndarray:
        """Central purchase subsidy per vehicle, CNY, for guide prices (incl. VAT, before subsidy).

        `powertrains`: [K] labels ('BEV', 'PHEV', 'ICE') of the last axis of `price`; `range_km`: ranges
        broadcastable to `price` (NaN where unknown; needed only where a BEV band applies).
        """
        price = np.asarray(price, dtype=float)
        powertrains = np.asarray(powertrains)
        ranges = np.broadcast_to(np.nan if range_km is None else np.asarray(range_km, float), price.shape)
        result = np.zeros(price.shape)
        for powertrain in ("BEV", "PHEV"):
            columns = powertrains == powertrain
            if not columns.any():
                continue
            rule = self.applied(SUBSIDY, powertrain, month).rule
            if rule is None:
                continue
            amount = np.zeros(price[..., columns].shape)
            matched = np.zeros(amount.shape, dtype=bool)
            for r in np.flatnonzero(rule.rows_for(powertrain)):
                if powertrain == "BEV" and rule.powertrain[r] == "BEV":
                    rng = ranges[..., columns]
                    low, high = rule.range_min[r], rule.range_max[r]
                    if np.isnan(low) and np.isnan(high):
                        inside = np.ones(amount.shape, dtype=bool)
                    else:
                        if np.isnan(rng).any():
                            raise DataError(f"the {month_label(month)} subsidy depends on the range band, but a "
                                            f"BEV's range is unknown; give dynamics.missing_range_band values")
                        inside = (np.isnan(low) | (rng >= low)) & (np.isnan(high) | (rng < high))
                else:  # PHEV rows (electric range assumed to qualify) and NEV-wide rows
                    inside = np.ones(amount.shape, dtype=bool)
                inside &= ~matched
                if not np.isnan(rule.price_cap[r]):
                    inside &= price[..., columns] <= rule.price_cap[r]
                if inside.any() and np.isnan(rule.amount[r]):
                    raise DataError(f"table 'policy_schedule': {self.path}: the {powertrain} subsidy in force in "
                                    f"{month_label(month)} "
                                    f"(rule announced {rule.announced}) has no sourced amount (empty = unknown); "
                                    f"choose a base period or horizon outside it, or supply your own table")
                amount = np.where(inside, np.nan_to_num(rule.amount[r]), amount)
                matched |= inside
            result[..., columns] = amount
        return result

    def _nev_tax_relief(self, month: int) -> tuple[float, float] | None:
        """The NEV purchase-tax relief applied in `month`: (fraction of the tax waived, cap in CNY per
        vehicle, inf when uncapped), or None when no exemption applies."""
        rule = self.applied(TAX_EXEMPTION, "BEV", month).rule
        if rule is None:
            return None
        row = np.flatnonzero(rule.rows_for("BEV"))[0]
        cap = float(rule.cap[row])
        return float(rule.relief[row]), (np.inf if np.isnan(cap) else cap)

    def purchase_tax(self, price: np.ndarray, is_nev: np.ndarray, month: int, vat_rate) -> np.ndarray:
        """Purchase tax a buyer pays in `month`, CNY, for guide prices incl. VAT (NEV relief applied)."""
        price = np.asarray(price, dtype=float)
        tax = PURCHASE_TAX_RATE * price / (1.0 + np.asarray(vat_rate, dtype=float)[..., None])
        relief_rule = self._nev_tax_relief(month)
        if relief_rule is None:
            return tax
        fraction, cap = relief_rule
        relief = np.minimum(fraction * tax, cap)
        return np.where(np.asarray(is_nev, dtype=bool), tax - relief, tax)

    def purchase_tax_rate(self, price: np.ndarray, is_nev: np.ndarray, month: int, vat_rate) -> np.ndarray:
        """d purchase tax / d guide price in `month` (the marginal rate of `purchase_tax`): 10%/(1+VAT), less
        the NEV relief fraction while the relief is below its cap (above the cap the full rate applies)."""
        price = np.asarray(price, dtype=float)
        rate = PURCHASE_TAX_RATE / (1.0 + np.asarray(vat_rate, dtype=float)[..., None]) * np.ones(price.shape)
        relief_rule = self._nev_tax_relief(month)
        if relief_rule is None:
            return rate
        fraction, cap = relief_rule
        below_cap = fraction * rate * price < cap
        return np.where(np.asarray(is_nev, dtype=bool) & below_cap, rate * (1.0 - fraction), rate)

    def month_terms(self, month: int) -> MonthTerms:
        """The subsidy rows and NEV tax relief applied in `month`, as arrays for `effective_prices`
        (the same rules as `subsidy` and `purchase_tax`, looked up once per month)."""
        key = int(month)
        if key not in self._month_terms:
            rows: list[list[tuple[float, ...]]] = [[], []]
            for p, powertrain in enumerate(("BEV", "PHEV")):
                rule = self.applied(SUBSIDY, powertrain, month).rule
                if rule is None:
                    continue
                for r in np.flatnonzero(rule.rows_for(powertrain)):
                    low, high = rule.range_min[r], rule.range_max[r]
                    band = powertrain == "BEV" and rule.powertrain[r] == "BEV" and not (np.isnan(low) and np.isnan(high))
                    rows[p].append((1.0 if band else 0.0, low, high, rule.price_cap[r], rule.amount[r]))
            table = np.full((2, max(1, len(rows[0]), len(rows[1])), 5), np.nan)
            for p in range(2):
                if rows[p]:
                    table[p, :len(rows[p])] = np.array(rows[p], dtype=float)
            relief = self._nev_tax_relief(month)
            self._month_terms[key] = MonthTerms(table, np.array([len(rows[0]), len(rows[1])], dtype=np.int64),
                                                relief is not None, *(relief or (0.0, np.inf)))
        return self._month_terms[key]

    # -- for reports --------------------------------------------------------------------------------
    def steps(self, first_month: int, last_month: int) -> list[dict[str, str]]:
        """Every change of the applied rule between two months, per instrument and powertrain."""
        steps = []
        for instrument in INSTRUMENTS:
            for powertrain in ("BEV", "PHEV"):
                previous = None
                for month in range(first_month, last_month + 1):
                    applied = self.applied(instrument, powertrain, month)
                    state = (id(applied.rule), applied.continued)
                    if state == previous:
                        continue
                    previous = state
                    rule = applied.rule
                    steps.append({
                        "month": month_label(month), "instrument": instrument, "powertrain": powertrain,
                        "value": "no rule in force" if rule is None else rule.describe(powertrain),
                        "effective": "" if rule is None else f"{rule.start}..{rule.end or ''}",
                        "announced": "" if rule is None else str(rule.announced),
                        "assumed_to_continue": applied.continued,
                        "source": "" if rule is None else rule.source})
        merged: dict[tuple, dict[str, str]] = {}
        for step in steps:  # one line when BEV and PHEV change together to the same values
            key = (step["month"], step["instrument"], step["value"], step["effective"], step["assumed_to_continue"])
            if key in merged:
                merged[key]["powertrain"] = "NEV"
            else:
                merged[key] = dict(step)
        return sorted(merged.values(), key=lambda s: (s["month"], INSTRUMENTS.index(s["instrument"])))

    def continued_months(self, first_month: int, last_month: int) -> list[str]:
        """Months in which some rule is applied only because the last known rule is assumed to continue."""
        return [month_label(m) for m in range(first_month, last_month + 1)
                if any(self.applied(i, p, m).continued for i in INSTRUMENTS for p in ("BEV", "PHEV"))]


@dataclass(frozen=True)
class MonthTerms:
    """One month's purchase subsidy rows per powertrain and NEV tax relief (`PolicySchedule.month_terms`)."""

    subsidy: np.ndarray         # [2 (BEV, PHEV), rows, 5]: (range band applies, range_min, range_max, price_cap,
    #                             amount), in the rule's row order
    rows: np.ndarray            # [2] rows in force for BEVs, PHEVs
    relief: bool                # an NEV purchase-tax relief applies
    relief_fraction: float      # fraction of the tax waived
    relief_cap: float           # CNY per vehicle, inf when uncapped


@nb.njit(cache=True)
def _subsidy_amount(price, range_km, table, kind, rows):  # pragma: no cover - compiled
    """(subsidy, CNY, of one vehicle at guide price `price` and range `range_km` under the subsidy rows
    `table[kind]` [rows, 5] of its powertrain (`MonthTerms.subsidy`): the first row that covers it; whether a band
    row needs a missing range or the covering row's amount is unknown)."""
    problem = False
    for r in range(rows):  # a band row needs every BEV's range, matched or not (`PolicySchedule.subsidy`)
        if table[kind, r, 0] > 0.0 and np.isnan(range_km):
            problem = True
    for r in range(rows):
        low, high, price_cap, value = table[kind, r, 1], table[kind, r, 2], table[kind, r, 3], table[kind, r, 4]
        inside = True
        if table[kind, r, 0] > 0.0:
            inside = (np.isnan(low) or range_km >= low) and (np.isnan(high) or range_km < high)
        if not np.isnan(price_cap):
            inside = inside and price <= price_cap
        if inside:
            if np.isnan(value):
                return 0.0, True
            return value, problem
    return 0.0, problem


@nb.njit(cache=True)
def _effective_prices(price, ranges, vat, columns, subsidy, rows, scalars, extra):  # pragma: no cover - compiled
    """(price + purchase tax - subsidy - extra subsidy [N, K], whether a subsidy needs a missing range or an
    unknown amount): `PolicySchedule.purchase_tax`, `PolicySchedule.subsidy` and `ExtraSubsidy.per_vehicle`
    of guide prices [N, K] in one pass, the same operations per element. columns [K, 3]: powertrain (0 BEV,
    1 PHEV, -1 other), NEV (0/1), the extra subsidy applies (0/1); scalars: (NEV tax relief applies (0/1),
    its fraction, its cap, the extra subsidy's price cap); vat, extra [N]."""
    draws, products = price.shape
    relief, fraction, cap, extra_cap = scalars[0] > 0.0, scalars[1], scalars[2], scalars[3]
    out = np.empty((draws, products))
    problem = False
    for n in range(draws):
        for k in range(products):
            p = price[n, k]
            tax = PURCHASE_TAX_RATE * p / (1.0 + vat[n])
            if relief and columns[k, 1] == 1:
                waived = fraction * tax
                if cap < waived:
                    waived = cap
                tax = tax - waived
            amount = 0.0
            kind = columns[k, 0]
            if kind >= 0:
                amount, missing = _subsidy_amount(p, ranges[n, k], subsidy, kind, rows[kind])
                problem = problem or missing
            bonus = extra[n] if columns[k, 2] == 1 and p <= extra_cap else 0.0
            out[n, k] = p + tax - amount - bonus
    return out, problem


def month_label(month: int) -> str:
    return f"{month // 12:04d}-{month % 12 + 1:02d}"


@lru_cache(maxsize=16)
def _cached(as_of: date, path: str | None, mtime: float) -> PolicySchedule:
    table = load_table("policy_schedule", as_of, path)
    return PolicySchedule(table.rows, as_of, table.path)


def load_policy(as_of: date, path: str | Path | None = None) -> PolicySchedule:
    """The policy schedule as known on `as_of` (bundled table, or a user's table with the same columns)."""
    mtime = Path(path).stat().st_mtime if path is not None and Path(path).is_file() else 0.0
    return _cached(as_of, None if path is None else str(path), mtime)


def purchase_tax(price: np.ndarray, is_nev: np.ndarray, month: int, vat_rate: np.ndarray,
                 as_of: date) -> np.ndarray:
    """Purchase tax a buyer pays in `month` (months since year 0), CNY, for guide prices incl. VAT.

    Kept for callers of the earlier interface: the bundled schedule as known on `as_of`.
    """
    return load_policy(as_of).purchase_tax(price, is_nev, month, vat_rate)


def subsidy(price: np.ndarray, powertrains, range_km: np.ndarray | None, month: int, as_of: date) -> np.ndarray:
    """Central purchase subsidy per vehicle, CNY (bundled schedule as known on `as_of`)."""
    return load_policy(as_of).subsidy(price, powertrains, range_km, month)


@dataclass(frozen=True)
class ExtraSubsidy:
    """The scenario's assumed extra NEV purchase subsidy (`[policy]` in the scenario), per draw: paid to
    buyers of qualifying models on top of the sourced schedule's subsidy (it lowers the effective price)."""

    amount: np.ndarray                 # [N] CNY per vehicle
    powertrains: tuple[str, ...]       # which powertrains qualify ('BEV', 'PHEV')
    first_month: int                   # months since year 0, inclusive
    last_month: float                  # inclusive; inf = open-ended
    price_cap: float                   # highest qualifying guide price, CNY; inf = none

    def per_vehicle(self, price: np.ndarray, powertrains, month: int) -> np.ndarray:
        """[N, K] extra subsidy per vehicle for guide prices [N, K] of products with `powertrains` [K]."""
        price = np.asarray(price, dtype=float)
        if not self.first_month <= month <= self.last_month:
            return np.zeros(price.shape)
        qualifies = np.isin(np.asarray(powertrains), self.powertrains)[None, :] & (price <= self.price_cap)
        return np.where(qualifies, self.amount[:, None], 0.0)

    def changes(self) -> set[int]:
        """Months in which the subsidy starts or stops (prices are re-solved there)."""
        return {self.first_month} | ({int(self.last_month) + 1} if np.isfinite(self.last_month) else set())


def effective_prices(schedule: PolicySchedule, price: np.ndarray, powertrains: np.ndarray, ranges: np.ndarray,
                     month: int, vat_rate: np.ndarray, extra: ExtraSubsidy) -> np.ndarray:
    """[N, K] guide price + purchase tax - subsidy (the schedule's and the scenario's `extra` one) in `month`
    (months since year 0) of guide prices `price` [N, K] of products with `powertrains` [K] and `ranges`
    [N, K] (km), `vat_rate` [N]: `PolicySchedule.purchase_tax`, `PolicySchedule.subsidy` and
    `ExtraSubsidy.per_vehicle` in one compiled pass (where a subsidy needs a range that is missing or an
    amount that is unknown, those raise their errors)."""
    powertrains = np.asarray(powertrains)
    terms = schedule.month_terms(month)
    is_nev = np.isin(powertrains, ("BEV", "PHEV"))
    code = np.where(powertrains == "BEV", 0, np.where(powertrains == "PHEV", 1, -1))
    extra_on = np.isin(powertrains, extra.powertrains) & (extra.first_month <= month <= extra.last_month)
    columns = np.stack([code, is_nev, extra_on], axis=1).astype(np.int64)
    scalars = np.array([1.0 if terms.relief else 0.0, terms.relief_fraction, terms.relief_cap, extra.price_cap])
    price = np.ascontiguousarray(price, dtype=float)
    out, problem = _effective_prices(
        price, np.ascontiguousarray(np.broadcast_to(ranges, price.shape), dtype=float),
        np.ascontiguousarray(np.broadcast_to(vat_rate, price.shape[:1]), dtype=float), columns, terms.subsidy,
        terms.rows, scalars, np.ascontiguousarray(np.broadcast_to(extra.amount, price.shape[:1]), dtype=float))
    if problem:
        return (price + schedule.purchase_tax(price, is_nev, month, vat_rate)
                - schedule.subsidy(price, powertrains, ranges, month) - extra.per_vehicle(price, powertrains, month))
    return out


def extra_subsidy(scenario, amount_per_vehicle: np.ndarray, draws: int) -> ExtraSubsidy:
    """The scenario's `[policy]` extra subsidy for `draws` draws (`amount_per_vehicle`: CNY, [N] or scalar)."""
    policy = scenario.policy
    amount = np.broadcast_to(np.asarray(amount_per_vehicle, dtype=float), (draws,)).copy()
    first = month_number(policy.extra_subsidy_from) if policy.extra_subsidy_from else scenario.start_month
    last = month_number(policy.extra_subsidy_to) if policy.extra_subsidy_to else np.inf
    cap = float(policy.extra_subsidy_price_cap) if policy.extra_subsidy_price_cap is not None else np.inf
    return ExtraSubsidy(amount, tuple(policy.extra_subsidy_powertrains), first, last, cap)
