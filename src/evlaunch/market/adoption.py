"""NEV adoption (and market size) estimated from the history public at a date: a logistic diffusion with
random year-to-year departures from its trend.

The model, for y = log(NEV share / (1 - share)) (or y = log total sales), year by year:

    y[t] = y[t-1] + mu + e[t],   e[t] ~ Normal(0, sd^2) independent

that is a logistic curve in time (a straight line in log-odds with slope `mu`, logit units per year) whose
position takes a random step every year, as the history does (China's NEV log-odds rose 0.7 in 2017-18,
barely moved in 2019-20 after the subsidy cut, and rose 1.0 in 2021). Estimation from increments
c_i over spans of k_i years (k_i = 1 for consecutive years; 2 where a year is missing):

    mu_hat = sum c_i / sum k_i,   sd_hat^2 = sum (c_i - k_i mu_hat)^2 / k_i / (m - 1),
    var(mu_hat) = sd_hat^2 / sum k_i                       (m increments, m - 1 degrees of freedom)

and the h-year-ahead forecast from the last level y[T] (Student t with m - 1 degrees of freedom):

    y[T + h] ~ y[T] + h mu_hat + t(m - 1) * sd_hat * sqrt(h + h^2 / sum k_i)

The error model is the spread of the one-year forecast errors the history itself shows up to the as-of
date (each increment minus the drift), so it never looks past the origin. The Monte Carlo simulates the
same walk (`walk_change`): each draw takes a drift mu_hat + t(m - 1) sd_hat / sqrt(sum k) (the drift
estimate's sampling error) and one independent innovation t(m - 1) sd_hat per calendar year after the
as-of date, so its spread h years ahead grows as sd sqrt(h + h^2 / sum k), not as h times a one-year
spread. (Independent t innovations give slightly wider 80% intervals than the single t above; the
rolling-origin backtest scores this simulated walk.)

Series (`yearly_increments`): where the monthly registrations cover two consecutive years, the change
between them over their common calendar months (so a year-to-date year counts, and seasonality cancels),
NEV share = BEV registrations x (1 + PHEV/BEV ratio of that year, else the latest public year) / all
registrations, the model's basis; before the registrations start, the annual CAAM series (passenger NEV
share, passenger-vehicle sales), whose changes (not levels) are pooled. The levels are chained back from
the latest year, so every level is on the registrations basis.

Pure functions on dicts and arrays; no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import t as student_t

from evlaunch.config.distributions import is_uncertain
from evlaunch.config.scenario import EstimatedTrend, Scenario, month_number
from evlaunch.errors import DataError
from evlaunch.market.history import MarketHistory
from evlaunch.market.lineup import Lineup

MIN_COMMON_MONTHS = 6     # a year-to-date year enters with at least this many months public
TREND_BOUNDS = (-5.0, 5.0)  # the scenario's allowed range of market.nev_trend_per_year (logit units/yr)
MIN_OTHER = 0.01          # the 'other PHEV' / 'other ICE' products sell at least 1% of the named models' sales


@dataclass(frozen=True)
class DriftFit:
    """A random walk with drift fitted to yearly levels; `levels` chained on one basis."""

    levels: dict[int, float]   # year -> level (log-odds or log), the latest year possibly year-to-date based
    drift: float               # mu_hat, per year
    sd: float                  # sd of a one-year step
    span: float                # sum of the increments' spans, years
    count: int                 # number of increments

    @property
    def dof(self) -> int:
        return self.count - 1

    @property
    def drift_se(self) -> float:
        return self.sd / math.sqrt(self.span)

    @property
    def last_year(self) -> int:
        return max(self.levels)

    @property
    def last_level(self) -> float:
        return self.levels[self.last_year]

    def forecast_scale(self, horizon: float) -> float:
        """Scale of the Student-t forecast error of the level `horizon` years ahead."""
        return self.sd * math.sqrt(horizon + horizon ** 2 / self.span)

    def forecast_ppf(self, uniform: np.ndarray, horizon: float) -> np.ndarray:
        """Level `horizon` years after the last level at the given probabilities."""
        return (self.last_level + horizon * self.drift
                + student_t.ppf(np.asarray(uniform, float), self.dof) * self.forecast_scale(horizon))

    def walk(self, location: float | None = None) -> EstimatedTrend:
        """The drift as a resolved `{dist = "estimated"}` quantity: a t(m - 1) centred at `location` (default
        the drift) with the drift's standard error as its scale and sd as the yearly innovations' scale."""
        return EstimatedTrend(dist="estimated", location=self.drift if location is None else location,
                              scale=self.drift_se, dof=self.dof, step_scale=self.sd)


def raw_drift(trend: EstimatedTrend, uniform: np.ndarray) -> np.ndarray:
    """The drift on the estimate's scale (log-odds or log per year) at the given probabilities: `trend.ppf`
    without its transform (a growth rate g is log(1 + g) a year)."""
    value = trend.ppf(uniform)
    return np.log1p(value) if trend.transform == "expm1" else np.log(value) if trend.transform == "exp" else value


def walk_change(trend: EstimatedTrend, uniforms: np.ndarray) -> np.ndarray:
    """[N] change of the level over h whole years of the random walk with drift (module docstring): column 0
    of `uniforms` [N, 1 + h] draws the drift, columns 1..h the yearly innovations (`EstimatedTrend.step_ppf`),
    as the simulation draws them (`market.demand.walk_path`)."""
    uniforms = np.asarray(uniforms, float)
    horizon = uniforms.shape[1] - 1
    return horizon * raw_drift(trend, uniforms[:, 0]) + trend.step_ppf(uniforms[:, 1:]).sum(axis=1)


def fit_drift(increments: list[tuple[float, float]], levels: dict[int, float], what: str) -> DriftFit:
    """Fit mu and sd from (span in years, change) increments (module docstring)."""
    if len(increments) < 2:
        raise DataError(f"{what}: {len(increments)} yearly change(s) public by the as-of date; expected at least two "
                        f"to estimate the adoption trend and its spread")
    spans = np.array([span for span, _ in increments], float)
    changes = np.array([change for _, change in increments], float)
    drift = float(changes.sum() / spans.sum())
    variance = float(np.sum((changes - spans * drift) ** 2 / spans) / (len(increments) - 1))
    return DriftFit(dict(levels), drift, math.sqrt(variance), float(spans.sum()), len(increments))


def logit(share: float) -> float:
    return math.log(share / (1.0 - share))


def _ratio(ratios: dict[int, float], year: int) -> float | None:
    known = [y for y in ratios if y <= year]
    return ratios[max(known)] if known else None


def _registrations_by_year(monthly_total: dict[str, float],
                           monthly_bev: dict[str, float]) -> dict[int, dict[int, tuple[float, float]]]:
    """year -> calendar month -> (all registrations, BEV registrations), months with both figures."""
    by_year: dict[int, dict[int, tuple[float, float]]] = {}
    for month, total in monthly_total.items():
        bev = monthly_bev.get(month)
        if bev is not None and total > 0:
            by_year.setdefault(int(month[:4]), {})[int(month[5:7])] = (float(total), float(bev))
    return by_year


def _registrations_level(by_year: dict[int, dict[int, tuple[float, float]]], phev_to_bev_by_year: dict[int, float],
                         quantity: str, year: int, months: list[int]) -> float | None:
    """Log total or NEV log-odds of `year` over the calendar `months` (None where undefined)."""
    total = sum(by_year[year][m][0] for m in months)
    if quantity == "log_total":
        return math.log(total)
    ratio = _ratio(phev_to_bev_by_year, year)
    if ratio is None:
        return None
    share = sum(by_year[year][m][1] for m in months) * (1.0 + ratio) / total
    return logit(share) if 0 < share < 1 else None


def _chain(anchor: int, value: float, changes: dict[int, float]) -> dict[int, float]:
    """Levels from one anchored year and the year-on-year changes around it."""
    levels = {anchor: value}
    year = anchor
    while year + 1 in changes:
        year += 1
        levels[year] = levels[year - 1] + changes[year]
    year = anchor
    while year in changes:
        levels[year - 1] = levels[year] - changes[year]
        year -= 1
    return levels


def yearly_increments(monthly_total: dict[str, float], monthly_bev: dict[str, float],
                      phev_to_bev_by_year: dict[int, float], annual: dict[int, float],
                      quantity: str) -> tuple[list[tuple[float, float]], dict[int, float]]:
    """Increments (span, change) and chained levels of 'nev_log_odds' or 'log_total'.

    monthly_total, monthly_bev: registrations by 'YYYY-MM' (public months only); phev_to_bev_by_year:
    CAAM PHEV/BEV; annual: the CAAM yearly series for years before the registrations (passenger NEV share
    for 'nev_log_odds', passenger-vehicle sales for 'log_total')."""
    if quantity not in ("nev_log_odds", "log_total"):
        raise ValueError(f"unknown quantity {quantity!r}")
    by_year = _registrations_by_year(monthly_total, monthly_bev)
    increments: list[tuple[float, float]] = []
    changes: dict[int, float] = {}   # year -> change from the year before, over their common months
    years = sorted(by_year)
    for year in years[1:]:
        common = sorted(set(by_year[year]) & set(by_year.get(year - 1, {})))
        if len(common) < MIN_COMMON_MONTHS:
            continue
        now = _registrations_level(by_year, phev_to_bev_by_year, quantity, year, common)
        before = _registrations_level(by_year, phev_to_bev_by_year, quantity, year - 1, common)
        if now is not None and before is not None:
            changes[year] = now - before
            increments.append((1.0, now - before))
    full = [y for y in years if len(by_year[y]) == 12]
    anchor = _registrations_level(by_year, phev_to_bev_by_year, quantity, max(full), list(range(1, 13))) \
        if full else None
    levels = _chain(max(full), anchor, changes) if anchor is not None else {}
    first = min(levels) if levels else (years[0] if years else 10_000)
    transform = logit if quantity == "nev_log_odds" else math.log
    earlier = sorted(y for y, v in annual.items() if y <= first and 0 < v and (quantity == "log_total" or v < 1))
    pairs = list(zip(earlier[:-1], earlier[1:]))
    increments += [(float(b - a), transform(annual[b]) - transform(annual[a])) for a, b in pairs]
    if not levels:
        return increments, {y: transform(annual[y]) for y in earlier}
    for a, b in reversed(pairs):  # chain the earlier CAAM years onto the registrations basis
        if b in levels and a not in levels:
            levels[a] = levels[b] - (transform(annual[b]) - transform(annual[a]))
    return increments, dict(sorted(levels.items()))


def estimate(monthly_total: dict[str, float], monthly_bev: dict[str, float], phev_to_bev_by_year: dict[int, float],
             annual: dict[int, float], quantity: str) -> DriftFit:
    """The fitted adoption (quantity 'nev_log_odds') or market-size ('log_total') model from public history."""
    increments, levels = yearly_increments(monthly_total, monthly_bev, phev_to_bev_by_year, annual, quantity)
    if not levels:
        raise DataError(f"{quantity}: no yearly level is public by the as-of date; expected a full year of monthly "
                        f"registrations or annual CAAM figures")
    return fit_drift(increments, levels, f"NEV adoption ({quantity})")


def log_series_fit(series: dict[int, float], what: str) -> DriftFit:
    """The random walk with drift of log(series) from its public yearly values (a gap of k years is one
    increment of span k): the PHEV/BEV ratio (log ratio = the PHEV log-odds within NEVs) or public charging
    points (log growth)."""
    years = sorted(year for year, value in series.items() if value > 0)
    levels = {year: math.log(series[year]) for year in years}
    increments = [(float(b - a), levels[b] - levels[a]) for a, b in zip(years[:-1], years[1:])]
    return fit_drift(increments, levels, what)


def market_fits(history: MarketHistory) -> dict[str, DriftFit]:
    """Every market estimate from one history: 'nev_log_odds', 'log_total' (registrations, CAAM passenger sales
    before them), 'phev_log_ratio' (CAAM PHEV/BEV sales, i.e. the PHEV log-odds within NEVs) and 'log_chargers'
    (public charging points at year end)."""
    return {"nev_log_odds": estimate(history.monthly_total, history.monthly_bev, history.phev_to_bev_by_year,
                                     history.nev_share_by_year, "nev_log_odds"),
            "log_total": estimate(history.monthly_total, history.monthly_bev, history.phev_to_bev_by_year,
                                  history.pv_sales_by_year, "log_total"),
            "phev_log_ratio": log_series_fit(history.phev_to_bev_by_year, "PHEV/EREV share of NEVs (CAAM PHEV/BEV "
                                                                           "sales, table 'market_annual')"),
            "log_chargers": log_series_fit(history.public_chargers_by_year, "public charging points (table "
                                                                            "'charging_points')")}


def charging_log_growth(chargers: dict[int, float], first: int, last: int) -> float:
    """Mean yearly log growth of public charging points between the public year ends nearest to `first` and
    `last` (0 if fewer than two are public)."""
    years = sorted(y for y in chargers if first - 1 <= y <= last and chargers[y] > 0)
    if len(years) < 2:
        return 0.0
    return math.log(chargers[years[-1]] / chargers[years[0]]) / (years[-1] - years[0])


def _median(quantity: object) -> float:
    return quantity.centre if is_uncertain(quantity) else float(quantity)  # type: ignore[attr-defined]


def public_phev_ratio(history: MarketHistory, base_period: tuple[str, str]) -> float | None:
    """The PHEV/BEV ratio of the model's NEV basis in the base period: the CAAM ratio of the base period's
    last year, else of the latest public year before it (as `yearly_increments` chains the NEV log-odds);
    None when no year is public."""
    return _ratio(history.phev_to_bev_by_year, int(base_period[1][:4]))


def base_nev_sales(history: MarketHistory, base_period: tuple[str, str], ratio: np.ndarray | float) -> np.ndarray:
    """Mean monthly NEV sales of the base period, pinned to the data: BEV registrations x (1 + the public
    PHEV/BEV ratio, `public_phev_ratio`), the basis of the NEV history (`yearly_increments`), whatever the
    scenario's ratio `ratio` [N] (which then splits these NEVs into BEV and PHEV/EREV). Where no ratio is
    public, BEV x (1 + `ratio`)."""
    bev = history.base_month_totals(*base_period, series="bev").mean()
    public = public_phev_ratio(history, base_period)
    return bev * (1.0 + (np.asarray(ratio, float) if public is None else np.full(np.shape(ratio), public)))


def phev_ratio_bounds(history: MarketHistory, lineup: Lineup, base_period: tuple[str, str]) -> tuple[float, float]:
    """The PHEV/BEV ratios of the base period between which the 'other PHEV' and 'other BEV' (and 'other
    ICE') products keep at least MIN_OTHER of the named models' sales, the base period's NEVs pinned
    (`base_nev_sales`): PHEV = NEV r / (1 + r) above the named PHEV/EREV sales, BEV = NEV / (1 + r) above
    the named BEV sales (where no ratio is public: NEV = BEV (1 + r), r above the named PHEV/EREV sales per
    BEV registration and below (all registrations - BEV - named ICE sales) per BEV registration)."""
    total = history.base_month_totals(*base_period).mean()
    bev = history.base_month_totals(*base_period, series="bev").mean()
    named = ~np.isnan(lineup.monthly_sales)
    sales = {p: float(np.sum(lineup.monthly_sales[named & (np.array(lineup.powertrains) == p)]))
             for p in ("BEV", "PHEV", "ICE")}
    phev, named_bev = sales["PHEV"] * (1.0 + MIN_OTHER), sales["BEV"] * (1.0 + MIN_OTHER)
    if public_phev_ratio(history, base_period) is None:
        return phev / bev, (total - bev - sales["ICE"] * (1.0 + MIN_OTHER)) / bev
    nev = float(base_nev_sales(history, base_period, 0.0))
    return phev / max(nev - phev, 1e-9), nev / max(named_bev, 1e-9) - 1.0


def _resolved(value: EstimatedTrend, fit: DriftFit, location: float, **bounds: float | str) -> EstimatedTrend:
    """`value` resolved to the fit's random walk with drift (`DriftFit.walk`) with its drift centred at
    `location`: Student t (m - 1 dof) with the drift's standard error, and yearly innovations of the step sd."""
    walk = fit.walk(location)
    return value.model_copy(update={"location": walk.location, "scale": walk.scale, "dof": walk.dof,
                                    "step_scale": walk.step_scale, **bounds})


def _resolved_level(value: EstimatedTrend, fit: DriftFit, location: float, horizon: float,
                    **bounds: float | str) -> EstimatedTrend:
    """`value` resolved to the fit's Student t (m - 1 dof) level `horizon` years ahead, centred at `location`."""
    return value.model_copy(update={"location": location, "scale": fit.forecast_scale(horizon), "dof": fit.dof,
                                    **bounds})


def resolve_adoption(scenario: Scenario, history: MarketHistory, lineup: Lineup | None = None) -> Scenario:
    """The scenario with every `{dist = "estimated"}` market quantity resolved from the public history
    (`market_fits`; the four yearly rates each a random walk with drift: the drift a Student t with m - 1
    degrees of freedom and the drift's standard error sd / sqrt(sum k) as scale, plus yearly innovations of
    scale sd (`step_scale`); the base-period ratio a level, its t scale sd sqrt(h + h^2 / sum k) `horizon`
    years from the last public year):

    - `nev_trend_per_year`: the NEV log-odds drift less what the charging term already explains at the
      median charging effect (the mean yearly log growth of public charging points over the estimation
      years), so the drift stays what the explicit drivers do not explain;
    - `phev_trend_per_year`: the drift of log(PHEV / BEV) plus the BEV range term's median slope
      (range_utility x log(1 + range growth)), which the demand model already gives BEVs;
    - `phev_to_bev_ratio`: exp of the log ratio predicted for the middle of the base period, truncated
      to the ratios that leave the 'other' products sales (`phev_ratio_bounds`; at most 5); the public ratio
      itself (a fixed number) when the base period's year is public. It splits the base period's NEVs,
      pinned to the data (`base_nev_sales`), between BEV and PHEV/EREV (`market.calibration.calibrate`);
    - `growth_per_year`, `charging_growth_per_year`: e^x - 1 of the yearly log-growth drift of all
      registrations (CAAM passenger sales before them) and of public charging points.
    Other quantities are returned unchanged."""
    market = scenario.market
    names = ("nev_trend_per_year", "phev_trend_per_year", "phev_to_bev_ratio", "growth_per_year",
             "charging_growth_per_year")
    if not any(isinstance(getattr(market, name), EstimatedTrend) for name in names):
        return scenario
    fits = market_fits(history)
    nev, phev = fits["nev_log_odds"], fits["phev_log_ratio"]
    growth = charging_log_growth(history.public_chargers_by_year, min(nev.levels), nev.last_year)
    first, last = market.base_period
    base_mid = (month_number(first) + month_number(last)) / 24.0   # years since year 0
    base_year, base_years = int(base_mid), base_mid - (phev.last_year + 5.5 / 12.0)
    lowest, highest = phev_ratio_bounds(history, lineup, market.base_period) if lineup is not None else (0.0, 5.0)
    range_slope = _median(scenario.dynamics.range_utility) * math.log1p(_median(scenario.dynamics.range_growth_per_year))
    resolve = {
        "nev_trend_per_year": lambda v: _resolved(v, nev, nev.drift - _median(market.charging_effect) * growth),
        "phev_trend_per_year": lambda v: _resolved(v, phev, phev.drift + range_slope),
        "phev_to_bev_ratio": lambda v: math.exp(phev.levels[base_year]) if base_year in phev.levels else _resolved_level(
            v, phev, phev.last_level + base_years * phev.drift, max(base_years, 1.0 / 12.0),
            low=math.log(lowest) if lowest > 0 else -5.0, high=math.log(min(max(highest, lowest * 2.0), 5.0)),
            transform="exp"),
        "growth_per_year": lambda v: _resolved(v, fits["log_total"], fits["log_total"].drift,
                                               low=math.log1p(-0.5), high=math.log(2.0), transform="expm1"),
        "charging_growth_per_year": lambda v: _resolved(v, fits["log_chargers"], fits["log_chargers"].drift,
                                                        low=math.log1p(-0.5), high=math.log(4.0), transform="expm1"),
    }
    updates = {name: resolve[name](getattr(market, name)) for name in names
               if isinstance(getattr(market, name), EstimatedTrend)}
    return scenario.model_copy(update={"market": market.model_copy(update=updates)})
