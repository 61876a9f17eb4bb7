"""The market over time: what changes month by month for every buyer, and the base-period calibration.

`simulate` asks `Demand.month` for the choice shares of each month. What moves them:

- market size: the base period's potential buyers, seasonality, and `market.growth_per_year`;
- policy (`market.policy`): purchase subsidy by range band and purchase tax by date, as known on the
  as-of date (the last known rule continues beyond what was announced), plus the scenario's assumed
  extra NEV subsidy (`[policy]`, e.g. local subsidies brought back, or a counterfactual); rural campaigns and large-city
  plate privileges switch the regions' NEV bonuses on and off;
- charging points by region: the sourced year-end counts (interpolated), then the assumed national
  growth plus each region's extra growth after the as-of date; NEV utility moves with
  `market.charging_effect` times the log of charging points per potential buyer in the region;
- the NEV drift `market.nev_trend_per_year` (what the explicit drivers do not explain);
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

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from evlaunch.config.scenario import Scenario, month_number
from evlaunch.errors import ScenarioError
from evlaunch.market.consumer_types import SEGMENT_STEPS, ConsumerTypes, characteristic_matrix, consumer_types
from evlaunch.market.lineup import OTHER_PRODUCTS, Lineup
from evlaunch.market.logit import mean_utilities, price_coefficient
from evlaunch.market.policy import (
    PLATE_PRIVILEGE,
    RURAL_CAMPAIGN,
    SUBSIDY,
    PolicySchedule,
    extra_subsidy,
    load_policy,
)
from evlaunch.market.regions import (
    RegionSet,
    calibrate_price_coefficient,
    national_shares,
    nev_extras,
    region_set,
    regional_shares,
    regional_utilities,
)

if TYPE_CHECKING:  # pragma: no cover
    from evlaunch.simulation.simulate import Model

Value = Callable[[str], np.ndarray]


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


def lead_months(scenario: Scenario) -> int:
    """Months of the start year before the scenario start (simulated for the market only)."""
    return scenario.start_month % 12


def base_months(scenario: Scenario) -> range:
    first, last = scenario.market.base_period
    return range(month_number(first), month_number(last) + 1)


def _named(lineup: Lineup) -> np.ndarray:
    return np.array([name not in OTHER_PRODUCTS for name in lineup.names])


def _sourced(array: np.ndarray | None, size: int) -> np.ndarray:
    return np.full(size, np.nan) if array is None else np.asarray(array, dtype=float)


def ranges_needed(scenario: Scenario, policy: PolicySchedule) -> bool:
    """Whether a BEV subsidy that depends on range applies in any base or simulated month."""
    last = scenario.start_month + scenario.horizon_months - 1
    for month in range(base_months(scenario)[0], last + 1):
        rule = policy.applied(SUBSIDY, "BEV", month).rule
        if rule is None:
            continue
        rows = rule.rows_for("BEV") & (rule.powertrain == "BEV")
        if rows.any() and np.nanmax(np.nan_to_num(rule.amount[rows])) > 0:
            return True
    return False


def prepare_policy(scenario: Scenario, lineup: Lineup, tables: dict[str, str]) -> PolicySchedule:
    """Load the policy schedule as of the scenario date and check the scenario gives what it needs."""
    policy = load_policy(scenario.as_of, tables.get("policy_schedule"))
    dynamics = scenario.dynamics
    size = len(lineup.names)
    if ranges_needed(scenario, policy):
        sourced = _sourced(lineup.range_km, size)
        needed = {band for band, powertrain, known in zip(lineup.price_band, lineup.powertrains, sourced)
                  if powertrain == "BEV" and np.isnan(known)}
        missing = sorted(needed - set(dynamics.missing_range_band))
        if missing:
            raise ScenarioError(f"scenario {scenario.name}: field dynamics.missing_range_band lacks "
                                f"{', '.join(missing)}; expected a range (km, or a distribution) for each segment "
                                f"whose BEVs have no sourced range, because the purchase subsidy in force "
                                f"depends on the range band")
    pass_through = scenario.dynamics.battery_pass_through
    bertrand = scenario.competition.reprice == "bertrand"  # pack costs move marginal costs (supply.repricing)
    if hasattr(pass_through, "ppf") or pass_through != 0 or bertrand:
        sourced = _sourced(lineup.battery_kwh, size)
        why = "competition.reprice is 'bertrand'" if bertrand else "dynamics.battery_pass_through is not 0"
        for powertrain, field in (("BEV", "bev_battery_kwh"), ("PHEV", "phev_battery_kwh")):
            lacking = [n for n, p, k in zip(lineup.names, lineup.powertrains, sourced) if p == powertrain and np.isnan(k)]
            if lacking and getattr(dynamics, field) is None:
                raise ScenarioError(f"scenario {scenario.name}: field dynamics.{field} is required when "
                                    f"{why} ({len(lacking)} {powertrain} models "
                                    f"have no sourced battery size, e.g. {lacking[0]!r})")
    return policy


def _used(quantity) -> bool:
    return hasattr(quantity, "ppf") or quantity != 0


def check_tastes(scenario: Scenario, lineup: Lineup) -> None:
    """Refuse a scenario whose taste heterogeneity needs a characteristic the data and scenario lack."""
    tastes = scenario.market.tastes
    if _used(tastes.sigma_range):
        bands = scenario.dynamics.missing_range_band
        lacking = sorted({band for band, powertrain, known in zip(lineup.price_band, lineup.powertrains,
                                                                  _sourced(lineup.range_km, len(lineup.names)))
                          if powertrain == "BEV" and np.isnan(known) and band not in bands})
        if lacking:
            raise ScenarioError(f"scenario {scenario.name}: field dynamics.missing_range_band lacks "
                                f"{', '.join(lacking)}; expected a range (km, or a distribution) for each segment "
                                f"whose BEVs have no sourced range, because market.tastes.sigma_range is not 0")
    if _used(tastes.sigma_size):
        segments = set(lineup.segments) | {c.segment for c in scenario.competition.launches} | {
            scenario.product.segment}
        unknown = sorted(segments - set(SEGMENT_STEPS) - {"mixed"})
        if unknown:
            raise ScenarioError(f"scenario {scenario.name}: segment label(s) {', '.join(unknown)} are not one of "
                                f"{', '.join(SEGMENT_STEPS)}; market.tastes.sigma_size needs them (set it to 0 "
                                f"or use these labels)")


@dataclass(frozen=True)
class BaseCalibration:
    """What the regional calibration of the base period adds to the plain-logit one."""

    effective_price: np.ndarray     # [N, J] price + purchase tax - subsidy at the base period's middle month
    alpha: np.ndarray               # [N]
    quality: np.ndarray             # [N, J] plain national inversion: log s_j - log s_0 - alpha * p_eff
    adjustment: np.ndarray          # [N, J] added by the joint regional calibration (0 with one region)
    regions: RegionSet
    range_km: np.ndarray            # [N, J] sourced or assumed range (NaN where neither is needed)
    battery_kwh: np.ndarray         # [N, J] sourced or assumed battery size (NaN where not needed)
    subsidy: np.ndarray             # [N, J] CNY at the base period's middle month
    extras: np.ndarray | None = None  # [N, T, J] type terms of the base period (regional NEV terms + tastes)
    types: ConsumerTypes | None = None
    characteristics: np.ndarray | None = None  # [N, K, C] every product's characteristics (consumer_types)
    taste_utility: np.ndarray | None = None    # [N, T, K] the types' taste terms for every product


def product_ranges(model: Model, value: Value, draws: int) -> np.ndarray:
    lineup, bands = model.lineup, model.scenario.dynamics.missing_range_band
    ranges = _sourced(lineup.range_km, len(lineup.names)) * np.ones((draws, 1))
    for j, (band, powertrain) in enumerate(zip(lineup.price_band, lineup.powertrains)):
        if powertrain == "BEV" and np.isnan(ranges[0, j]) and band in bands:
            ranges[:, j] = value(f"dynamics.missing_range_band.{band}")
    return ranges


def product_batteries(model: Model, value: Value, draws: int) -> np.ndarray:
    lineup, dynamics = model.lineup, model.scenario.dynamics
    kwh = _sourced(lineup.battery_kwh, len(lineup.names)) * np.ones((draws, 1))
    for j, powertrain in enumerate(lineup.powertrains):
        field = {"BEV": "bev_battery_kwh", "PHEV": "phev_battery_kwh"}.get(powertrain)
        if field and np.isnan(kwh[0, j]) and getattr(dynamics, field) is not None:
            kwh[:, j] = value(f"dynamics.{field}")
    return kwh


def _policy(model: Model) -> PolicySchedule:
    policy = getattr(model, "policy", None)
    return policy if policy is not None else load_policy(model.scenario.as_of)


def base_activity(policy: PolicySchedule, scenario: Scenario, powertrains) -> tuple[float, np.ndarray]:
    """Mean activity over the base months of the rural campaign and of each product's plate privilege."""
    months = base_months(scenario)
    campaign = float(np.mean([policy.active(RURAL_CAMPAIGN, "BEV", m) for m in months]))
    plate = np.array([np.mean([policy.active(PLATE_PRIVILEGE, p, m) for m in months]) if p in ("BEV", "PHEV")
                      else 0.0 for p in powertrains])
    return campaign, plate


def calibrate_base(model: Model, value: Value, draws: int, price: np.ndarray, shares: np.ndarray,
                   outside: np.ndarray) -> BaseCalibration:
    """Effective prices, price coefficient and mean utilities reproducing the base period exactly."""
    scenario, lineup = model.scenario, model.lineup
    policy = _policy(model)
    middle = round(model.base_mid_month)
    ranges = product_ranges(model, value, draws)
    subsidy = (policy.subsidy(price, lineup.powertrains, ranges, middle)
               + extra_subsidy(scenario, value, draws).per_vehicle(price, lineup.powertrains, middle))
    effective = price + policy.purchase_tax(price, lineup.is_nev, middle, value("finance.vat_rate")) - subsidy
    models = _named(lineup) if scenario.market.elasticity_basis == "models" else np.ones(len(lineup.names), bool)
    if not models.any():
        raise ScenarioError(f"scenario {scenario.name}: market.elasticity_basis = 'models' but the base lineup has "
                            f"no named models")
    alpha = price_coefficient(value("market.own_price_elasticity"), effective[:, models], shares[:, models])
    quality = mean_utilities(shares, outside) - alpha[:, None] * effective
    regions = region_set(list(scenario.regions), value, draws)
    types = consumer_types(regions, value, draws, scenario.market.tastes.types_per_region)
    campaign, plate = base_activity(policy, scenario, lineup.powertrains)
    regional = nev_extras(regions, lineup.is_nev, plate, campaign,
                          value("market.charging_effect")[:, None] * regions.log_density_ratio)
    characteristics = product_characteristics(model, value, draws, shares, ranges)
    taste = types.taste_utility(characteristics)                       # [N, T, K] all products
    extras = types.expand(regional) + taste[:, :, :len(lineup.names)]
    if len(types.region_of) == 1 and not np.any(extras):  # plain logit: the inversion above is exact
        adjustment = np.zeros_like(quality)
    else:  # alpha and xi under the consumer types; `quality` stays the plain inversion at that alpha
        alpha, xi = calibrate_price_coefficient(shares, value("market.own_price_elasticity"), effective, models,
                                                types, extras, alpha, quality)
        quality = mean_utilities(shares, outside) - alpha[:, None] * effective
        adjustment = xi - quality
    return BaseCalibration(effective, alpha, quality, adjustment, regions, ranges,
                           product_batteries(model, value, draws), subsidy, extras, types, characteristics, taste)


def product_characteristics(model: Model, value: Value, draws: int, shares: np.ndarray,
                            ranges: np.ndarray) -> np.ndarray:
    """[N, K, C] characteristics of every product (base lineup, scheduled launches, the entrant) for the
    consumer types' tastes (`market.consumer_types`); `shares` [N, J] and `ranges` [N, J] of the base period."""
    scenario, lineup = model.scenario, model.lineup
    launches, product = scenario.competition.launches, scenario.product
    size_j = len(lineup.names)
    bodies = lineup.bodies if lineup.bodies is not None else ("",) * size_j
    adas = lineup.adas if lineup.adas is not None else np.full(size_j, np.nan)

    def comparables_range(names: list[str]) -> np.ndarray:
        known = ranges[:, [lineup.index(n) for n in names]]
        return np.full(draws, np.nan) if np.all(np.isnan(known)) else np.nanmean(known, axis=1)

    launch_ranges = [comparables_range(c.comparables) for c in launches]
    all_ranges = np.concatenate([ranges, *[r[:, None] for r in launch_ranges],
                                 np.broadcast_to(value("product.range_km"), (draws,))[:, None]], axis=1)
    aggregate_of = [name.split()[1] if name in OTHER_PRODUCTS else None for name in lineup.names]
    aggregate_of += [None] * (len(launches) + 1)
    weights = np.concatenate([shares, np.zeros((draws, len(launches) + 1))], axis=1)
    return characteristic_matrix(
        list(lineup.powertrains) + [c.powertrain for c in launches] + [product.powertrain],
        list(lineup.segments) + [c.segment for c in launches] + [product.segment],
        list(bodies) + [c.body for c in launches] + [product.body],
        np.concatenate([adas, [1.0 if c.adas else 0.0 for c in launches], [1.0 if product.adas else 0.0]]),
        all_ranges, np.arange(size_j + len(launches) + 1) == size_j + len(launches), aggregate_of, weights,
        value("market.tastes.adas_unknown"))


class Demand:
    """Month-by-month choice shares for one simulation call (path-independent parts precomputed).

    Products, in order: the base lineup [J], the scheduled competitor launches [L], the entrant [1].
    Time steps: `lead` months of the start year before the scenario start, then the horizon.
    """

    def __init__(self, model: Model, value: Value, draws: int, base) -> None:
        scenario, lineup, history = model.scenario, model.lineup, model.history
        self.policy = _policy(model)
        self.regions: RegionSet = base.regions
        self.types: ConsumerTypes = base.types
        self.taste_utility = base.taste_utility   # [N, T, K] constant over time
        self.alpha = base.alpha
        self.lead = lead_months(scenario)
        self.periods = self.lead + scenario.horizon_months
        self.months = scenario.start_month - self.lead + np.arange(self.periods)
        self.years = self.months // 12
        base_mid = model.base_mid_month
        self.years_from_base = (self.months - base_mid) / 12.0
        self.base_mid = base_mid
        self.start_month = scenario.start_month
        self.vat = value("finance.vat_rate")
        self.extra_subsidy = extra_subsidy(scenario, value, draws)

        # market size: potential buyers, seasonality, growth
        seasonality = history.seasonality / history.seasonality[[m % 12 for m in base_months(scenario)]].mean()
        self.size = base.potential[:, None] * seasonality[self.months % 12][None, :] * (
            1.0 + value("market.growth_per_year")[:, None]) ** self.years_from_base[None, :]

        # products
        launches = scenario.competition.launches
        size_j = len(lineup.names)
        self.size_j, self.size_l = size_j, len(launches)
        xi = base.quality + base.quality_adjustment
        self.price = np.concatenate([base.price] + [value(f"competition.launches.{k}.price")[:, None]
                                                    for k in range(len(launches))], axis=1)
        self.powertrains = np.array(list(lineup.powertrains) + [c.powertrain for c in launches]
                                    + [scenario.product.powertrain])
        self.is_nev = np.isin(self.powertrains, ("BEV", "PHEV"))
        self.is_bev = self.powertrains == "BEV"
        self.launch_month = np.array([month_number(c.month) for c in launches], dtype=int)

        # technology progress and ageing: utility = xi + slope * years from base (incumbents)
        range_slope = value("dynamics.range_utility") * np.log1p(value("dynamics.range_growth_per_year"))
        self.range_growth = value("dynamics.range_growth_per_year")
        self.ageing = value("dynamics.ageing_per_year")
        named = _named(lineup)
        self.slope = self.is_bev[None, :size_j] * range_slope[:, None] - named[None, :] * self.ageing[:, None]
        self.xi = xi
        self.range = base.range_km
        launch_xi, launch_range = [], []
        for k, launch in enumerate(launches):
            index = [lineup.index(name) for name in launch.comparables]
            at_launch = (self.launch_month[k] - base_mid) / 12.0
            launch_xi.append(xi[:, index].mean(axis=1) + value(f"competition.launches.{k}.quality_utility")
                             + self.slope[:, index].mean(axis=1) * at_launch)
            launch_range.append(np.nanmean(self.range[:, index], axis=1)
                                * (1.0 + self.range_growth) ** at_launch if not np.all(np.isnan(self.range[:, index]))
                                else np.full(draws, np.nan))
        self.launch_xi = np.stack(launch_xi, axis=1) if launches else np.zeros((draws, 0))
        self.launch_range = np.stack(launch_range, axis=1) if launches else np.zeros((draws, 0))
        self.launch_years = (self.launch_month - base_mid) / 12.0
        comparables = [lineup.index(name) for name in scenario.product.comparables]
        self.entrant_slope = self.slope[:, comparables].mean(axis=1)
        self.entrant_range = value("product.range_km")

        # battery pack cost (CNY/kWh) and its pass-through into incumbents' NEV prices (fixed prices only)
        pack_year_series = history.pack_usd_per_kwh_by_year
        change = value("finance.battery_cost_change_per_year")
        usd_cny = value("finance.usd_cny")
        self.pack_cny = year_end_path(pack_year_series, self.months, change) * usd_cny[:, None]
        pack_base = year_end_path(pack_year_series, np.array([base_mid]), change)[:, 0] * usd_cny
        pass_through = value("dynamics.battery_pass_through")
        kwh = np.nan_to_num(base.battery_kwh)
        self.pass_through = (pass_through[:, None] * kwh * lineup.is_nev[None, :] * (1.0 + self.vat)[:, None]
                             if scenario.competition.reprice == "fixed" else np.zeros_like(kwh))
        self.pack_change = self.pack_cny - pack_base[:, None]

        # charging points by region
        growth = value("market.charging_growth_per_year")
        national = year_end_path(history.public_chargers_by_year, self.months, growth)
        national_base = year_end_path(history.public_chargers_by_year, np.array([base_mid]), growth)[:, 0]
        as_of_month = scenario.as_of.year * 12 + scenario.as_of.month - 1
        after = np.maximum(self.months - as_of_month, 0) / 12.0
        extra = np.log1p(self.regions.charging_growth_extra)                          # [N, R]
        log_regional = (np.log(self.regions.charging_share)[:, :, None] + np.log(national)[:, None, :]
                        + extra[:, :, None] * after[None, None, :])                     # [N, R, T]
        self.chargers_by_region = np.exp(log_regional)
        self.charging_term = value("market.charging_effect")[:, None, None] * (
            log_regional - np.log(self.regions.weights)[:, :, None] - np.log(national_base)[:, None, None])
        self.nev_drift = value("market.nev_trend_per_year")[:, None] * self.years_from_base[None, :]

        # policy switches per month
        self.campaign = np.array([self.policy.active(RURAL_CAMPAIGN, "BEV", m) for m in self.months])
        self.plate = np.array([[self.policy.active(PLATE_PRIVILEGE, p, m) if p in ("BEV", "PHEV") else 0.0
                                for p in self.powertrains] for m in self.months])

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
        month = self.months[step].item()
        years = self.years_from_base[step]
        size_j = self.size_j
        price = self.price.copy()
        if incumbent_price is None:
            price[:, :size_j] += self.pass_through * self.pack_change[:, step:step + 1]
        else:
            price[:, :size_j] = incumbent_price
        price = np.where(self.is_bev[None, :-1], price * (1.0 - cut[:, None]), price)
        all_price = np.concatenate([price, entrant_price[:, None]], axis=1)
        incumbent_range = self.range * np.where(self.is_bev[None, :size_j],
                                                (1.0 + self.range_growth[:, None]) ** years, 1.0)
        ranges = np.concatenate([incumbent_range, self.launch_range, self.entrant_range[:, None]], axis=1)
        effective = self.effective_prices(all_price, ranges, month)
        launched_years = np.maximum(years - self.launch_years, 0.0)
        entrant_launch = self.entrant_years_at_launch(launch_index)
        entrant_dynamic = (self.entrant_slope * entrant_launch
                           - self.ageing * np.maximum(years - entrant_launch, 0.0))
        mean_utility = np.concatenate([
            self.xi + self.slope * years,
            self.launch_xi - self.ageing[:, None] * launched_years[None, :],
            (entrant_utility + entrant_dynamic)[:, None]], axis=1)
        available = np.ones(mean_utility.shape, dtype=bool)
        available[:, size_j:size_j + self.size_l] = month >= self.launch_month
        available[:, -1] = entrant_available
        extras = self.types.expand(nev_extras(self.regions, self.is_nev, self.plate[step], self.campaign[step],
                                              self.charging_term[:, :, step], self.nev_drift[:, step]))
        return MonthState(month, all_price, ranges, effective, mean_utility, available, extras + self.taste_utility)

    def effective_prices(self, price: np.ndarray, ranges: np.ndarray, month: int) -> np.ndarray:
        """Guide price + purchase tax - subsidy (the schedule's and the scenario's extra one) in `month`
        (months since year 0), [N, K]."""
        return (price + self.policy.purchase_tax(price, self.is_nev, month, self.vat)
                - self.policy.subsidy(price, self.powertrains, ranges, month)
                - self.extra_subsidy.per_vehicle(price, self.powertrains, month))

    def shares(self, state: MonthState) -> tuple[np.ndarray, np.ndarray]:
        """(shares per consumer type [N, T, K], national shares [N, K]) of a month's state."""
        typed = regional_shares(regional_utilities(state.mean_utility, self.alpha, state.effective, self.types,
                                                   state.extras), state.available)
        return typed, national_shares(typed, self.types)

    def month(self, step: int, cut: np.ndarray, entrant_utility: np.ndarray, entrant_price: np.ndarray,
              entrant_available: np.ndarray, launch_index: np.ndarray,
              incumbent_price: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(shares per consumer type [N, T, K], national shares [N, K]) in time step `step`; arguments as
        `state`."""
        return self.shares(self.state(step, cut, entrant_utility, entrant_price, entrant_available, launch_index,
                                      incumbent_price))


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
