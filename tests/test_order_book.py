"""The reference model's ramp, order book and expansion: one ramp counted once (orders never depend on the
delivery ramp and are flat from the launch with full awareness and no plant limit), orders balance, the
expansion follows the stated rule, and the demand prior comes from what was public."""

import numpy as np
import pytest

from evlaunch.config.columns import (
    BACKLOG_END,
    BACKLOG_MONTH,
    CANCELLATIONS,
    DELIVERIES,
    EXPANSION_ORDERED_MONTH,
    FIRST_12_MONTHS_DELIVERIES,
    LAUNCH_ORDERS_DRAWN,
    ORDERS,
    ORDERS_MONTH,
    monthly,
    path_column,
    yearly,
)
from evlaunch.config.scenario import parse_scenario
from evlaunch.runs.sampling import sample_draws
from evlaunch.simulation import simulate
from evlaunch.simulation.model import prepare
from evlaunch.simulation.parameters import AWARENESS_EVENTS

DRAWS = 48


@pytest.fixture(scope="module")
def inputs(reference_model):
    return sample_draws(reference_model, 5, 0, DRAWS)


@pytest.fixture(scope="module")
def fixed_price_model(reference_text, reference_path):
    """The reference model with the entrant's guide price held fixed: a best-response price reacts to the
    backlog (the capacity shadow price), which the delivery ramp moves; that is the price channel, not a
    second ramp, so the ramp invariants are checked at a fixed price."""
    text = reference_text.replace('price_policy = "best_response"', 'price_policy = "fixed"')
    assert text != reference_text
    return prepare(parse_scenario(text, str(reference_path)), reference_path.parent)


@pytest.fixture(scope="module")
def fixed_prices_model(reference_text, reference_path):
    """The reference model with every price fixed: incumbents re-price against the share of the entrant's orders
    expected to be delivered (`supply.capacity.delivery_probability`), which the delivery ramp moves; that too is
    the price channel, not a second ramp."""
    text = reference_text.replace('price_policy = "best_response"', 'price_policy = "fixed"')
    text = text.replace('reprice = "bertrand"', 'reprice = "fixed"')
    assert 'reprice = "fixed"' in text and 'price_policy = "fixed"' in text
    return prepare(parse_scenario(text, str(reference_path)), reference_path.parent)


def run(model, inputs, **overrides):
    changed = dict(inputs)
    for key, value in overrides.items():
        changed[key] = np.full(DRAWS, float(value))
    return simulate(model, changed)


def monthly_series(out, path, name, model):
    return np.stack([out[monthly(path, name, label)] for label in model.scenario.months], axis=1).astype(float)


def test_orders_never_depend_on_the_delivery_ramp(fixed_prices_model, inputs):
    """One ramp, counted once: the class's ramp shape moves deliveries, never what buyers order."""
    reference_model = fixed_prices_model
    slow = run(reference_model, inputs, **{AWARENESS_EVENTS[0]: 0.9, AWARENESS_EVENTS[1]: 0.9})
    fast = run(reference_model, inputs, **{AWARENESS_EVENTS[0]: 0.1, AWARENESS_EVENTS[1]: 0.1})
    for year in reference_model.scenario.years:
        np.testing.assert_array_equal(slow[yearly("own", ORDERS, year)], fast[yearly("own", ORDERS, year)])
    assert fast[yearly("own", DELIVERIES, 2025)].sum() > slow[yearly("own", DELIVERIES, 2025)].sum()


def test_with_unlimited_capacity_and_full_awareness_orders_are_flat_from_the_first_month(fixed_price_model, inputs):
    """A car launched three months later orders, in its first month on sale, what the earlier car orders in
    its fourth (the same calendar month): buyers do not ramp. (Incumbents' ageing, which runs from the
    entrant's launch, is switched off; re-pricing of incumbents and the price-band fringe differs a little between
    the two launch dates: up to ~3.5% in single draws.)"""
    reference_model = fixed_price_model
    flat = {"product.awareness_outside_reach": 1.0, "product.launch_order_multiple": 0.0,
            "paths.own.capacity_per_year": 1e8, "paths.own.stages.0.failure": 0.0,
            "paths.own.stages.1.failure": 0.0, "paths.own.stages.1.months": 1.0, "product.ready_months": 0.0,
            "dynamics.ageing_per_year": 0.0}
    early = run(reference_model, inputs, **flat, **{"paths.own.stages.0.months": 2.0})
    late = run(reference_model, inputs, **flat, **{"paths.own.stages.0.months": 5.0})
    assert np.all(early[path_column("own", "launch_month_index")] == 3.0)
    assert np.all(late[path_column("own", "launch_month_index")] == 6.0)
    orders_early = monthly_series(early, "own", ORDERS_MONTH, reference_model)
    orders_late = monthly_series(late, "own", ORDERS_MONTH, reference_model)
    for month in (6, 7, 8):
        np.testing.assert_allclose(orders_late[:, month], orders_early[:, month], rtol=0.05)
    # and the deliveries follow the orders (the plant never binds): the first month delivers in full
    delivered = monthly_series(late, "own", "deliveries_month", reference_model)
    np.testing.assert_allclose(delivered[:, 6], orders_late[:, 6], rtol=1e-5)


def test_orders_balance_deliveries_cancellations_and_the_backlog(reference_model, inputs):
    out = simulate(reference_model, inputs)
    years = reference_model.scenario.years
    for path in reference_model.scenario.paths:
        ordered = sum(out[yearly(path, ORDERS, year)] for year in years)
        delivered = sum(out[yearly(path, DELIVERIES, year)] for year in years)
        cancelled = sum(out[yearly(path, CANCELLATIONS, year)] for year in years)
        left = out[yearly(path, BACKLOG_END, years[-1])]
        np.testing.assert_allclose(ordered, delivered + cancelled + left, rtol=1e-9, atol=1e-3)
        assert np.all(out[path_column(path, FIRST_12_MONTHS_DELIVERIES)] <= delivered + 1e-6)
    # the orders waiting at the launch are part of the launch month's orders
    assert np.all(out[LAUNCH_ORDERS_DRAWN] > 0)


def test_the_expansion_follows_the_stated_rule(reference_model, inputs):
    never = run(reference_model, inputs, **{"product.expansion_backlog_months": 60.0})
    assert not np.isfinite(never[path_column("own", EXPANSION_ORDERED_MONTH)]).any()
    out = simulate(reference_model, inputs)
    ordered = out[path_column("own", EXPANSION_ORDERED_MONTH)]
    assert np.isfinite(ordered).sum() >= 3  # the reference run's backlog persists in some draws
    backlog = monthly_series(out, "own", BACKLOG_MONTH, reference_model)
    capacity = inputs["paths.own.capacity_per_year"] / 12.0
    threshold = reference_model.parameters(inputs).product.expansion_backlog_months
    persistence = int(np.ceil(reference_model.parameters(inputs).product.expansion_persistence_months[0]))
    utilisation = reference_model.parameters(inputs).product.binding_utilisation
    delivered = monthly_series(out, "own", "deliveries_month", reference_model)
    for row in np.flatnonzero(np.isfinite(ordered)):
        month = int(ordered[row])
        window = slice(month - persistence + 1, month + 1)
        # float32 outputs: compare with a little room; at capacity (not on the ramp) with the backlog over
        assert np.all(backlog[row, window] > threshold[row] * capacity[row] * (1 - 1e-5))
        assert np.all(delivered[row, window] >= utilisation[row] * capacity[row] * (1 - 1e-5))
    # more capacity: the rule fires less often, and deliveries by any year end never fall
    big = run(reference_model, inputs, **{"paths.own.capacity_per_year": 400_000.0})
    assert np.isfinite(big[path_column("own", EXPANSION_ORDERED_MONTH)]).sum() <= np.isfinite(ordered).sum()
    # an expansion costs its capex: without any capex, NPV is no lower in every draw
    free = run(reference_model, inputs, **{"paths.own.expansion_capex": 0.0})
    assert np.all(free["own.npv"] >= out["own.npv"] - 1e-3)
    assert np.any(free["own.npv"] > out["own.npv"] + 1.0)


def test_the_demand_prior_is_what_was_public(reference_model):
    prior = reference_model.launch_orders
    assert prior is not None and len(prior.events) >= 8
    assert not prior.events.duplicated(subset=["brand", "model"]).any()
    assert not prior.events["event"].str.contains("daily|single day").any()
    assert reference_model.reach is not None and reference_model.reach[0] == pytest.approx(0.14)
