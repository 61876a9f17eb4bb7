"""`Demand.type_terms`: the consumer types' utility terms of a time step are computed once and shared by every
state of that step (the no-entrant market, the re-solves and the month's own state); moving to another step
recomputes them, and the shared array is read-only so no caller can change another's state."""

from __future__ import annotations

import numpy as np
import pytest

from evlaunch.market.demand import Demand
from evlaunch.market.regions import nev_extras
from evlaunch.runs.sampling import sample_draws
from evlaunch.supply.margin_fit import calibrate_market

DRAWS = 4


@pytest.fixture(scope="module")
def demand(reference_model):
    parameters = reference_model.parameters(sample_draws(reference_model, 9, 0, DRAWS))
    return Demand(reference_model.market, parameters, calibrate_market(reference_model.market, parameters))


def expected_terms(demand, step):
    """The terms from their definition (regional NEV terms expanded to types + tastes + PHEV drift)."""
    extras = demand.types.expand(nev_extras(demand.regions, demand.is_nev, demand.plate[step], demand.campaign[step],
                                            demand.charging_term[:, :, step], demand.nev_drift[:, step]))
    return extras + demand.taste_utility + demand.phev_drift[:, step, None, None] * demand.is_phev[None, None, :]


def state(demand, step, price=250_000.0):
    return demand.state(step, np.zeros(DRAWS), np.zeros(DRAWS), np.full(DRAWS, price), np.ones(DRAWS, dtype=bool),
                        np.zeros(DRAWS))


def test_one_steps_states_share_its_terms_and_another_step_gets_its_own(demand):
    early, late = demand.lead, demand.periods - 1     # years apart: the NEV drift and charging differ
    first = state(demand, early)
    again = state(demand, early, price=300_000.0)     # a re-solve in the same step, other prices
    assert again.extras is first.extras
    assert not first.extras.flags.writeable
    later = state(demand, late)
    np.testing.assert_array_equal(later.extras, expected_terms(demand, late))
    assert not np.array_equal(later.extras, first.extras)
    back = state(demand, early)                         # the earlier step again: recomputed, not stale
    np.testing.assert_array_equal(back.extras, expected_terms(demand, early))
    np.testing.assert_array_equal(first.extras, expected_terms(demand, early))  # the old state kept its terms
