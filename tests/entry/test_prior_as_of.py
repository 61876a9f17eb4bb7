"""The entrant's prior (the ramp class and the launch-order events) holds only what was public at the
scenario's as-of date: none of the entrant's own deliveries or orders, no row published later."""

from datetime import date
from pathlib import Path

import numpy as np
import pytest

from evlaunch.config.scenario import load_scenario
from evlaunch.data.catalogue import parse_period_start
from evlaunch.data.loader import bundled_path
from evlaunch.entry.ramp_panel import eligible_ramps, load_ramp_panel, panel_sources
from evlaunch.entry.ramp_spread import reference_class_as_of
from evlaunch.entry.reference_class import ReferenceClassError
from evlaunch.simulation.model import prepare

SCENARIOS = Path(__file__).resolve().parents[2] / "src" / "evlaunch" / "scenarios"
ENTRANT = {"xiaomi-2023": "xiaomi", "aito-2021": "aito"}


@pytest.fixture(scope="module", params=sorted(ENTRANT))
def prepared(request):
    scenario = load_scenario(SCENARIOS / f"{request.param}.toml")
    return request.param, scenario, prepare(scenario, SCENARIOS)


def test_the_ramp_class_is_the_backtests_panel_as_of_the_scenario_and_none_of_the_entrants(prepared):
    """The model's class is fitted from the reconciled 3-table panel the ramp backtest scores, restricted to
    rows published by the as-of date: its brands are that panel's eligible ramps, every fitted month was
    public then, and a ramp published only later (AITO for the 2021-11 scenario) is not in it."""
    name, scenario, model = prepared
    assert model.reference_class is not None
    panel = load_ramp_panel(scenario.as_of)
    brands = [brand.brand for brand in model.reference_class.brands]
    assert brands == eligible_ramps(panel)[0]
    later = load_ramp_panel()   # every row, whenever published
    for brand in model.reference_class.brands:
        assert ENTRANT[name] not in brand.brand.lower()
        fitted = panel.months[(panel.months["ramp"] == brand.brand) & (panel.months["how"] != "imputed")]
        assert brand.n_months == len(fitted) and brand.last_month == fitted["month"].max()
        assert fitted["published"].map(lambda day: day is not None and day <= scenario.as_of).all()
    expected = reference_class_as_of(scenario.as_of)
    np.testing.assert_array_equal(model.reference_class.log_mean, expected.log_mean)
    np.testing.assert_array_equal(model.reference_class.log_cov, expected.log_cov)
    if name == "aito-2021":   # the guard bites: AITO's deliveries are in the tables, published after 2022-03
        assert "AITO (Seres x Huawei)" in later.ramps.index and "AITO (Seres x Huawei)" not in brands


def test_launch_order_events_are_public_at_the_as_of_date_and_not_the_entrants(prepared):
    name, scenario, model = prepared
    if model.launch_orders is None:
        pytest.skip(f"{name} sets no orders waiting at the launch")
    events = model.launch_orders.events
    assert not events["brand"].str.lower().str.contains(ENTRANT[name]).any()
    assert all(parse_period_start(str(day)) <= scenario.as_of for day in events["date"])


def test_a_ramp_panel_too_thin_is_refused_naming_every_ramp_table_and_its_file():
    """The class reads three tables; as of a date when fewer than 2 brands have a first year to fit, it is
    refused (the model turns this into a DataError naming each table and the file it was read from)."""
    with pytest.raises(ReferenceClassError, match="a reference class needs at least 2"):
        reference_class_as_of(date(2019, 6, 30))
    sources = panel_sources({"new_brand_ramps": "mine/thin.csv"})
    assert "table 'new_brand_ramps' (mine/thin.csv)" in sources
    for name in ("more_brand_ramps", "brand_ramps_extra"):
        assert f"table '{name}' ({bundled_path(name)})" in sources

