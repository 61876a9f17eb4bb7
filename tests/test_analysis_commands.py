"""compare, sensitivity, discover and calibrate work end to end on the reference scenario."""

import json
import re

import pytest

from evlaunch.runs.runner import RunOptions, run_scenario


@pytest.fixture(scope="module")
def small_run(tmp_path_factory, reference_path):
    return run_scenario(reference_path, tmp_path_factory.mktemp("cmp") / "run", RunOptions(draws=400, seed=3))


def test_compare_a_run_directory(cli, small_run):
    code, out, err = cli("compare", small_run.out_dir, "--json")
    assert code == 0, err
    document = json.loads(out)
    paths = {row["path"]: row for row in document["paths"]}
    hybrids = {"BAIC_own", "Chery_own", "Brilliance_own"}
    assert set(paths) == {"own", "BAIC", "Chery", "Brilliance"} | hybrids
    # licence x plant: the partner-licence + own-plant paths are ranked with the others and grouped both ways
    assert {name for name, row in paths.items() if row["licence"] != "own" and row["plant"] == "own"} == hybrids
    assert (paths["own"]["licence"], paths["own"]["plant"]) == ("own", "own")
    assert (paths["BAIC"]["licence"], paths["BAIC"]["plant"]) == ("BAIC (Beijing Automotive Group)", "partner")
    groups = document["groups"]
    assert set(groups["plant"]["own"]) == {"own"} | hybrids
    assert groups["licence"]["Chery"] == sorted(["Chery", "Chery_own"], key=lambda p: -paths[p]["npv_mean"])
    assert sorted(sum(groups["licence"].values(), [])) == sorted(paths)
    recommended = document["recommended"][small_run.out_dir.name]["path"]
    assert recommended == small_run.summary["recommended_path"]["name"]
    assert paths[recommended]["recommended"]
    for row in paths.values():
        assert row["npv_cvar10"] <= row["npv_p10"] + 1e-6 <= row["npv_p50"] + 2e-6
    # first-order dominance implies ordered means and medians
    for statement in document["dominance"]:
        a, _, b = statement.split(" (")[0].partition(" dominates ")
        b, _, what = b.partition(" in ")
        if what == "NPV":
            assert paths[a]["npv_mean"] >= paths[b]["npv_mean"] and paths[a]["npv_p50"] >= paths[b]["npv_p50"]
        else:
            assert paths[a]["launch_month_p50"] <= paths[b]["launch_month_p50"]


def test_sensitivity_ranks_the_approval_risk_first_for_the_own_path(cli, reference_path, tmp_path):
    code, _, err = cli("sensitivity", reference_path, "--method", "morris", "--samples", "10",
                         "--output", "own.launch_month_index", "--out", tmp_path)
    assert code == 0, err
    document = json.loads((tmp_path / "sensitivity.json").read_text())
    ranking = document["outputs"]["own.launch_month_index"]["indices"]
    assert ranking[0]["parameter"] in {"paths.own.stages.0.failure_event", "paths.own.stages.1.failure_event"}
    assert (tmp_path / "sensitivity.html").read_text().count("Plotly.newPlot") == 1


def test_discover_names_a_box_and_refuses_unknown_names(cli, reference_path):
    code, out, err = cli("discover", reference_path, "--when", "own.npv < 0", "--draws", "1500")
    assert code == 0, err
    assert "holds in" in out and "coverage" in out
    code, out, err = cli("discover", reference_path, "--when", "nosuch < 0", "--draws", "200")
    assert code == 2 and "nosuch" in err
    code, out, err = cli("discover", reference_path, "--when", "npv <", "--draws", "200")
    assert code == 2


def test_calibrate_prints_elasticities(cli, reference_path):
    code, out, err = cli("calibrate", reference_path)
    assert code == 0, err
    assert "own-price elasticity" in out and "NEV log-odds slope" in out


def test_calibrate_prints_implied_against_reported_margins(cli, reference_path):
    """The reference scenario's implied gross margins are within 5 pp of the reported ones (issue 13), and the
    summary line is the largest gap of the per-firm rows above it."""
    code, out, err = cli("calibrate", reference_path)
    assert code == 0, err
    lines = [line for line in out.splitlines() if line.startswith("margins: ")]
    assert len(lines) == 1, out
    match = re.fullmatch(r"margins: max_abs_gap_pp=(\d+\.\d) firms=(.+)", lines[0])
    assert match, lines[0]
    assert match[2].split(",") == ["BYD", "Tesla (global)", "Li Auto", "Great Wall"]
    gaps = [float(g) for g in re.findall(r"│ +([+-]\d+\.\d) │", out)]
    assert len(gaps) == 4 and float(match[1]) == max(abs(g) for g in gaps) <= 5.0


def test_compare_a_scenario_file_without_keeping_its_run(cli, reference_path, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store = tmp_path / "store.duckdb"
    code, out, err = cli("compare", reference_path, "--draws", "120", "--no-keep", "--store", store, "--json")
    assert code == 0, err
    rows = {row["path"]: row for row in json.loads(out)["paths"]}
    assert set(rows) == {"own", "BAIC", "Chery", "Brilliance", "BAIC_own", "Chery_own",
                         "Brilliance_own"}
    assert all(0.0 <= row["p_never"] <= 1.0 for row in rows.values())
    # the own licence can be refused with no fallback: some draws never launch, and the mean is over the rest
    assert rows["own"]["p_never"] > 0 and rows["own"]["launch_month_mean"] is not None
    assert not (tmp_path / "runs").exists() and not store.exists()  # nothing kept


def test_a_box_barely_denser_than_the_base_rate_is_called_weak():
    from evlaunch.analysis.discovery import weak_box_message

    assert "1.20 times" in weak_box_message(0.36, 0.30, "npv < 0")
    assert weak_box_message(0.60, 0.30, "npv < 0") is None  # twice the base rate: a real concentration
    assert weak_box_message(0.10, 0.0, "npv < 0") is None   # nothing to compare with


def test_compare_says_when_the_budget_does_not_bind(cli, small_run):
    code, out, err = cli("compare", small_run.out_dir)
    assert code == 0, err
    chosen = small_run.summary["recommended_path"]
    mark = "○" if chosen["beats_not_entering"] is False else "★"  # ○: every path's NPV at or below zero
    assert chosen["passes"] and f"{mark} {chosen['name']}" in out and "☆" not in out.split("NPV in bn CNY.")[0]
    if mark == "○":
        assert "stay out — no path beats staying out" in " ".join(out.split())
    else:
        assert "the budget criterion does not bind" in out or "the budget criterion binds" in out
    assert "the last column is pacing, not part of the rule" in " ".join(out.split())


def test_compare_says_when_no_path_meets_the_budget(cli, reference_text, tmp_path, monkeypatch):
    """A pledge of US$3bn (at most US$2bn of it left at the start) is below every path's peak cash need in
    most draws: the rule says so, shows the best expected NPV flagged instead of a star, and names the
    least-violating path."""
    monkeypatch.chdir(tmp_path)
    assert "budget_usd = 10e9" in reference_text
    scenario = tmp_path / "small-budget.toml"
    scenario.write_text(reference_text.replace("budget_usd = 10e9", "budget_usd = 3e9"), encoding="utf-8")
    code, out, err = cli("compare", scenario, "--draws", "40", "--no-keep", "--store", tmp_path / "s.duckdb", "--json")
    assert code == 0, err
    document = json.loads(out)
    rows = {row["path"]: row for row in document["paths"]}
    (chosen,) = document["recommended"].values()
    assert chosen["passes"] is False and chosen["budget_binds"] is True
    assert all(row["p_budget_exceeded"] > 0.10 for row in rows.values())
    best = max(rows, key=lambda name: (rows[name]["npv_mean"], -rows[name]["p_budget_exceeded"]))
    least = min(rows, key=lambda name: (rows[name]["p_budget_exceeded"], -rows[name]["npv_mean"]))
    assert chosen["path"] == best and chosen["least_violating"] == least
    code, out, err = cli("compare", scenario, "--draws", "40", "--no-keep", "--store", tmp_path / "s.duckdb")
    assert code == 0, err
    text = " ".join(out.split())
    assert (f"No path meets the budget tolerance; best expected NPV among all paths is {best}; "
            f"least-violating is {least}") in text
    assert f"☆ {best}" in out and "★" not in out.split("NPV in bn CNY.")[0]
