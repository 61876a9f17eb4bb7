"""The base period, calibrated per draw: the market the simulation starts from reproduces it exactly.

Shares of potential buyers come from sourced sales (listed models, and 'other BEV / PHEV / ICE' aggregates
taking the rest of each powertrain's total); the price coefficient alpha from the scenario's sales-weighted
own-price elasticity; mean utilities by inversion — the plain national logit first, then jointly over the
regions and consumer types (`market.regions`, `market.consumer_types`) so that their buyer-weighted shares
equal the observed ones. Effective prices (guide price + purchase tax - subsidy) are those of the base
period's middle month under the policy schedule (`market.policy`) and the scenario's extra subsidy.

Also here: the checks that a scenario gives what the calibration needs (`prepare_policy`, `check_tastes`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evlaunch.config.distributions import is_uncertain
from evlaunch.config.parameters import DynamicsParameters, Parameters
from evlaunch.config.scenario import Scenario, month_number
from evlaunch.errors import DataError, ScenarioError
from evlaunch.market.adoption import base_nev_sales
from evlaunch.market.consumer_types import (
    SEGMENT_STEPS,
    ConsumerTypes,
    ProductTraits,
    characteristic_matrix,
    consumer_types,
)
from evlaunch.market.lineup import OTHER_PRODUCTS, Lineup
from evlaunch.market.logit import mean_utilities, price_coefficient
from evlaunch.market.market_data import MarketData
from evlaunch.market.policy import (
    PLATE_PRIVILEGE,
    RURAL_CAMPAIGN,
    SUBSIDY,
    PolicySchedule,
    extra_subsidy,
    load_policy,
)
from evlaunch.market.regions import RegionSet, calibrate_price_coefficient, nev_extras, region_set


def base_months(scenario: Scenario) -> range:
    """The base period's months (months since year 0)."""
    first, last = scenario.market.base_period
    return range(month_number(first), month_number(last) + 1)


def named_models(lineup: Lineup) -> np.ndarray:
    """[J] bool: the lineup's named models (not the 'other' aggregates)."""
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
        needed = {band for band, powertrain, known in zip(lineup.range_band, lineup.powertrains, sourced)
                  if powertrain == "BEV" and np.isnan(known)}
        missing = sorted(needed - set(dynamics.missing_range_band))
        if missing:
            raise ScenarioError(f"scenario {scenario.name}: field dynamics.missing_range_band lacks "
                                f"{', '.join(missing)}; expected a range (km, or a distribution) for each segment "
                                f"whose BEVs have no sourced range, because the purchase subsidy in force "
                                f"depends on the range band")
    pass_through = scenario.dynamics.battery_pass_through
    bertrand = scenario.competition.reprice == "bertrand"  # pack costs move marginal costs (supply.repricing)
    if is_uncertain(pass_through) or pass_through != 0 or bertrand:
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
    return is_uncertain(quantity) or quantity != 0


def check_tastes(scenario: Scenario, lineup: Lineup) -> None:
    """Refuse a scenario whose taste heterogeneity needs a characteristic the data and scenario lack."""
    tastes = scenario.market.tastes
    if _used(tastes.sigma_range):
        bands = scenario.dynamics.missing_range_band
        lacking = sorted({band for band, powertrain, known in zip(lineup.range_band, lineup.powertrains,
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


def product_ranges(lineup: Lineup, dynamics: DynamicsParameters, draws: int) -> np.ndarray:
    """[N, J] sourced ranges, km, with the scenario's band ranges where a BEV has none (else NaN)."""
    bands = dynamics.missing_range_band
    ranges = _sourced(lineup.range_km, len(lineup.names)) * np.ones((draws, 1))
    for j, (band, powertrain) in enumerate(zip(lineup.range_band, lineup.powertrains)):
        if powertrain == "BEV" and np.isnan(ranges[0, j]) and band in bands:
            ranges[:, j] = bands[band]
    return ranges


def product_batteries(lineup: Lineup, dynamics: DynamicsParameters, draws: int) -> np.ndarray:
    """[N, J] sourced battery sizes, kWh, with the scenario's BEV / PHEV sizes where none is sourced."""
    kwh = _sourced(lineup.battery_kwh, len(lineup.names)) * np.ones((draws, 1))
    for j, powertrain in enumerate(lineup.powertrains):
        assumed = {"BEV": dynamics.bev_battery_kwh, "PHEV": dynamics.phev_battery_kwh}.get(powertrain)
        if assumed is not None and np.isnan(kwh[0, j]):
            kwh[:, j] = assumed
    return kwh


def base_activity(policy: PolicySchedule, scenario: Scenario, powertrains) -> tuple[float, np.ndarray]:
    """Mean activity over the base months of the rural campaign and of each product's plate privilege."""
    months = base_months(scenario)
    campaign = float(np.mean([policy.active(RURAL_CAMPAIGN, "BEV", m) for m in months]))
    plate = np.array([np.mean([policy.active(PLATE_PRIVILEGE, p, m) for m in months]) if p in ("BEV", "PHEV")
                      else 0.0 for p in powertrains])
    return campaign, plate


def calibrate_base(data: MarketData, parameters: Parameters, price: np.ndarray, shares: np.ndarray,
                   outside: np.ndarray, elasticity: np.ndarray,
                   start: tuple[np.ndarray, np.ndarray] | None = None) -> BaseCalibration:
    """Effective prices, price coefficient and mean utilities reproducing the base period exactly, at the
    sales-weighted own-price `elasticity` [N]; the search under consumer types starts from `start` (alpha
    [N], xi [N, J]) if given, else from the plain logit's."""
    scenario, lineup, policy, draws = data.scenario, data.lineup, data.policy, parameters.draws
    market = parameters.market
    middle = round(data.base_mid_month)
    ranges = product_ranges(lineup, parameters.dynamics, draws)
    subsidy = (policy.subsidy(price, lineup.powertrains, ranges, middle)
               + extra_subsidy(scenario, parameters.policy.extra_nev_subsidy, draws).per_vehicle(
                   price, lineup.powertrains, middle))
    effective = price + policy.purchase_tax(price, lineup.is_nev, middle, parameters.finance.vat_rate) - subsidy
    models = named_models(lineup) if scenario.market.elasticity_basis == "models" else np.ones(len(lineup.names), bool)
    if not models.any():
        raise ScenarioError(f"scenario {scenario.name}: market.elasticity_basis = 'models' but the base lineup has "
                            f"no named models")
    alpha = price_coefficient(elasticity, effective[:, models], shares[:, models])
    quality = mean_utilities(shares, outside) - alpha[:, None] * effective
    regions = region_set(parameters.regions, draws)
    types = consumer_types(regions, parameters.tastes, draws, scenario.market.tastes.types_per_region)
    campaign, plate = base_activity(policy, scenario, lineup.powertrains)
    regional = nev_extras(regions, lineup.is_nev, plate, campaign,
                          market.charging_effect[:, None] * regions.log_density_ratio)
    characteristics = product_characteristics(data, parameters, shares, ranges)
    taste = types.taste_utility(characteristics)                       # [N, T, K] all products
    extras = types.expand(regional) + taste[:, :, :len(lineup.names)]
    if len(types.region_of) == 1 and not np.any(extras):  # plain logit: the inversion above is exact
        adjustment = np.zeros_like(quality)
    else:  # alpha and xi under the consumer types; `quality` stays the plain inversion at that alpha
        alpha, xi = calibrate_price_coefficient(shares, elasticity, effective, models, types, extras,
                                                *((alpha, quality) if start is None else start))
        quality = mean_utilities(shares, outside) - alpha[:, None] * effective
        adjustment = xi - quality
    return BaseCalibration(effective, alpha, quality, adjustment, regions, ranges,
                           product_batteries(lineup, parameters.dynamics, draws), subsidy, extras, types,
                           characteristics, taste)


def product_characteristics(data: MarketData, parameters: Parameters, shares: np.ndarray,
                            ranges: np.ndarray) -> np.ndarray:
    """[N, K, C] characteristics of every product (base lineup, scheduled launches, the entrant) for the
    consumer types' tastes (`market.consumer_types`); `shares` [N, J] and `ranges` [N, J] of the base period."""
    scenario, lineup, draws = data.scenario, data.lineup, parameters.draws
    launches, product = scenario.competition.launches, scenario.product
    size_j = len(lineup.names)
    bodies = lineup.bodies if lineup.bodies is not None else ("",) * size_j
    adas = lineup.adas if lineup.adas is not None else np.full(size_j, np.nan)

    def comparables_range(names: list[str]) -> np.ndarray:
        known = ranges[:, [lineup.index(n) for n in names]]
        return np.full(draws, np.nan) if np.all(np.isnan(known)) else np.nanmean(known, axis=1)

    launch_ranges = [comparables_range(c.comparables) for c in launches]
    all_ranges = np.concatenate([ranges, *[r[:, None] for r in launch_ranges],
                                 np.broadcast_to(parameters.product.range_km, (draws,))[:, None]], axis=1)
    aggregate_of = [name.split()[1] if name in OTHER_PRODUCTS else None for name in lineup.names]
    aggregate_of += [None] * (len(launches) + 1)
    weights = np.concatenate([shares, np.zeros((draws, len(launches) + 1))], axis=1)
    traits = ProductTraits(
        list(lineup.powertrains) + [c.powertrain for c in launches] + [product.powertrain],
        list(lineup.segments) + [c.segment for c in launches] + [product.segment],
        list(bodies) + [c.body for c in launches] + [product.body],
        np.concatenate([adas, [1.0 if c.adas else 0.0 for c in launches], [1.0 if product.adas else 0.0]]),
        np.arange(size_j + len(launches) + 1) == size_j + len(launches), aggregate_of)
    return characteristic_matrix(traits, all_ranges, weights, parameters.tastes.adas_unknown)


@dataclass(frozen=True)
class BaseMarket:
    """The calibrated base period, per draw: products' prices and non-price utilities, price sensitivity."""

    potential: np.ndarray        # [N] potential buyers per month (base period, deseasonalised)
    price: np.ndarray            # [N, J] guide prices, CNY
    quality: np.ndarray          # [N, J] mean utility excluding price
    alpha: np.ndarray            # [N] utility per CNY of effective price (negative)
    shares: np.ndarray           # [N, J] base-period shares of potential buyers
    outside_share: np.ndarray    # [N]
    # `quality` is the plain national inversion; with regions the utilities the simulation uses are
    # quality + quality_adjustment (joint calibration: region-weighted shares reproduce `shares`).
    quality_adjustment: np.ndarray | None = None  # [N, J]
    regions: RegionSet | None = None
    effective_price: np.ndarray | None = None     # [N, J] price + purchase tax - subsidy, base period
    range_km: np.ndarray | None = None            # [N, J] sourced or assumed range (NaN if not needed)
    battery_kwh: np.ndarray | None = None         # [N, J] sourced or assumed battery (NaN if not needed)
    extras: np.ndarray | None = None              # [N, T, J] consumer types' terms of the base period
    types: ConsumerTypes | None = None            # consumer types (regions x taste nodes), market.consumer_types
    taste_utility: np.ndarray | None = None       # [N, T, K] the types' taste terms for every product
    characteristics: np.ndarray | None = None     # [N, K, C] every product's characteristics (consumer_types)


def base_prices(lineup: Lineup, missing_price_band: dict[str, np.ndarray], draws: int) -> np.ndarray:
    """[N, J] base-period guide prices, CNY: sourced, else the scenario's price for the model's band."""
    price = np.where(np.isnan(lineup.known_price), 0.0, lineup.known_price) * np.ones((draws, 1))
    for j, band in enumerate(lineup.price_band):
        if np.isnan(lineup.known_price[j]):
            price[:, j] = missing_price_band[band]
    return price


def fringe_parts(lineup: Lineup, powertrain: str, low_share: dict[str, np.ndarray] | None
                 ) -> list[tuple[int, np.ndarray | float]]:
    """(lineup index, share [N] or 1.0) of each 'other' product of `powertrain` in its 'other' sales:
    the whole for 'other X', `low_share` and 1 - `low_share` for 'other X low' / 'other X high'."""
    if f"other {powertrain}" in lineup.names:
        return [(lineup.names.index(f"other {powertrain}"), 1.0)]
    if low_share is None or powertrain not in low_share:
        raise ScenarioError(f"field market.fringe_low_share.{powertrain} is missing; expected the share of the "
                            f"'other {powertrain}' sales in the low price band")
    low = low_share[powertrain]
    return [(lineup.names.index(f"other {powertrain} low"), low),
            (lineup.names.index(f"other {powertrain} high"), 1.0 - low)]


def calibrate(data: MarketData, parameters: Parameters, elasticity: np.ndarray | None = None,
              start: tuple[np.ndarray, np.ndarray] | None = None) -> BaseMarket:
    """Reproduce the base period exactly: shares from sourced sales, alpha from the elasticity, delta by inversion.

    `elasticity` [N]: the sales-weighted own-price elasticity to calibrate to, instead of
    `market.own_price_elasticity` (`supply.margin_fit.calibrate_market` searches it to match margins);
    `start`: (alpha [N], xi [N, J]) near the answer to start the search under consumer types from (e.g. a
    calibration at a nearby elasticity; the answer is the same within the search's tolerance)."""
    scenario, lineup, history, draws = data.scenario, data.lineup, data.history, parameters.draws
    first, last = scenario.market.base_period
    total = history.base_month_totals(first, last).mean()
    ratio = parameters.market.phev_to_bev_ratio
    nev_total = base_nev_sales(history, (first, last), ratio)   # pinned to the data; the ratio splits it
    bev_total, phev_total = nev_total / (1.0 + ratio), nev_total * ratio / (1.0 + ratio)
    price = base_prices(lineup, parameters.market.missing_price_band, draws)
    rates = np.where(np.isnan(lineup.monthly_sales), 0.0, lineup.monthly_sales) * np.ones((draws, 1))
    powertrain = np.array(lineup.powertrains)
    listed = ~np.isnan(lineup.monthly_sales)
    remainders = {"BEV": bev_total, "PHEV": phev_total,
                  "ICE": total - bev_total - phev_total}
    for name, remainder in remainders.items():
        rest = remainder - rates[:, listed & (powertrain == name)].sum(axis=1)
        for j, part in fringe_parts(lineup, name, parameters.market.fringe_low_share):
            rates[:, j] = rest * part
        if np.any(rest <= 0):
            raise DataError(f"field market.phev_to_bev_ratio: a sampled ratio up to "
                            f"{np.max(ratio):.3g} leaves the listed {name} models selling more "
                            f"than the {name} total of {first}..{last}; expected a ratio that leaves room for the "
                            f"'other {name}' aggregate (check the lineup's sales bases too)")
    outside = parameters.market.outside_share
    potential = total / (1.0 - outside)
    shares = rates / potential[:, None]
    if elasticity is None:
        elasticity = parameters.market.own_price_elasticity
    if elasticity is None:
        raise ScenarioError(f"scenario {scenario.name}: market.price_sensitivity = 'china_margins' is calibrated by "
                            f"supply.margin_fit.calibrate_market, not market.calibration.calibrate")
    fit = calibrate_base(data, parameters, price, shares, outside, np.asarray(elasticity, dtype=float), start)
    return BaseMarket(potential, price, fit.quality, fit.alpha, shares, outside, fit.adjustment, fit.regions,
                      fit.effective_price, fit.range_km, fit.battery_kwh, fit.extras, fit.types, fit.taste_utility,
                      fit.characteristics)
