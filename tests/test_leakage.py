"""No look-ahead: a scenario dated 2021-03-31 reads no row published later, and its outputs do not change
when every later row is deleted from the tables."""

from datetime import date
from pathlib import Path

import numpy as np
import pytest

from evlaunch.config.scenario import load_scenario
from evlaunch.data import loader
from evlaunch.data.catalogue import CATALOGUE
from evlaunch.market import policy
from evlaunch.runs.sampling import simulate_draws
from evlaunch.simulation.simulate import prepare

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "xiaomi-2021.toml"
AS_OF = date(2021, 3, 31)
DRAWS = 12


def run_2021() -> dict[str, np.ndarray]:
    scenario = load_scenario(SCENARIO)
    assert scenario.as_of == AS_OF
    model = prepare(scenario, SCENARIO.parent)
    return simulate_draws(model, 5, 0, DRAWS)[1]


@pytest.fixture(autouse=True)
def fresh_caches():
    policy._cached.cache_clear()
    yield
    policy._cached.cache_clear()


def test_2021_scenario_reads_no_row_published_after_its_as_of_date(monkeypatch):
    loads = []
    original = loader.Table

    def recording_table(info, rows, path, as_of=None, withheld=0, withheld_examples=()):
        loads.append((info.name, as_of, rows.copy(), withheld))
        return original(info, rows, path, as_of, withheld, withheld_examples)

    monkeypatch.setattr(loader, "Table", recording_table)
    run_2021()
    names = {name for name, *_ in loads}
    assert {"china_cars_monthly_total", "china_bev_monthly_by_model", "market_annual", "charging_points",
            "battery_pack_cost", "lineup_2020", "policy_schedule"} <= names
    for name, as_of, rows, _ in loads:
        assert as_of == AS_OF, f"{name} was read without the scenario's as-of date"
        facts = rows[~rows["gap"]]
        undated = facts[facts["published"].isna()]
        assert undated.empty, f"{name}: {len(undated)} fact rows have no publication date"
        late = facts[facts["published"].map(lambda day: day > AS_OF)]
        assert late.empty, f"{name}: rows published after {AS_OF}: {late.head(3).to_dict('records')}"
    # the guard had something to withhold: later monthly, annual and policy rows exist in the bundle
    withheld = {name: count for name, _, _, count in loads}
    assert withheld["china_cars_monthly_total"] > 0 and withheld["policy_schedule"] > 0


def test_2021_outputs_do_not_change_when_later_rows_are_deleted(monkeypatch, tmp_path):
    before = run_2021()
    for name in CATALOGUE:
        frame, _ = loader.read_rows(name)
        info = CATALOGUE[name]
        published = [info.published(row) for _, row in frame.iterrows()]
        keep = [day is None or day <= AS_OF for day in published]
        frame.drop(columns=["gap"])[keep].to_csv(tmp_path / f"{name}.csv", index=False)
    monkeypatch.setattr(loader, "bundled_path", lambda name: tmp_path / f"{name}.csv")
    policy._cached.cache_clear()
    assert len(loader.read_rows("china_cars_monthly_total")[0]) < 60      # the copies really are cut
    after = run_2021()
    assert before.keys() == after.keys()
    for key in before:
        np.testing.assert_array_equal(before[key], after[key], err_msg=key)


def test_lineup_sums_that_include_later_months_are_replaced_by_the_public_months():
    """lineup_2023's Jan-Sep sums include September rows published on 2023-11-05; as of 2023-10-31 the
    base-period rate must come from the Jan-Aug rows only (the table's note: Model Y Jan-Aug sum 279,400)."""
    from evlaunch.market.lineup import build_lineup

    lineup = build_lineup("lineup_2023", date(2023, 10, 31), [], ("2023-01", "2023-08"))
    model_y = lineup.index("Tesla Model Y")
    assert lineup.monthly_sales[model_y] == pytest.approx(279_400 / 8)
    assert "published after the as-of date" in lineup.sales_basis[model_y]
    # an H1 figure (published in July) is kept as it is
    assert lineup.monthly_sales[lineup.index("Nissan Sylphy")] == pytest.approx(158_635 / 6)
