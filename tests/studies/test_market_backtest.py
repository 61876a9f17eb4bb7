"""The rolling-origin market backtest: scoring against hand-computed values and the summary line."""

from __future__ import annotations

import math
import re
from datetime import date

import numpy as np
import pytest

from evlaunch.studies.backtest import (
    OriginScore,
    RollingBacktest,
    crps,
    industry_errors,
    naive_forecasts,
    phev_actuals,
    run_rolling_backtest,
)


def _score(error, frozen, trend, industry, inside=True):
    return OriginScore("2020-12-31", "market.nev_share", 2021, 1, 0.2, 0.1, 0.2, 0.3, inside, error, 0.01,
                       0.0, frozen, 0.0, trend, industry, 0 if industry is None else 1)


def test_summary_line_format_and_means():
    result = RollingBacktest(100, [_score(0.1, -0.3, 0.2, -0.5), _score(-0.3, 0.1, -0.4, None, inside=False)], {})
    line = result.summary_line()
    assert line == "market: inside=1/2 model_mae=0.200 naive_mae=0.200 industry_mae=0.500"
    assert re.fullmatch(r"market: inside=\d+/\d+ model_mae=[0-9.]+ naive_mae=[0-9.]+ industry_mae=[0-9.]+", line)


def test_naive_forecasts_by_hand():
    levels = {2018: math.log(0.1 / 0.9), 2019: math.log(0.2 / 0.8), 2020: math.log(0.3 / 0.7)}
    frozen, trend = naive_forecasts(levels, "market.nev_share", 2021)
    assert frozen == pytest.approx(0.3)
    slope = (levels[2020] - levels[2018]) / 2
    line = np.mean(list(levels.values())) + slope * (2021 - 2019)
    assert trend == pytest.approx(1 / (1 + math.exp(-line)))


def test_crps_of_a_point_ensemble_is_the_absolute_error():
    assert crps(3.0, np.array([5.0])) == pytest.approx(2.0)
    # two-member ensemble {0, 1}, actual 0: E|X - y| - E|X - X'| / 2 = 0.5 - 0.25
    assert crps(0.0, np.array([0.0, 1.0])) == pytest.approx(0.25)


def test_industry_forecasts_are_compared_on_their_own_basis_and_only_when_published():
    # CAAM (Ye Shengji, 2020-12-11): 1.8m NEVs in 2021, CAAM wholesale; the outcome on that basis is 3.521m
    errors = industry_errors(date(2020, 12, 31), "market.nev_share", 2021)
    assert errors == [pytest.approx(1.8 / 3.521 - 1)]
    assert industry_errors(date(2020, 12, 10), "market.nev_share", 2021) == []


def test_rolling_backtest_scores_every_origin_and_horizon():
    result = run_rolling_backtest(draws=200)
    origins = {s.origin for s in result.scores}
    assert origins == {"2019-12-31", "2020-12-31", "2021-03-31", "2021-12-31", "2022-12-31"}
    assert len(result.scores) == 18  # 2022-12-31 has no 2024 actual
    for s in result.scores:
        assert s.p10 <= s.p50 <= s.p90
        assert s.inside_80 == (s.p10 <= s.actual <= s.p90)
        assert s.error == pytest.approx(s.p50 / s.actual - 1)
    assert result.summary_line().startswith(f"market: inside={result.inside}/18 ")
    # the PHEV/EREV share of NEVs is scored apart, wherever a CAAM year with both figures follows an origin
    phev = {(s.origin, s.year) for s in result.phev_scores}
    assert phev == {("2019-12-31", 2020), ("2020-12-31", 2022), ("2021-03-31", 2022), ("2021-12-31", 2022),
                    ("2021-12-31", 2023), ("2022-12-31", 2023)}
    for s in result.phev_scores:
        assert s.quantity == "market.phev_share" and s.p10 <= s.p50 <= s.p90
        assert s.inside_80 == (s.p10 <= s.actual <= s.p90)
        fits = result.fits[s.origin]["market.phev_share"]
        assert fits["last_year"] < int(s.origin[:4]) + (s.origin.endswith("12-31"))  # only years public then
    assert re.fullmatch(r"phev: inside=\d+/6 model_mae=[0-9.]+ naive_mae=[0-9.]+", result.phev_line())


def test_phev_actuals_are_caam_phev_over_bev_plus_phev():
    shares = phev_actuals()
    assert shares[2022] == pytest.approx(1_518_000 / (5_365_000 + 1_518_000))
    assert shares[2023] == pytest.approx(2_804_000 / (6_685_000 + 2_804_000))
    assert 2021 not in shares  # CAAM 2021 gives no BEV/PHEV split in market_annual
