"""summary.json from a synthetic in-memory table: exact quantiles, launch months and their nulls, the odds
of launching by the target and of exceeding the budget, the recommendation, and the contract's keys."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from evlaunch.config.scenario import load_scenario, month_label
from evlaunch.runs.summary import ArrayTable, build_summary

SCENARIO = load_scenario(Path(__file__).resolve().parents[2] / "scenarios" / "xiaomi-2023.toml")
N = 1000
STAT_KEYS = {"mean", "p10", "p50", "p90"}
NPV_MEAN = {"own": 12e9, "BAIC": 6e9, "Chery": 5e9, "Brilliance": 4e9, "BAIC_own": 3e9, "Chery_own": 2e9,
            "Brilliance_own": 1e9}


def synthetic(budget_exceeded_own: float = 0.3, launched_share: dict[str, float] | None = None,
              budget_exceeded_others: float = 0.0) -> dict:
    """Per-draw outputs with known distributions; own has the best NPV but breaks the budget rule (the others
    exceed the budget in `budget_exceeded_others` + 2% x their order of the draws)."""
    rng = np.random.default_rng(11)
    years = [str(y) for y in SCENARIO.years]
    launched_share = launched_share or {}
    arrays: dict[str, np.ndarray] = {"finance.usd_cny": np.full(N, 7.2)}
    for k, path in enumerate(SCENARIO.paths):
        for key in ("deliveries", "orders", "share", "revenue", "market_total", "nev_share"):
            for year in years:
                arrays[f"{path}.{key}.{year}"] = rng.gamma(2.0 + k, 1000.0 * (k + 1), N)
        arrays[f"{path}.npv"] = rng.normal(NPV_MEAN[path], 2e9, N)
        arrays[f"{path}.peak_cash_need"] = rng.uniform(1e9, 5e9, N)
        launch = rng.uniform(0, 20, N).round()
        never = rng.uniform(size=N) >= launched_share.get(path, 1.0)
        arrays[f"{path}.launch_month_index"] = np.where(never, np.inf, launch)
        share = budget_exceeded_own if path == "own" else budget_exceeded_others + 0.02 * k
        arrays[f"{path}.budget_exceeded"] = (np.arange(N) < share * N).astype(float)
        arrays[f"{path}.ahead_of_pledge_schedule"] = (np.arange(N) >= N - (k + 1) * N // 10).astype(float)
    return arrays


def test_the_document_has_exactly_the_contracts_keys_and_is_json():
    summary = build_summary(ArrayTable(synthetic()), SCENARIO, N, 7, "0.0-test")
    assert set(summary) == {"scenario", "as_of", "draws", "seed", "version", "paths", "market", "recommended_path",
                            "guidance"}
    assert (summary["scenario"], summary["as_of"], summary["draws"], summary["seed"], summary["version"]) == (
        SCENARIO.name, "2023-10-31", N, 7, "0.0-test")
    years = {str(y) for y in SCENARIO.years}
    assert list(summary["paths"]) == list(SCENARIO.paths)
    for block in summary["paths"].values():
        assert set(block) == {"launch_month", "p_launch_by_target", "deliveries", "orders", "share", "revenue",
                              "npv", "peak_cash_need", "p_budget_exceeded", "p_ahead_of_pledge_schedule"}
        assert set(block["launch_month"]) == {"p10", "p50", "p90"}
        for key in ("deliveries", "orders", "share", "revenue"):
            assert set(block[key]) == years and all(set(s) == STAT_KEYS for s in block[key].values())
        assert set(block["npv"]) == STAT_KEYS and set(block["peak_cash_need"]) == STAT_KEYS
    assert set(summary["market"]) == {"total_sales", "nev_share"}
    assert set(summary["recommended_path"]) == {"name", "criterion", "passes", "note", "least_violating",
                                                "budget_binds", "beats_not_entering"}
    assert json.loads(json.dumps(summary, allow_nan=False)) == summary


def test_statistics_are_the_mean_and_linear_quantiles_of_the_draws():
    arrays = synthetic()
    summary = build_summary(ArrayTable(arrays), SCENARIO, N, 7, "x")
    year = str(SCENARIO.years[1])
    for path, block in summary["paths"].items():
        for key, column in (("deliveries", f"{path}.deliveries.{year}"), ("revenue", f"{path}.revenue.{year}")):
            values = arrays[column]
            stats = block[key][year]
            assert stats["mean"] == pytest.approx(values.mean(), rel=1e-12)
            for name, q in (("p10", 0.1), ("p50", 0.5), ("p90", 0.9)):
                assert stats[name] == pytest.approx(np.quantile(values, q), rel=1e-12)
        assert block["npv"]["p90"] == pytest.approx(np.quantile(arrays[f"{path}.npv"], 0.9), rel=1e-12)
        assert block["p_budget_exceeded"] == pytest.approx(arrays[f"{path}.budget_exceeded"].mean(), abs=1e-15)
        assert block["p_ahead_of_pledge_schedule"] == pytest.approx(
            arrays[f"{path}.ahead_of_pledge_schedule"].mean(), abs=1e-15)


def test_pacing_is_left_out_for_runs_without_its_column():
    arrays = {k: v for k, v in synthetic().items() if not k.endswith(".ahead_of_pledge_schedule")}
    summary = build_summary(ArrayTable(arrays), SCENARIO, N, 7, "x")
    assert all("p_ahead_of_pledge_schedule" not in block for block in summary["paths"].values())


def test_launch_months_are_labels_and_null_beyond_the_horizon():
    arrays = synthetic(launched_share={"Brilliance": 0.3})
    summary = build_summary(ArrayTable(arrays), SCENARIO, N, 7, "x")
    target = SCENARIO.target_launch_index
    for path, block in summary["paths"].items():
        index = arrays[f"{path}.launch_month_index"]
        assert block["p_launch_by_target"] == pytest.approx(np.mean(index <= target), abs=1e-15)
        p10 = np.quantile(index, 0.1)
        assert block["launch_month"]["p10"] == month_label(SCENARIO.start_month + int(p10))
    never = summary["paths"]["Brilliance"]["launch_month"]
    assert never["p50"] is None and never["p90"] is None  # 70% of draws never launch


def test_the_best_path_within_the_budget_rule_is_recommended():
    summary = build_summary(ArrayTable(synthetic(budget_exceeded_own=0.3)), SCENARIO, N, 7, "x")
    # own has the highest expected NPV but exceeds the budget in 30% of draws (> 10% allowed)
    assert summary["recommended_path"]["name"] == "BAIC"
    assert "NPV" in summary["recommended_path"]["criterion"]
    assert summary["recommended_path"]["passes"] and summary["recommended_path"]["budget_binds"]
    assert summary["recommended_path"]["note"] == "" and summary["recommended_path"]["least_violating"] is None
    within = build_summary(ArrayTable(synthetic(budget_exceeded_own=0.05)), SCENARIO, N, 7, "x")
    assert within["recommended_path"]["name"] == "own"
    assert within["recommended_path"]["passes"] and not within["recommended_path"]["budget_binds"]


def test_when_no_path_passes_the_summary_says_so_and_names_both_fallbacks():
    # every path exceeds the budget in at least 30% of draws; BAIC the least (30%), own has the best NPV (40%)
    summary = build_summary(ArrayTable(synthetic(budget_exceeded_own=0.4, budget_exceeded_others=0.28)),
                            SCENARIO, N, 7, "x")
    chosen = summary["recommended_path"]
    assert chosen["passes"] is False and chosen["budget_binds"] is True
    assert chosen["name"] == "own" and chosen["least_violating"] == "BAIC"
    assert chosen["note"].startswith("No path meets the budget tolerance")
    assert "best expected NPV among all paths is 'own'" in chosen["note"]
    assert "least-violating is 'BAIC'" in chosen["note"]


def test_the_criterion_names_the_budget_available_from_the_draws():
    arrays = synthetic()
    arrays["finance.spent_before_start_usd"] = np.full(N, 2e9)
    summary = build_summary(ArrayTable(arrays), SCENARIO, N, 7, "x")
    available = (SCENARIO.finance.budget_usd - 2e9) * 7.2  # the synthetic draws' exchange rate
    assert f"budget available of {available / 1e9:,.2f} bn CNY" in summary["recommended_path"]["criterion"]


def test_the_market_block_describes_the_recommended_paths_market():
    arrays = synthetic()
    summary = build_summary(ArrayTable(arrays), SCENARIO, N, 7, "x")
    chosen = summary["recommended_path"]["name"]
    year = str(SCENARIO.years[0])
    assert summary["market"]["total_sales"][year]["mean"] == pytest.approx(
        arrays[f"{chosen}.market_total.{year}"].mean(), rel=1e-12)
    assert summary["market"]["nev_share"][year]["p50"] == pytest.approx(
        np.quantile(arrays[f"{chosen}.nev_share.{year}"], 0.5), rel=1e-12)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")  # quantiles of -inf draws
def test_non_finite_statistics_become_null():
    arrays = synthetic()
    arrays["Chery.npv"] = np.full(N, -np.inf)
    summary = build_summary(ArrayTable(arrays), SCENARIO, N, 7, "x")
    assert summary["paths"]["Chery"]["npv"]["mean"] is None
    assert not any(isinstance(v, float) and not math.isfinite(v) for v in summary["paths"]["Chery"]["npv"].values())
