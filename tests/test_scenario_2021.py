"""The 2021 reference scenario: as of 2021-03-31, calibrated to 2020, every number commented, and it runs."""

import re
import tomllib
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from evlaunch.config.scenario import load_scenario, month_number
from evlaunch.market.calibration import calibrate
from evlaunch.report.build import write_report
from evlaunch.runs.runner import RunOptions, run_scenario
from evlaunch.simulation.simulate import prepare

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "xiaomi-2021.toml"


@pytest.fixture(scope="module")
def scenario():
    return load_scenario(SCENARIO)


def test_validates(cli):
    code, out, err = cli("validate", SCENARIO)
    assert code == 0, err
    assert "valid" in out and "2021-03-31" in out


def test_dated_and_calibrated_as_the_brief_says(scenario):
    assert scenario.as_of == date(2021, 3, 31)
    assert scenario.data.lineup == "lineup_2020"
    assert scenario.market.base_period == ("2020-01", "2020-12")
    assert month_number(scenario.start) > month_number("2021-03")
    paths = scenario.paths
    assert paths["GreatWall"].partner == "Great Wall Motor" and paths["GreatWall"].licence == "partner"
    assert "Baoding" in paths["GreatWall"].label
    assert paths["own"].licence == "own" and paths["own"].partner is None
    assert len(scenario.regions) == 2


def test_every_number_is_a_commented_fact_or_assumption():
    lines = SCENARIO.read_text(encoding="utf-8").splitlines()
    assignment = re.compile(r"^\s*([A-Za-z_0-9]+)\s*=\s*(.+)$")
    structural = {"name", "description", "label", "licence", "partner", "fallback", "group", "powertrain", "segment",
                  "criterion", "max_p_budget_exceeded", "fee_per_vehicle"}
    missing = []
    for number, line in enumerate(lines):
        match = assignment.match(line)
        if not match or match.group(1) in structural:
            continue
        value = match.group(2).split("#")[0]
        if not re.search(r"\d|dist|true|false|\[", value):
            continue
        comment = line.split("#", 1)[1] if "#" in line else ""
        back = number - 1
        while not comment and back >= 0 and lines[back].strip().startswith("#"):
            comment = lines[back]
            back -= 1
        table = next((lines[k] for k in range(number, -1, -1) if lines[k].startswith("[")), "")
        band_table = "missing_price_band" in table or "missing_range_band" in table  # one comment heads the band
        if band_table:
            start = lines.index(table)
            comment += next((lines[k] for k in range(start, number) if "# assumption" in lines[k]), "")
        if not re.search(r"\b(fact|assumption|fact-based)\b", comment):
            missing.append(f"line {number + 1}: {line.strip()}")
    assert not missing, "numbers without a fact/assumption comment:\n" + "\n".join(missing)
    tomllib.loads(SCENARIO.read_text(encoding="utf-8"))


def test_cites_nothing_published_after_the_as_of_date():
    text = SCENARIO.read_text(encoding="utf-8")
    # rows cited as "entrants.csv 2021-03-26" or "policy_timeline 2020-07-15" must be public by the as-of date
    cited_dates = re.findall(r"(?:entrants\.csv|policy_timeline|entrants\.csv:?)\s+(20\d\d-\d\d(?:-\d\d)?)", text)
    assert len(cited_dates) > 10
    for when in cited_dates:
        assert when[:7] <= "2021-03", when
    assert "2023-10" not in text and "lineup_2023" not in text and "MS11" not in text.replace(
        "MS11/Modena not found", "")


def test_base_period_subsidy_enters_the_effective_price(scenario):
    model = prepare(scenario, SCENARIO.parent)
    base = calibrate(model.market, model.parameters())
    tesla = model.lineup.index("Tesla Model 3")
    # 2020 rule (policy_timeline 2020-04-23): >=400 km CNY 22,500, pre-subsidy price <= 300,000; NEV tax exempt
    assert base.effective_price[0, tesla] == pytest.approx(271_550 - 22_500)
    nio = model.lineup.index("NIO ES6")
    assert base.effective_price[0, nio] == pytest.approx(358_000)   # above the price cap: no subsidy
    other_ice = model.lineup.index("other ICE")
    assert base.effective_price[0, other_ice] == pytest.approx(base.price[0, other_ice] * (1 + 0.1 / 1.13))


def test_runs_and_reports_dynamics(tmp_path):
    result = run_scenario(SCENARIO, tmp_path / "run", RunOptions(draws=32, seed=1), write_report=write_report)
    summary = result.summary
    assert summary["as_of"] == "2021-03-31" and set(summary["paths"]) == {"GreatWall", "own"}
    assert list(summary["market"]["total_sales"]) == [str(y) for y in range(2021, 2028)]
    total_2021 = summary["market"]["total_sales"]["2021"]["p50"]
    assert 15e6 < total_2021 < 25e6            # a whole calendar year, not April-December only
    shares = [summary["market"]["nev_share"][str(y)]["mean"] for y in range(2021, 2028)]
    assert all(0 < s < 1 for s in shares) and shares[-1] > shares[0]
    report = result.report_path.read_text(encoding="utf-8")
    for title in ("NEV share: assumed path and history", "Policy applied", "Results by region",
                  "the last known rule is assumed to continue"):
        assert title in report
    assert np.isfinite(summary["paths"]["own"]["npv"]["mean"])
