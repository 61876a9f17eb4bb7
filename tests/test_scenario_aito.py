"""The second reference scenario: AITO (Huawei x Seres) as of 2021-12-31, a different entrant at its own date.

It validates, every number is a commented fact or assumption, it cites nothing published later, the data it
sees hold none of AITO's own deliveries (they are the out-of-sample check), and it runs and reports."""

import re
import tomllib
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from evlaunch.config.scenario import load_scenario, month_number
from evlaunch.data.loader import load_table
from evlaunch.entry.ramp_panel import load_ramp_panel
from evlaunch.report.build import write_report
from evlaunch.runs.runner import RunOptions, run_scenario

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "aito-2021.toml"
AS_OF = date(2021, 12, 31)


@pytest.fixture(scope="module")
def scenario():
    return load_scenario(SCENARIO)


def test_validates(cli):
    code, out, err = cli("validate", SCENARIO)
    assert code == 0, err
    assert "valid" in out and "2021-12-31" in out


def test_a_different_entrant_at_its_own_date(scenario):
    assert scenario.as_of == AS_OF and scenario.data.lineup == "lineup_2020"
    assert month_number(scenario.start) > month_number("2021-12")
    assert scenario.product.name == "AITO M5" and scenario.product.powertrain == "PHEV"
    assert scenario.product.body == "SUV" and "Xiaomi" not in SCENARIO.read_text(encoding="utf-8").split("\n\n", 1)[1]
    assert set(scenario.paths) == {"seres"} and scenario.paths["seres"].licence == "own"
    # the launch price range it cites is the row public by the as-of date
    orders = load_table("launch_orders_extra", AS_OF).rows
    m5 = orders[orders["model"].str.startswith("M5 (EREV)")]
    assert len(m5) == 1 and "250,000-320,000" in m5.iloc[0]["note"]
    assert scenario.product.price.low == 250_000 and scenario.product.price.high == 320_000


def test_every_number_is_a_commented_fact_or_assumption():
    lines = SCENARIO.read_text(encoding="utf-8").splitlines()
    assignment = re.compile(r"^\s*([A-Za-z_0-9]+)\s*=\s*(.+)$")
    structural = {"name", "description", "label", "licence", "partner", "fallback", "group", "powertrain", "segment",
                  "criterion", "max_p_budget_exceeded"}
    missing = []
    for number, line in enumerate(lines):
        match = assignment.match(line)
        if not match or match.group(1) in structural:
            continue
        if not re.search(r"\d|dist|true|false|\[", match.group(2).split("#")[0]):
            continue
        comment = line.split("#", 1)[1] if "#" in line else ""
        back = number - 1
        while not comment and back >= 0 and lines[back].strip().startswith("#"):
            comment, back = lines[back], back - 1
        table = next((lines[k] for k in range(number, -1, -1) if lines[k].startswith("[")), "")
        if "missing_price_band" in table or "missing_range_band" in table:   # one comment heads the band
            start = lines.index(table)
            comment += next((lines[k] for k in range(start, number) if "# assumption" in lines[k]), "")
        if not re.search(r"\b(fact|assumption|fact-based)\b", comment):
            missing.append(f"line {number + 1}: {line.strip()}")
    assert not missing, "numbers without a fact/assumption comment:\n" + "\n".join(missing)
    tomllib.loads(SCENARIO.read_text(encoding="utf-8"))


def test_cites_nothing_published_after_the_as_of_date():
    text = SCENARIO.read_text(encoding="utf-8")
    cited = re.findall(r"(?:entrants\.csv|launch_orders_extra\.csv|policy_timeline)\s+(20\d\d-\d\d(?:-\d\d)?)", text)
    assert len(cited) >= 5
    assert all(when <= "2021-12-31" for when in cited), cited
    assert "lineup_2023" not in text.replace("lineup_2023.csv is public 2023-10-31", "")


def test_the_data_it_sees_hold_none_of_aitos_deliveries():
    panel = load_ramp_panel(AS_OF)
    assert not any("AITO" in ramp for ramp in panel.ramps.index)
    assert any("AITO" in ramp for ramp in load_ramp_panel().ramps.index)   # ...which the full tables do hold


def test_runs_and_reports(tmp_path):
    result = run_scenario(SCENARIO, tmp_path / "run", RunOptions(draws=16, seed=3), write_report=write_report)
    summary = result.summary
    assert summary["as_of"] == "2021-12-31" and set(summary["paths"]) == {"seres"}
    assert list(summary["market"]["total_sales"]) == [str(y) for y in range(2022, 2027)]
    seres = summary["paths"]["seres"]
    assert "2022-01" <= seres["launch_month"]["p10"] <= seres["launch_month"]["p90"] <= "2022-12"
    deliveries = [seres["deliveries"][str(y)]["p50"] for y in range(2022, 2027)]
    assert all(np.isfinite(deliveries)) and deliveries[1] > 0
    assert np.isfinite(seres["npv"]["mean"])
    assert "aito-2021" in result.report_path.read_text(encoding="utf-8")
