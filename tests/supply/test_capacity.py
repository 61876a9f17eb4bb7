"""The plant and the order book: one delivery ramp (the class's ramps reproduced), conservation of orders,
more capacity never delivering less, stock built before the launch, and the expansion rule."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from evlaunch.entry.reference_class import fit_brand, ramp_fraction
from evlaunch.supply.capacity import (
    MAX_WAIT_MONTHS,
    Book,
    Plant,
    capacity_ramp,
    delivery_probability,
    plant_month,
    run_plant,
    serve,
)

volumes = st.floats(0.0, 1e6)
HORIZON = 36


PLANT = dict(capacity=10_000.0, launch=3.0, prelaunch=0.0, midpoint=6.0, width=2.0, expansion=0.0, lead=6.0,
             expansion_ramp=3.0, backlog_months=3.0, persistence=3.0, binding=0.9)


def plant(draws: int = 1, **changes: float) -> Plant:
    """A plant of `draws` identical draws: `PLANT` with `changes`."""
    values = {**PLANT, **changes}
    full = {key: np.full(draws, float(value)) for key, value in values.items()}
    return Plant(full["capacity"], full["launch"], full["prelaunch"], full["midpoint"], full["width"],
                 full["expansion"], full["lead"], full["expansion_ramp"], full["backlog_months"], full["persistence"],
                 full["binding"])


def totals(months, name: str) -> np.ndarray:
    return np.stack([getattr(month, name) for month in months], axis=1)


def test_the_expansion_ramp_is_zero_before_production_and_reaches_one_after_ramp_months():
    months = np.arange(-3, 15)
    ramp = capacity_ramp(months, np.full(months.shape, 6.0))
    assert np.all(ramp[months < 0] == 0.0)
    assert ramp[months == 0][0] == pytest.approx(1 / 6)
    assert np.all(ramp[months >= 5] == 1.0)  # month 5 is the sixth month of production
    assert np.all(np.diff(ramp) >= 0) and np.all((ramp >= 0) & (ramp <= 1))


def test_with_a_class_brands_own_plateau_the_plant_delivers_its_fitted_ramp():
    """One ramp, counted once: a brand of the class, given its own plateau as capacity and orders that never
    bind, delivers exactly its fitted logistic ramp from its first month on sale."""
    months = np.arange(1, 19)
    truth = 12_000 / (1 + np.exp(-(months - 7.0) / 2.5))
    brand = fit_brand("test", months, truth)
    launch = 4
    plain = plant(capacity=brand.plateau, launch=float(launch), midpoint=brand.midpoint, width=brand.width)
    orders = np.full((1, launch + len(months)), 1e9)
    result = run_plant(plain, orders, np.zeros(1))
    delivered = totals(result, "deliveries")[0]
    assert np.all(delivered[:launch] == 0.0)
    np.testing.assert_allclose(delivered[launch:], truth, rtol=1e-5)


def test_stock_built_before_the_launch_is_delivered_from_it():
    early = plant(prelaunch=2.0, launch=5.0)
    orders = np.zeros((1, 12))
    orders[0, 5] = 1e6  # a launch rush
    result = run_plant(early, orders, np.zeros(1))
    output, delivered = totals(result, "output")[0], totals(result, "deliveries")[0]
    assert output[2] == 0.0 and output[3] > 0.0  # production starts two months before the launch
    assert np.all(delivered[:5] == 0.0)
    assert delivered[5] == pytest.approx(output[3] + output[4] + output[5])  # the stock and the month's output
    assert np.all(delivered[6:] == pytest.approx(output[6:]))


@settings(max_examples=300, deadline=None)
@given(arrays(np.float64, 5, elements=volumes), arrays(np.float64, 5, elements=volumes),
       arrays(np.float64, 5, elements=volumes), arrays(np.float64, 5, elements=volumes),
       arrays(np.float64, 5, elements=st.floats(0.0, 1.0)), st.floats(0.0, 0.2))
def test_a_month_conserves_orders_and_never_delivers_more_than_it_has(orders, output, stock, backlog, cancellation,
                                                                      per_month_waited):
    """orders = deliveries + cancellations + change in backlog; deliveries within output + stock and the
    waiting orders; cancellations within what is left."""
    delivered, cancelled, carried, stock_left = serve(orders, output, stock, backlog, cancellation, per_month_waited)
    np.testing.assert_allclose(orders, delivered + cancelled + (carried - backlog), rtol=1e-12, atol=1e-6)
    assert np.all(delivered <= output + stock + 1e-9) and np.all(delivered <= backlog + orders + 1e-9)
    assert np.all(cancelled >= 0) and np.all(carried >= 0) and np.all(stock_left >= -1e-9)
    np.testing.assert_allclose(stock_left, stock - np.maximum(delivered - output, 0.0), atol=1e-6)


def test_cancellations_rise_with_the_wait():
    backlog = np.array([10_000.0, 10_000.0])
    output = np.array([5_000.0, 1_000.0])  # a wait of 1 and 9 months for what is left
    _, cancelled, _, _ = serve(np.zeros(2), output, np.zeros(2), backlog, np.full(2, 0.05), 0.02)
    left = backlog - output
    np.testing.assert_allclose(cancelled / left, [0.05 + 0.02 * 1.0, 0.05 + 0.02 * 9.0])
    _, flat, _, _ = serve(np.zeros(2), output, np.zeros(2), backlog, np.full(2, 0.05), 0.0)
    np.testing.assert_allclose(flat / left, 0.05)


@settings(max_examples=150, deadline=None)
@given(arrays(np.float64, 24, elements=st.floats(0.0, 5e4)), st.floats(1_000, 20_000), st.floats(0, 20_000),
       st.floats(0.0, 0.3), st.floats(0.0, 0.05), st.floats(0.0, 3.0))
def test_more_capacity_never_lowers_cumulative_deliveries_and_the_book_balances(orders, capacity, extra,
                                                                                cancellation, per_month_waited,
                                                                                prelaunch):
    """A bigger plant may deliver less in a month (it cleared its backlog earlier) but never fewer cars by
    any month; over the months orders = deliveries + cancellations + the backlog left."""
    book = orders[None, :]
    small = run_plant(plant(capacity=capacity, prelaunch=prelaunch), book, np.array([cancellation]),
                      per_month_waited)
    large = run_plant(plant(capacity=capacity + extra, prelaunch=prelaunch), book, np.array([cancellation]),
                      per_month_waited)
    small_cumulative = np.cumsum(totals(small, "deliveries")[0])
    large_cumulative = np.cumsum(totals(large, "deliveries")[0])
    assert np.all(large_cumulative >= small_cumulative - 1e-6 * (1 + np.cumsum(orders)))
    for result in (small, large):
        balance = totals(result, "deliveries").sum() + totals(result, "cancellations").sum() + result[-1].backlog[0]
        assert balance == pytest.approx(orders.sum(), rel=1e-9, abs=1e-6)


def test_the_expansion_is_ordered_only_when_the_backlog_persists():
    """Rule: at capacity with a backlog above 3 months of installed capacity for 3 months running -> order;
    it produces after its lead time, on its own ramp."""
    rule = plant(draws=3, capacity=10_000.0, launch=0.0, midpoint=0.5, width=0.3, expansion=5_000.0, lead=4.0,
                 expansion_ramp=1.0)
    orders = np.zeros((3, HORIZON))
    orders[0, 0] = 45_000.0         # one launch spike: backlog > 30,000 for a month only
    orders[1, :] = 15_000.0         # demand above capacity every month: backlog grows for good
    orders[2, :] = 9_000.0          # demand below capacity: no backlog
    result = run_plant(rule, orders, np.zeros(3))
    backlog = totals(result, "backlog")
    ordered = totals(result, "expansion_ordered")
    assert not ordered[0].any() and not ordered[2].any()
    assert ordered[1].sum() == 1                      # ordered once
    month = int(np.flatnonzero(ordered[1])[0])
    over = backlog[1] > 30_000.0
    assert over[month - 2:month + 1].all() and not over[:month - 2].all()  # the third month running over
    output = totals(result, "output")[1]
    assert np.all(output[:month + 4] < 10_000.0 + 1e-6) and output[month + 4] == pytest.approx(15_000.0, rel=1e-6)


def test_no_expansion_without_the_option():
    rule = plant(capacity=10_000.0, launch=0.0, midpoint=0.5, width=0.3, expansion=0.0)
    result = run_plant(rule, np.full((1, HORIZON), 20_000.0), np.zeros(1))
    assert not totals(result, "expansion_ordered").any()
    assert np.all(totals(result, "output") <= 10_000.0 + 1e-6)


def test_the_delivery_ramp_starts_at_the_first_production_month():
    draws = plant(capacity=12_000.0, launch=2.0, prelaunch=0.0)
    output = totals(run_plant(draws, np.zeros((1, 10)), np.zeros(1)), "output")[0]
    expected = 12_000.0 * ramp_fraction(np.arange(10)[None, :] - 2.0 + 1.0, np.array([6.0]), np.array([2.0]))[0]
    np.testing.assert_allclose(output, expected)


def test_a_plant_still_on_its_ramp_never_orders_the_expansion():
    """However long the queue, a plant below `binding_utilisation` of its installed capacity (still climbing
    the delivery ramp) does not order the next phase: the backlog is the ramp's, not the plant's size."""
    slow = plant(capacity=10_000.0, launch=0.0, midpoint=30.0, width=3.0, expansion=5_000.0)
    result = run_plant(slow, np.full((1, HORIZON), 50_000.0), np.zeros(1))
    output, backlog = totals(result, "output")[0], totals(result, "backlog")[0]
    assert np.all(backlog[3:] > 3 * 10_000.0)           # a queue far above the rule's threshold throughout
    assert np.all(output < 0.9 * 10_000.0)              # but the ramp never reaches 90% within the horizon
    assert not totals(result, "expansion_ordered").any()
    assert not totals(result, "at_capacity").any()


def test_a_plant_at_capacity_with_a_backlog_orders_in_the_persistence_month():
    """The same queue at a plant that reaches 90% of capacity in a known month: the order comes exactly
    `persistence_months` months after the first month at capacity with the backlog over the threshold."""
    rule = plant(draws=2, capacity=10_000.0, launch=0.0, midpoint=6.0, width=1.0, expansion=5_000.0,
                 persistence=4.0)
    result = run_plant(rule, np.full((2, HORIZON), 50_000.0), np.zeros(2))
    output, backlog = totals(result, "output")[0], totals(result, "backlog")[0]
    binding = totals(result, "at_capacity")[0]
    first = int(np.flatnonzero(binding & (backlog > 30_000.0))[0])
    assert first > 3                                      # the backlog was over the threshold before that
    ordered = totals(result, "expansion_ordered")
    assert np.flatnonzero(ordered[0]).tolist() == [first + 3]
    online = first + 3 + 6                                # the lead time is 6 months
    np.testing.assert_array_equal(binding[:online], output[:online] >= 9_000.0)
    # installed capacity counts the expansion from the month it produces, at its full rate; while the new
    # phase ramps the plant is below 90% of it, so not at capacity
    installed = totals(result, "installed")[0]
    assert np.all(installed[:online] == 10_000.0) and np.all(installed[online:] == 15_000.0)
    assert not binding[online]


def test_a_supply_shock_below_the_binding_share_pauses_the_rule():
    """A plant at capacity whose output a shock cuts below 90% is not at capacity: the count restarts."""
    rule = plant(capacity=10_000.0, launch=0.0, midpoint=0.5, width=0.3, expansion=5_000.0, persistence=3.0)
    book = Book.empty(1)
    ordered_at, binding = [], []
    for t in range(12):
        cut = 0.5 if t in (2, 5, 8) else 0.0            # a shock every third month breaks each run of three
        month = plant_month(rule, book, t, np.full(1, 50_000.0), np.zeros(1), 0.0, cut)
        binding.append(bool(month.at_capacity[0]))
        if month.expansion_ordered[0]:
            ordered_at.append(t)
    assert binding == [False, True, False, True, True, False, True, True, False, True, True, True]
    assert ordered_at == [11]                           # months 9, 10, 11 are the first three running


@settings(max_examples=150, deadline=None)
@given(arrays(np.float64, 30, elements=st.floats(0.0, 5e4)), st.floats(1_000, 20_000), st.floats(0, 20_000),
       st.floats(0.0, 0.3), st.floats(0.0, 0.05), st.floats(0.5, 12.0))
def test_the_expansion_never_lowers_cumulative_deliveries(orders, capacity, expansion, cancellation,
                                                          per_month_waited, midpoint):
    """More capacity never delivers fewer cars: the plant with the expansion option delivers at least as many
    by every month as the same plant without it (they are the same until the expansion produces)."""
    book = orders[None, :]
    common = dict(capacity=capacity, launch=0.0, midpoint=midpoint, width=1.0, lead=2.0, persistence=2.0)
    without = run_plant(plant(**common, expansion=0.0), book, np.array([cancellation]), per_month_waited)
    with_option = run_plant(plant(**common, expansion=expansion), book, np.array([cancellation]), per_month_waited)
    before = np.cumsum(totals(without, "deliveries")[0])
    after = np.cumsum(totals(with_option, "deliveries")[0])
    assert np.all(after >= before - 1e-6 * (1 + np.cumsum(orders)))
    assert np.all(totals(with_option, "output")[0] >= totals(without, "output")[0] - 1e-9)


def test_an_order_is_delivered_with_the_chance_it_survives_each_month_of_its_wait():
    queue, output, stock = np.array([0.0, 3000.0, 3000.0, 5000.0, 100.0]), np.array([1000.0, 1000.0, 0.0, 1000.0, 0.0]), \
        np.array([0.0, 0.0, 0.0, 2000.0, 500.0])
    chance = delivery_probability(queue, output, stock, np.full(5, 0.02), 0.01)
    wait = np.array([0.0, 3.0, MAX_WAIT_MONTHS, 3.0, 0.0])            # (queue - stock) / output months
    np.testing.assert_allclose(chance, (1.0 - np.clip(0.02 + 0.01 * wait, 0.0, 1.0)) ** wait, rtol=1e-12)
    assert chance[0] == 1.0 and chance[4] == 1.0                      # no queue ahead (or stock covers it)
    assert chance[2] == 0.0                                           # nothing produced: every order cancels
    np.testing.assert_allclose(chance[1], 0.95 ** 3, rtol=1e-12)
