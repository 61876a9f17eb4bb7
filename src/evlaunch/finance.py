"""The entrant's money: unit cost, monthly cash flow, NPV, peak cash need. All amounts in CNY.

Pure functions over arrays with a leading draw axis; months are the last axis where present.
"""

from __future__ import annotations

import numpy as np

LEARNING_REFERENCE_VOLUME = 10_000.0  # vehicles: unit cost is quoted for the first 10,000 built (modelling choice)


def learning_factor(cumulative_output: np.ndarray, learning_rate: np.ndarray) -> np.ndarray:
    """(1 - learning_rate) ** doublings of cumulative output beyond the reference volume (1 below it)."""
    doublings = np.log2(np.maximum(cumulative_output, LEARNING_REFERENCE_VOLUME) / LEARNING_REFERENCE_VOLUME)
    return (1.0 - learning_rate) ** doublings


def unit_cost(battery_kwh: np.ndarray, pack_cny_per_kwh: np.ndarray, rest_of_vehicle: np.ndarray,
              cost_factor: np.ndarray, cumulative_output: np.ndarray, learning_rate: np.ndarray) -> np.ndarray:
    """Cost to build one car, CNY: (battery kWh x pack price + rest of vehicle x learning) x path factor.

    Learning applies to the rest of the vehicle only: each doubling of the entrant's cumulative output beyond
    the reference volume cuts it by `learning_rate`. The pack follows the market's pack price (which already
    carries the industry's learning), so learning it again would count the fall twice.
    """
    rest = rest_of_vehicle * learning_factor(cumulative_output, learning_rate)
    return (battery_kwh * pack_cny_per_kwh + rest) * cost_factor


def net_present_value(cash_flow: np.ndarray, annual_rate: np.ndarray, terminal_value: np.ndarray) -> np.ndarray:
    """NPV at the scenario start of monthly cash flows [N, T] (end of month) plus a terminal value at T."""
    months = np.arange(1, cash_flow.shape[-1] + 1)
    discount = (1.0 + np.asarray(annual_rate)[..., None]) ** (-months / 12.0)
    return (cash_flow * discount).sum(axis=-1) + terminal_value * discount[..., -1]


def peak_cash_need(cash_flow: np.ndarray) -> np.ndarray:
    """Largest cumulative cash outflow before cash comes back, CNY (>= 0), undiscounted."""
    return np.maximum(-np.cumsum(cash_flow, axis=-1).min(axis=-1), 0.0)


def terminal_value(cash_flow: np.ndarray, multiple: np.ndarray, capex_free_flow: np.ndarray | None = None
                   ) -> np.ndarray:
    """Value credited at the horizon: `multiple` x the last 12 months' operating cash flow, never negative
    (a business losing money would be closed rather than carried on at a loss)."""
    last_year = (capex_free_flow if capex_free_flow is not None else cash_flow)[..., -12:].sum(axis=-1)
    return np.maximum(multiple * last_year, 0.0)
