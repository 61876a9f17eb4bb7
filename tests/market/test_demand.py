"""The demand engine (`Demand`): month-by-month choice shares of every product and of buying no new car.

Checked through the model as the simulation builds it (`prepare`, the base-period calibration, `Demand`),
against invariants that hold whatever the parameters: shares and the outside option sum to one, products
not on sale sell nothing, the base period is reproduced exactly when nothing moves, a higher entrant
price never raises its share (and never lowers a rival's), more charging never lowers the NEV share.
`demand_for` is the one place that knows how a `Demand` is built.
"""

from __future__ import annotations

import numpy as np
import pytest

from evlaunch.config.scenario import month_number, quantities
from evlaunch.market.demand import Demand, walk_path
from evlaunch.runs.sampling import sample_draws
from evlaunch.simulation.parameters import step_event_names
from evlaunch.supply.margin_fit import calibrate_market

DRAWS = 8
ENTRANT_PRICE = 250_000.0
# the drivers that move the market away from the base period between months
DRIVERS = ("market.nev_trend_per_year", "market.phev_trend_per_year", "dynamics.ageing_per_year",
           "dynamics.range_growth_per_year", "market.charging_effect", "dynamics.battery_pass_through")


@pytest.fixture(scope="module")
def inputs(reference_model):
    return sample_draws(reference_model, 7, 0, DRAWS)


def demand_for(model, inputs, **overrides):
    """(Demand, base-period calibration) for `inputs` with some inputs set to one value for every draw."""
    changed = {**inputs, **{key: np.full(DRAWS, float(value)) for key, value in overrides.items()}}
    parameters = model.parameters(changed)
    base = calibrate_market(model.market, parameters)
    return Demand(model.market, parameters, base), base


def shares(demand, step, entrant_price=ENTRANT_PRICE, on_sale=True):
    """(per consumer type [N, T, K], national [N, K]) with the entrant on sale since the scenario start."""
    launch = np.zeros(DRAWS) if on_sale else np.full(DRAWS, np.inf)
    return demand.month(step, np.zeros(DRAWS), np.zeros(DRAWS), np.full(DRAWS, entrant_price),
                        np.full(DRAWS, on_sale), launch)


def still(model) -> dict[str, float]:
    """Inputs that switch off every driver of change: no drift, ageing, range progress, charging effect,
    battery pass-through, plate privileges or rural campaigns, and the median (zero) yearly innovations."""
    regional = [k for k in quantities(model.scenario) if k.endswith(("campaign_utility", "plate_utility"))]
    return {**dict.fromkeys((*DRIVERS, *regional), 0.0), **step_medians(model)}


def step_medians(model) -> dict[str, float]:
    """The yearly innovations' uniforms at their median: no innovation."""
    return dict.fromkeys(step_event_names(model.scenario), 0.5)


def test_with_nothing_moving_every_base_month_reproduces_the_base_period(reference_model, inputs):
    demand, base = demand_for(reference_model, inputs, **still(reference_model))
    size_j = len(reference_model.lineup.names)
    first, last = (month_number(m) for m in reference_model.scenario.market.base_period)
    steps = [s for s in range(demand.periods) if first <= demand.months[s] <= last]
    assert steps  # the start year's lead months cover the base period
    for step in steps:
        _, national = shares(demand, step, on_sale=False)
        np.testing.assert_allclose(national[:, :size_j], base.shares, rtol=1e-9, atol=0)
        np.testing.assert_allclose(national.sum(axis=1) + base.outside_share, 1.0, rtol=1e-12)


def test_shares_and_the_outside_option_sum_to_one_in_every_month(reference_model, inputs):
    demand, _ = demand_for(reference_model, inputs)
    for step in range(0, demand.periods, 7):
        typed, national = shares(demand, step)
        assert np.all(typed >= 0) and np.all(national >= 0)
        inside = typed.sum(axis=2)
        assert np.all((inside > 0) & (inside < 1))  # the rest buys no new car
        assert np.all((national.sum(axis=1) > 0) & (national.sum(axis=1) < 1))


def test_products_not_on_sale_sell_nothing(reference_model, inputs):
    demand, _ = demand_for(reference_model, inputs)
    size_j, size_l = demand.size_j, demand.size_l
    _, before = shares(demand, 0, on_sale=False)
    assert np.all(before[:, -1] == 0.0)
    for k, launch in enumerate(demand.launch_month):
        step_before = int(np.searchsorted(demand.months, launch)) - 1
        if step_before >= 0:
            _, national = shares(demand, step_before)
            assert np.all(national[:, size_j + k] == 0.0)
    _, last = shares(demand, demand.periods - 1)
    launched = last[:, size_j:size_j + size_l]
    # a launch sells once on sale in the draws where it happens (an uncertain one, e.g. Apple's, may not)
    assert np.all((launched > 0) == demand.launch_happens) and np.all(last[:, -1] > 0)


@pytest.mark.parametrize("step", [-1, -30])
def test_a_higher_entrant_price_lowers_its_share_and_raises_every_rivals(reference_model, inputs, step):
    demand, _ = demand_for(reference_model, inputs)
    step = demand.periods + step
    _, cheap = shares(demand, step, ENTRANT_PRICE)
    _, dear = shares(demand, step, ENTRANT_PRICE * 1.1)
    assert np.all(dear[:, -1] < cheap[:, -1])
    assert np.all(dear[:, :-1] >= cheap[:, :-1] * (1 - 1e-12))


def test_more_charging_never_lowers_the_nev_share(reference_model, inputs):
    slow, _ = demand_for(reference_model, inputs, **{"market.charging_growth_per_year": 0.15})
    fast, _ = demand_for(reference_model, inputs, **{"market.charging_growth_per_year": 0.45})
    gained = []
    for step in range(slow.lead, slow.periods, 6):
        nev = [shares(d, step)[1][:, d.is_nev].sum(axis=1) for d in (slow, fast)]
        assert np.all(nev[1] >= nev[0] * (1 - 1e-12))
        gained.append(np.all(nev[1] > nev[0]))
    assert gained[-1]  # and by the horizon it is strictly higher


def test_the_phev_drift_moves_the_phev_share_of_nevs_from_the_base_period_on(reference_model, inputs):
    """PHEV/EREV is its own group: a drift d against BEVs moves the PHEV log-odds within NEV sales by d x years
    from the base period in each consumer type (plain logit within a type), so nationally by an amount of that
    sign and at most that size; before the base period's middle it moves the other way."""
    flat, _ = demand_for(reference_model, inputs, **still(reference_model))
    rising, _ = demand_for(reference_model, inputs, **{**still(reference_model), "market.phev_trend_per_year": 0.3})

    def phev_log_odds(demand, step):
        national = shares(demand, step, on_sale=False)[1]
        phev, nev = national[:, demand.is_phev].sum(axis=1), national[:, demand.is_nev].sum(axis=1)
        return np.log(phev / (nev - phev))

    for step in range(0, flat.periods, 5):
        change = phev_log_odds(rising, step) - phev_log_odds(flat, step)
        years = flat.years_from_base[step]
        assert np.all(np.sign(change) == np.sign(years))
        assert np.all(np.abs(change) <= 0.3 * abs(years) + 1e-9)
    last = flat.periods - 1
    assert np.all(phev_log_odds(rising, last) - phev_log_odds(flat, last) > 0.1 * flat.years_from_base[last])


def test_a_walk_path_is_zero_to_the_as_of_date_and_sums_the_innovations_at_each_years_middle():
    steps = np.array([[0.2, -0.1, 0.4], [1.0, 1.0, 1.0]])
    years = (2024, 2025, 2026)
    as_of = 2023 * 12 + 9.5                                   # the end of October 2023
    months = np.array([2023 * 12 + 3, as_of, 2024 * 12 + 5.5, 2025 * 12 + 5.5, 2026 * 12 + 5.5, 2026 * 12 + 11,
                       (as_of + 2024 * 12 + 5.5) / 2])
    path = walk_path(steps, years, as_of, months)
    np.testing.assert_allclose(path[:, :2], 0.0)
    np.testing.assert_allclose(path[:, 2:5], np.cumsum(steps, axis=1))
    np.testing.assert_allclose(path[:, 5], path[:, 4])        # held after the last year's middle
    np.testing.assert_allclose(path[:, 6], steps[:, 0] / 2)   # linear in between
    assert walk_path(np.zeros((2, 0)), (), as_of, months).shape == (2, len(months))


def test_yearly_innovations_move_the_market_only_after_the_as_of_date(reference_model, inputs):
    """A high 2026 innovation of the NEV drift and of market growth leaves every month up to the as-of date
    as it was and moves the NEV drift (logit units) and the log market size by the innovation's value from
    mid-2026 on."""
    market = reference_model.scenario.market
    high = {f"market.{name}.step_2026": 0.95 for name in ("nev_trend_per_year", "growth_per_year")}
    centre = {f"market.{name}.step_2026": 0.5 for name in ("nev_trend_per_year", "growth_per_year")}
    moved, _ = demand_for(reference_model, inputs, **high)
    held, _ = demand_for(reference_model, inputs, **centre)
    before = moved.months <= reference_model.scenario.as_of.year * 12 + reference_model.scenario.as_of.month - 1
    after = moved.months >= 2026 * 12 + 6
    assert before.any() and after.any()
    np.testing.assert_array_equal(moved.nev_drift[:, before], held.nev_drift[:, before])
    np.testing.assert_array_equal(moved.size[:, before], held.size[:, before])
    for name, gap in (("nev_trend_per_year", moved.nev_drift - held.nev_drift),
                      ("growth_per_year", np.log(moved.size / held.size))):
        step = getattr(market, name).step_ppf(np.array([0.95]))[0]
        assert step > 0
        np.testing.assert_allclose(gap[:, after], step, rtol=1e-9)


def test_re_anchoring_some_draws_leaves_the_others_and_equals_anchoring_all(reference_model, inputs):
    """`Demand.anchor(..., rows)`: the draws in `rows` get the anchor every draw would get at those prices
    (bit for bit: a draw's anchor is its own), the others keep theirs."""
    demand, base = demand_for(reference_model, inputs)
    step = demand.lead + 5
    prices = base.price * np.linspace(0.97, 1.03, DRAWS)[:, None]
    demand.anchor(step, base.price)
    before = demand.outside_offset(step).copy()
    rows = np.arange(DRAWS) % 3 == 1
    demand.anchor(step, prices, rows)
    partial = demand.outside_offset(step).copy()
    demand.anchor(step, prices)
    assert np.array_equal(partial[~rows], before[~rows])
    assert np.array_equal(partial[rows], demand.outside_offset(step)[rows])
    assert np.all(partial[rows] != before[rows])
