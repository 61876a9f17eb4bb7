"""market.adoption: the diffusion estimate recovers a synthetic logistic, and sees only the public history."""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import pytest
from scipy.stats import t

from evlaunch.config.scenario import EstimatedTrend, load_scenario
from evlaunch.data.loader import bundled_path
from evlaunch.errors import DataError
from evlaunch.market.adoption import (
    DriftFit,
    charging_log_growth,
    estimate,
    fit_drift,
    logit,
    yearly_increments,
)
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
    trend = fit.trend_ppf(np.array([1e-12, 0.5, 1 - 1e-12]))
    assert trend[1] == pytest.approx(0.4, abs=1e-4) and -5 <= trend[0] < trend[2] <= 5


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
    assert trend.dof == fit.count - 1 and trend.scale == pytest.approx(fit.forecast_scale(1.0))
