"""Capacity ramp and order book: bounds, monotonicity, conservation of orders, and more capacity never
delivering less."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from evlaunch.supply.capacity import capacity_ramp, serve_orders

volumes = st.floats(0.0, 1e6)


def test_the_ramp_is_zero_before_production_and_reaches_one_after_ramp_months():
    months = np.arange(-3, 15)
    ramp = capacity_ramp(months, np.full(months.shape, 6.0))
    assert np.all(ramp[months < 0] == 0.0)
    assert ramp[months == 0][0] == pytest.approx(1 / 6)
    assert np.all(ramp[months >= 5] == 1.0)  # month 5 is the sixth month of production
    assert np.all(np.diff(ramp) >= 0) and np.all((ramp >= 0) & (ramp <= 1))


def test_a_ramp_of_a_month_or_less_is_full_capacity_at_once():
    assert capacity_ramp(np.array([0.0, 0.0]), np.array([0.0, 1.0])).tolist() == [1.0, 1.0]


@settings(max_examples=200, deadline=None)
@given(st.floats(-24, 120), st.floats(0, 48), st.floats(0, 24))
def test_the_ramp_is_bounded_and_never_falls(month, ramp_months, later):
    now, then = capacity_ramp(np.array([month, month + later]), np.array([ramp_months, ramp_months]))
    assert 0.0 <= now <= then <= 1.0


@settings(max_examples=300, deadline=None)
@given(arrays(np.float64, 5, elements=volumes), arrays(np.float64, 5, elements=volumes),
       arrays(np.float64, 5, elements=volumes), arrays(np.float64, 5, elements=st.floats(0.0, 1.0)))
def test_orders_are_conserved(orders, capacity, backlog, cancellation):
    """orders = deliveries + change in backlog + cancellations, each month and each draw."""
    deliveries, carried = serve_orders(orders, capacity, backlog, cancellation)
    cancelled = (backlog + orders - deliveries) * cancellation
    np.testing.assert_allclose(orders, deliveries + (carried - backlog) + cancelled, rtol=1e-12, atol=1e-6)
    assert np.all(deliveries >= 0) and np.all(deliveries <= capacity) and np.all(carried >= 0)
    assert np.all(deliveries <= backlog + orders)


def test_negative_capacity_delivers_nothing():
    deliveries, carried = serve_orders(np.array([100.0]), np.array([-5.0]), np.array([20.0]), np.array([0.5]))
    assert deliveries[0] == 0.0 and carried[0] == 60.0


def run_book(orders: np.ndarray, capacity: np.ndarray, cancellation: float) -> np.ndarray:
    """Cumulative deliveries of a month-by-month order book."""
    backlog, delivered = np.zeros(1), []
    for month in range(len(orders)):
        served, backlog = serve_orders(orders[month:month + 1], capacity[month:month + 1], backlog,
                                       np.array([cancellation]))
        delivered.append(served[0])
    return np.cumsum(delivered)


@settings(max_examples=200, deadline=None)
@given(arrays(np.float64, 12, elements=volumes), arrays(np.float64, 12, elements=volumes),
       arrays(np.float64, 12, elements=st.floats(0.0, 1e5)), st.floats(0.0, 1.0))
def test_more_capacity_never_lowers_cumulative_deliveries(orders, capacity, extra, cancellation):
    """Month by month a larger plant can deliver less (it has cleared its backlog earlier), but never
    fewer cars in total by any month."""
    assert np.all(run_book(orders, capacity + extra, cancellation)
                  >= run_book(orders, capacity, cancellation) - 1e-6 * (1 + np.cumsum(orders)))
