"""market.adoption: the diffusion estimate recovers a synthetic logistic, and sees only the public history."""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import pandas as pd
import pytest
from scipy.integrate import quad
from scipy.stats import t

from evlaunch.config.scenario import EstimatedTrend, load_scenario, month_number
from evlaunch.data.loader import bundled_path
from evlaunch.errors import DataError
from evlaunch.market.adoption import (
    DriftFit,
    charging_log_growth,
    estimate,
    fit_drift,
    log_series_fit,
    logit,
    market_fits,
    phev_ratio_bounds,
    walk_change,
    yearly_increments,
)
from evlaunch.market.calibration import calibrate
from evlaunch.market.history import load_history
from evlaunch.simulation.model import prepare


def _months(first_year: int, last_year: int) -> list[str]:
    return [f"{y}-{m:02d}" for y in range(first_year, last_year + 1) for m in range(1, 13)]


def test_a_synthetic_logistic_is_recovered_exactly_without_noise():
    """Share = logistic(a + b t) every month, PHEV/BEV = 0.25: the drift is b, the spread 0, the levels exact."""
    a, b = -3.0, 0.6
    months = _months(2018, 2022)
    total = {m: 1_000_000.0 for m in months}
    share = {m: 1 / (1 + math.exp(-(a + b * (int(m[:4]) - 2018)))) for m in months}
    bev = {m: total[m] * share[m] / 1.25 for m in months}
    fit = estimate(total, bev, {2018: 0.25}, {}, "nev_log_odds")
    assert fit.drift == pytest.approx(b, abs=1e-12)
    assert fit.sd == pytest.approx(0.0, abs=1e-9)
    assert fit.levels[2022] == pytest.approx(a + 4 * b, abs=1e-12)
    assert fit.count == 4


def test_a_noisy_random_walk_with_drift_is_recovered_within_its_standard_error():
    rng = np.random.default_rng(7)
    drift, sd, years = 0.5, 0.3, 400
    steps = drift + sd * rng.standard_normal(years)
    fit = fit_drift([(1.0, float(c)) for c in steps], {0: 0.0}, "synthetic")
    assert abs(fit.drift - drift) < 3 * sd / math.sqrt(years)
    assert fit.sd == pytest.approx(sd, rel=0.1)
    assert fit.drift_se == pytest.approx(fit.sd / math.sqrt(years))


def test_forecast_quantiles_follow_the_closed_form():
    fit = DriftFit({2020: -1.0}, drift=0.4, sd=0.3, span=5.0, count=6)
    for horizon in (1, 2):
        expected = -1.0 + 0.4 * horizon + t.ppf(0.9, 5) * 0.3 * math.sqrt(horizon + horizon ** 2 / 5.0)
        assert fit.forecast_ppf(np.array([0.9]), horizon)[0] == pytest.approx(expected)
    assert fit.forecast_ppf(np.array([0.5]), 2)[0] == pytest.approx(-0.2)


@pytest.mark.parametrize("horizon", [1, 2, 5])
def test_the_simulated_walk_spreads_as_sqrt_h_plus_h_squared_over_n(horizon):
    """A drift from its estimate's sampling error (t, sd / sqrt(n)) plus one t(sd) innovation a year: the
    change over h years has mean h mu and variance (h v_step + h^2 / n v_t) sd^2, v_t = dof / (dof - 2) the
    t's variance and v_step that of the t cut at its 0.1% tails, so five years spread by about
    sqrt(5 + 25 / n) sd, not 5 one-year spreads."""
    fit = DriftFit({2022: -1.0}, drift=0.4, sd=0.3, span=8.0, count=31)
    uniforms = np.random.default_rng(3).uniform(size=(400_000, 1 + horizon))
    change = walk_change(fit.walk(), uniforms)
    dof = fit.dof
    edge = t.ppf(1 - 1e-3, dof)
    v_step = quad(lambda x: x * x * t.pdf(x, dof), -edge, edge)[0] / (1 - 2e-3)
    assert change.mean() == pytest.approx(0.4 * horizon, abs=0.005)
    assert change.var() == pytest.approx((horizon * v_step + horizon ** 2 / 8.0 * dof / (dof - 2)) * 0.09, rel=0.02)
    assert np.all(np.isfinite(walk_change(fit.walk(), np.array([[0.0] * (1 + horizon), [1.0] * (1 + horizon)]))))
    old = horizon * fit.forecast_scale(1.0)   # one one-year predictive draw applied every year
    assert change.std() < old * 0.8 if horizon == 5 else True


def test_a_walk_is_the_drift_error_plus_the_yearly_innovations():
    fit = DriftFit({2022: 0.0}, drift=0.1, sd=0.2, span=4.0, count=5)
    walk = fit.walk()
    assert (walk.location, walk.scale, walk.step_scale, walk.dof) == (0.1, pytest.approx(0.1), 0.2, 4)
    uniforms = np.array([[0.5, 0.9, 0.5], [0.9, 0.5, 0.5]])
    step = t.ppf(1e-3 + 0.9 * (1 - 2e-3), 4) * 0.2   # an innovation's t is cut at its 0.1% tails
    np.testing.assert_allclose(walk_change(walk, uniforms), [0.2 + step, 2 * (0.1 + t.ppf(0.9, 4) * 0.1)],
                               rtol=1e-5)  # the drift is truncated to [-5, 5]
    growth = walk.model_copy(update={"transform": "expm1"})   # a growth rate's walk is on log(1 + g)
    np.testing.assert_allclose(walk_change(growth, uniforms), walk_change(walk, uniforms))


def test_two_increments_are_needed():
    with pytest.raises(DataError, match="at least two"):
        fit_drift([(1.0, 0.5)], {2020: 0.0}, "NEV adoption")


def test_a_year_to_date_year_counts_over_the_months_common_with_the_year_before():
    months = _months(2018, 2018) + [f"2019-{m:02d}" for m in range(1, 8)]
    total = dict.fromkeys(months, 100.0)
    bev = {m: (10.0 if m.startswith("2019") else 5.0) for m in months}
    increments, levels = yearly_increments(total, bev, {2018: 0.0}, {}, "nev_log_odds")
    assert increments == [(1.0, pytest.approx(logit(0.1) - logit(0.05)))]
    assert levels[2019] == pytest.approx(logit(0.1))


def _fit_as_of(as_of: date, tables: dict[str, str] | None = None) -> DriftFit:
    history = load_history(as_of, tables)
    return estimate(history.monthly_total, history.monthly_bev, history.phev_to_bev_by_year,
                    history.nev_share_by_year, "nev_log_odds")


def test_an_estimate_at_the_2020_origin_never_sees_2021(tmp_path):
    """Tripling every 2021 BEV registration and annual figure leaves the 2020-12-31 estimate as it was (while
    the 2021-12-31 estimate moves): the loader's as-of cut holds."""
    tables = {}
    for name in ("china_bev_monthly_by_model", "market_annual"):
        text = bundled_path(name).read_text(encoding="utf-8").splitlines(keepends=True)
        changed = [text[0]]
        for line in text[1:]:
            if line.startswith(("2021-", "2021,")):
                cells = line.split(",")
                for i, cell in enumerate(cells[1:8], start=1):
                    if cell.strip().isdigit():
                        cells[i] = str(int(cell) * 3)
                line = ",".join(cells)
            changed.append(line)
        path = tmp_path / f"{name}.csv"
        path.write_text("".join(changed), encoding="utf-8")
        tables[name] = str(path)
    before, after = _fit_as_of(date(2020, 12, 31)), _fit_as_of(date(2020, 12, 31), tables)
    assert (before.drift, before.sd, before.levels) == (after.drift, after.sd, after.levels)
    assert max(before.levels) == 2020
    assert _fit_as_of(date(2021, 12, 31)).drift != _fit_as_of(date(2021, 12, 31), tables).drift


def test_the_reference_scenario_resolves_its_estimated_trend_when_prepared(reference_path):
    """`{dist = "estimated"}` becomes the estimate's predictive t (net of the charging term at the median
    effect) when the model is prepared; before that it cannot be sampled."""
    scenario = load_scenario(reference_path)
    assert isinstance(scenario.market.nev_trend_per_year, EstimatedTrend)
    with pytest.raises(ValueError, match="resolved from the history"):
        scenario.market.nev_trend_per_year.ppf(np.array([0.5]))
    model = prepare(scenario, reference_path.parent)
    trend = model.scenario.market.nev_trend_per_year
    fit = _fit_as_of(scenario.as_of)
    growth = charging_log_growth(load_history(scenario.as_of).public_chargers_by_year, min(fit.levels), fit.last_year)
    assert trend.ppf(np.array([0.5]))[0] == pytest.approx(fit.drift - scenario.market.charging_effect.centre * growth,
                                                          abs=1e-3)
    assert trend.dof == fit.count - 1 and trend.scale == pytest.approx(fit.drift_se)
    assert trend.step_scale == pytest.approx(fit.sd)


def test_a_log_series_fit_spans_gaps_and_follows_the_closed_form():
    """Ratios 0.2 (2017), 0.3 (2018), 0.24 (2020): increments log 1.5 over 1 year and log 0.8 over 2."""
    fit = log_series_fit({2017: 0.2, 2018: 0.3, 2020: 0.24, 2016: 0.0}, "PHEV/BEV")
    changes, spans = np.array([math.log(1.5), math.log(0.8)]), np.array([1.0, 2.0])
    drift = changes.sum() / 3.0
    assert fit.drift == pytest.approx(drift)
    assert fit.sd == pytest.approx(math.sqrt(np.sum((changes - spans * drift) ** 2 / spans)))
    assert (fit.count, fit.span, fit.last_year, fit.last_level) == (2, 3.0, 2020, pytest.approx(math.log(0.24)))


def test_an_estimated_quantity_applies_its_transform_to_the_truncated_t():
    growth = EstimatedTrend(dist="estimated", location=0.4, scale=0.1, dof=5, low=math.log(0.5), high=math.log(4.0),
                            transform="expm1")
    ratio = growth.model_copy(update={"transform": "exp"})
    plain = growth.model_copy(update={"transform": "none"})
    uniform = np.array([1e-12, 0.1, 0.5, 0.9, 1 - 1e-12])
    np.testing.assert_allclose(growth.ppf(uniform), np.expm1(plain.ppf(uniform)))
    np.testing.assert_allclose(ratio.ppf(uniform), np.exp(plain.ppf(uniform)))
    low, high = t.cdf((math.log(0.5) - 0.4) / 0.1, 5), t.cdf((math.log(4.0) - 0.4) / 0.1, 5)
    assert plain.ppf(np.array([0.9]))[0] == pytest.approx(0.4 + t.ppf(low + 0.9 * (high - low), 5) * 0.1, rel=1e-9)
    assert growth.ppf(uniform)[0] >= -0.5 - 1e-12 and growth.ppf(uniform)[-1] <= 3.0 + 1e-12


def test_the_reference_scenario_estimates_growth_charging_and_the_phev_share(reference_path):
    """Every market spread of the reference scenario resolves to its estimate: total and charging growth are
    e^drift - 1 at the median, the drift's t with its standard error and yearly innovations of the step sd;
    the PHEV drift is the log PHEV/BEV drift plus
    the BEV range term; the base-period ratio is the prediction for the base period's middle, truncated to
    the ratios that leave the 'other PHEV' and 'other BEV' products sales (so every draw calibrates)."""
    scenario = load_scenario(reference_path)
    model = prepare(scenario, reference_path.parent)
    market, history = model.scenario.market, load_history(scenario.as_of)
    fits = market_fits(history)
    median = np.array([0.5])
    for name, fit in (("growth_per_year", fits["log_total"]), ("charging_growth_per_year", fits["log_chargers"])):
        value = getattr(market, name)
        assert value.ppf(median)[0] == pytest.approx(math.expm1(fit.drift), abs=1e-5)  # truncation moves it a little
        assert (value.dof, value.scale, value.step_scale) == (fit.dof, pytest.approx(fit.drift_se), fit.sd)
    phev = fits["phev_log_ratio"]
    dynamics = scenario.dynamics
    slope = dynamics.range_utility.centre * math.log1p(dynamics.range_growth_per_year.centre)
    assert market.phev_trend_per_year.location == pytest.approx(phev.drift + slope, abs=1e-12)
    assert market.phev_trend_per_year.scale == pytest.approx(phev.drift_se)
    assert phev.last_year == 2022 and phev.levels[2022] == pytest.approx(math.log(1_518_000 / 5_365_000))
    low, high = phev_ratio_bounds(history, model.lineup, market.base_period)
    extremes = market.phev_to_bev_ratio.ppf(np.array([1e-12, 0.5, 1 - 1e-12]))
    assert low * 0.999 <= extremes[0] < extremes[1] < extremes[2] <= high * 1.001
    horizon = (month_number("2023-01") + month_number("2023-08")) / 24.0 - (2022 + 5.5 / 12.0)
    assert market.phev_to_bev_ratio.location == pytest.approx(phev.last_level + horizon * phev.drift)
    assert market.phev_to_bev_ratio.scale == pytest.approx(phev.forecast_scale(horizon))
    model.parameters({"market.phev_to_bev_ratio": extremes[[0, 2]]})  # both extremes are valid inputs


def test_a_public_base_year_ratio_is_the_fact_not_an_estimate(reference_path):
    """The 2021 scenario's base period is 2020, whose CAAM PHEV/BEV ratio (251k / 1,116k) was public."""
    path = reference_path.parent / "xiaomi-2021.toml"
    model = prepare(load_scenario(path), path.parent)
    assert model.scenario.market.phev_to_bev_ratio == pytest.approx(251_000 / 1_116_000)


def _bundled_base_nev_share(first: str, last: str, phev_to_bev: float) -> float:
    """The base period's NEV share on the model's basis read straight from the bundled monthly tables: BEV
    registrations x (1 + the public CAAM PHEV/BEV ratio) / all registrations."""
    total = pd.read_csv(bundled_path("china_cars_monthly_total"))
    bev = pd.read_csv(bundled_path("china_bev_monthly_by_model"))
    total = total[(total["month"] >= first) & (total["month"] <= last)]["all_car_registrations"].sum()
    bev = bev[(bev["month"] >= first) & (bev["month"] <= last)]["bev_registrations"].sum()
    return bev * (1.0 + phev_to_bev) / total


def test_the_base_period_nev_share_is_the_datas_whatever_the_phev_ratio(reference_model):
    """Across the whole range of the PHEV/BEV ratio draw the calibrated base period sells the data's NEVs
    (BEV registrations x (1 + 2022's CAAM ratio 1,518k / 5,365k) over Jan-Aug 2023); the ratio only splits
    them into BEV and PHEV/EREV."""
    market = reference_model.scenario.market
    ratios = market.phev_to_bev_ratio.ppf(np.array([1e-9, 0.1, 0.5, 0.9, 1 - 1e-9]))
    assert ratios[-1] / ratios[0] > 5
    parameters = reference_model.parameters({"market.phev_to_bev_ratio": ratios})
    base = calibrate(reference_model.market, parameters, np.full(len(ratios), -4.0))
    powertrains = np.array(reference_model.lineup.powertrains)
    nev = base.shares[:, np.isin(powertrains, ("BEV", "PHEV"))].sum(axis=1) / base.shares.sum(axis=1)
    expected = _bundled_base_nev_share(*market.base_period, 1_518_000 / 5_365_000)
    np.testing.assert_allclose(nev, expected, rtol=1e-12)
    split = base.shares[:, powertrains == "PHEV"].sum(axis=1) / base.shares[:, powertrains == "BEV"].sum(axis=1)
    np.testing.assert_allclose(split, ratios, rtol=1e-12)
