"""The scenario's quantities as typed per-draw arrays, grouped as the model's parts use them.

Every array is [N] (one value per Monte Carlo draw, float, read-only). The kernels in `market`, `entry`,
`supply` and `finance` read these fields and never a scenario field path; the one place that maps the
scenario's dotted paths (and the sampled inputs) to these objects is `simulation.parameters`.
Money in CNY unless a name says otherwise; durations in months; volumes in vehicles; utilities in logit
units.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class MarketParameters:
    """The new-car market as a whole (`[market]`)."""

    outside_share: np.ndarray          # share of potential buyers who buy no new car in a month (0..1)
    own_price_elasticity: np.ndarray | None  # sales-weighted mean own-price elasticity (< 0); None: from margins
    growth_per_year: np.ndarray        # growth of the total car market per year (fraction)
    nev_trend_per_year: np.ndarray     # drift of NEV utility versus ICEs, logit units per year
    phev_trend_per_year: np.ndarray    # drift of PHEV/EREV utility versus BEVs, logit units per year
    charging_growth_per_year: np.ndarray  # growth of public charging points per year after the data (fraction)
    charging_effect: np.ndarray        # NEV utility per unit of log charging points per potential buyer
    phev_to_bev_ratio: np.ndarray      # PHEV sales per BEV sale in the base period
    missing_price_band: dict[str, np.ndarray]  # price band -> guide price, CNY, of models with no sourced price
    gross_margin: np.ndarray | None = None  # (p - c) / p the Bertrand FOCs are to imply (market.price_sensitivity)
    fringe_low_share: dict[str, np.ndarray] | None = None  # powertrain -> share of its 'other' sales, low band
    # yearly innovations of the random walks (`market.adoption`): quantity name (e.g. 'nev_trend_per_year') ->
    # [N, Y] innovation of its level (log-odds, or log for growth rates) in each year of `step_years`
    steps: dict[str, np.ndarray] | None = None
    step_years: tuple[int, ...] = ()   # calendar years after the as-of date with an innovation


@dataclass(frozen=True)
class TasteParameters:
    """Taste heterogeneity within regions (`[market.tastes]`, `market.consumer_types`); logit units per
    unit of the characteristic, standard deviations across consumer types."""

    income_dispersion: np.ndarray   # sd of log income within a region (>= 0)
    sigma_new_car: np.ndarray       # taste for buying any new car versus no purchase
    sigma_nev: np.ndarray           # taste for NEVs (BEV or PHEV)
    sigma_suv: np.ndarray           # taste for SUVs
    sigma_size: np.ndarray          # taste per segment step (A00 .. D)
    sigma_range: np.ndarray         # taste per unit of log BEV range
    sigma_adas: np.ndarray          # taste for advanced driver assistance
    sigma_brand: np.ndarray         # taste for the entrant's brand
    adas_unknown: np.ndarray        # ADAS level (0..1) of base models without a sourced ADAS entry


@dataclass(frozen=True)
class RegionParameters:
    """One region of the market (`[regions.<name>]`, `market.regions`), before normalisation."""

    weight: np.ndarray                 # share of potential buyers (normalised over regions)
    price_sensitivity: np.ndarray      # multiplier on the price coefficient (normalised to a buyer-weighted 1)
    charging_share: np.ndarray         # share of the public charging points (normalised over regions)
    charging_growth_extra: np.ndarray  # added to the national charging growth after the as-of date (fraction/yr)
    plate_utility: np.ndarray          # NEV utility while large-city plate privileges are in force
    campaign_utility: np.ndarray       # NEV utility while a rural NEV campaign runs


@dataclass(frozen=True)
class DynamicsParameters:
    """How incumbents move over time (`[dynamics]`, `market.demand`)."""

    battery_pass_through: np.ndarray   # share of the pack-cost change passed into NEV prices (fixed prices)
    bev_battery_kwh: np.ndarray | None  # kWh of incumbent BEVs without a sourced figure (None: not given)
    phev_battery_kwh: np.ndarray | None  # kWh of incumbent PHEVs without a sourced figure (None: not given)
    range_growth_per_year: np.ndarray  # growth of incumbent BEVs' range per year (fraction)
    range_utility: np.ndarray          # BEV utility per unit of log range
    ageing_per_year: np.ndarray        # utility a named model loses per year after the base period
    missing_range_band: dict[str, np.ndarray]  # price band -> range, km, of BEVs with no sourced range


@dataclass(frozen=True)
class PolicyParameters:
    """The scenario's own policy assumptions (`[policy]`, `market.policy.extra_subsidy`)."""

    extra_nev_subsidy: np.ndarray      # extra purchase subsidy per qualifying NEV, CNY


@dataclass(frozen=True)
class LaunchParameters:
    """One scheduled competitor launch (`[[competition.launches]]`)."""

    price: np.ndarray                  # guide price incl. VAT, CNY
    quality_utility: np.ndarray        # utility versus its comparables at equal price
    probability: np.ndarray            # probability the launch happens at all
    occurrence_event: np.ndarray       # the uniform (0..1) that decides it: happens when below `probability`

    @property
    def happens(self) -> np.ndarray:
        """[N] bool: whether the launch happens in each draw."""
        return self.occurrence_event < self.probability


@dataclass(frozen=True)
class CompetitionParameters:
    """Incumbents' reaction and scheduled launches (`[competition]`)."""

    price_war_cut: np.ndarray          # incumbents' BEV price cut after the entrant's launch (fraction, fixed prices)
    launches: tuple[LaunchParameters, ...]  # in the scenario's order


@dataclass(frozen=True)
class ProductParameters:
    """The entrant's car (`[product]`)."""

    price: np.ndarray                  # guide price incl. VAT before subsidies, CNY
    battery_kwh: np.ndarray            # pack size, kWh
    range_km: np.ndarray               # CLTC range, km
    ready_months: np.ndarray           # months from the scenario start until the product is ready to build
    quality_utility: np.ndarray        # utility versus its comparables at equal price
    rest_of_vehicle_cost: np.ndarray   # unit cost excluding the battery pack, CNY/vehicle
    learning_rate: np.ndarray          # unit-cost fall per doubling of cumulative output (0..0.5)
    learning_base: np.ndarray          # experience base: cumulative output, vehicles, before learning starts
    awareness_midpoint: np.ndarray     # months after the first production month until the delivery ramp is half-way
    awareness_width: np.ndarray        # logistic width of the delivery ramp, months
    order_cancellation: np.ndarray     # share of the waiting backlog cancelled each month
    cancellation_per_month_waited: np.ndarray  # extra monthly cancellation share per month of expected wait
    expansion_backlog_months: np.ndarray  # expansion rule: at capacity, backlog above this many months of it ...
    expansion_persistence_months: np.ndarray  # ... for this many consecutive months
    binding_utilisation: np.ndarray    # at capacity: output at least this share of installed full-rate capacity
    # the two uniforms that draw the delivery ramp's shape from the reference class of new brands
    # (`entry.reference_class`); None when the scenario gives the ramp directly
    awareness_shape_uniforms: tuple[np.ndarray, np.ndarray] | None = None
    awareness_outside_reach: np.ndarray | None = None  # share of buyers outside the brand's reach who consider it
    launch_order_multiple: np.ndarray | None = None  # launch orders / comparable launches' order events
    launch_orders_event: np.ndarray | None = None  # the uniform (0..1) that draws the comparable launch's orders


@dataclass(frozen=True)
class StageParameters:
    """One stage of a manufacturing path (`entry.paths`)."""

    months: np.ndarray                 # duration, months
    failure: np.ndarray                # probability the stage fails (0..1)
    failure_event: np.ndarray          # the uniform (0..1) that decides it: failed when below `failure`


@dataclass(frozen=True)
class PathParameters:
    """One manufacturing path (`[paths.<name>]`)."""

    stages: tuple[StageParameters, ...]
    capacity_per_year: np.ndarray      # plant capacity available to the entrant, vehicles/year
    ramp_months: np.ndarray            # months from start of production to full capacity
    upfront_cost: np.ndarray           # capex and one-off fees before production, CNY
    fee_per_vehicle: np.ndarray        # contract-manufacturing fee paid to the partner, CNY/vehicle
    unit_cost_factor: np.ndarray       # multiplier on the unit cost
    brand_utility: np.ndarray          # utility shift from co-branding or channel
    # the plant's flex (`supply.capacity`); None: none (no stock built, no expansion option)
    prelaunch_build_months: np.ndarray | None = None  # months the plant builds stock before the launch
    expansion_capacity_per_year: np.ndarray | None = None  # the next phase's capacity, vehicles/year (0: none)
    expansion_lead_months: np.ndarray | None = None  # months from the decision until the next phase produces
    expansion_capex: np.ndarray | None = None  # the next phase's capex, CNY, spread over its lead time


@dataclass(frozen=True)
class FinanceParameters:
    """Money (`[finance]`)."""

    usd_cny: np.ndarray                # CNY per US$
    discount_rate: np.ndarray          # annual discount rate for NPV
    rnd_per_month: np.ndarray          # R&D and engineering spend, CNY/month
    opex_per_month: np.ndarray         # sales network, marketing, overheads, CNY/month
    variable_cost_per_vehicle: np.ndarray  # logistics, warranty, delivery, CNY/vehicle
    vat_rate: np.ndarray               # VAT included in guide prices (fraction)
    battery_cost_change_per_year: np.ndarray  # change of the pack price per year after the data (fraction)
    terminal_value_multiple: np.ndarray  # years of final-year operating cash flow credited at the horizon
    price_backlog_months: np.ndarray   # backlog (months of output/capacity) tolerated: price held above it
    capacity_premium_cap: np.ndarray   # largest capacity shadow price, share of the best-response price
    price_step_cap: np.ndarray         # largest change of the entrant's price in a month, share of the price
    spent_before_start_usd: np.ndarray  # part of the pledge spent before the scenario start, US$
    inventory_days: np.ndarray         # days of cost of goods held as stock
    receivable_days: np.ndarray        # days of revenue owed by buyers and dealers


@dataclass(frozen=True)
class ShockParameters:
    """One supply shock (`[supply_shocks.<name>]`)."""

    occurrence_event: np.ndarray       # the uniform (0..1) that decides it: happens when below `probability`
    probability: np.ndarray            # probability it happens within the horizon
    start_months: np.ndarray           # months after the scenario start when it begins
    duration_months: np.ndarray        # months it lasts
    capacity_cut: np.ndarray           # fraction of capacity lost while it lasts
    cost_increase: np.ndarray          # fractional rise of the unit cost while it lasts


@dataclass(frozen=True)
class Parameters:
    """Every quantity of a scenario for N draws, by group (dicts keep the scenario's order)."""

    draws: int
    market: MarketParameters
    tastes: TasteParameters
    regions: dict[str, RegionParameters]
    dynamics: DynamicsParameters
    policy: PolicyParameters
    competition: CompetitionParameters
    product: ProductParameters
    paths: dict[str, PathParameters]
    finance: FinanceParameters
    shocks: dict[str, ShockParameters]
