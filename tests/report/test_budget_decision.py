"""The report's decision statements from synthetic draws: a star only for a path that meets the budget
tolerance, "no path meets it" with both fallbacks named when none does, whether the budget criterion binds,
and the pledge at which it would (the (1 - tolerance) quantile of budget needed / exchange rate)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from evlaunch.config.scenario import load_scenario
from evlaunch.report.context import ReportContext
from evlaunch.report.html import money
from evlaunch.report.margins import budget_paragraph
from evlaunch.report.overview import budget_to_pass_usd, money_section, overview
from evlaunch.runs.summary import ArrayTable, build_summary

SCENARIO = load_scenario(Path(__file__).resolve().parents[2] / "scenarios" / "xiaomi-2023.toml")
N = 400
NPV_MEAN = {"own": 9e9, "BAIC": 6e9, "Chery": -5e9, "Brilliance": -9e9, "BAIC_own": 3e9, "Chery_own": 2e9,
            "Brilliance_own": 1e9}


def draws(exceeded: dict[str, float]) -> dict[str, np.ndarray]:
    """Per-draw outputs: each path exceeds the budget in the given share of draws (default none) and runs
    ahead of the pledge schedule in 30%; budget needed spread 20-60 bn CNY, exchange rates 7.0-7.4."""
    rng = np.random.default_rng(5)
    arrays: dict[str, np.ndarray] = {"finance.usd_cny": rng.uniform(7.0, 7.4, N)}
    for path in SCENARIO.paths:
        for key in ("deliveries", "orders", "share", "revenue", "market_total", "nev_share"):
            for year in SCENARIO.years:
                arrays[f"{path}.{key}.{year}"] = rng.uniform(0.0, 1e5, N)
        arrays[f"{path}.npv"] = rng.normal(NPV_MEAN[path], 1e9, N)
        arrays[f"{path}.peak_cash_need"] = rng.uniform(1e10, 4e10, N)
        arrays[f"{path}.launch_month_index"] = rng.uniform(0, 20, N).round()
        arrays[f"{path}.budget_exceeded"] = (np.arange(N) < exceeded.get(path, 0.0) * N).astype(float)
        arrays[f"{path}.ahead_of_pledge_schedule"] = (np.arange(N) < 0.3 * N).astype(float)
        arrays[f"{path}.budget_needed"] = rng.uniform(2e10, 6e10, N)
    return arrays


def context_for(arrays: dict[str, np.ndarray]) -> ReportContext:
    table = ArrayTable(arrays)
    return ReportContext(SCENARIO, model=None, table=table, summary=build_summary(table, SCENARIO, N, 1, "x"))


def test_a_criterion_that_does_not_bind_is_said_with_the_pledge_at_which_it_would():
    arrays = draws({"Chery": 0.5})  # Chery breaks the tolerance, but own has the best NPV and passes
    context = context_for(arrays)
    body = overview(context).body
    assert "Recommended path: <b>own</b> ★" in body and "☆" not in body
    expected = np.quantile(arrays["own.budget_needed"] / arrays["finance.usd_cny"], 0.90)
    assert budget_to_pass_usd(context, "own", 0.10) == pytest.approx(expected, rel=1e-12)
    assert "The budget criterion does not bind" in body
    assert f"It would bind on own if the pledge (US$10.0 bn) fell below US${expected / 1e9:,.1f} bn" in body
    assert "P(cash needed faster than the pledge is paid in)" in body and "30.0%" in body
    paragraph = budget_paragraph(context, {f"{p}.budget_needed": arrays[f"{p}.budget_needed"] for p in SCENARIO.paths})
    assert "does not bind" in paragraph and "(above on Chery)" in paragraph
    assert f"{np.quantile(arrays['BAIC.budget_needed'], 0.9) / 1e9:,.1f} bn CNY" in paragraph


def test_a_binding_criterion_is_said_and_the_best_path_within_it_starred():
    context = context_for(draws({"own": 0.5}))
    body = overview(context).body
    assert "Recommended path: <b>BAIC</b> ★" in body
    assert "The budget criterion binds" in body


def test_when_no_path_meets_the_tolerance_the_report_says_so_without_a_star():
    exceeded = {path: 0.2 + 0.02 * k for k, path in enumerate(SCENARIO.paths)}  # own 20% ... least-violating
    exceeded["Chery"] = 0.15
    context = context_for(draws(exceeded))
    body = overview(context).body
    assert "★" not in body and "<b>own</b> ☆" in body
    assert "No path meets the budget tolerance" in body
    assert "best expected NPV among all paths is &#x27;own&#x27;" in body
    assert "least-violating is &#x27;Chery&#x27;" in body
    assert "it is not a recommendation within the budget" in body


def test_when_no_path_beats_staying_out_the_report_recommends_staying_out(monkeypatch):
    """Every path's expected NPV below zero: the headline says stay out, and the best path is marked ○ (the
    best if entering anyway), not starred."""
    for path in SCENARIO.paths:
        monkeypatch.setitem(NPV_MEAN, path, -1e9 if path == "own" else -3e9)
    context = context_for(draws({}))
    assert context.summary["recommended_path"]["beats_not_entering"] is False
    body = overview(context).body
    assert "Recommendation: <b>stay out</b>" in body and "<b>own</b> ○" in body
    assert "★" not in body and "☆" not in body
    assert "staying out" in body and "the best path if entering anyway" in body


def test_the_npv_table_separates_draws_that_launch_from_those_that_never_do():
    """A path whose failures stop spending early: the table gives its NPV mean in the draws that launch and
    in those that never do, with their share, so a cheap failure cannot pass for a better launch."""
    arrays = draws({})
    never = np.arange(N) < N // 4
    arrays["own.launch_month_index"] = np.where(never, np.inf, arrays["own.launch_month_index"])
    arrays["own.npv"] = np.where(never, -1e9, -5e9)
    context = context_for(arrays)
    body = money_section(context).body
    assert "NPV mean if it launches" in body
    assert f"<td>{money(-5e9)}</td><td>{money(-1e9)} (25%)</td>" in body
