"""The monthly simulation, vectorised over Monte Carlo draws.

`prepare(scenario)` reads the sourced data once (as of the scenario's date) into a `Model`;
`simulate(model, inputs)` is a plain function from per-draw inputs (dict of arrays [N], keyed by the
scenario's dotted parameter paths) to per-draw outputs (dict of arrays [N]), so samplers, sensitivity
analysis, scenario discovery, dask or a dashboard can all drive it unchanged.

Per draw and month: market size grows with seasonality; NEV utility drifts with the trend and with
charging points by region; purchase subsidy and tax follow the policy schedule (`market.policy`);
regions differ in price sensitivity, charging and policy bonuses (`market.regions`), and within each
region consumer types differ in income and tastes (random-coefficients demand, `market.consumer_types`);
battery cost, range progress and model ageing move incumbents (`market.dynamics`); incumbents cut BEV
prices after the entrant's launch (`competition.reprice = "fixed"`) or re-price to the Bertrand-Nash
equilibrium (`"bertrand"`, `supply.repricing`); the entrant's car enters at its launch month with an
awareness ramp; orders above capacity queue; the money follows (a draw in which every path of the chain
fails abandons the project at the last failure: R&D and opex stop). Market figures by year are whole
calendar years (the start year's months before the start are simulated too).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from evlaunch.config.scenario import Scenario, month_label, month_number, quantities
from evlaunch.data import load_table, numeric
from evlaunch.entry.partners import check_partners
from evlaunch.entry.paths import failure_event_name, path_outcomes
from evlaunch.entry.reference_class import (
    RampReferenceClass,
    ReferenceClassError,
    fit_reference_class,
    ramp_fraction,
    ramp_shape_from_uniforms,
)
from evlaunch.errors import DataError, ScenarioError, naming_source
from evlaunch.finance import net_present_value, peak_cash_need, terminal_value, unit_cost
from evlaunch.market.consumer_types import ConsumerTypes
from evlaunch.market.demand import Demand, calibrate_base, check_tastes, pre_start_market, prepare_policy
from evlaunch.market.history import MarketHistory, load_history
from evlaunch.market.lineup import OTHER_PRODUCTS, Lineup, build_lineup
from evlaunch.market.policy import PolicySchedule
from evlaunch.market.regions import RegionSet
from evlaunch.supply.capacity import capacity_ramp, serve_orders
from evlaunch.supply.repricing import IncumbentPricing, diversion_groups, entrant_diversion

AWARENESS_EVENTS = ("product.awareness_shape_event_1", "product.awareness_shape_event_2")
Inputs = dict[str, np.ndarray]
Outputs = dict[str, np.ndarray]


@dataclass(frozen=True)
class Model:
    """A scenario joined with the sourced data it may see (nothing dated after its as-of date)."""

    scenario: Scenario
    history: MarketHistory
    lineup: Lineup
    competitor_names: tuple[str, ...]
    event_names: tuple[str, ...]    # extra uniform draws: stage failures, supply shocks, ramp shapes
    reference_class: RampReferenceClass | None = None
    policy: PolicySchedule | None = None  # policy_schedule as known on the as-of date (market.policy)
    tables: dict[str, str] = field(default_factory=dict)  # the scenario's own tables, paths joined to its folder

    @property
    def path_names(self) -> tuple[str, ...]:
        return tuple(self.scenario.paths)

    @property
    def base_mid_month(self) -> float:
        first, last = self.scenario.market.base_period
        return (month_number(first) + month_number(last)) / 2.0


def prepare(scenario: Scenario, base_dir: str | Path = ".", source: str | None = None) -> Model:
    """Load the data a scenario needs and check that every product it names exists; errors name the scenario
    file `source` (when given) and the field."""
    try:
        return _prepare(scenario, base_dir)
    except (DataError, ScenarioError) as error:
        raise naming_source(error, source) from None


def _named_products(lineup: Lineup, field: str, names: list[str]) -> None:
    for name in names:
        if name not in lineup.names or name in OTHER_PRODUCTS:
            raise ScenarioError(f"field {field}: got {name!r}; expected a model of the base lineup: "
                                f"{', '.join(n for n in lineup.names if n not in OTHER_PRODUCTS)}")


def _prepare(scenario: Scenario, base_dir: str | Path) -> Model:
    tables = {name: str(Path(base_dir) / path) for name, path in scenario.data.tables.items()}
    lineup_source = scenario.data.lineup
    if lineup_source.endswith(".csv"):
        lineup_source = str(Path(base_dir) / lineup_source)
    history = load_history(scenario.as_of, tables)
    lineup = build_lineup(lineup_source, scenario.as_of, scenario.market.estimate_sales_from_monthly,
                          scenario.market.base_period, tables.get("china_bev_monthly_by_model"))
    _named_products(lineup, "product.comparables", scenario.product.comparables)
    for k, launch in enumerate(scenario.competition.launches):
        _named_products(lineup, f"competition.launches.{k}.comparables", launch.comparables)
    bands = scenario.market.missing_price_band
    needed = {band for band, price in zip(lineup.price_band, lineup.known_price) if math.isnan(price)}
    missing = sorted(needed - set(bands))
    if missing:
        raise ScenarioError(f"scenario {scenario.name}: field market.missing_price_band lacks "
                            f"{', '.join(missing)}; expected a price (or distribution) for each segment "
                            f"whose models have no sourced price")
    events = [failure_event_name(name, index) for name, path in scenario.paths.items()
              for index in range(len(path.stages))]
    events += [f"supply_shocks.{name}.occurrence_event" for name in scenario.supply_shocks]
    policy = prepare_policy(scenario, lineup, tables)
    check_tastes(scenario, lineup)
    check_partners(scenario.paths, scenario.as_of, tables.get("firms"))
    reference_class = None
    if scenario.product.awareness_from_reference_class:
        ramps_table = load_table("new_brand_ramps", scenario.as_of, tables.get("new_brand_ramps"))
        ramps = ramps_table.rows[~ramps_table.rows["gap"]].assign(deliveries=lambda frame: numeric(frame["deliveries"]))
        try:
            reference_class = fit_reference_class(ramps)
        except ReferenceClassError as error:
            raise DataError(f"table 'new_brand_ramps': {ramps_table.path}: {error} (field "
                            f"product.awareness_from_reference_class draws the ramp from it)") from None
        events += [AWARENESS_EVENTS[0], AWARENESS_EVENTS[1]]
    return Model(scenario, history, lineup, tuple(c.name for c in scenario.competition.launches), tuple(events),
                 reference_class, policy, tables)


def parameter_getter(model: Model, inputs: Inputs, draws: int) -> Callable[[str], np.ndarray]:
    """`value(path)`: the per-draw values of a scenario quantity, from `inputs` or its fixed value."""
    fixed = quantities(model.scenario)

    def value(path: str) -> np.ndarray:
        if path in inputs:
            return np.asarray(inputs[path], dtype=float)
        if path in fixed and not hasattr(fixed[path], "ppf"):
            return np.full(draws, float(fixed[path]))
        if path in fixed:
            return np.full(draws, fixed[path].centre)
        if path in model.event_names:
            return np.full(draws, 0.5)  # the central case of a random event's uniform draw
        raise KeyError(f"no input or scenario value for {path!r}")

    return value


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


def calibrate(model: Model, value: Callable[[str], np.ndarray], draws: int) -> BaseMarket:
    """Reproduce the base period exactly: shares from sourced sales, alpha from the elasticity, delta by inversion."""
    scenario, lineup, history = model.scenario, model.lineup, model.history
    first, last = scenario.market.base_period
    total = history.base_month_totals(first, last).mean()
    bev_total = history.base_month_totals(first, last, "bev").mean()
    phev_total = value("market.phev_to_bev_ratio") * bev_total
    price = np.where(np.isnan(lineup.known_price), 0.0, lineup.known_price) * np.ones((draws, 1))
    for j, band in enumerate(lineup.price_band):
        if np.isnan(lineup.known_price[j]):
            price[:, j] = value(f"market.missing_price_band.{band}")
    rates = np.where(np.isnan(lineup.monthly_sales), 0.0, lineup.monthly_sales) * np.ones((draws, 1))
    powertrain = np.array(lineup.powertrains)
    listed = ~np.isnan(lineup.monthly_sales)
    remainders = {"BEV": bev_total * np.ones(draws), "PHEV": phev_total,
                  "ICE": total - bev_total - phev_total}
    for name, remainder in remainders.items():
        j = lineup.names.index(f"other {name}")
        rates[:, j] = remainder - rates[:, listed & (powertrain == name)].sum(axis=1)
        if np.any(rates[:, j] <= 0):
            raise DataError(f"field market.phev_to_bev_ratio: a sampled ratio up to "
                            f"{np.max(value('market.phev_to_bev_ratio')):.3g} leaves the listed {name} models selling more "
                            f"than the {name} total of {first}..{last}; expected a ratio that leaves room for the "
                            f"'other {name}' aggregate (check the lineup's sales bases too)")
    outside = value("market.outside_share")
    potential = total / (1.0 - outside)
    shares = rates / potential[:, None]
    fit = calibrate_base(model, value, draws, price, shares, outside)
    return BaseMarket(potential, price, fit.quality, fit.alpha, shares, outside, fit.adjustment, fit.regions,
                      fit.effective_price, fit.range_km, fit.battery_kwh, fit.extras, fit.types, fit.taste_utility,
                      fit.characteristics)


def _mean_quality(base: BaseMarket, lineup: Lineup, names: list[str]) -> np.ndarray:
    utility = base.quality if base.quality_adjustment is None else base.quality + base.quality_adjustment
    return utility[:, [lineup.index(name) for name in names]].mean(axis=1)


def simulate(model: Model, inputs: Inputs) -> Outputs:
    """Run every path for every draw over the horizon; return per-draw outputs keyed by name."""
    scenario, lineup = model.scenario, model.lineup
    draws = len(next(iter(inputs.values()))) if inputs else 1
    value = parameter_getter(model, inputs, draws)
    base = calibrate(model, value, draws)
    horizon = scenario.horizon_months
    start = scenario.start_month
    months = start + np.arange(horizon)
    years = np.array([m // 12 for m in months])

    # Products (base lineup, scheduled launches, the entrant last) and the time-varying market drivers,
    # the same for every path: market.dynamics.Demand. `lead` months of the start year precede the start.
    demand = Demand(model, value, draws, base)
    lead = demand.lead
    size = demand.size[:, lead:]
    pack_cny = demand.pack_cny[:, lead:]
    vat = value("finance.vat_rate")
    nev = demand.is_nev
    regions = demand.regions
    pre_start = pre_start_market(demand, value("product.price"))

    # Supply shocks: per draw, whether each happens and when.
    shock_cut = np.zeros((draws, horizon))
    shock_cost = np.zeros((draws, horizon))
    for name in scenario.supply_shocks:
        prefix = f"supply_shocks.{name}"
        happens = value(f"{prefix}.occurrence_event") < value(f"{prefix}.probability")
        begin = value(f"{prefix}.start_months")[:, None]
        active = happens[:, None] & (np.arange(horizon)[None, :] >= begin) & (
            np.arange(horizon)[None, :] < begin + value(f"{prefix}.duration_months")[:, None])
        shock_cut = np.maximum(shock_cut, active * value(f"{prefix}.capacity_cut")[:, None])
        shock_cost = shock_cost + active * value(f"{prefix}.cost_increase")[:, None]

    product = scenario.product
    entrant_quality = _mean_quality(base, lineup, product.comparables) + value("product.quality_utility")
    entrant_price = value("product.price")
    ready = value("product.ready_months")
    if model.reference_class is not None:
        awareness_midpoint, awareness_width = ramp_shape_from_uniforms(
            model.reference_class, value(AWARENESS_EVENTS[0]), value(AWARENESS_EVENTS[1]))
    else:
        awareness_midpoint, awareness_width = value("product.awareness_midpoint"), value("product.awareness_width")
    outcomes = path_outcomes(scenario.paths, value)
    path_order = list(scenario.paths)
    out: Outputs = {}
    month_labels = [month_label(m) for m in months]
    year_list = sorted(set(years.tolist()))
    cancellation = value("product.order_cancellation")
    discount_rate = value("finance.discount_rate")
    budget_cny = scenario.finance.budget_usd * value("finance.usd_cny")
    fixed_costs = value("finance.rnd_per_month") + value("finance.opex_per_month")
    # incumbents' prices: fixed with an entry cut, or Bertrand re-pricing (supply.repricing)
    pricing = IncumbentPricing(model, value, draws, base, demand) if scenario.competition.reprice == "bertrand" \
        else None
    named_bev = np.array([name not in OTHER_PRODUCTS and powertrain == "BEV"
                          for name, powertrain in zip(lineup.names, lineup.powertrains)])
    group_names, group_matrix = diversion_groups(demand, lineup, [c.group for c in scenario.competition.launches])
    types = demand.types
    price_coefficient = base.alpha[:, None] * types.price_sensitivity

    for path_name in path_order:
        outcome = outcomes[path_name]
        operating = outcome.operating_path

        def of_operating(field: str, operating: np.ndarray = operating) -> np.ndarray:
            values = np.stack([value(f"paths.{p}.{field}") for p in path_order], axis=1)
            return np.where(operating >= 0, values[np.arange(draws), np.maximum(operating, 0)], 0.0)

        launch_index = np.ceil(np.maximum(ready, outcome.production_start))  # months after start; inf = never
        capacity_per_month = of_operating("capacity_per_year") / 12.0
        ramp = of_operating("ramp_months")
        brand = of_operating("brand_utility")
        fee = of_operating("fee_per_vehicle")
        cost_factor = of_operating("unit_cost_factor")
        upfront = of_operating("upfront_cost")
        upfront_months = np.maximum(np.where(np.isfinite(outcome.production_start),
                                             outcome.production_start - outcome.months_lost, 0.0), 1.0)
        upfront_begin = outcome.months_lost
        sunk_months = np.maximum(outcome.months_lost, 1.0)
        # every path of the chain failed: the project is abandoned at the last failure, its running costs stop
        abandoned_at = np.where(operating < 0, outcome.months_lost, np.inf)
        backlog = np.zeros(draws)
        cumulative = np.zeros(draws)
        series = {key: np.zeros((draws, horizon)) for key in
                  ("orders", "deliveries", "revenue", "cash_flow", "operating_flow", "market", "nev", "share")}
        by_region = {key: np.zeros((draws, len(regions.names), horizon)) for key in ("deliveries", "market", "nev")}
        path_pricing = pricing.path() if pricing is not None else None
        price_change = np.zeros((draws, horizon))     # named incumbent BEVs: units x (p / p_no_entrant - 1)
        bev_units = np.zeros((draws, horizon))
        diversion = np.zeros((draws, len(group_names)))  # first 12 months on sale, weighted by orders
        diversion_weight = np.zeros(draws)
        for t in range(horizon):
            after_launch = t >= launch_index
            cut = np.where(after_launch, value("competition.price_war_cut"), 0.0)
            # month 1 = the first month on sale, as in the reference class of new brands' ramp-ups
            awareness = ramp_fraction(t - launch_index + 1.0, awareness_midpoint, awareness_width)
            entrant_utility = entrant_quality + brand + np.log(np.maximum(awareness, 1e-300))
            if path_pricing is None:
                typed, shares = demand.month(lead + t, cut, entrant_utility, entrant_price, after_launch,
                                             launch_index)
                bev_units[:, t] = size[:, t] * shares[:, :lineup_size(lineup)][:, named_bev].sum(axis=1)
                price_change[:, t] = -cut * bev_units[:, t]
            else:
                _, typed, shares = path_pricing.month(t, entrant_utility, entrant_price, after_launch, launch_index)
                price_change[:, t], bev_units[:, t] = path_pricing.bev_price_change(shares, size[:, t])
            orders = size[:, t] * shares[:, -1]
            first_year = after_launch & (t < launch_index + 12)
            if first_year.any():
                weight = np.where(first_year, orders, 0.0)
                ratios = np.nan_to_num(entrant_diversion(typed, types.weights, price_coefficient)) @ group_matrix
                diversion += weight[:, None] * ratios
                diversion_weight += weight
            capacity = capacity_per_month * capacity_ramp(t - launch_index, ramp) * (1.0 - shock_cut[:, t])
            capacity = np.where(np.isfinite(launch_index), capacity, 0.0)
            delivered, backlog = serve_orders(orders, capacity, backlog, cancellation)
            cost = unit_cost(value("product.battery_kwh"), pack_cny[:, t], value("product.rest_of_vehicle_cost"),
                             cost_factor, cumulative, value("product.learning_rate")) * (1.0 + shock_cost[:, t])
            cumulative = cumulative + delivered
            revenue = delivered * entrant_price / (1.0 + vat)
            operating_flow = revenue - delivered * (cost + fee + value("finance.variable_cost_per_vehicle"))
            upfront_now = np.where((t >= upfront_begin) & (t < upfront_begin + upfront_months),
                                   upfront / upfront_months, 0.0)
            sunk_now = np.where(t < outcome.months_lost, outcome.sunk_upfront / sunk_months, 0.0)
            sold = size[:, t] * shares.sum(axis=1) - orders + delivered
            series["orders"][:, t] = orders
            series["deliveries"][:, t] = delivered
            series["revenue"][:, t] = revenue
            running = np.where(t < abandoned_at, fixed_costs, 0.0)
            series["operating_flow"][:, t] = operating_flow - running
            series["cash_flow"][:, t] = operating_flow - running - upfront_now - sunk_now
            series["market"][:, t] = sold
            series["nev"][:, t] = size[:, t] * (shares[:, :-1] * nev[None, :-1]).sum(axis=1) + delivered
            series["share"][:, t] = delivered / sold
            regional = types.within_regions(typed)                                          # [N, R, K]
            buyers = size[:, t:t + 1] * regions.weights                                      # [N, R]
            orders_region = buyers * regional[:, :, -1]
            mix = np.where(orders[:, None] > 0, orders_region / np.maximum(orders, 1e-300)[:, None], regions.weights)
            delivered_region = delivered[:, None] * mix
            by_region["deliveries"][:, :, t] = delivered_region
            by_region["market"][:, :, t] = buyers * regional.sum(axis=2) - orders_region + delivered_region
            by_region["nev"][:, :, t] = (buyers * (regional[:, :, :-1] * nev[None, None, :-1]).sum(axis=2)
                                         + delivered_region)
        npv = net_present_value(series["cash_flow"], discount_rate,
                                terminal_value(series["cash_flow"], value("finance.terminal_value_multiple"),
                                               series["operating_flow"]))
        peak = peak_cash_need(series["cash_flow"])
        prefix = path_name
        out[f"{prefix}.launch_month_index"] = launch_index
        out[f"{prefix}.months_lost"] = outcome.months_lost
        out[f"{prefix}.path_failed"] = outcome.failed
        out[f"{prefix}.operating_path"] = operating.astype(float)
        out[f"{prefix}.npv"] = npv
        out[f"{prefix}.peak_cash_need"] = peak
        out[f"{prefix}.budget_exceeded"] = peak > budget_cny
        if path_pricing is not None:
            out[f"{prefix}.equilibrium_failures"] = path_pricing.failures.copy()
        with np.errstate(invalid="ignore", divide="ignore"):
            shares_of_buyers = diversion / diversion_weight[:, None]  # NaN: not on sale within the horizon
        for g, group in enumerate(group_names):
            out[f"{prefix}.diversion.{group}"] = np.where(diversion_weight > 0, shares_of_buyers[:, g], np.nan)
        for year in year_list:
            columns = years == year
            for key in ("orders", "deliveries", "revenue"):
                out[f"{prefix}.{key}.{year}"] = series[key][:, columns].sum(axis=1)
            before = year == pre_start.year  # the start year's months before the start (market only)
            market_year = series["market"][:, columns].sum(axis=1) + (pre_start.market if before else 0.0)
            nev_year = series["nev"][:, columns].sum(axis=1) + (pre_start.nev if before else 0.0)
            out[f"{prefix}.share.{year}"] = series["deliveries"][:, columns].sum(axis=1) / market_year
            out[f"{prefix}.market_total.{year}"] = market_year
            out[f"{prefix}.nev_share.{year}"] = nev_year / market_year
            units = bev_units[:, columns].sum(axis=1)
            out[f"{prefix}.incumbent_price_change.{year}"] = np.where(
                units > 0, price_change[:, columns].sum(axis=1) / np.maximum(units, 1e-300), 0.0)
            for r, region in enumerate(regions.names):
                market_region = by_region["market"][:, r, columns].sum(axis=1) + (
                    pre_start.market_region[:, r] if before else 0.0)
                nev_region = by_region["nev"][:, r, columns].sum(axis=1) + (
                    pre_start.nev_region[:, r] if before else 0.0)
                out[f"{prefix}.deliveries_region.{region}.{year}"] = by_region["deliveries"][:, r, columns].sum(axis=1)
                out[f"{prefix}.market_region.{region}.{year}"] = market_region
                out[f"{prefix}.nev_share_region.{region}.{year}"] = nev_region / market_region
        for t, label in enumerate(month_labels):
            out[f"{prefix}.deliveries_month.{label}"] = series["deliveries"][:, t].astype(np.float32)
            out[f"{prefix}.nev_share_month.{label}"] = (series["nev"][:, t] / series["market"][:, t]).astype(
                np.float32)
    out["product.awareness_midpoint_drawn"] = np.broadcast_to(awareness_midpoint, (draws,)).astype(float)
    out["product.awareness_width_drawn"] = np.broadcast_to(awareness_width, (draws,)).astype(float)
    out["market.public_chargers.end"] = demand.public_chargers_end
    out["market.price_coefficient"] = base.alpha
    return out


def lineup_size(lineup: Lineup) -> int:
    return len(lineup.names)
