"""The reconciled ramp panel and the leave-one-brand-out backtest of the new-brand reference class."""

import re
from datetime import date

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

from evlaunch.data.catalogue import CATALOGUE
from evlaunch.data.loader import load_table
from evlaunch.entry.ramp_panel import (
    assemble_panel,
    classify_basis,
    eligible_ramps,
    load_ramp_panel,
    market_at_launch,
)
from evlaunch.studies.ramp_backtest import (
    METHODS,
    Method,
    choose_method,
    class_draws,
    cumulative,
    error_scale,
    fit_curves,
    forecast_ramp,
    leave_one_out,
    median_abs,
    score,
    shape_check,
    share_draws,
    standard_normals,
    summary_line,
)

SUMMARY = re.compile(r"^ramps: inside=\d+/\d+ median_abs_error=\d+\.\d{3} baseline_median_abs_error=\d+\.\d{3}$")


def _row(brand, month, deliveries, note="", basis=None, launch="2020-01", published="2020-12-31"):
    return {"brand": brand, "first_model": "M1", "launch_month": launch, "month_index": month,
            "deliveries": deliveries, "note": note, "basis": basis, "published": published,
            "price_cny_at_launch": None}


def _synthetic_tables():
    company = pd.DataFrame([
        _row("A", 1, "100"), _row("A", 2, "200"), _row("A", 8, "800"),
        _row("A", None, "1,200", note="quarterly Q2 2020 (Apr-Jun)"),    # months 4-6, company deliveries
        _row("B", 3, "300"),
    ]).drop(columns=["basis"])
    extra = pd.DataFrame([
        _row("A", 2, "150", basis="registrations (top list)"),           # company figure wins
        _row("A", 3, "300", basis="registrations (top list)"),           # the only figure: used, flagged
        _row("A", 4, "500", basis="company sales (wholesale)"),
        _row("A", 4, "450", basis="insurance registrations"),
        _row("A", 5, "100", basis="registrations"),
        _row("A", 6, "300", basis="registrations"),
        _row("A", 7, None, note="below ~500 in that month's top list"),  # a stated bound on the gap
    ])
    return {"new_brand_ramps": company, "brand_ramps_extra": extra}


def test_basis_of_a_row():
    assert classify_basis("insurance registrations", "") == "registrations"
    assert classify_basis("retail sales (CPCA) of model M5", "") == "registrations"
    assert classify_basis("company sales (GAC Aion brand, wholesale)", "") == "wholesale"
    assert classify_basis("company deliveries (derived)", "") == "company deliveries"
    assert classify_basis(None, "CPCA wholesale of Shanghai-made Model 3") == "wholesale"
    assert classify_basis(None, "domestic registrations (retail) of Model Y") == "registrations"
    assert classify_basis(None, "two sources agree") == "company deliveries"


def test_reconciliation_prefers_company_deliveries_and_flags_the_basis():
    panel = assemble_panel(_synthetic_tables(), horizon=10)
    a = panel.months[panel.months["ramp"] == "A"].set_index("month")
    assert a.loc[1, "deliveries"] == 100 and a.loc[1, "basis"] == "company deliveries"
    assert a.loc[2, "deliveries"] == 200 and a.loc[2, "basis"] == "company deliveries"   # not the 150 registered
    assert a.loc[3, "deliveries"] == 300 and a.loc[3, "basis"] == "registrations"        # only where missing
    # the Q2 company aggregate fills months 4-6, split by the months' other-basis figures 500 : 100 : 300
    assert a.loc[[4, 5, 6], "deliveries"].to_numpy() == pytest.approx([1200 * 5 / 9, 1200 / 9, 1200 * 3 / 9])
    assert set(a.loc[[4, 5, 6], "how"]) == {"aggregate"}
    assert set(a.loc[[4, 5, 6], "basis"]) == {"company deliveries"}
    # month 7: interpolated 400 -> 800 would be 600, capped by the stated bound of 500; after month 8 flat
    assert a.loc[7, "deliveries"] == 500 and a.loc[7, "how"] == "imputed" and a.loc[7, "basis"] == ""
    assert (a.loc[9:10, "deliveries"] == 800).all() and set(a.loc[9:10, "how"]) == {"imputed"}
    b = panel.months[panel.months["ramp"] == "B"].set_index("month")
    assert b.loc[[1, 2, 3, 4], "deliveries"].to_numpy() == pytest.approx([100, 200, 300, 300])   # from zero, flat
    assert panel.ramps.loc["A", "imputed_1_12"] == 3 and panel.ramps.loc["A", "known_1_12"] == 7
    assert panel.ramps.loc["A", "cum12"] == pytest.approx(a["deliveries"].sum())


def test_an_aggregate_smaller_than_its_known_months_is_ignored():
    tables = _synthetic_tables()
    tables["new_brand_ramps"].loc[3, "deliveries"] = "50"   # the Q2 total, now below its known month 5 (400)
    tables["new_brand_ramps"] = pd.concat([tables["new_brand_ramps"],
                                           pd.DataFrame([_row("A", 5, "400").copy()]).drop(columns=["basis"])])
    panel = assemble_panel(tables, horizon=10)
    a = panel.months[panel.months["ramp"] == "A"].set_index("month")
    assert a.loc[5, "deliveries"] == 400 and a.loc[5, "how"] == "month"
    assert a.loc[4, "basis"] == "wholesale" and a.loc[6, "basis"] == "registrations"


LAUNCHES = {"A": "2018-06", "B": "2019-03", "C": "2020-01", "D": "2020-07", "E": "2021-02", "F": "2021-09"}
MARKET = pd.DataFrame({"year": [2017, 2018, 2019, 2020], "nev_sales": ["500,000", "1000000", "1200000", "2000000"],
                       "basis": ["CAAM wholesale"] * 4,
                       "published": [date(2018, 1, 31), date(2019, 1, 31), date(2020, 1, 31), date(2021, 1, 31)]})


def _curves(params):
    months = np.arange(1, 25)
    rows = []
    for brand, (plateau, midpoint, width) in params.items():
        values = plateau / (1 + np.exp(-(months - midpoint) / width))
        rows += [_row(brand, m, f"{v:.1f}", launch=LAUNCHES[brand]) for m, v in zip(months, values)]
    return pd.DataFrame(rows).drop(columns=["basis"])


PARAMS = {"A": (5_000, 6.0, 2.0), "B": (12_000, 9.0, 3.0), "C": (30_000, 5.0, 1.5), "D": (8_000, 12.0, 4.0),
          "E": (20_000, 7.0, 2.5), "F": (3_000, 4.0, 1.0)}


def _panel(params):
    return assemble_panel({"new_brand_ramps": _curves(params)}, market=MARKET)


def test_market_at_launch_is_the_latest_year_published_before_the_launch_month():
    assert market_at_launch(MARKET, "2020-01") == (1_000_000, 2018)   # 2019's figure came out 2020-01-31
    assert market_at_launch(MARKET, "2020-02") == (1_200_000, 2019)
    assert np.isnan(market_at_launch(MARKET, "2018-01")[0])           # nothing public yet
    bundled = load_table("market_annual").rows
    assert market_at_launch(bundled, "2022-03") == (3_521_000, 2021)  # AITO launched into 2021's market
    panel = _panel(PARAMS)
    assert panel.ramps.loc["A", "market_at_launch"] == 500_000 and panel.ramps.loc["F", "market_year"] == 2020
    assert load_ramp_panel().ramps.loc["Tesla China", "market_year"] == 2018


def test_leave_one_out_never_sees_the_held_out_brand():
    normals = standard_normals(2000, 7)
    before, _ = leave_one_out(_panel(PARAMS), normals)
    changed = dict(PARAMS, C=(300_000, 2.0, 0.5))
    after, _ = leave_one_out(_panel(changed), normals)
    held = {f.ramp: f for f in before}, {f.ramp: f for f in after}
    assert held[1]["C"].actual != held[0]["C"].actual
    for field in ("p10", "p50", "p90", "widening", "baseline", "method", "unscaled_p50"):   # untouched by C's data
        assert getattr(held[1]["C"], field) == getattr(held[0]["C"], field)
    assert held[1]["A"].p50 != held[0]["A"].p50                     # ...while every other forecast uses it


def test_the_shape_check_runs_the_models_ramp_and_never_sees_the_held_out_shape():
    """The model's mechanism (own plateau x the other ramps' plateau-relative shape): with every ramp on the
    same shape it reproduces each first year; a held-out ramp's own shape never enters its forecast."""
    normals = standard_normals(2000, 7)
    same = {brand: (plateau, 7.0, 2.5) for brand, (plateau, _, _) in PARAMS.items()}
    for forecast in shape_check(_panel(same), normals):
        assert forecast.median_error == pytest.approx(0.0, abs=0.01)
        assert forecast.p90 / forecast.p10 < 1.05            # no spread of shapes when they agree
    before = {f.ramp: f for f in shape_check(_panel(PARAMS), normals)}
    after = {f.ramp: f for f in shape_check(_panel(dict(PARAMS, C=(30_000, 2.0, 0.5))), normals)}
    assert after["C"].actual > before["C"].actual              # C's first year is faster ...
    for field in ("p10", "p50", "p90"):                        # ... but its forecast is its plateau x the others' shapes
        assert getattr(after["C"], field) == pytest.approx(getattr(before["C"], field), rel=1e-3)
    assert after["A"].p50 != before["A"].p50                   # while every other forecast uses C's shape


def test_a_ramp_without_a_market_at_launch_is_left_out_with_the_reason():
    forecasts, excluded = leave_one_out(assemble_panel({"new_brand_ramps": _curves(PARAMS)},
                                                       market=MARKET[MARKET["year"] > 2017]), standard_normals(500, 1))
    assert "A" in excluded and "market" in excluded["A"] and "A" not in {f.ramp for f in forecasts}


def test_share_draws_are_the_predictive_log_student_t():
    grid = norm.ppf(np.array([0.1, 0.5, 0.9]))[:, None] * np.ones((1, 3))
    draws = share_draws(np.array([1000.0, 4000.0]), grid)             # n = 2: one degree of freedom, Cauchy
    scale = np.std(np.log([1000.0, 4000.0]), ddof=1) * np.sqrt(1.5)
    centre = np.log(2000.0)                                           # median of the logs
    assert draws == pytest.approx(np.exp(centre + scale * np.tan(np.pi * np.array([-0.4, 0.0, 0.4]))))


def test_the_market_rescaling_keeps_each_brands_share():
    normals = standard_normals(2000, 3)
    panel = _panel(PARAMS)
    curves = fit_curves(panel, list(PARAMS))
    actuals = {name: float(panel.ramps.loc[name, "cum12"]) for name in PARAMS}
    same = dict.fromkeys(PARAMS, 1_000_000.0)
    for kind in ("shares", "curves"):
        raw = forecast_ramp("A", curves, actuals, normals, method=Method(kind, False))[0]
        scaled = forecast_ramp("A", curves, actuals, normals, same, 1_000_000.0, Method(kind, True))[0]
        assert scaled == pytest.approx(raw)                           # one market for all: nothing to rescale
        doubled = forecast_ramp("A", curves, actuals, normals, same, 2_000_000.0, Method(kind, True))[0]
        assert doubled == pytest.approx(2 * raw)                      # twice the market, twice the deliveries
    markets = {name: float(panel.ramps.loc[name, "market_at_launch"]) for name in PARAMS}
    assert choose_method("A", curves, actuals, markets, normals) in METHODS


def test_widening_scales_the_spread_to_the_other_brands_errors():
    normals = standard_normals(2000, 11)
    panel = assemble_panel({"new_brand_ramps": _curves(PARAMS)})
    curves = fit_curves(panel, list(PARAMS))
    actuals = {name: float(panel.ramps.loc[name, "cum12"]) for name in PARAMS}
    widened, factor, baseline = forecast_ramp("A", curves, actuals, normals)
    raw = np.log(class_draws([curves[n] for n in PARAMS if n != "A"], normals))
    others = {n: curves[n] for n in PARAMS if n != "A"}
    rms = error_scale(others, {n: actuals[n] for n in others}, normals)
    assert factor == pytest.approx(max(1.0, rms / np.std(raw)))
    assert np.std(np.log(widened)) == pytest.approx(factor * np.std(raw), rel=1e-9)
    assert np.median(widened) == pytest.approx(np.exp(np.median(raw)), rel=1e-5)   # the centre stays
    assert baseline == np.median([actuals[n] for n in others])


def test_cumulative_is_the_sum_of_the_curve_over_the_first_year():
    plateau, midpoint, width = np.array([1000.0, 50.0]), np.array([4.0, 6.5]), np.array([2.0, 1e-2])
    by_hand = [sum(p / (1 + np.exp(-(m - mid) / w)) for m in range(1, 13))
               for p, mid, w in zip(plateau, midpoint, width)]
    assert cumulative(plateau, midpoint, width) == pytest.approx(by_hand)
    assert cumulative(plateau, midpoint, width)[1] == pytest.approx(6 * 50.0)   # a step at 6.5: months 7..12


def test_scores_against_hand_computed_values():
    f = score("X", 2.0, np.array([1.0, 2.0, 3.0, 4.0]), 1.0, 3.0, 4)
    assert (f.p10, f.p50, f.p90) == pytest.approx((1.3, 2.5, 3.7))   # linear quantiles of 1..4
    assert f.inside_80 and f.median_error == pytest.approx(0.25) and f.baseline_error == pytest.approx(0.5)
    # CRPS = E|X - y| - E|X - X'| / 2 = (1 + 0 + 1 + 2) / 4 - (20 / 16) / 2
    assert f.crps == pytest.approx(0.375) and f.pit == 0.5
    miss = score("Y", 10.0, np.full(5, 4.0), 1.0, 5.0, 4)
    assert not miss.inside_80 and miss.crps == pytest.approx(6.0) and miss.median_error == pytest.approx(-0.6)
    assert median_abs([-0.5, 0.2, 0.3]) == pytest.approx(0.3)


def test_summary_line_format():
    line = summary_line(6, 8, 0.68494, 0.68)
    assert line == "ramps: inside=6/8 median_abs_error=0.685 baseline_median_abs_error=0.680"
    assert SUMMARY.match(line)


def test_bundled_panel_scores_the_named_brands_and_reconciles_their_bases():
    panel = load_ramp_panel()
    ramps, excluded = eligible_ramps(panel)
    assert {"NIO", "XPeng", "Li Auto", "Zeekr", "Tesla China", "Tesla China Model Y", "AITO (Seres x Huawei)",
            "GAC Aion (GAC New Energy)"} <= set(ramps)
    assert "Li Auto L9" in excluded            # quarterly brand totals of an established brand
    months = panel.months.set_index(["ramp", "month"])
    assert months.loc[("Zeekr", 17), "deliveries"] == 5456          # company, not the 4,760 registered 001s
    assert months.loc[("GAC Aion (GAC New Energy)", 24), "deliveries"] == 8309     # brand wholesale over Aion S
    assert months.loc[("Tesla China Model Y", 3), "basis"] == "registrations"
    assert months.loc[("NIO", 6), "deliveries"] == pytest.approx((11348 - 3368) / 3)   # Q4 2018 split evenly
    assert panel.ramps.loc["XPeng", "prelaunch_orders"] == 1573 and panel.ramps.loc["Zeekr", "price_at_launch"] == 266000


def test_the_as_of_guard_reaches_the_panel():
    panel = load_ramp_panel(date(2021, 1, 1))
    assert "Zeekr" not in panel.ramps.index and "AITO (Seres x Huawei)" not in panel.ramps.index
    published = panel.months["published"].dropna()
    assert len(published) and (published <= date(2021, 1, 1)).all()
    info = CATALOGUE["brand_ramps_extra"]
    assert info.published(pd.Series({"published": "2019-06 (approx)"})) == date(2019, 6, 30)
    assert info.published(pd.Series({"published": "2021-01-01 (approx; Dec-2020 release)"})) == date(2021, 1, 1)


def test_cli_ramps_prints_the_table_and_the_summary_line(cli):
    code, out, _ = cli("backtest", "--ramps")
    assert code == 0
    last = out.strip().splitlines()[-1]
    assert SUMMARY.match(last)
    # issue 12's bar, on the bundled tables: >= 70% inside the 80% intervals over >= 7 brands, beating the baseline
    inside, n, model, baseline = (float(v) for v in re.findall(r"[\d.]+", last.replace("/", " ")))
    assert n >= 7 and inside / n >= 0.7 and model < baseline
    for brand in ("NIO", "XPeng", "Li Auto", "Zeekr", "Tesla China Model Y"):
        assert brand in out
    assert re.search(r"ramp shapes: inside=\d+/\d+ median_abs_error=\d+\.\d{3}", out)   # the model's mechanism
    code, _, err = cli("backtest")
    assert code == 2 and "--ramps" in err
    code, _, err = cli("backtest", "--ramps", "scenarios/xiaomi-2021.toml")
    assert code == 2 and "takes no SCENARIO" in err
