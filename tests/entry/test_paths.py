"""Staged paths: exact timelines for constructed cases, fallbacks that lose the time spent, stages already
under way that a fallback does not restart, and abandonment when every path fails."""

from __future__ import annotations

import numpy as np
import pytest

from evlaunch.config.parameters import PathParameters, StageParameters
from evlaunch.config.scenario import EntryPath, Stage
from evlaunch.entry.paths import failure_event_name, path_outcomes


def make_path(months: list[float], fallback: str | None = None, under_way: tuple[int, ...] = (),
              licence: str = "partner", plant: str | None = None) -> EntryPath:
    stages = [Stage(name=f"stage {k}", months=m, failure=0.0, under_way=k in under_way) for k, m in enumerate(months)]
    return EntryPath(label="test", licence=licence, plant=plant, partner="BAIC" if plant == "own" else None,
                     stages=stages, fallback=fallback, capacity_per_year=1e5, ramp_months=6, upfront_cost=1e9)


def test_a_path_without_a_plant_builds_in_its_licence_holders_plant():
    assert make_path([1]).plant_site == "partner" and make_path([1], licence="own").plant_site == "own"
    hybrid = make_path([1], plant="own")
    assert (hybrid.licence, hybrid.plant_site, hybrid.licence_holder) == ("partner", "own", "BAIC")


def test_own_plant_spending_carries_over_to_a_fallback_in_the_same_plant():
    """A partner licence in the own plant fails after 3 of its 5 months: falling back to the own licence in the same
    plant loses no upfront (it went into that plant); falling back from a partner's plant loses 3/5 of it."""
    fails = {("H", 0): np.ones(3, dtype=bool)}
    same = {"H": make_path([3, 2], fallback="own", plant="own"), "own": make_path([4], licence="own")}
    other = {"H": make_path([3, 2], fallback="own"), "own": make_path([4], licence="own")}
    np.testing.assert_array_equal(path_outcomes(same, value_of(same, fails))["H"].sunk_upfront, 0.0)
    np.testing.assert_allclose(path_outcomes(other, value_of(other, fails))["H"].sunk_upfront, 0.6e9)
    np.testing.assert_array_equal(path_outcomes(same, value_of(same, fails))["H"].production_start, 3.0 + 4.0)


def value_of(paths: dict[str, EntryPath], fails: dict[tuple[str, int], np.ndarray], draws: int = 3
             ) -> dict[str, PathParameters]:
    """Parameters for path_outcomes: stage months from the paths, failure 0.5 and events deciding the outcome."""
    def full(number) -> np.ndarray:
        return np.full(draws, float(number))

    def stage(name: str, index: int, months) -> StageParameters:
        failing = fails.get((name, index), np.zeros(draws, dtype=bool))
        return StageParameters(full(months), full(0.5), np.where(failing, 0.0, 1.0))

    return {name: PathParameters(tuple(stage(name, k, s.months) for k, s in enumerate(path.stages)),
                                 full(path.capacity_per_year), full(path.ramp_months), full(path.upfront_cost),
                                 full(path.fee_per_vehicle), full(path.unit_cost_factor), full(path.brand_utility))
            for name, path in paths.items()}


def test_success_failure_and_fallback_timelines_are_exact():
    paths = {"A": make_path([3, 2], fallback="B"), "B": make_path([4, 5])}
    fails = {("A", 0): np.array([False, True, True]), ("B", 1): np.array([False, False, True])}
    outcome = path_outcomes(paths, value_of(paths, fails))["A"]
    # draw 0: A succeeds at 5; draw 1: A fails at 3, B taken up then, produces at 3 + 9; draw 2: B fails too
    np.testing.assert_array_equal(outcome.production_start, [5.0, 12.0, np.inf])
    np.testing.assert_array_equal(outcome.operating_path, [0, 1, -1])
    np.testing.assert_array_equal(outcome.months_lost, [0.0, 3.0, 3.0 + 9.0])   # draw 2: the last failure
    np.testing.assert_array_equal(outcome.failed, [False, True, True])
    # sunk upfront: A's cost pro rata to its 3 of 5 months; in draw 2 all of B's too
    np.testing.assert_allclose(outcome.sunk_upfront, [0.0, 0.6e9, 1.6e9])
    assert failure_event_name("A", 0) == "paths.A.stages.0.failure_event"


@pytest.mark.parametrize("duration,expected", [(6.0, 6.0 + 5.0), (2.0, 3.0 + 5.0)])
def test_a_stage_under_way_is_not_restarted_by_a_fallback(duration, expected):
    """B's first stage (an application filed before the start) runs meanwhile: taken up at month 3 it ends at
    max(3, its own duration); without `under_way` it would end at 3 + duration."""
    paths = {"A": make_path([3, 2], fallback="B"), "B": make_path([duration, 5], under_way=(0,))}
    fails = {("A", 0): np.ones(3, dtype=bool)}
    outcome = path_outcomes(paths, value_of(paths, fails))
    np.testing.assert_array_equal(outcome["A"].production_start, expected)
    np.testing.assert_array_equal(outcome["B"].production_start, duration + 5.0)  # taken up at the start
    restarted = {"A": paths["A"], "B": make_path([duration, 5])}
    later = path_outcomes(restarted, value_of(restarted, fails))["A"].production_start
    assert np.all(later >= outcome["A"].production_start) and np.all(later == 3.0 + duration + 5.0)


def test_abandoned_project_stops_its_running_costs(reference_model):
    """When every path of a chain fails, R&D and opex stop at the last failure: the peak cash need is what
    was spent until then, not the horizon's running costs."""
    from evlaunch.runs.sampling import sample_draws
    from evlaunch.simulation.simulate import simulate

    scenario = reference_model.scenario
    inputs = sample_draws(reference_model, 7, 0, 8)
    for name in ("own", "BAIC", "Chery", "Brilliance"):
        inputs[f"paths.{name}.stages.0.failure"] = np.ones(8)  # every first stage fails
    out = simulate(reference_model, inputs)
    assert np.all(out["Brilliance.operating_path"] == -1)
    lost = out["Brilliance.months_lost"]
    running = inputs["finance.rnd_per_month"] + inputs["finance.opex_per_month"]
    bound = running * np.ceil(lost) + inputs["paths.Brilliance.upfront_cost"] + inputs["paths.Chery.upfront_cost"] \
        + inputs["paths.own.upfront_cost"]
    assert np.all(lost < scenario.horizon_months - 12)
    assert np.all(out["Brilliance.peak_cash_need"] <= bound + 1.0)
    assert np.all(out["Brilliance.peak_cash_need"] < running * scenario.horizon_months)


def test_partners_are_firms_of_the_firms_table_with_their_sourced_facts(reference_path, reference_text):
    from evlaunch.config.scenario import parse_scenario
    from evlaunch.entry.partners import partner_facts
    from evlaunch.errors import ScenarioError
    from evlaunch.simulation.simulate import prepare

    scenario = parse_scenario(reference_text, "ref.toml")
    facts = partner_facts(scenario.paths["Brilliance"].partner, scenario.as_of)
    assert len(facts.rows) >= 1 and all(source.strip() for _, _, source in facts.lines())
    assert any("debt" in text.lower() or "default" in text.lower() for _, text, _ in facts.lines())
    # rows published after the as-of date (full-year 2023, January 2024) are not shown
    assert all(int(year) <= 2022 for year, _, _ in partner_facts("Chery", scenario.as_of).lines())
    bad = reference_text.replace('partner = "Chery"', 'partner = "Cherry Motors"', 1)
    with pytest.raises(ScenarioError, match=r"paths\.Chery\.partner: got 'Cherry Motors'"):
        prepare(parse_scenario(bad, "bad.toml"), reference_path.parent)
