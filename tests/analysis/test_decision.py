"""Path comparison statistics and the recommendation rule."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from evlaunch.analysis.decision import (
    DecisionConfig,
    DecisionCriterion,
    DecisionError,
    Dominance,
    Objective,
    budget_at_tolerance,
    cvar,
    first_order_dominance,
    p_exceeds,
    p_launch_by,
    path_stats,
    recommend_path,
    stats_by_path,
    summarise,
)

CONFIG = DecisionConfig(target_month=18, budget_cny=10e9, cvar_alpha=0.10)


def _path(name, npv, launch, cash, config=CONFIG):
    return path_stats(name, npv=np.asarray(npv, float), launch_month_index=np.asarray(launch, float),
                      peak_cash_need=np.asarray(cash, float), config=config)


def test_summarise_finite_values_use_linear_percentiles():
    s = summarise(np.arange(1.0, 11.0))
    assert s.mean == pytest.approx(5.5)
    assert (s.p10, s.p50, s.p90) == pytest.approx((1.9, 5.5, 9.1))
    assert s.n_draws == 10 and s.n_infinite == 0


def test_summarise_never_launched_gives_inf_not_nan():
    s = summarise(np.array([10.0, 12.0, np.nan, np.inf]), nan_as=np.inf)
    assert s.n_infinite == 2
    assert s.p50 == 12.0 and s.p90 == np.inf and s.mean == np.inf


def test_summarise_refuses_nan_unless_told():
    with pytest.raises(DecisionError, match="NaN"):
        summarise(np.array([1.0, np.nan]))


def test_p_launch_by_counts_inf_and_nan_as_never():
    months = np.array([10.0, 18.0, 19.0, np.inf, np.nan])
    assert p_launch_by(months, 18) == pytest.approx(2 / 5)


def test_cvar_fractional_rule():
    x = np.arange(1.0, 11.0)
    assert cvar(x, 0.2) == pytest.approx(1.5)
    assert cvar(x, 0.25) == pytest.approx((1 + 2 + 0.5 * 3) / 2.5)
    assert cvar(x, 1.0) == pytest.approx(5.5)
    assert cvar(x, 0.01) == pytest.approx(1.0)
    with pytest.raises(DecisionError, match="alpha"):
        cvar(x, 0.0)


@settings(max_examples=50, deadline=None)
@given(arrays(float, st.integers(1, 50), elements=st.floats(-1e6, 1e6)), st.floats(0.01, 1.0))
def test_cvar_between_min_and_mean(x, alpha):
    value = cvar(x, alpha)
    assert x.min() - 1e-6 <= value <= x.mean() + 1e-6 * max(1.0, abs(x.mean()))


def test_p_exceeds_is_strict():
    assert p_exceeds(np.array([5.0, 10.0, 11.0, 12.0]), 10.0) == pytest.approx(0.5)


def test_dominance_higher_is_better():
    rng = np.random.default_rng(0)
    base = rng.normal(size=500)
    assert first_order_dominance(base + 1, base) is Dominance.STRICT
    assert first_order_dominance(base, base + 1) is Dominance.NONE
    assert first_order_dominance(base, base.copy()) is Dominance.WEAK
    wide = base * 3  # crosses base: worse in the lower tail, better in the upper
    assert first_order_dominance(wide, base) is Dominance.NONE
    assert first_order_dominance(base, wide) is Dominance.NONE


def test_dominance_earlier_launch_is_better_with_never():
    early = np.array([10.0, 12.0, np.inf])
    late = np.array([12.0, 14.0, np.inf])
    assert first_order_dominance(early, late, higher_is_better=False) is Dominance.STRICT
    assert first_order_dominance(late, early, higher_is_better=False) is Dominance.NONE
    assert first_order_dominance(early, late, higher_is_better=True) is Dominance.NONE
    never = np.full(3, np.inf)
    assert first_order_dominance(early, never, higher_is_better=False) is Dominance.STRICT
    assert first_order_dominance(never, never, higher_is_better=False) is Dominance.WEAK


def test_dominance_tolerance_absorbs_small_crossings():
    a = np.array([0.0, 3.0, 4.0, 5.0])
    b = np.array([1.0, 1.5, 2.5, 3.5])
    assert first_order_dominance(a, b) is Dominance.NONE
    assert first_order_dominance(a, b, tolerance=0.25) is Dominance.STRICT


def test_path_stats_numbers():
    s = _path("BAIC", npv=np.arange(1.0, 11.0) * 1e9, launch=[12] * 5 + [20] * 4 + [np.nan],
              cash=[5e9] * 9 + [11e9])
    assert s.npv.mean == pytest.approx(5.5e9)
    assert s.p_launch_by_target == pytest.approx(0.5)
    assert s.npv_cvar == pytest.approx(1e9)
    assert s.p_budget_exceeded == pytest.approx(0.1)
    assert s.launch_month.n_infinite == 1


def test_path_stats_refuses_different_draw_counts():
    with pytest.raises(DecisionError, match="one value per draw"):
        _path("BAIC", npv=[1.0, 2.0], launch=[1.0], cash=[1.0, 2.0])


def _three_paths():
    n = 100
    ones = np.ones(n)
    return {
        "BAIC": _path("BAIC", 5e9 * ones, 12 * ones, np.where(np.arange(n) < 5, 12e9, 8e9)),  # 5% breach
        "Chery": _path("Chery", 9e9 * ones, 20 * ones, np.where(np.arange(n) < 30, 12e9, 8e9)),  # 30% breach
        "Own licence": _path("Own licence", np.linspace(-4e9, 12e9, n), 30 * ones, 9e9 * ones),  # mean 4e9
    }


def test_default_recommendation_respects_budget_constraint():
    rec = recommend_path(_three_paths())
    assert rec.path == "BAIC" and rec.constraint_met
    assert rec.criterion == ("maximise expected NPV subject to P(peak cash need > budget available of 10.00 bn CNY) "
                             "<= 10.0%")
    assert rec.passes and rec.binds and rec.least_violating is None and rec.note == ""  # Chery, best alone, breaks it
    assert "30.0%" in rec.why_others_lost["Chery"] and "limit" in rec.why_others_lost["Chery"]
    assert "expected NPV 4.00 bn CNY < 5.00 bn CNY" in rec.why_others_lost["Own licence"]


def test_other_objectives():
    paths = _three_paths()
    unconstrained = recommend_path(paths, DecisionCriterion(max_p_budget_exceeded=None))
    assert unconstrained.path == "Chery"
    assert "subject to" not in unconstrained.criterion
    assert recommend_path(paths, DecisionCriterion(Objective.P_LAUNCH_BY_TARGET)).path == "BAIC"
    assert recommend_path(paths, DecisionCriterion(Objective.NPV_CVAR)).path == "BAIC"
    median = recommend_path(paths, DecisionCriterion(Objective.MEDIAN_NPV, max_p_budget_exceeded=None))
    assert median.path == "Chery"
    assert "P(launch by month 18)" in recommend_path(paths, DecisionCriterion(Objective.P_LAUNCH_BY_TARGET)).criterion


def test_a_constraint_that_does_not_change_the_choice_does_not_bind():
    paths = _three_paths()
    loose = recommend_path(paths, DecisionCriterion(max_p_budget_exceeded=0.5))
    assert loose.path == "Chery" and loose.passes and not loose.binds
    assert not recommend_path(paths, DecisionCriterion(max_p_budget_exceeded=None)).binds


def test_when_no_path_passes_the_rule_says_so_and_falls_back_to_the_best_objective():
    paths = _three_paths()
    rec = recommend_path(paths, DecisionCriterion(max_p_budget_exceeded=0.01))
    assert rec.constraint_met and rec.path == "Own licence"  # the only path that never breaches
    rec = recommend_path({k: v for k, v in paths.items() if k != "Own licence"},
                         DecisionCriterion(max_p_budget_exceeded=0.01))
    # BAIC breaches in 5% of draws, Chery in 30%; Chery has the higher expected NPV (9 vs 5 bn CNY)
    assert not rec.passes and not rec.constraint_met and rec.binds
    assert rec.path == "Chery" and rec.least_violating == "BAIC"
    assert rec.note.startswith("No path meets the budget tolerance")
    assert "best expected NPV among all paths is 'Chery' (9.00 bn CNY, P(budget exceeded) 30.0%)" in rec.note
    assert "least-violating is 'BAIC' (P(budget exceeded) 5.0%, expected NPV 5.00 bn CNY)" in rec.note
    assert "expected NPV 5.00 bn CNY < 9.00 bn CNY for 'Chery'" in rec.why_others_lost["BAIC"]
    assert "no path meets the budget tolerance" in rec.why_others_lost["BAIC"]


def test_the_fallback_follows_the_criterions_objective():
    paths = {k: v for k, v in _three_paths().items() if k != "Own licence"}
    rec = recommend_path(paths, DecisionCriterion(Objective.P_LAUNCH_BY_TARGET, max_p_budget_exceeded=0.01))
    assert not rec.passes and rec.path == "BAIC"  # launches by month 18 in every draw; Chery never does
    assert "best P(launch by month 18) among all paths is 'BAIC'" in rec.note


def test_budget_at_tolerance_is_where_the_breach_probability_reaches_it():
    needed = np.arange(1.0, 101.0) * 1e9  # a draw exceeds budget B exactly when B < its budget needed
    budget = budget_at_tolerance(needed, 0.10)
    assert budget == pytest.approx(np.quantile(needed, 0.90))
    assert np.mean(needed > budget) == pytest.approx(0.10)
    assert np.mean(needed > budget - 1e9) > 0.10  # a little less and the tolerance is broken
    assert budget_at_tolerance(needed, 0.0) == 100e9
    with pytest.raises(DecisionError, match="tolerance"):
        budget_at_tolerance(needed, 1.5)


def test_ties_are_explained():
    ones = np.ones(10)
    paths = {"A": _path("A", ones, ones, ones), "B": _path("B", ones, ones, ones)}
    rec = recommend_path(paths)
    assert rec.path == "A" and "tie" in rec.why_others_lost["B"]


def test_stats_by_path_and_mixed_configs():
    outputs = {"BAIC": {"npv": np.ones(3), "launch_month_index": np.ones(3), "peak_cash_need": np.ones(3)}}
    stats = stats_by_path(outputs, CONFIG)
    assert stats["BAIC"].config == CONFIG
    with pytest.raises(DecisionError, match="lacks outputs"):
        stats_by_path({"BAIC": {"npv": np.ones(3)}})
    other = _path("X", np.ones(3), np.ones(3), np.ones(3), DecisionConfig(budget_cny=1.0))
    with pytest.raises(DecisionError, match="different DecisionConfigs"):
        recommend_path({"BAIC": stats["BAIC"], "X": other})
    with pytest.raises(DecisionError, match="no paths"):
        recommend_path({})
    assert math.isfinite(stats["BAIC"].npv_cvar)


def test_when_every_path_loses_money_the_rule_says_staying_out_does_better():
    n = 100
    ones = np.ones(n)
    losing = {"BAIC": _path("BAIC", -5e9 * ones, 12 * ones, 8e9 * ones),
              "Chery": _path("Chery", np.linspace(-4e9, 2e9, n), 20 * ones, 8e9 * ones)}  # mean -1e9
    rec = recommend_path(losing)
    assert rec.path == "Chery" and rec.passes and not rec.beats_not_entering
    assert "best: 'Chery', -1.00 bn CNY" in rec.note and "staying out" in rec.note
    # the median NPV of Chery is -1e9 too; P(launch by target) is not an NPV and never compares with staying out
    assert not recommend_path(losing, DecisionCriterion(Objective.MEDIAN_NPV)).beats_not_entering
    assert recommend_path(losing, DecisionCriterion(Objective.P_LAUNCH_BY_TARGET)).beats_not_entering
    assert recommend_path(_three_paths()).beats_not_entering  # BAIC's mean NPV is +5 bn CNY
