"""What every path of one month shares (`simulation.simulate.NoEntrantMonth`) is what each path would compute.

The paths run month-major and take, for every draw whose entrant is not on sale, the month's market without
the entrant computed once; they compute only their own draws. These tests check, bit for bit, that this
changes nothing: the shared market is a path's own market where its entrant is not on sale, the no-purchase
shares filled draw by draw are those of the whole arrays, and a path's outputs do not depend on which other
paths share its months (nor on the re-solves they share).
"""

import numpy as np
import pytest

from evlaunch.entry.paths import path_outcomes
from evlaunch.runs.sampling import sample_draws
from evlaunch.simulation.simulate import (
    NoEntrantMonth,
    PathRun,
    entrant_utility,
    path_terms,
    prepare_setting,
    simulate_paths,
)
from evlaunch.simulation.welfare import (
    NOT_COMPUTED,
    NOT_ON_SALE,
    ON_SALE_KEPT,
    outside_shares,
    update_outside_shares,
)

DRAWS = 24


@pytest.fixture(scope="module")
def reference_inputs(reference_model):
    return sample_draws(reference_model, 5, 0, DRAWS)


def every_path_terms(model, parameters):
    outcomes = path_outcomes(model.scenario.paths, parameters.paths)
    return {name: path_terms(outcomes[name], parameters.paths, parameters) for name in model.scenario.paths}


def test_the_shared_market_is_each_paths_own_where_its_entrant_is_not_on_sale(reference_model, reference_inputs):
    """Each path's entrant (its utility, guide price, launch month) left off the shelf: the month's shares of
    every product, by consumer type and nationally, are the shared ones, bit for bit."""
    parameters = reference_model.parameters(reference_inputs)
    setting = prepare_setting(reference_model, parameters)
    demand = setting.demand
    checked = 0
    for terms in every_path_terms(reference_model, parameters).values():
        for t in (0, 3, 20):
            shared = NoEntrantMonth(setting, t)
            after_launch, _, utility = entrant_utility(setting, terms, t)
            waiting = ~after_launch
            typed, shares = demand.month(demand.lead + t, np.zeros(DRAWS), utility + 0.7,
                                         parameters.product.price * 1.3, np.zeros(DRAWS, dtype=bool),
                                         terms.launch_index, setting.pricing.lineup_prices(shared.prices))
            np.testing.assert_array_equal(typed[waiting], shared.typed[waiting])
            np.testing.assert_array_equal(shares[waiting], shared.shares[waiting])
            assert np.all(shared.typed[:, :, -1] == 0.0)
            checked += waiting.sum()
    assert checked > 0


def test_outside_shares_filled_draw_by_draw_are_those_of_the_whole_arrays():
    """`update_outside_shares` with each code: the rows it computes equal `outside_shares` of the whole arrays,
    ON_SALE_KEPT keeps the no-entry share given, NOT_COMPUTED leaves the row untouched."""
    rng = np.random.default_rng(3)
    draws, types, products = 9, 4, 7
    raw = rng.random((2, draws, types, products))
    typed, before = raw / (0.4 + raw.sum(axis=3, keepdims=True))
    on = np.array([True, True, False, True, False, True, True, False, True])
    whole = outside_shares(typed, before, on, (4, 6))
    codes = np.array([0, ON_SALE_KEPT, NOT_ON_SALE, 1, NOT_COMPUTED, ON_SALE_KEPT, 2, NOT_ON_SALE, NOT_COMPUTED])
    rows_of_before = np.array([0, 3, 6])                     # the draws whose no-entry shares are passed
    out = np.full((5, draws, types), -7.0)
    out[2, [1, 5]] = whole[2, [1, 5]]                         # ON_SALE_KEPT: the share already there
    update_outside_shares(out, typed, before[rows_of_before], codes, (4, 6))
    computed = codes != NOT_COMPUTED
    np.testing.assert_array_equal(out[:, computed], whole[:, computed])
    assert np.all(out[:, ~computed] == -7.0)


def test_a_paths_outputs_do_not_depend_on_the_paths_that_share_its_months(reference_model, reference_inputs):
    """Every path run alone equals the same path run month-major with all the others (which share the month's
    market without the entrant and the launch-month no-entrant re-solves), bit for bit."""
    parameters = reference_model.parameters(reference_inputs)
    terms = every_path_terms(reference_model, parameters)
    together = dict(zip(terms, simulate_paths(prepare_setting(reference_model, parameters), list(terms.values()))))
    names = list(terms)
    for name in (names[0], names[-1]):
        alone = simulate_paths(prepare_setting(reference_model, reference_model.parameters(reference_inputs)),
                               [terms[name]])[0]
        assert_same_run(alone, together[name])


def assert_same_run(one: PathRun, other: PathRun) -> None:
    for key, values in one.series.national.items():
        np.testing.assert_array_equal(values, other.series.national[key], err_msg=key)
    for key, values in one.series.regional.items():
        np.testing.assert_array_equal(values, other.series.regional[key], err_msg=key)
    np.testing.assert_array_equal(one.series.price_change, other.series.price_change)
    np.testing.assert_array_equal(one.series.fringe_change, other.series.fringe_change)
    for field in ("response", "served", "book_value", "profit", "buyers", "buyers_without", "orders_without",
                  "rival_choices", "rival_units"):
        np.testing.assert_array_equal(getattr(one.effects, field), getattr(other.effects, field), err_msg=field)
    np.testing.assert_array_equal(one.state.diversion, other.state.diversion)
    assert one.pricing is not None and other.pricing is not None
    np.testing.assert_array_equal(one.pricing.counterfactual, other.pricing.counterfactual)
    np.testing.assert_array_equal(one.pricing.failures, other.pricing.failures)


def test_the_shares_of_some_draws_are_those_of_every_draw(reference_model, reference_inputs):
    """`Demand.shares(state, rows)`, which a path uses for its own draws, is the rows of the whole computation,
    bit for bit, whichever draws are asked for."""
    parameters = reference_model.parameters(reference_inputs)
    demand = prepare_setting(reference_model, parameters).demand
    rng = np.random.default_rng(1)
    state = demand.state(demand.lead + 5, np.zeros(DRAWS), rng.normal(size=DRAWS), parameters.product.price,
                         rng.random(DRAWS) < 0.5, np.zeros(DRAWS))
    typed, shares = demand.shares(state)
    for rows in (rng.random(DRAWS) < 0.3, np.arange(DRAWS) == DRAWS - 1, np.ones(DRAWS, dtype=bool)):
        some_typed, some_shares = demand.shares(state, rows)
        np.testing.assert_array_equal(some_typed, typed[rows])
        np.testing.assert_array_equal(some_shares, shares[rows])
