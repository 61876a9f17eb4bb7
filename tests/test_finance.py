"""The entrant's money against closed forms: annuities and perpetuities for the NPV, a hand-worked cash
path for the peak cash need, and the learning curve's doublings for the unit cost."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from evlaunch.config.scenario import DEFAULT_LEARNING_BASE
from evlaunch.finance import (
    learning_factor,
    net_present_value,
    peak_cash_need,
    terminal_value,
    unit_cost,
)


def monthly_discount(annual_rate: float) -> float:
    """v = (1 + r)^(-1/12): the value today of 1 CNY one month later."""
    return (1.0 + annual_rate) ** (-1.0 / 12.0)


@pytest.mark.parametrize("annual_rate", [0.0, 0.08, 0.25])
@pytest.mark.parametrize("months", [1, 12, 60])
def test_level_monthly_cash_flows_are_an_annuity(annual_rate, months):
    """C each month-end for T months: NPV = C v (1 - v^T) / (1 - v) (C T when the rate is zero)."""
    c = 1_000_000.0
    v = monthly_discount(annual_rate)
    expected = c * months if annual_rate == 0 else c * v * (1 - v**months) / (1 - v)
    npv = net_present_value(np.full((1, months), c), np.array([annual_rate]), np.zeros(1))
    assert npv[0] == pytest.approx(expected, rel=1e-12)


def test_a_terminal_value_is_discounted_from_the_horizon():
    v = monthly_discount(0.1)
    npv = net_present_value(np.zeros((1, 36)), np.array([0.1]), np.array([5e9]))
    assert npv[0] == pytest.approx(5e9 * v**36, rel=1e-12)
    assert npv[0] == pytest.approx(5e9 / 1.1**3, rel=1e-12)  # 36 months = 3 years at 10% a year


def test_an_annuity_plus_its_perpetuity_tail_is_the_perpetuity():
    """T months of C plus a terminal value worth C v / (1 - v) at T (the rest of a monthly perpetuity)
    is a perpetuity from month 1: C v / (1 - v)."""
    c, rate = 2.5e8, 0.09
    v = monthly_discount(rate)
    perpetuity = c * v / (1 - v)
    npv = net_present_value(np.full((1, 48), c), np.array([rate]), np.array([perpetuity]))
    assert npv[0] == pytest.approx(perpetuity, rel=1e-12)


def test_each_draw_is_discounted_at_its_own_rate():
    cash = np.ones((3, 24))
    rates = np.array([0.0, 0.05, 0.2])
    npv = net_present_value(cash, rates, np.zeros(3))
    for k in range(len(rates)):
        assert npv[k] == pytest.approx(net_present_value(cash[:1], rates[k:k + 1], np.zeros(1))[0], rel=1e-15)
    assert npv[0] > npv[1] > npv[2]


def test_peak_cash_need_of_a_worked_cash_path():
    # cumulative: -5, -8, -4, -10, +10: the deepest point is -10
    assert peak_cash_need(np.array([[-5.0, -3.0, 4.0, -6.0, 20.0]]))[0] == 10.0
    assert peak_cash_need(np.array([[3.0, 1.0, 2.0]]))[0] == 0.0  # never below zero


@settings(max_examples=200, deadline=None)
@given(arrays(np.float64, st.integers(1, 40), elements=st.floats(-1e9, 1e9)))
def test_peak_cash_need_is_the_deepest_cumulative_outflow(cash):
    running, deepest = 0.0, 0.0
    for flow in cash:
        running += flow
        deepest = max(deepest, -running)
    assert peak_cash_need(cash[None, :])[0] == pytest.approx(deepest, rel=1e-9, abs=1e-3)


def test_terminal_value_is_the_multiple_of_the_last_year_and_never_negative():
    cash = np.concatenate([np.full(24, -7.0), np.full(12, 10.0)])[None, :]
    assert terminal_value(cash, np.array([8.0]))[0] == 8.0 * 120.0
    assert terminal_value(-cash, np.array([8.0]))[0] == 0.0
    operating = np.full((1, 36), 5.0)
    assert terminal_value(cash, np.array([2.0]), capex_free_flow=operating)[0] == 2.0 * 60.0


def test_unit_cost_without_learning_is_battery_plus_rest_times_the_path_factor():
    cost = unit_cost(np.array([60.0]), np.array([800.0]), np.array([120_000.0]), np.array([1.1]),
                     np.array([DEFAULT_LEARNING_BASE / 2]), np.array([0.15]), np.array([DEFAULT_LEARNING_BASE]))
    assert cost[0] == pytest.approx((60 * 800 + 120_000) * 1.1, rel=1e-15)


@pytest.mark.parametrize("doublings", [0, 1, 2, 3.5])
def test_each_doubling_of_output_beyond_the_reference_cuts_cost_by_the_learning_rate(doublings):
    learning_rate = 0.12
    base = unit_cost(np.array([75.0]), np.array([900.0]), np.array([100_000.0]), np.array([1.0]),
                     np.array([DEFAULT_LEARNING_BASE]), np.array([learning_rate]), np.array([DEFAULT_LEARNING_BASE]))
    later = unit_cost(np.array([75.0]), np.array([900.0]), np.array([100_000.0]), np.array([1.0]),
                      np.array([DEFAULT_LEARNING_BASE * 2**doublings]), np.array([learning_rate]),
                      np.array([DEFAULT_LEARNING_BASE]))
    pack = 75.0 * 900.0
    # closed form: only the rest of the vehicle learns; the pack costs the same at any cumulative output
    assert later[0] == pytest.approx(pack + 100_000.0 * (1 - learning_rate) ** doublings, rel=1e-12)
    assert later[0] - base[0] == pytest.approx(100_000.0 * ((1 - learning_rate) ** doublings - 1), rel=1e-9, abs=1e-6)


def test_learning_leaves_the_pack_cost_to_the_pack_price_path():
    """With no rest-of-vehicle cost, output never lowers the unit cost: the pack's fall is the price path's."""
    cumulative = np.array([0.0, DEFAULT_LEARNING_BASE, 1e6])
    cost = unit_cost(np.full(3, 80.0), np.full(3, 700.0), np.zeros(3), np.full(3, 1.05), cumulative, np.full(3, 0.15),
                     np.full(3, DEFAULT_LEARNING_BASE))
    np.testing.assert_allclose(cost, 80.0 * 700.0 * 1.05, rtol=1e-15)


@pytest.mark.parametrize("experience_base", [10_000.0, 50_000.0, 200_000.0])
def test_learning_is_one_up_to_the_experience_base_and_one_minus_the_rate_per_doubling_after(experience_base):
    """Closed form: factor 1 for any cumulative output up to the base, (1 - r)^k at k doublings beyond it."""
    rate = np.full(6, 0.1)
    base = np.full(6, experience_base)
    below = learning_factor(np.array([0.0, 1.0, 0.3, 0.7, 0.999, 1.0]) * experience_base, rate, base)
    np.testing.assert_array_equal(below, 1.0)
    doublings = np.array([0.5, 1.0, 2.0, 3.0, 4.5, 6.0])
    after = learning_factor(experience_base * 2.0**doublings, rate, base)
    np.testing.assert_allclose(after, 0.9**doublings, rtol=1e-12)


def test_a_larger_experience_base_delays_learning_at_the_same_output():
    """600k cars: 6 doublings beyond 10k but only 2 beyond 150k -- the same output learns far less."""
    rate = np.full(2, 0.1)
    factor = learning_factor(np.full(2, 600_000.0), rate, np.array([10_000.0, 150_000.0]))
    np.testing.assert_allclose(factor, [0.9 ** np.log2(60.0), 0.9 ** 2.0], rtol=1e-12)
    assert factor[0] < 0.55 < 0.8 < factor[1]
