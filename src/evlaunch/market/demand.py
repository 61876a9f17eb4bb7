"""The market over time: what changes month by month for every buyer (the base period it starts from is
calibrated in `market.calibration`).

`simulate` asks `Demand.month` for the choice shares of each month. What moves them:

- market size: the base period's potential buyers, seasonality, and `market.growth_per_year`; and the
  anchor: each month a utility offset c (per draw) is added to every car, i.e. the outside option ("no new
  car this month") is lowered by c, chosen so that *without the entrant* the month's new-car buyers are the
  base period's share of the potential buyers (`anchor_offset`: a 1-D root per draw over the consumer types;
  closed form c = logit(target) - log sum exp(u) for one type). The growth rate was estimated from total
  sales that already include NEVs' growth, so the drivers below (NEV and PHEV drifts, charging, subsidies,
  battery costs, ageing, scheduled launches) move shares among cars, not the number of cars: without the
  entrant the yearly total follows base x seasonality x (1 + growth)^t. The offset is set at the no-entrant
  market (fixed prices, or the no-entrant Bertrand equilibrium, `simulation.simulate.anchor_at_equilibrium`)
  and kept when the entrant sells and incumbents respond, so entry still expands the market by the
  entrant's buyers drawn from the outside option (per consumer type s_entrant x no-entrant outside share),
  counted once;
- policy (`market.policy`): purchase subsidy by range band and purchase tax by date, as known on the
  as-of date (the last known rule continues beyond what was announced), plus the scenario's assumed
  extra NEV subsidy (`[policy]`, e.g. local subsidies brought back, or a counterfactual); rural campaigns and large-city
  plate privileges switch the regions' NEV bonuses on and off;
- charging points by region: the sourced year-end counts (interpolated), then the assumed national
  growth plus each region's extra growth after the as-of date; NEV utility moves with
  `market.charging_effect` times the log of charging points per potential buyer in the region;
- the NEV drift `market.nev_trend_per_year` (what the explicit drivers do not explain), and the PHEV/EREV
  drift `market.phev_trend_per_year` against BEVs (so the PHEV share of NEVs moves as estimated, not frozen
  at the base period's ratio);
- the yearly innovations of the market's random walks (`market.adoption`, when these four rates are
  `{dist = "estimated"}`): besides its drift, each draw's market size (log), charging points (log), NEV and
  PHEV drifts take an independent step per calendar year after the as-of date (`walk_path`);
- battery pack cost: with fixed prices, incumbents' BEV/PHEV prices move with the pack cost since the base
  period times `dynamics.battery_pass_through`;
- technology progress: incumbent BEVs' range grows by `dynamics.range_growth_per_year` (utility
  `dynamics.range_utility` per unit of log range; the subsidy band follows the range);
- model ageing: named base-lineup models lose `dynamics.ageing_per_year` utility per year from the base
  period; scheduled launches and the entrant start level with their comparables as they are at launch
  and age from then; the 'other' aggregates stand for a renewing set of models and do not age;
- scheduled competitor launches and the entrant enter in their months.

Calendar years: the simulation also covers the months of the start year before the scenario start
(market only: the entrant cannot be on sale yet), so yearly market figures are whole calendar years.
Those months are the model's estimates, as every simulated month is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba as nb
import numpy as np

from evlaunch.config.parameters import Parameters
from evlaunch.config.scenario import Scenario, month_number
from evlaunch.errors import DataError
from evlaunch.market.calibration import BaseMarket, base_months, named_models
from evlaunch.market.consumer_types import ConsumerTypes
from evlaunch.market.market_data import MarketData
from evlaunch.market.policy import PLATE_PRIVILEGE, RURAL_CAMPAIGN, effective_prices, extra_subsidy
from evlaunch.market.rc_logit import exp_nonpositive
from evlaunch.market.regions import RegionSet, regional_nev_utility


def year_end_path(series: dict[int, float], months: np.ndarray, growth: np.ndarray) -> np.ndarray:
    """[N, M] values of a year-end series at `months` (months since year 0; fractions allowed):
    log-linear between sourced year ends, held before the first, and growing by `growth` [N] per year
    after the last."""
    years = sorted(series)
    points = np.array([year * 12 + 11 for year in years], dtype=float)
    logs = np.log(np.array([series[year] for year in years], dtype=float))
    months = np.asarray(months, dtype=float)
    inside = np.interp(np.minimum(months, points[-1]), points, logs)
    beyond = np.maximum(months - points[-1], 0.0) / 12.0
    return np.exp(inside[None, :] + np.log1p(np.asarray(growth, dtype=float))[:, None] * beyond[None, :])


def walk_path(steps: np.ndarray, years: tuple[int, ...], as_of_point: float, months: np.ndarray) -> np.ndarray:
    """[N, M] cumulative yearly innovations of a random walk (`market.adoption`) at `months` (months since
    year 0, a month's value at its index): 0 up to the as-of date (`as_of_point`, the same month units, e.g.
    the end of October 2023 = 2023 * 12 + 9.5), the sum of the innovations `steps` [N, Y] of `years` up to
    year y at the middle of year y (y * 12 + 5.5, so a year's mean carries its own and earlier innovations
    as the walk of yearly levels does), linear in between and held after the last year's middle."""
    steps = np.asarray(steps, dtype=float)
    if steps.shape[1] == 0:
        return np.zeros((steps.shape[0], len(months)))
    knots = np.array([as_of_point] + [year * 12 + 5.5 for year in years], dtype=float)
    basis = np.stack([np.interp(np.asarray(months, dtype=float), knots, np.eye(len(knots))[k])
                      for k in range(len(knots))], axis=1)                         # [M, 1 + Y]
    levels = np.concatenate([np.zeros((steps.shape[0], 1)), np.cumsum(steps, axis=1)], axis=1)
    return levels @ basis.T


def as_of_point(scenario: Scenario) -> float:
    """The as-of date in month units (months since year 0 at each month's index): the end of its month."""
    return scenario.as_of.year * 12 + scenario.as_of.month - 1 + 0.5


ANCHOR_TOLERANCE = 1e-12      # |log-odds| error of the anchored inside share
ANCHOR_MAX_ITERATIONS = 100


def anchor_offset(utility: np.ndarray, available: np.ndarray, weights: np.ndarray, target: np.ndarray) -> np.ndarray:
    """[N] the utility c added to every product (= the outside option's utility lowered by c) such that the
    weighted inside share over consumer types equals `target` [N]:

        sum_t w_t * S_t(c) = target,   S_t(c) = D_t e^c / (1 + D_t e^c),   D_t = sum_k avail_k exp(u_tk)

    utility [N, T, K], available [N, K], weights [N, T]. One type: the closed form c = logit(target) - log D.
    Several: Newton on the log-odds of the inside share, logit(S(c)), which rises in c with slope
    sum_t w_t S_t (1 - S_t) / (S (1 - S)) in (0, 1]; from the closed form at the weighted log D, to
    ANCHOR_TOLERANCE in log-odds."""
    available = np.ascontiguousarray(available, dtype=bool)
    return offset_from_inclusive(_log_inclusive(np.ascontiguousarray(utility, dtype=float), available),
                                 weights, target)


def offset_from_inclusive(log_d: np.ndarray, weights: np.ndarray, target: np.ndarray) -> np.ndarray:
    """`anchor_offset` from each type's log sum_k avail_k exp(u_tk), log_d [N, T] (the Newton iteration of
    `_offset_of_draw` for each draw, compiled: no floating-point warnings where a type's share under- or
    overflows)."""
    goal = anchor_goal(target)
    log_d = np.ascontiguousarray(log_d, dtype=float)
    weights = np.ascontiguousarray(np.broadcast_to(np.asarray(weights, dtype=float), log_d.shape))
    offset, gap = _offsets_from_inclusive(log_d, weights, goal)
    return checked_offset(offset, gap)


def anchor_goal(target: np.ndarray) -> np.ndarray:
    """[N] the log-odds of the anchored inside share `target` [N]; a DataError unless it is in (0, 1)."""
    target = np.asarray(target, dtype=float)
    if not np.all((target > 0) & (target < 1)):
        raise DataError(f"field market.outside_share: the market anchor needs an inside share strictly between 0 "
                        f"and 1 (got {target[~((target > 0) & (target < 1))][0]:.3g}); expected an outside share "
                        f"in (0, 1)")
    return np.log(target) - np.log1p(-target)


def checked_offset(offset: np.ndarray, gap: np.ndarray) -> np.ndarray:
    """`offset` [n] where every draw's log-odds error `gap` [n] met ANCHOR_TOLERANCE, else a DataError."""
    if not np.all(np.abs(gap) < ANCHOR_TOLERANCE):
        worst = np.where(np.isnan(gap), np.inf, np.abs(gap)).max()
        raise DataError(f"the market anchor (outside option offset) did not converge in {ANCHOR_MAX_ITERATIONS} "
                        f"iterations (log-odds error {worst:.1e}); expected inside shares strictly "
                        f"between 0 and 1 (check market.outside_share)")
    return offset


@nb.njit(cache=True)
def _offset_of_draw(log_d, weights, goal):  # pragma: no cover - compiled
    """(offset, last log-odds error) of one draw: Newton on the log-odds of the inside share (`anchor_offset`)
    from the closed form at the weighted log D (log_d [T], weights [T], goal the target's log-odds); stops
    at ANCHOR_TOLERANCE, after ANCHOR_MAX_ITERATIONS or where the error is no number."""
    types = log_d.shape[0]
    mean = 0.0
    for t in range(types):
        mean += weights[t] * log_d[t]
    offset = goal - mean
    gap = np.nan
    for _ in range(ANCHOR_MAX_ITERATIONS):
        inside, spread = 0.0, 0.0
        for t in range(types):
            typed = 1.0 / (1.0 + math.exp(-(log_d[t] + offset)))   # exp overflows to inf: typed 0, no warning
            inside += weights[t] * typed
            spread += weights[t] * typed * (1.0 - typed)
        gap = goal - (math.log(inside) - math.log1p(-inside))
        if abs(gap) < ANCHOR_TOLERANCE or not math.isfinite(gap):
            break
        offset += gap / max(spread / (inside * (1.0 - inside)), 1e-12)
    return offset, gap


@nb.njit(cache=True)
def _offsets_from_inclusive(log_d, weights, goal):  # pragma: no cover - compiled
    """`_offset_of_draw` of every draw: (offset [N], log-odds error [N])."""
    draws = log_d.shape[0]
    offset, gap = np.empty(draws), np.empty(draws)
    for n in range(draws):
        offset[n], gap[n] = _offset_of_draw(log_d[n], weights[n], goal[n])
    return offset, gap


@nb.njit(cache=True)
def _anchor_offsets(mean_utility, coefficient, effective, extras, available, weights, goal,
                    rows):  # pragma: no cover - compiled
    """(offset [n], log-odds error [n]) of the draws `rows` [n] (indices): `_draw_log_sums` of each
    row and `_offset_of_draw` fused, arguments as theirs with a leading draw axis [N, ...] (goal [N] the
    targets' log-odds)."""
    types, products = extras.shape[1], extras.shape[2]
    offset, gap = np.empty(rows.shape[0]), np.empty(rows.shape[0])
    scratch, log_d = np.empty((products + 2, types)), np.empty(types)
    for i in range(rows.shape[0]):
        n = rows[i]
        _draw_log_sums(mean_utility[n], coefficient[n], effective[n], extras[n], available[n], scratch, log_d)
        offset[i], gap[i] = _offset_of_draw(log_d, weights[n], goal[n])
    return offset, gap


@nb.njit(cache=True)
def _draw_log_sums(mean_utility, coefficient, effective, extras, available, scratch,
                   out):  # pragma: no cover - compiled
    """One draw's log sum_k avail_k exp(u_tk) into out [T] (-inf where none is on sale), u_tk =
    mean_utility[k] + coefficient[t] * effective[k] + extras[t, k], shifted by each type's largest.
    `scratch` [K + 2, T] holds the utilities product by product (then each type's largest and its sum), so
    each sum over products (in their order) runs across the types at once, with `exp_nonpositive`."""
    types, products = extras.shape
    utility, peak, total = scratch[:products], scratch[products], scratch[products + 1]
    for t in range(types):
        c = coefficient[t]
        for k in range(products):
            utility[k, t] = mean_utility[k] + c * effective[k] + extras[t, k]
    peak[:] = -np.inf
    total[:] = 0.0
    for k in range(products):
        if available[k]:
            for t in range(types):
                peak[t] = max(peak[t], utility[k, t])
    for k in range(products):
        if available[k]:
            for t in range(types):
                total[t] += exp_nonpositive(min(utility[k, t] - peak[t], 0.0))
    for t in range(types):
        out[t] = peak[t] + math.log(total[t]) if peak[t] != -np.inf else -np.inf


@nb.njit(cache=True)
def _shifted_log_sum(values: np.ndarray, available: np.ndarray) -> float:  # pragma: no cover - compiled
    """log sum_k available_k exp(values_k) of 1-D arrays, shifted by the largest available value; -inf when
    none is available."""
    peak = -np.inf
    for k in range(values.shape[0]):
        if available[k] and values[k] > peak:
            peak = values[k]
    if peak == -np.inf:
        return -np.inf
    total = 0.0
    for k in range(values.shape[0]):
        if available[k]:
            total += math.exp(values[k] - peak)
    return peak + math.log(total)


@nb.njit(cache=True)
def _log_inclusive(utility: np.ndarray, available: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    """[N, T] log sum_k avail_k exp(u_tk) of utility [N, T, K], available [N, K] (-inf where none is on
    sale), shifted by each type's largest utility."""
    draws, types, _ = utility.shape
    out = np.empty((draws, types))
    for n in range(draws):
        for t in range(types):
            out[n, t] = _shifted_log_sum(utility[n, t], available[n])
    return out


@nb.njit(cache=True, fastmath={"contract", "reassoc", "nsz", "arcp"})  # vectorised sums
def _type_shares(mean_utility, coefficient, effective, extras, available, weights):  # pragma: no cover
    """(shares per consumer type [N, T, K], buyer-weighted national shares [N, K]) of logit demand with an
    outside option of utility 0: u_ntk = mean_utility[n, k] + coefficient[n, t] * effective[n, k] +
    extras[n, t, k] over the products `available` [N, K] (0 elsewhere); weights [N, T]. The operations of
    `regional_utilities`, `regional_shares` and `national_shares` fused over draws and types."""
    draws, types, products = extras.shape
    typed = np.empty((draws, types, products))
    national = np.zeros((draws, products))
    on_sale = np.empty(products)
    for n in range(draws):
        for k in range(products):
            on_sale[k] = 1.0 if available[n, k] else 0.0
        for t in range(types):
            c = coefficient[n, t]
            row = typed[n, t]
            peak = 0.0
            for k in range(products):
                u = mean_utility[n, k] + c * effective[n, k] + extras[n, t, k]
                row[k] = u
                peak = max(peak, u if available[n, k] else 0.0)
            denominator = math.exp(-peak)
            for k in range(products):
                e = exp_nonpositive(min(row[k] - peak, 0.0)) * on_sale[k]
                row[k] = e
                denominator += e
            share_of = 1.0 / denominator
            w = weights[n, t]
            for k in range(products):
                share = row[k] * share_of
                row[k] = share
                national[n, k] += w * share
    return typed, national


@nb.njit(cache=True)
def _type_terms(per_region, nev, plate_utility, plate, taste_utility, region_of, phev_drift, phev
                ):  # pragma: no cover - compiled
    """[N, T, K] consumer types' utility terms: (per_region[n, r] nev[k] + plate_utility[n, r] plate[k])
    (`regions.nev_extras` of type t's region r) + taste_utility[n, t, k] + phev_drift[n] phev[k], in that
    order (the same floating-point operations as the array expression, in one pass)."""
    draws, types, products = taste_utility.shape
    out = np.empty((draws, types, products))
    for n in range(draws):
        drift = phev_drift[n]
        for t in range(types):
            r = region_of[t]
            common, privilege = per_region[n, r], plate_utility[n, r]
            for k in range(products):
                out[n, t, k] = (common * nev[k] + privilege * plate[k]) + taste_utility[n, t, k] + drift * phev[k]
    return out


def lead_months(scenario: Scenario) -> int:
    """Months of the start year before the scenario start (simulated for the market only)."""
    return scenario.start_month % 12


class Demand:
    """Month-by-month choice shares for one simulation call (path-independent parts precomputed).

    Products, in order: the base lineup [J], the scheduled competitor launches [L], the entrant [1].
    Time steps: `lead` months of the start year before the scenario start, then the horizon.
    """

    def __init__(self, data: MarketData, parameters: Parameters, base: BaseMarket) -> None:
        scenario = data.scenario
        self.policy = data.policy
        self.regions: RegionSet = base.regions
        self.types: ConsumerTypes = base.types
        self.taste_utility = base.taste_utility   # [N, T, K] constant over time
        self.alpha = base.alpha
        self.lead = lead_months(scenario)
        self.periods = self.lead + scenario.horizon_months
        self.months = scenario.start_month - self.lead + np.arange(self.periods)
        self.years = self.months // 12
        base_mid = data.base_mid_month
        self.years_from_base = (self.months - base_mid) / 12.0
        self.base_mid = base_mid
        self.start_month = scenario.start_month
        self.vat = parameters.finance.vat_rate
        self.extra_subsidy = extra_subsidy(scenario, parameters.policy.extra_nev_subsidy, parameters.draws)

        # market size: potential buyers, seasonality, growth
        history = data.history
        seasonality = history.seasonality / history.seasonality[[m % 12 for m in base_months(scenario)]].mean()
        self.walks = {name: walk_path(steps, parameters.market.step_years, as_of_point(scenario), self.months)
                      for name, steps in (parameters.market.steps or {}).items()}   # yearly innovations
        self.size = base.potential[:, None] * seasonality[self.months % 12][None, :] * (
            1.0 + parameters.market.growth_per_year[:, None]) ** self.years_from_base[None, :] * np.exp(
            self.walk("growth_per_year"))
        self._products(data, parameters, base)
        self._battery_costs(data, parameters, base)
        self._charging(data, parameters)

        # policy switches per month
        self.campaign = np.array([self.policy.active(RURAL_CAMPAIGN, "BEV", m) for m in self.months])
        self.plate = np.array([[self.policy.active(PLATE_PRIVILEGE, p, m) if p in ("BEV", "PHEV") else 0.0
                                for p in self.powertrains] for m in self.months])
        self._type_terms_step: int | None = None
        # the anchor: every month's no-entrant market buys the base period's share of potential buyers
        self.inside_target = 1.0 - np.broadcast_to(np.asarray(base.outside_share, dtype=float), (parameters.draws,))
        self._offset = np.full((parameters.draws, self.periods), np.nan)
        self._type_terms = np.zeros((0, 0, 0))
        self._step_terms: StepTerms | None = None

    def _products(self, data: MarketData, parameters: Parameters, base: BaseMarket) -> None:
        """Products' prices, powertrains and launch months; technology progress and ageing: utility = xi +
        slope * years from base (incumbents); launches and the entrant start level with their comparables."""
        scenario, lineup, draws = data.scenario, data.lineup, parameters.draws
        launches, launch_parameters = scenario.competition.launches, parameters.competition.launches
        size_j = len(lineup.names)
        self.size_j, self.size_l = size_j, len(launches)
        xi = base.quality + base.quality_adjustment
        self.price = np.concatenate([base.price] + [launch.price[:, None] for launch in launch_parameters], axis=1)
        self.powertrains = np.array(list(lineup.powertrains) + [c.powertrain for c in launches]
                                    + [scenario.product.powertrain])
        self.is_nev = np.isin(self.powertrains, ("BEV", "PHEV"))
        self.is_bev = self.powertrains == "BEV"
        self.is_phev = self.powertrains == "PHEV"
        self.launch_month = np.array([month_number(c.month) for c in launches], dtype=int)
        self.launch_happens = (np.stack([launch.happens for launch in launch_parameters], axis=1) if launches
                               else np.zeros((draws, 0), dtype=bool))      # [N, L] the launch happens at all

        dynamics = parameters.dynamics
        range_slope = dynamics.range_utility * np.log1p(dynamics.range_growth_per_year)
        self.range_growth = dynamics.range_growth_per_year
        self.ageing = dynamics.ageing_per_year
        named = named_models(lineup)
        self.slope = self.is_bev[None, :size_j] * range_slope[:, None] - named[None, :] * self.ageing[:, None]
        self.xi = xi
        self.range = base.range_km
        launch_xi, launch_range = [], []
        for k, launch in enumerate(launches):
            index = [lineup.index(name) for name in launch.comparables]
            at_launch = (self.launch_month[k] - self.base_mid) / 12.0
            launch_xi.append(xi[:, index].mean(axis=1) + launch_parameters[k].quality_utility
                             + self.slope[:, index].mean(axis=1) * at_launch)
            launch_range.append(np.nanmean(self.range[:, index], axis=1)
                                * (1.0 + self.range_growth) ** at_launch if not np.all(np.isnan(self.range[:, index]))
                                else np.full(draws, np.nan))
        self.launch_xi = np.stack(launch_xi, axis=1) if launches else np.zeros((draws, 0))
        self.launch_range = np.stack(launch_range, axis=1) if launches else np.zeros((draws, 0))
        self.launch_years = (self.launch_month - self.base_mid) / 12.0
        comparables = [lineup.index(name) for name in scenario.product.comparables]
        self.entrant_slope = self.slope[:, comparables].mean(axis=1)
        self.entrant_range = parameters.product.range_km

    def _battery_costs(self, data: MarketData, parameters: Parameters, base: BaseMarket) -> None:
        """Battery pack cost (CNY/kWh) and its pass-through into incumbents' NEV prices (fixed prices only)."""
        pack_year_series = data.history.pack_usd_per_kwh_by_year
        change = parameters.finance.battery_cost_change_per_year
        usd_cny = parameters.finance.usd_cny
        self.pack_cny = year_end_path(pack_year_series, self.months, change) * usd_cny[:, None]
        pack_base = year_end_path(pack_year_series, np.array([self.base_mid]), change)[:, 0] * usd_cny
        pass_through = parameters.dynamics.battery_pass_through
        kwh = np.nan_to_num(base.battery_kwh)
        self.pass_through = (pass_through[:, None] * kwh * data.lineup.is_nev[None, :] * (1.0 + self.vat)[:, None]
                             if data.scenario.competition.reprice == "fixed" else np.zeros_like(kwh))
        self.pack_change = self.pack_cny - pack_base[:, None]

    def _charging(self, data: MarketData, parameters: Parameters) -> None:
        """Charging points by region and their NEV utility term; the NEV drift."""
        history, scenario, market = data.history, data.scenario, parameters.market
        growth = market.charging_growth_per_year
        national = year_end_path(history.public_chargers_by_year, self.months, growth) * np.exp(
            self.walk("charging_growth_per_year"))
        national_base = year_end_path(history.public_chargers_by_year, np.array([self.base_mid]), growth)[:, 0]
        as_of_month = scenario.as_of.year * 12 + scenario.as_of.month - 1
        after = np.maximum(self.months - as_of_month, 0) / 12.0
        extra = np.log1p(self.regions.charging_growth_extra)                          # [N, R]
        log_regional = (np.log(self.regions.charging_share)[:, :, None] + np.log(national)[:, None, :]
                        + extra[:, :, None] * after[None, None, :])                     # [N, R, T]
        self.chargers_by_region = np.exp(log_regional)
        self.charging_term = market.charging_effect[:, None, None] * (
            log_regional - np.log(self.regions.weights)[:, :, None] - np.log(national_base)[:, None, None])
        self.nev_drift = market.nev_trend_per_year[:, None] * self.years_from_base[None, :] + self.walk(
            "nev_trend_per_year")
        self.phev_drift = market.phev_trend_per_year[:, None] * self.years_from_base[None, :] + self.walk(
            "phev_trend_per_year")

    def walk(self, quantity: str) -> np.ndarray:
        """[N, M] (or 0) the cumulative yearly innovations of market.`quantity`'s random walk (`walk_path`)."""
        return self.walks.get(quantity, np.zeros((1, 1)))

    @property
    def public_chargers_end(self) -> np.ndarray:
        return self.chargers_by_region[:, :, -1].sum(axis=1)

    def entrant_years_at_launch(self, launch_index: np.ndarray) -> np.ndarray:
        launch = self.start_month + np.where(np.isfinite(launch_index), launch_index, 0.0)
        return (launch - self.base_mid) / 12.0

    def state(self, step: int, cut: np.ndarray, entrant_utility: np.ndarray, entrant_price: np.ndarray,
              entrant_available: np.ndarray, launch_index: np.ndarray,
              incumbent_price: np.ndarray | None = None) -> MonthState:
        """What buyers face in time step `step` (0 = January of the start year), before any choice.
        `cut`: incumbents' BEV price cut [N] (fixed prices); `entrant_utility`: the entrant's mean utility
        excluding price and NEV terms [N]; `entrant_available`: on sale [N]; `launch_index`: months after the
        start; `incumbent_price`: the base lineup's guide prices [N, J] (re-priced incumbents; default: the
        base prices moved by the battery pass-through)."""
        fixed = self.step_terms(step)
        size_j = self.size_j
        all_price = np.empty(fixed.ranges.shape)
        all_price[:, :-1] = fixed.price
        if incumbent_price is not None:
            all_price[:, :size_j] = incumbent_price
        if np.any(cut != 0.0):
            all_price[:, :-1] = np.where(self.is_bev[None, :-1], all_price[:, :-1] * (1.0 - cut[:, None]),
                                         all_price[:, :-1])
        all_price[:, -1] = entrant_price
        effective = self.effective_prices(all_price, fixed.ranges, fixed.month)
        entrant_launch = self.entrant_years_at_launch(launch_index)
        entrant_dynamic = (self.entrant_slope * entrant_launch
                           - self.ageing * np.maximum(fixed.years - entrant_launch, 0.0))
        mean_utility = np.empty(all_price.shape)
        mean_utility[:, :-1] = fixed.utility
        mean_utility[:, -1] = entrant_utility + entrant_dynamic
        available = np.empty(all_price.shape, dtype=bool)
        available[:, :-1] = fixed.available
        available[:, -1] = entrant_available
        mean_utility += self.outside_offset(step)[:, None]
        return MonthState(fixed.month, all_price, fixed.ranges, effective, mean_utility, available,
                          self.type_terms(step))

    def step_terms(self, step: int) -> StepTerms:
        """The path-independent products of time step `step` (`StepTerms`); the last step's are kept (every
        state of one step, in every re-solve and path-month, shares them)."""
        if self._step_terms is None or self._step_terms.step != step:
            month = self.months[step].item()
            years = self.years_from_base[step]
            size_j = self.size_j
            price = self.price.copy()
            price[:, :size_j] += self.pass_through * self.pack_change[:, step:step + 1]
            incumbent_range = self.range * np.where(self.is_bev[None, :size_j],
                                                    (1.0 + self.range_growth[:, None]) ** years, 1.0)
            ranges = np.concatenate([incumbent_range, self.launch_range, self.entrant_range[:, None]], axis=1)
            launched_years = np.maximum(years - self.launch_years, 0.0)
            utility = np.concatenate([self.xi + self.slope * years,
                                      self.launch_xi - self.ageing[:, None] * launched_years[None, :]], axis=1)
            available = np.ones(utility.shape, dtype=bool)
            available[:, size_j:] = (month >= self.launch_month) & self.launch_happens
            for values in (price, ranges, utility, available):
                values.setflags(write=False)
            self._step_terms = StepTerms(step, month, years, price, ranges, utility, available)
        return self._step_terms


    def outside_offset(self, step: int) -> np.ndarray:
        """[N] the anchor of time step `step`: utility added to every car (the outside option's utility
        lowered by it) so that the no-entrant market buys `inside_target` of the potential buyers
        (`anchor_offset`). Set once per step (`anchor`) at the no-entrant market: the base lineup at its
        fixed prices (moved by the battery pass-through, no entry cut) or at the no-entrant equilibrium's
        prices when incumbents re-price (`simulation.simulate.prepare_setting` sets those), the scheduled
        launches as they happen, the entrant not on sale. The same offset holds with the entrant and with
        incumbents' responses to it, so entry still moves the market, counted once."""
        if np.isnan(self._offset[0, step]):
            self.anchor(step)
        return self._offset[:, step]

    def anchor(self, step: int, incumbent_price: np.ndarray | None = None, rows: np.ndarray | None = None) -> None:
        """Set the anchor of time step `step` at the no-entrant market with the base lineup's guide prices
        `incumbent_price` [N, J] (default: the fixed prices, as `state`), e.g. the no-entrant Bertrand
        equilibrium's when incumbents re-price; only for the draws `rows` (bool [N]; default every draw; the
        others keep theirs: a draw's anchor depends on its own prices only)."""
        column = self._offset[:, step]
        kept = column.copy()
        column[:] = 0.0
        reference = self.state(step, np.zeros(column.shape[0]), np.zeros(column.shape[0]), self.price[:, 0],
                               np.zeros(column.shape[0], dtype=bool), np.full(column.shape[0], np.inf),
                               incumbent_price)
        column[:] = kept
        index = np.arange(column.shape[0]) if rows is None else np.flatnonzero(rows)
        offset, gap = _anchor_offsets(reference.mean_utility, self.alpha[:, None] * self.types.price_sensitivity,
                                      reference.effective, reference.extras,
                                      np.ascontiguousarray(reference.available, dtype=bool),
                                      np.ascontiguousarray(self.types.weights, dtype=float),
                                      anchor_goal(self.inside_target), index)
        column[index] = checked_offset(offset, gap)

    def type_terms(self, step: int) -> np.ndarray:
        """[N, T, K] consumer types' utility terms in time step `step` (regional NEV terms + tastes + PHEV
        drift; they depend on the step only). The last step's array is kept and shared read-only: the
        no-entrant market, every re-solve and the month's own state in one step all use it."""
        if self._type_terms_step != step:
            regions = self.regions
            per_region = regional_nev_utility(regions, self.campaign[step], self.charging_term[:, :, step],
                                              self.nev_drift[:, step])                       # [N, R]
            terms = _type_terms(per_region, self.is_nev.astype(float), regions.plate_utility,
                                np.asarray(self.plate[step], dtype=float), self.taste_utility,
                                self.types.region_of, np.ascontiguousarray(self.phev_drift[:, step]),
                                self.is_phev.astype(float))
            terms.setflags(write=False)
            self._type_terms, self._type_terms_step = terms, step
        return self._type_terms

    def effective_prices(self, price: np.ndarray, ranges: np.ndarray, month: int) -> np.ndarray:
        """Guide price + purchase tax - subsidy (the schedule's and the scenario's extra one) in `month`
        (months since year 0), [N, K]."""
        return effective_prices(self.policy, price, self.powertrains, ranges, month, self.vat, self.extra_subsidy)

    def shares(self, state: MonthState, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(shares per consumer type [N, T, K], national shares [N, K]) of a month's state; with `rows` [N] bool
        those of the draws `rows` only ([n, T, K], [n, K]: each draw's shares are its own, bit for bit)."""
        coefficient = self.alpha[:, None] * self.types.price_sensitivity
        available = np.ascontiguousarray(state.available, dtype=bool)
        if rows is None:
            return _type_shares(state.mean_utility, coefficient, state.effective, state.extras, available,
                                self.types.weights)
        index = np.flatnonzero(rows)
        return _type_shares(state.mean_utility[index], coefficient[index], state.effective[index],
                            state.extras[index], available[index], self.types.weights[index])

    def month(self, step: int, cut: np.ndarray, entrant_utility: np.ndarray, entrant_price: np.ndarray,
              entrant_available: np.ndarray, launch_index: np.ndarray,
              incumbent_price: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(shares per consumer type [N, T, K], national shares [N, K]) in time step `step`; arguments as
        `state`."""
        return self.shares(self.state(step, cut, entrant_utility, entrant_price, entrant_available, launch_index,
                                      incumbent_price))


@dataclass(frozen=True)
class StepTerms:
    """The products of one time step that do not depend on the path (K - 1 = base lineup and scheduled
    launches; K with the entrant)."""

    step: int
    month: int                  # months since year 0
    years: float                # years from the base period's middle
    price: np.ndarray           # [N, K - 1] guide prices at fixed prices (the battery pass-through, no entry cut)
    ranges: np.ndarray          # [N, K] range, km
    utility: np.ndarray         # [N, K - 1] mean utility excluding price, regional terms and the anchor
    available: np.ndarray       # [N, K - 1] on sale


@dataclass(frozen=True)
class MonthState:
    """One month's products as buyers see them (K = base lineup, scheduled launches, the entrant)."""

    month: int                  # months since year 0
    price: np.ndarray           # [N, K] guide prices
    ranges: np.ndarray          # [N, K] range, km (NaN where unknown and not needed)
    effective: np.ndarray       # [N, K] price + purchase tax - subsidy
    mean_utility: np.ndarray    # [N, K] excluding price and regional terms
    available: np.ndarray       # [N, K] on sale
    extras: np.ndarray          # [N, T, K] consumer types' terms (regional NEV terms + tastes)


@dataclass(frozen=True)
class PreStart:
    """The market in the months of the start year before the scenario start (the entrant not yet on sale)."""

    year: int
    market: np.ndarray          # [N] new-car sales over those months
    nev: np.ndarray             # [N] NEV sales over those months
    market_region: np.ndarray   # [N, R]
    nev_region: np.ndarray      # [N, R]


def pre_start_market(demand: Demand, entrant_price: np.ndarray) -> PreStart:
    """Simulate the lead months once (they do not depend on the path)."""
    draws, regions = demand.size.shape[0], len(demand.regions.names)
    market, nev = np.zeros(draws), np.zeros(draws)
    market_region, nev_region = np.zeros((draws, regions)), np.zeros((draws, regions))
    never = np.full(draws, np.inf)
    for step in range(demand.lead):
        typed, _ = demand.month(step, np.zeros(draws), np.zeros(draws), entrant_price,
                                np.zeros(draws, dtype=bool), never)
        regional = demand.types.within_regions(typed)
        buyers = demand.size[:, step:step + 1] * demand.regions.weights           # [N, R]
        sold_region = buyers * regional.sum(axis=2)
        nev_sold_region = buyers * (regional[:, :, :-1] * demand.is_nev[None, None, :-1]).sum(axis=2)
        market_region += sold_region
        nev_region += nev_sold_region
        market += sold_region.sum(axis=1)
        nev += nev_sold_region.sum(axis=1)
    return PreStart(int(demand.years[0]), market, nev, market_region, nev_region)
