"""The entrant's prior (the ramp class and the launch-order events) holds only what was public at the
scenario's as-of date: none of the entrant's own deliveries or orders, no row published later."""

from pathlib import Path

import pytest

from evlaunch.config.scenario import load_scenario
from evlaunch.data import load_table, numeric
from evlaunch.data.catalogue import parse_period_start
from evlaunch.simulation.model import prepare

SCENARIOS = Path(__file__).resolve().parents[2] / "src" / "evlaunch" / "scenarios"
ENTRANT = {"xiaomi-2023": "xiaomi", "aito-2021": "aito"}


@pytest.fixture(scope="module", params=sorted(ENTRANT))
def prepared(request):
    scenario = load_scenario(SCENARIOS / f"{request.param}.toml")
    return request.param, scenario, prepare(scenario, SCENARIOS)


def test_the_ramp_class_is_fitted_to_rows_published_by_the_as_of_date_and_none_of_the_entrants(prepared):
    name, scenario, model = prepared
    rows = load_table("new_brand_ramps").rows   # every row, whenever published
    rows = rows[~rows["gap"]].assign(month=numeric(rows["month_index"]), deliveries=numeric(rows["deliveries"]))
    public = rows[rows["published"].map(lambda day: day is not None and day <= scenario.as_of)]
    public = public.dropna(subset=["month", "deliveries"])
    assert model.reference_class is not None
    for brand in model.reference_class.brands:
        assert ENTRANT[name] not in brand.brand.lower()
        seen = public[public["brand"] == brand.brand]
        assert brand.n_months == seen["month"].nunique() and brand.last_month == seen["month"].max()
    if name == "aito-2021":   # the guard bites: AITO's deliveries are in the table, published after 2022-03
        assert rows["brand"].str.contains("AITO").any()


def test_launch_order_events_are_public_at_the_as_of_date_and_not_the_entrants(prepared):
    name, scenario, model = prepared
    if model.launch_orders is None:
        pytest.skip(f"{name} sets no orders waiting at the launch")
    events = model.launch_orders.events
    assert not events["brand"].str.lower().str.contains(ENTRANT[name]).any()
    assert all(parse_period_start(str(day)) <= scenario.as_of for day in events["date"])
