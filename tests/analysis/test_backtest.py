"""`evlaunch backtest`: the 2021 scenario's forecasts of 2021-2023 are scored against the shipped actuals,
actuals files are validated like data, and naive baselines sit beside the model."""

import json
from datetime import date
from pathlib import Path

import numpy as np
import pytest
import scoringrules

from evlaunch.config.scenario import load_scenario
from evlaunch.data import load_table, numeric
from evlaunch.errors import DataError
from evlaunch.studies.backtest import (
    Actual,
    Score,
    baseline_value,
    naive_history,
    read_actuals,
    run_backtest,
    score,
    summarise,
)

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "scenarios" / "xiaomi-2021.toml"
ACTUALS = ROOT / "backtests" / "china-2021-2023.csv"
DRAWS = 48


@pytest.fixture(scope="module")
def result():
    return run_backtest(SCENARIO, ACTUALS, draws=DRAWS, seed=3)


def test_2021_forecast_of_2021_2023_nev_share_and_sales_is_scored(result):
    scored = {(s.quantity, s.period) for s in result.scores}
    assert scored == {(q, str(y)) for q in ("market.total_sales", "market.nev_share") for y in (2021, 2022, 2023)}
    for s in result.scores:
        assert s.p10 <= s.p50 <= s.p90
        assert s.inside_80 == (s.p10 <= s.actual <= s.p90)
        assert s.crps >= 0 and np.isfinite(s.crps)
        assert s.median_error == pytest.approx(s.p50 / s.actual - 1)
        assert s.column.startswith(result.market_path + ".")
        assert set(s.baselines) == {"frozen", "trend"}
    assert result.coverage_80 == pytest.approx(np.mean([s.inside_80 for s in result.scores]))
    assert result.mean_abs_error["model"] is not None and result.verdict
    # the frozen baseline is the last full public year on the model's basis (2020 registrations)
    sales = [s for s in result.scores if s.quantity == "market.total_sales"]
    assert sales[0].baselines["frozen"]["value"] == pytest.approx(19_655_171)


def test_shipped_actuals_match_the_bundled_history():
    actuals = {(a.quantity, a.period): a for a in read_actuals(ACTUALS)}
    totals = load_table("china_cars_monthly_total").rows
    for year in ("2021", "2022"):
        rows = totals[totals["month"].str.startswith(year)]
        assert len(rows) == 12
        assert actuals[("market.total_sales", year)].value == numeric(rows["all_car_registrations"]).sum()
    annual = load_table("market_annual").rows
    cpca_2023 = annual[(annual["year"] == "2023") & annual["basis"].str.startswith("CPCA")].iloc[0]
    assert actuals[("market.total_sales", "2023")].value == float(cpca_2023["pv_sales"])
    assert actuals[("market.nev_share", "2023")].value == float(cpca_2023["nev_share"])
    assert all(a.basis and a.source for a in actuals.values())


def test_crps_and_interval_of_one_actual():
    draws = np.linspace(0.0, 1.0, 101)
    actual = Actual(2, "market.nev_share", "2022", 0.3, "", "src", "")
    result = score(actual, "x", draws)
    assert (result.p10, result.p50, result.p90) == pytest.approx((0.1, 0.5, 0.9))
    assert result.inside_80 and result.median_error == pytest.approx(0.5 / 0.3 - 1)
    assert result.crps == pytest.approx(float(scoringrules.crps_ensemble(0.3, draws)))
    assert not score(Actual(2, "market.nev_share", "2022", 0.95, "", "s", ""), "x", draws).inside_80


def test_baselines_from_the_as_of_date():
    scenario = load_scenario(SCENARIO)
    history = naive_history(scenario, SCENARIO.parent)
    assert max(history["market.total_sales"]) == 2020 and max(history["market.nev_share"]) == 2020
    series = {2018: 10.0, 2019: 12.0, 2020: 14.0}
    actual = Actual(2, "market.total_sales", "2022", 20.0, "", "s", "")
    assert baseline_value(series, actual, "frozen") == 14.0
    assert baseline_value(series, actual, "trend") == pytest.approx(18.0)
    assert date(2021, 3, 31) == scenario.as_of


def test_verdict_says_when_the_model_loses():
    def row(model_error, frozen_error, trend_error):
        return Score("market.total_sales", "2021", 1.0, "", "", "c", 0.9, 1 + model_error, 1.1, True, model_error, 0.1,
                     {"frozen": {"value": 1 + frozen_error, "error": frozen_error, "crps": abs(frozen_error)},
                      "trend": {"value": 1 + trend_error, "error": trend_error, "crps": abs(trend_error)}})

    coverage, errors, verdict = summarise([row(0.2, 0.05, 0.3), row(-0.2, 0.05, 0.3)])
    assert coverage == 1.0 and errors["model"] == pytest.approx(0.2)
    assert any("LOSES" in line and "frozen" in line for line in verdict)
    _, _, verdict = summarise([row(0.01, 0.05, 0.3)])
    assert not any("LOSES" in line for line in verdict)


@pytest.mark.parametrize("content, expected", [
    ("quantity,period,value,source,note\nmarket.nev_share,2022,35.7,src,\n",
     "line 2, column value: got '35.7'; expected a share between 0 and 1"),
    ("quantity,value,source,note\nmarket.nev_share,0.3,src,\n", "line 1: got 'quantity,value,source,note'"),
    ("quantity,period,value,source,note\nmarket.nev_share,22,0.3,src,\n", "line 2, column period: got '22'"),
    ("quantity,period,value,source,note\nmarket.nev_share,2022,0.3,,\n", "line 2, column source: got ''"),
    ("quantity,period,value,source,note\nmarket.price,2022,0.3,src,\n", "line 2, column quantity: got 'market.price'"),
    ("quantity,period,value,source,note\nmarket.total_sales,2022,=cmd(),src,\n", "column value: got '=cmd()'"),
    ("quantity,period,value,source,note\nmarket.total_sales,2022,1,src,\nmarket.total_sales,2022,2,src,\n",
     "line 3, column period"),
    ("", "empty file"),
])
def test_bad_actuals_are_refused_with_file_line_column_value(tmp_path, content, expected):
    path = tmp_path / "actuals.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataError) as error:
        read_actuals(path)
    assert str(path) in str(error.value) and expected in str(error.value)


def test_cli_exit_2_for_actuals_the_scenario_cannot_answer(cli, tmp_path):
    path = tmp_path / "actuals.csv"
    path.write_text("quantity,period,value,source,note\nmarket.nev_share,2035,0.5,src,\n"
                    "nosuchpath.deliveries,2024,10,src,\nmarket.total_sales,2022-05,1,src,\n", encoding="utf-8")
    code, _, err = cli("backtest", SCENARIO, "--actuals", path, "--draws", "8")
    assert code == 2
    assert "line 2, column period: got '2035'; expected a year within the scenario's horizon 2021..2027" in err
    assert "line 3, column quantity: got 'nosuchpath.deliveries'" in err
    assert "line 4, column period: got '2022-05'; expected a year" in err
    assert "Traceback" not in err


def test_cli_json_output(cli, tmp_path):
    path = tmp_path / "actuals.csv"
    path.write_text("quantity,period,value,source,note\nmarket.nev_share,2022,0.2775,derived,\n"
                    "GreatWall.deliveries,2025,0,what Xiaomi did not sell through GWM,\n", encoding="utf-8")
    code, out, err = cli("backtest", SCENARIO, "--actuals", path, "--draws", "16", "--json")
    assert code == 0, err
    document = json.loads(out)
    assert document["scenario"] == "xiaomi-2021" and document["as_of"] == "2021-03-31"
    assert 0.0 <= document["coverage_80"] <= 1.0
    rows = {row["quantity"]: row for row in document["scores"]}
    assert rows["market.nev_share"]["baselines"]["frozen"]["value"] == pytest.approx(0.0573, abs=1e-3)
    assert rows["GreatWall.deliveries"]["median_error"] is None and rows["GreatWall.deliveries"]["baselines"] == {}
