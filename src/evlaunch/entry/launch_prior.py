"""What buyers knew before the launch: comparable launches' order events and the brand's reach.

Two facts public at the as-of date set the entrant's demand *before* any of its own sales are seen:

- **Launch-order events** (`new_brand_orders`, `launch_orders_extra`): orders a comparable launch took in
  its launch window (first hours to first month). Each launch counts once, with its largest reported count
  (the longest window, nearest to the orders waiting when deliveries begin). Their spread across launches
  is fitted as a log-normal (log mean and standard deviation of the counts). The entrant's orders waiting at
  its launch are one draw from it (a uniform random event through the log-normal's quantile, clipped to the
  smallest and largest launch seen, as ramp shapes are clipped to the fit's bounds) times
  `launch_order_multiple`, the scenario's stated assumption for how the entrant's reach compares with those
  launches'.
- **The brand's reach** (`xiaomi_reach`): its latest mainland-China smartphone shipment share public at the
  as-of date. The share of potential buyers who consider the car from its launch (its *awareness*, constant
  over the months) is `reach + (1 - reach) x awareness_outside_reach`: the brand's own users, plus a
  stated share of everyone else. Awareness enters the entrant's utility as log(awareness) (a consideration
  set: the entrant's logit share scales by about `awareness` while it is small).

Run-rate claims ("daily orders") and single days are not launch windows and are left out; so are gaps
(events without a count). Counts in vehicles (orders); shares as fractions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import norm

from evlaunch.errors import DataError

NOT_A_LAUNCH_WINDOW = ("daily", "single day")
REACH_QUANTITY = "smartphone shipment share, mainland china"
MIN_EVENTS = 3


@dataclass(frozen=True)
class LaunchOrderPrior:
    """The log-normal of comparable launches' order counts and the events it was fitted to."""

    log_mean: float          # mean of log orders in a launch window
    log_sd: float            # standard deviation of log orders across launches (ddof 1)
    events: pd.DataFrame     # brand, model, event, value (orders), date: one row per launch
    bounds: tuple[float, float] = (0.0, np.inf)  # the smallest and largest launch's orders

    @property
    def median(self) -> float:
        """The median launch window's orders, vehicles."""
        return float(np.exp(self.log_mean))


def launch_order_events(*tables: pd.DataFrame) -> pd.DataFrame:
    """The launch-window order events of the given tables (brand, model, event, value, date): rows with a
    count, not run-rate claims or single days; each launch (brand, model) once, its largest count."""
    frames = []
    for table in tables:
        frame = table[["brand", "model", "event", "value", "date"]].copy()
        frame["value"] = pd.to_numeric(frame["value"].astype(str).str.replace(",", "", regex=False),
                                       errors="coerce")
        frames.append(frame)
    events = pd.concat(frames, ignore_index=True).dropna(subset=["value"])
    window = ~events["event"].str.lower().str.contains("|".join(NOT_A_LAUNCH_WINDOW))
    events = events[window & (events["value"] > 0)]
    largest = events.sort_values("value", ascending=False, kind="stable").drop_duplicates(subset=["brand", "model"])
    return largest.sort_index().reset_index(drop=True)


def fit_launch_orders(events: pd.DataFrame) -> LaunchOrderPrior:
    """Log-normal fit (mean and sd of log counts) of launch-window orders; needs `MIN_EVENTS` events."""
    if len(events) < MIN_EVENTS:
        raise DataError(f"only {len(events)} launch-order event(s) with a count are public at the as-of date; "
                        f"the launch-order prior needs at least {MIN_EVENTS} (tables new_brand_orders, "
                        "launch_orders_extra) — add events or drop product.launch_order_multiple")
    values = events["value"].to_numpy(dtype=float)
    logs = np.log(values)
    return LaunchOrderPrior(float(logs.mean()), float(logs.std(ddof=1)), events, (float(values.min()),
                                                                                   float(values.max())))


def launch_orders(prior: LaunchOrderPrior, uniform: np.ndarray, multiple: np.ndarray) -> np.ndarray:
    """Orders waiting at the launch [N], vehicles: the log-normal's quantile at `uniform` [N], within the
    launches seen, times `multiple` [N]."""
    clipped = np.clip(np.asarray(uniform, dtype=float), 1e-12, 1 - 1e-12)
    comparable = np.clip(np.exp(prior.log_mean + prior.log_sd * norm.ppf(clipped)), *prior.bounds)
    return comparable * np.asarray(multiple, dtype=float)


def brand_reach(reach: pd.DataFrame) -> tuple[float, str]:
    """(share, label): the latest published mainland-China smartphone shipment share (fraction 0..1) and the
    row it came from."""
    rows = reach[reach["quantity"].str.lower().str.startswith(REACH_QUANTITY)]
    rows = rows.assign(share=pd.to_numeric(rows["value"], errors="coerce") / 100.0).dropna(subset=["share"])
    if rows.empty:
        raise DataError("table 'xiaomi_reach' has no mainland-China smartphone shipment share public at the "
                        "as-of date; product.awareness_outside_reach needs the brand's reach")
    latest = rows.sort_values("published", kind="stable").iloc[-1]
    share = float(latest["share"])
    if not 0.0 < share < 1.0:
        raise DataError(f"table 'xiaomi_reach': smartphone share {latest['value']} %; expected 0..100")
    return share, f"{latest['quantity']} {latest['as_of']}: {latest['value']}%"


def prior_awareness(reach: float, outside: np.ndarray) -> np.ndarray:
    """Share of potential buyers who consider the car from its launch [N]: the brand's reach plus the share
    `outside` [N] of the other buyers."""
    return reach + (1.0 - reach) * np.clip(np.asarray(outside, dtype=float), 0.0, 1.0)
