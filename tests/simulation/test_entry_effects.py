"""The reference scenario's announced rivals and what entry does to buyers, through `simulate`."""

import re

import numpy as np
import pytest

from evlaunch.config import columns
from evlaunch.config.scenario import parse_scenario
from evlaunch.data.loader import load_table
from evlaunch.errors import ScenarioError
from evlaunch.simulation.model import prepare
from evlaunch.simulation.parameters import launch_event_name
from evlaunch.simulation.simulate import prepare_setting, simulate


@pytest.fixture(scope="module")
def fixed_price_model(reference_text, reference_path):
    """The reference scenario with fixed prices (adding the entrant then cannot lower any buyer's surplus)."""
    text = reference_text.replace('reprice = "bertrand"', 'reprice = "fixed"')
    return prepare(parse_scenario(text), reference_path.parent)


@pytest.fixture(scope="module")
def central(fixed_price_model):
    return simulate(fixed_price_model, {})


def test_surplus_change_is_zero_before_the_launch_and_positive_after(fixed_price_model, central):
    scenario = fixed_price_model.scenario
    for path in scenario.paths:
        launch = central[columns.path_column(path, columns.LAUNCH_MONTH_INDEX)][0]
        for year in scenario.years:
            change = central[columns.yearly(path, columns.SURPLUS_CHANGE, year)][0]
            orders = central[columns.yearly(path, columns.ORDERS, year)][0]
            assert change >= 0.0
            assert (change > 0.0) == (orders > 0.0), (path, year, launch)


def test_the_entrant_sells_more_without_the_rivals_at_the_same_prices(fixed_price_model, central):
    scenario = fixed_price_model.scenario
    for path in scenario.paths:
        for year in scenario.years[1:]:
            with_rivals = central[columns.yearly(path, columns.ORDER_SHARE, year)][0]
            without = central[columns.yearly(path, columns.ORDER_SHARE_WITHOUT_RIVALS, year)][0]
            assert without >= with_rivals
            if with_rivals > 0:
                assert without > with_rivals


def test_each_rival_takes_its_buyers_from_somewhere_else(fixed_price_model, central):
    path = next(iter(fixed_price_model.scenario.paths))
    for launch in fixed_price_model.scenario.competition.launches:
        prefix = columns.rival_diversion_prefix(path, launch.name)
        shares = {c[len(prefix):]: central[c][0] for c in central if c.startswith(prefix)}
        if launch.probability != 1.0:   # the central draw's event (0.5) is above Apple's probability: no launch
            assert all(np.isnan(v) for v in shares.values())
            continue
        assert sum(shares.values()) == pytest.approx(1.0, rel=1e-12)
        assert all(v >= 0.0 for v in shares.values())


def test_an_uncertain_launch_happens_in_the_draws_whose_event_is_below_its_probability(reference_model):
    launches = reference_model.scenario.competition.launches
    uncertain = [k for k, launch in enumerate(launches) if launch.probability != 1.0]
    assert uncertain and all(launch_event_name(k) in reference_model.event_names for k in uncertain)
    certain = [k for k in range(len(launches)) if k not in uncertain]
    assert not any(launch_event_name(k) in reference_model.event_names for k in certain)
    k = uncertain[0]
    inputs = {launch_event_name(k): np.array([0.001, 0.999]),
              f"competition.launches.{k}.probability": np.array([0.05, 0.05])}
    demand = prepare_setting(reference_model, reference_model.parameters(inputs)).demand
    assert demand.launch_happens[:, k].tolist() == [True, False]
    assert demand.launch_happens[:, certain].all()


def test_launch_names_must_differ(reference_text):
    text = reference_text.replace('name = "Luxeed S7"', 'name = "Jiyue 01"')
    with pytest.raises((ScenarioError, ValueError), match=r"competition\.launches\.2\.name"):
        parse_scenario(text)


def test_scheduled_prices_are_the_sourced_ones(reference_model):
    sourced = load_table("announced_rivals", as_of=reference_model.scenario.as_of).rows
    prices = dict(zip(sourced["rival"], sourced["price_min_cny"]))
    for launch in reference_model.scenario.competition.launches:
        if isinstance(launch.price, (int, float)):   # a fixed price is a fact: the table's entry price
            match = [rival for rival in prices if re.sub(r"\W", "", rival)[:6] == re.sub(r"\W", "", launch.name)[:6]]
            assert match and float(prices[match[0]]) == launch.price, launch.name


def test_with_fixed_prices_no_incumbent_costs_are_known_so_profit_and_welfare_are_not_available(
        fixed_price_model, central):
    scenario = fixed_price_model.scenario
    for path in scenario.paths:
        for year in scenario.years:
            assert np.isnan(central[columns.yearly(path, columns.INCUMBENT_PROFIT_CHANGE, year)][0])
            assert np.isnan(central[columns.yearly(path, columns.WELFARE_CHANGE, year)][0])
            assert np.isfinite(central[columns.yearly(path, columns.ENTRANT_VARIABLE_PROFIT, year)][0])


@pytest.fixture(scope="module")
def repriced(reference_model):
    return simulate(reference_model, {})


def test_entry_costs_incumbents_profit_and_welfare_adds_up(reference_model, repriced):
    # a substitute enters and incumbents' prices fall: their variable profit falls in every year it sells (the
    # cancelled buyers who return do not make up for it); total welfare is the sum of its three parts
    scenario = reference_model.scenario
    for path in scenario.paths:
        for year in scenario.years:
            incumbents = repriced[columns.yearly(path, columns.INCUMBENT_PROFIT_CHANGE, year)][0]
            orders = repriced[columns.yearly(path, columns.ORDERS, year)][0]
            assert incumbents <= 0.0 and (incumbents < 0.0) == (orders > 0.0), (path, year)
            parts = sum(repriced[columns.yearly(path, key, year)][0] for key in (
                columns.SURPLUS_CHANGE, columns.INCUMBENT_PROFIT_CHANGE, columns.ENTRANT_VARIABLE_PROFIT))
            assert repriced[columns.yearly(path, columns.WELFARE_CHANGE, year)][0] == pytest.approx(parts, rel=1e-12)

