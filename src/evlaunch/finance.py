"""The entrant's money: unit cost, monthly cash flow, NPV, peak cash need. All amounts in CNY.

Pure functions over arrays with a leading draw axis; months are the last axis where present.
"""

from __future__ import annotations

import numpy as np


def learning_factor(cumulative_output: np.ndarray, learning_rate: np.ndarray, experience_base: np.ndarray
                    ) -> np.ndarray:
    """(1 - learning_rate) ** doublings of the entrant's cumulative output beyond its experience base, vehicles
    (1 up to the base): the unit cost quoted is that of a car built with the experience its suppliers, contract
    engineers and (on a partner's plant) the partner already carry, so learning only starts once the entrant's
    own output exceeds that base (`product.learning_base`)."""
    base = np.maximum(experience_base, 1.0)
    doublings = np.log2(np.maximum(cumulative_output, base) / base)
    return (1.0 - learning_rate) ** doublings


def unit_cost(battery_kwh: np.ndarray, pack_cny_per_kwh: np.ndarray, rest_of_vehicle: np.ndarray,
              cost_factor: np.ndarray, cumulative_output: np.ndarray, learning_rate: np.ndarray,
              experience_base: np.ndarray) -> np.ndarray:
    """Cost to build one car, CNY: (battery kWh x pack price + rest of vehicle x learning) x path factor.

    Learning applies to the rest of the vehicle only: each doubling of the entrant's cumulative output beyond
    its experience base (vehicles) cuts it by `learning_rate`. The pack follows the market's pack price (which
    already carries the industry's learning), so learning it again would count the fall twice.
    """
    rest = rest_of_vehicle * learning_factor(cumulative_output, learning_rate, experience_base)
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


def pledged_fraction(months_since_pledge_start: np.ndarray, pledge_years: float) -> np.ndarray:
    """Share of the budget pledged by the end of each month (even pledge over `pledge_years`, capped at 1).
    `months_since_pledge_start`: 0 for the pledge's first month; months before it get 0."""
    elapsed = np.maximum(np.asarray(months_since_pledge_start, dtype=float) + 1.0, 0.0)
    return np.minimum(elapsed / (12.0 * pledge_years), 1.0)


def pledge_paid_in(budget: np.ndarray, fraction: np.ndarray, spent_before: np.ndarray) -> np.ndarray:
    """[N, H] CNY the parent has paid in to the car business by each month's end beyond what was spent
    before the start: budget [N] x pledged fraction [H] - spent before the start [N]. The pacing test
    (`ahead_of_pledge_schedule`) compares the cash need with it; the budget test uses `budget_available`."""
    return np.asarray(budget)[:, None] * np.asarray(fraction)[None, :] - np.asarray(spent_before)[:, None]


def cash_need(cash_flow: np.ndarray) -> np.ndarray:
    """[N, H] cumulative net outflow since the start by each month's end, CNY (negative once cash has come back)."""
    return -np.cumsum(cash_flow, axis=-1)


def budget_available(budget: np.ndarray, spent_before: np.ndarray) -> np.ndarray:
    """[N] CNY of the budget left for the car business at the start: the pledge's total [N] less what was
    spent before the start [N] (however the pledge is paid in over time)."""
    return np.asarray(budget, dtype=float) - np.asarray(spent_before, dtype=float)


def budget_exceeded(peak_need: np.ndarray, available: np.ndarray) -> np.ndarray:
    """[N] the budget test: the peak cumulative cash need (`peak_cash_need`, CNY) [N] is above the budget
    available at the start (`budget_available`, CNY) [N]."""
    return np.asarray(peak_need) > np.asarray(available)


def budget_needed(peak_need: np.ndarray, spent_before: np.ndarray) -> np.ndarray:
    """[N] the smallest total budget (CNY) that covers the peak cash need: peak need + spent before the start.
    A draw exceeds a budget B exactly when B < this, so the budget at which P(exceeded) falls to q is its
    (1 - q) quantile."""
    return np.asarray(peak_need, dtype=float) + np.asarray(spent_before, dtype=float)


def ahead_of_pledge_schedule(cash_flow: np.ndarray, paid_in: np.ndarray) -> np.ndarray:
    """[N] the pacing test: in some month the cumulative outflow since the start ([N, H] cash flow, CNY) is
    above the cash paid in by then (`pledge_paid_in`, [N, H]) — cash is needed faster than the pledge is
    paid in, although the total may suffice. Not the budget test; reported beside it."""
    return np.asarray((cash_need(cash_flow) > paid_in).any(axis=-1))


def working_capital(cost_of_goods: np.ndarray, revenue: np.ndarray, inventory_days: np.ndarray,
                    receivable_days: np.ndarray) -> np.ndarray:
    """CNY tied up in stock and receivables at a month's end, from that month's cost of goods and revenue
    (CNY/month): inventory days x cost / 30 + receivable days x revenue / 30."""
    return (inventory_days * cost_of_goods + receivable_days * revenue) / 30.0


def best_response_markup(entrant_typed: np.ndarray, weights: np.ndarray, price_coefficient: np.ndarray
                         ) -> np.ndarray:
    """[N] the entrant's single-product Bertrand markup over its VAT-inclusive marginal cost, CNY:
    -s / (ds/dp) = sum_t w_t s_t / sum_t w_t |alpha_t| s_t (1 - s_t), from its share among each consumer type
    [N, T], the types' weights [N, T] and price coefficients [N, T] (utility per CNY of guide price). For
    plain logit this is 1 / (|alpha| (1 - s)). NaN where it sells nothing."""
    share = np.sum(weights * entrant_typed, axis=-1)
    slope = np.sum(weights * np.abs(price_coefficient) * entrant_typed * (1.0 - entrant_typed), axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(slope > 0, share / slope, np.nan)


def capacity_shadow_price(markup: np.ndarray, backlog: np.ndarray, installed: np.ndarray, binding: np.ndarray,
                          tolerated_months: np.ndarray, ceiling: np.ndarray) -> np.ndarray:
    """[N] CNY added to the entrant's price while the installed capacity binds (to the list price held while the
    queue is long, `queue_held_price`; to the best response within the tolerated wait): markup x log(backlog /
    (tolerated months x installed monthly capacity)) where `binding` (the plant at capacity, not on its ramp)
    and that ratio is above 1, else 0; at most `ceiling` CNY. Under logit demand a price rise of markup x log(r)
    cuts orders about r-fold, so the rise would clear the excess backlog over the coming months; the ceiling
    is the stated limit on how far a new brand lets its price rise with a queue (it holds list prices and
    lets buyers wait)."""
    tolerated = np.maximum(tolerated_months * installed, 1e-9)
    pressure = np.where(binding & (installed > 0), backlog / tolerated, 0.0)
    shadow = np.maximum(markup, 0.0) * np.log(np.maximum(pressure, 1.0))
    return np.where(np.isfinite(markup), np.minimum(shadow, np.maximum(ceiling, 0.0)), 0.0)


def queue_held_price(best: np.ndarray, listed: np.ndarray, shadow: np.ndarray, held: np.ndarray) -> np.ndarray:
    """[N] the price the entrant aims at next month, CNY. While the queue is long (`held`, `queue_is_long`:
    the backlog exceeds the tolerated months of the month's output, on the delivery ramp and after supply
    shocks: what buyers actually wait for; a backlog with no output at all counts as long), the list price
    `listed` is HELD both ways — no cut and no rise towards the best response — and only the capacity shadow
    price `shadow` (CNY, `capacity_shadow_price`: non-zero only while the installed capacity binds) is added
    to it. Within the tolerated wait the best response `best` applies (its own shadow price included), cuts
    included. New brands held list prices while orders waited (AITO's new M7, XPeng's G6:
    launch_orders_extra.csv): a cut would add orders the plant cannot build, a rise would break the price the
    waiting buyers ordered at."""
    return np.where(held, listed + np.maximum(shadow, 0.0), best)


def queue_is_long(backlog: np.ndarray, output: np.ndarray, tolerated_months: np.ndarray) -> np.ndarray:
    """[N] bool: the backlog (vehicles) exceeds `tolerated_months` of the month's output (vehicles/month);
    a backlog with no output at all counts as long."""
    return backlog > np.maximum(tolerated_months, 0.0) * np.maximum(output, 0.0)


def gradual_price(target: np.ndarray, current: np.ndarray, max_step: np.ndarray) -> np.ndarray:
    """[N] next month's price, CNY: `target` moved to at most `max_step` (fraction of the `current` price,
    per month) away from `current` either way, so a launch price is not abandoned the month after."""
    step = np.maximum(max_step, 0.0) * current
    return np.clip(target, current - step, current + step)


def gross_margin(revenue: np.ndarray, cost_of_goods: np.ndarray) -> np.ndarray:
    """(revenue - cost of goods) / revenue, both net of VAT; NaN where there is no revenue."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(revenue > 0, (revenue - cost_of_goods) / revenue, np.nan)
