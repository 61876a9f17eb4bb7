"""Scenario files: the validated, frozen configuration of one simulation.

A scenario is TOML. Any scalar marked `Quantity` may be a fixed number or a distribution table
(see `uncertainty.distributions`). Loading never executes anything from the file; every problem is
reported as a `ScenarioError` naming the file, the field path, the offending value and what was expected.
Money is in CNY unless a field name says otherwise; durations are in months; volumes in vehicles.
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Iterator, Mapping
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)
from scipy.stats import t as student_t

from evlaunch.config.distributions import DISTRIBUTION_NAMES, Distribution, _Distribution, is_uncertain
from evlaunch.data.catalogue import USER_TABLES
from evlaunch.errors import ScenarioError

MAX_SCENARIO_BYTES = 1_000_000
MAX_HORIZON_MONTHS = 240
MAX_DRAWS = 10_000_000
DEFAULT_LEARNING_BASE = 10_000.0  # vehicles: learning counts from the first 10,000 built unless a scenario says
MAX_START_AFTER_AS_OF_MONTHS = 24  # the first simulated month lies within two years of the as-of date

Number = StrictInt | StrictFloat
Quantity = StrictInt | StrictFloat | Distribution
# ASCII digits only: `\d` would also accept other scripts' digits ('２０２３-11').
YEAR_MONTH = re.compile(r"^([0-9]{4})-(0[1-9]|1[0-2])$", re.ASCII)


def month_number(year_month: str) -> int:
    """Months since year 0 for 'YYYY-MM' (so differences are month counts)."""
    match = YEAR_MONTH.fullmatch(year_month) if isinstance(year_month, str) else None
    if not match:
        raise ValueError(f"expected a month as 'YYYY-MM', got {year_month!r}")
    return int(match.group(1)) * 12 + int(match.group(2)) - 1


def month_label(number: int) -> str:
    """Inverse of `month_number`: 24287 -> '2023-12'."""
    return f"{number // 12:04d}-{number % 12 + 1:02d}"


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("must be a finite number (not nan or inf)")
    return value


class _Config(_Frozen):
    @field_validator("*", mode="after")
    @classmethod
    def _finite(cls, value: Any) -> Any:
        return _check_finite(value)


def _year_month(value: str) -> str:
    month_number(value)
    year = int(value[:4])
    if not 1990 <= year <= 2100:
        raise ValueError(f"year {year} is outside 1990..2100")
    return value


YearMonth = Annotated[str, Field(pattern=YEAR_MONTH.pattern)]


class Stage(_Config):
    """One step of a path (agreement, approval, catalogue listing, plant readiness, start of production)."""

    name: str = Field(min_length=1, max_length=80)
    months: Quantity = Field(description="duration of the stage, months")
    failure: Quantity = Field(0.0, description="probability the stage fails (0..1)")
    under_way: StrictBool = Field(False, description="the stage's clock runs from the scenario start whenever its "
                                  "path is taken up (e.g. an application already filed), so a fallback to the path "
                                  "does not restart it")
    note: str = Field("", max_length=2000)


class EntryPath(_Config):
    """A manufacturing path: whose licence and plant, its stages, capacity, costs and fallback."""

    label: str = Field(min_length=1, max_length=120)
    partner: str | None = Field(None, description="firm name as in the firms table: the partner whose licence "
                                "or plant the path uses")
    licence: Literal["partner", "own"] = Field(description="who holds the production licence: the partner or the "
                                               "entrant itself")
    plant: Literal["partner", "own"] | None = Field(
        None, description="where cars are built: the partner's plant or the entrant's own; not given = the "
                          "licence holder's plant (own licence: own plant; partner licence: partner plant)")
    stages: list[Stage] = Field(min_length=1, max_length=12)
    fallback: str | None = Field(None, description="path taken if a stage fails, with the time already lost")
    capacity_per_year: Quantity = Field(description="plant capacity available to the entrant, vehicles/year")
    ramp_months: Quantity = Field(description="months an expansion phase takes to reach full output (the first "
                                  "phase follows the delivery ramp, product.awareness_from_reference_class)")
    upfront_cost: Quantity = Field(description="capex and one-off fees before production, CNY")
    fee_per_vehicle: Quantity = Field(0.0, description="contract-manufacturing fee paid to the partner, CNY/vehicle")
    unit_cost_factor: Quantity = Field(1.0, description="multiplier on the unit cost (partner supply chain, scale)")
    brand_utility: Quantity = Field(0.0, description="utility shift from co-branding or channel, logit units")
    prelaunch_build_months: Quantity = Field(0.0, description="months the plant builds stock before the launch "
                                             "(on the delivery ramp), delivered from the launch")
    expansion_capacity_per_year: Quantity = Field(0.0, description="capacity of the next plant phase or shift "
                                                  "the entrant may add, vehicles/year (0: none)")
    expansion_lead_months: Quantity = Field(12.0, description="months from the decision to expand until the "
                                            "new phase produces (it then ramps over ramp_months)")
    expansion_capex: Quantity = Field(0.0, description="capex of the expansion, CNY, spread over its lead time")
    note: str = Field("", max_length=4000)

    @property
    def plant_site(self) -> Literal["partner", "own"]:
        """Where cars are built: `plant` when given, else the licence holder's plant."""
        return self.plant if self.plant is not None else self.licence

    @property
    def licence_holder(self) -> str:
        """Who holds the licence, for grouping paths: 'own', or the partner firm (or 'partner' when unnamed)."""
        return "own" if self.licence == "own" else (self.partner or "partner")


class FirmGuidance(_Frozen):
    """The entrant's own public volume plan as of the scenario date (shown, never fitted)."""

    year: StrictInt = Field(ge=1990, le=2100, description="calendar year the plan is for")
    deliveries: float = Field(gt=0, description="planned deliveries in that year, vehicles")
    source: str = Field(min_length=1, max_length=400, description="where it was stated (table row or article)")


class Product(_Config):
    """The entrant's car."""

    name: str = Field(min_length=1, max_length=120)
    segment: str = Field(min_length=1, max_length=20)
    powertrain: Literal["BEV", "PHEV"]
    body: str = Field("sedan", max_length=40)
    price: Quantity = Field(description="guide price incl. VAT before subsidies, CNY")
    battery_kwh: Quantity
    range_km: Quantity = Field(description="CLTC range, km")
    adas: StrictBool = True
    ready_months: Quantity = Field(description="months from the scenario start until the product is ready to build")
    quality_utility: Quantity = Field(0.0, description="utility versus the comparable models at equal price")
    comparables: list[str] = Field(min_length=1, description="lineup models the car is positioned against")
    rest_of_vehicle_cost: Quantity = Field(description="unit cost excluding the battery pack, CNY/vehicle")
    learning_rate: Quantity = Field(0.1, description="unit-cost fall per doubling of cumulative output (0..0.5)")
    learning_base: Quantity = Field(DEFAULT_LEARNING_BASE, description="experience base, vehicles: learning "
                                    "counts doublings of the entrant's cumulative output beyond it (the "
                                    "industry experience its suppliers and partners bring)")
    awareness_midpoint: Quantity = Field(1.0, description="months after the first production month until the "
                                         "delivery ramp reaches half the plant's capacity")
    awareness_width: Quantity = Field(1.0, description="logistic width of the delivery ramp, months")
    awareness_from_reference_class: StrictBool = Field(
        False, description="draw the delivery ramp from new EV brands' fitted ramp-ups (new_brand_ramps) "
                           "instead of awareness_midpoint/width")
    order_cancellation: Quantity = Field(0.05, description="share of the waiting backlog cancelled each month")
    cancellation_per_month_waited: Quantity = Field(
        0.0, description="extra share of the backlog cancelled each month per month of expected wait "
                         "(backlog / the month's output)")
    expansion_backlog_months: Quantity = Field(
        3.0, description="expansion rule: the entrant orders the next phase when the plant is at capacity "
                         "(binding_utilisation) and the backlog exceeds this many months of installed capacity ...")
    expansion_persistence_months: Quantity = Field(3.0, description="... for this many consecutive months")
    binding_utilisation: Quantity = Field(
        0.9, description="the plant is at capacity when its month's output is at least this share of its "
                         "installed full-rate capacity (not while on its delivery ramp); the expansion rule and "
                         "the capacity shadow price apply only then")
    awareness_outside_reach: Quantity | None = Field(
        None, description="share of buyers outside the brand's reach (reach table) who consider the car from its "
                          "launch; awareness = reach + (1 - reach) x this; none: every buyer considers it")
    launch_order_multiple: Quantity | None = Field(
        None, description="orders waiting at the launch as a multiple of comparable launches' order events "
                          "(new_brand_orders, launch_orders_extra); none: no orders before the launch")
    guidance: FirmGuidance | None = Field(None, description="the firm's own public plan, shown beside the "
                                          "forecast and never used to fit")


class Tastes(_Config):
    """Taste heterogeneity within each region (random-coefficients demand, `market.consumer_types`).

    Every `sigma_*` is the standard deviation across a region's consumer types of the taste for one
    product characteristic, in logit units per unit of the characteristic; `income_dispersion` is the
    standard deviation of log income within a region (price sensitivity is proportional to 1 / income).
    All zero (the default) or `types_per_region = 1` gives logit demand within each region.
    """

    types_per_region: StrictInt = Field(1, ge=1, le=64, description="consumer types (taste nodes) per region")
    income_dispersion: Quantity = Field(0.0, description="sd of log income within a region")
    sigma_new_car: Quantity = Field(0.0, description="taste for buying any new car (vs no purchase), logit units")
    sigma_nev: Quantity = Field(0.0, description="taste for NEVs (BEV or PHEV), logit units")
    sigma_suv: Quantity = Field(0.0, description="taste for SUVs, logit units")
    sigma_size: Quantity = Field(0.0, description="taste per segment step (A00, A0, A, B, C, D), logit units")
    sigma_range: Quantity = Field(0.0, description="taste per unit of log BEV range, logit units")
    sigma_adas: Quantity = Field(0.0, description="taste for advanced driver assistance, logit units")
    sigma_brand: Quantity = Field(0.0, description="taste for the entrant's brand, logit units")
    adas_unknown: Quantity = Field(0.0, description="ADAS level (0..1) of base models without a sourced ADAS entry")


STEP_TAIL = 1e-3   # probability cut from each tail of a yearly innovation of an estimated random walk


class EstimatedTrend(_Distribution):
    """`{dist = "estimated"}`: a market quantity estimated from the history public at the as-of date
    (`market.adoption`): the NEV drift `market.nev_trend_per_year`, the PHEV drift `market.phev_trend_per_year`,
    the base-period `market.phev_to_bev_ratio`, `market.growth_per_year` and `market.charging_growth_per_year`.
    Preparing the model resolves it (`market.adoption.resolve_adoption`) into the estimate's predictive
    distribution: x ~ Student t with `dof` degrees of freedom, centre `location`, scale `scale`, truncated to
    [low, high], all on the estimate's scale (log-odds, log ratio or log growth), and the quantity is
    `transform`(x): 'none' (x), 'exp' (e^x, a ratio) or 'expm1' (e^x - 1, a growth rate). One Sobol
    dimension like any uncertain quantity. The four yearly rates (the drifts and growths) are random walks
    with drift: the sampled x is the drift, its spread the drift estimate's sampling error, and
    `step_scale` (the sd of one yearly step) scales the independent yearly innovations (`step_ppf`, one
    uniform per calendar year after the as-of date, `simulation.parameters.step_event_names`) added to the
    level on top of the drift. Only `dist` is written in a scenario file (the rest comes from the data)."""

    dist: Literal["estimated"]
    location: float | None = None
    scale: float | None = Field(None, gt=0)
    dof: int | None = Field(None, ge=1)
    low: float = -5.0
    high: float = 5.0
    transform: Literal["none", "exp", "expm1"] = "none"
    step_scale: float | None = Field(None, gt=0)

    @property
    def resolved(self) -> bool:
        return self.location is not None and self.scale is not None and self.dof is not None

    def ppf(self, uniform: np.ndarray) -> np.ndarray:
        if not self.resolved:
            raise ValueError("a {dist = 'estimated'} quantity is resolved from the history when the model is "
                             "prepared (evlaunch.simulation.prepare); sample the prepared model's scenario")
        location, scale, dof = self.location, self.scale, self.dof
        assert location is not None and scale is not None and dof is not None  # resolved
        low, high = (student_t.cdf((bound - location) / scale, dof) for bound in (self.low, self.high))
        probability = low + np.clip(np.asarray(uniform, dtype=float), 0.0, 1.0) * (high - low)
        value = np.clip(location + student_t.ppf(probability, dof) * scale, self.low, self.high)  # cdf 0/1 in floats
        return np.exp(value) if self.transform == "exp" else np.expm1(value) if self.transform == "expm1" else value

    def step_ppf(self, uniform: np.ndarray, years: float = 1.0) -> np.ndarray:
        """The innovation of the level (on the estimate's scale: log-odds or log) over `years` of the walk at
        the given probabilities: Student t with `dof` degrees of freedom and scale step_scale sqrt(years),
        truncated to its central 1 - 2 STEP_TAIL (so a design's uniform of exactly 0 or 1, e.g. Morris
        levels, stays a plausible step); 0 when the quantity has no yearly innovations."""
        uniform = np.clip(np.asarray(uniform, dtype=float), 0.0, 1.0)
        if self.step_scale is None or self.dof is None:
            return np.zeros(uniform.shape)
        probability = STEP_TAIL + uniform * (1.0 - 2.0 * STEP_TAIL)
        return student_t.ppf(probability, self.dof) * self.step_scale * np.sqrt(years)

    def support_problem(self) -> str | None:
        return super().support_problem() if self.resolved else None


class Market(_Config):
    """The whole new passenger-car market: size, outside option, price sensitivity, NEV drift, charging."""

    base_period: tuple[YearMonth, YearMonth] = Field(description="first and last month of calibration data")
    outside_share: Quantity = Field(description="share of potential buyers who buy no new car in a month")
    price_sensitivity: Literal["china_margins", "us_elasticity"] = Field(
        "us_elasticity", description="how the price coefficient is set: 'china_margins' so that the Bertrand "
                                     "first-order conditions imply the gross margin market.gross_margin (mean over "
                                     "the firms of market.margin_firms); 'us_elasticity' from "
                                     "market.own_price_elasticity (BLP 1995, US cars)")
    own_price_elasticity: Quantity | None = Field(
        None, description="sales-weighted mean own-price elasticity (negative); price_sensitivity = 'us_elasticity'")
    gross_margin: Quantity | None = Field(
        None, description="gross margin (p - c) / p the Bertrand FOCs imply, mean over market.margin_firms; "
                          "price_sensitivity = 'china_margins'")
    margin_firms: dict[str, str] = Field(
        default_factory=dict, description="firm name in firm_margins.csv -> its group in the lineup, the firms whose "
                                          "implied margins are matched to the reported ones")
    fringe: Literal["fixed", "bertrand"] = Field(
        "fixed", description="'bertrand': the 'other' products re-price with the incumbents (each its own price "
                             "setter, costs following the battery-cost path) when competition.reprice = 'bertrand'; "
                             "'fixed': they keep their band prices")
    fringe_low_share: dict[str, Quantity] = Field(
        default_factory=dict, description="powertrain (BEV, PHEV, ICE) -> share of its 'other' sales in the low "
                                          "price band: splits 'other X' into 'other X low' and 'other X high' "
                                          "(prices market.missing_price_band.other_X_low / other_X_high)")
    elasticity_basis: Literal["all", "models"] = Field(
        "models", description="products the elasticity is averaged over: 'all' base products incl. the 'other' "
                           "aggregates, or the named 'models' only (an aggregate's own-price elasticity is not a model's)")
    growth_per_year: Quantity | EstimatedTrend = Field(
        description="growth of the total car market per year (fraction; {dist = \"estimated\"}: from the history)")
    nev_trend_per_year: Quantity | EstimatedTrend = Field(
        description="drift of NEV utility vs ICE, logit units per year ({dist = \"estimated\"}: from the history)")
    phev_trend_per_year: Quantity | EstimatedTrend = Field(
        0.0, description="drift of PHEV/EREV utility vs BEV, logit units per year ({dist = \"estimated\"}: from "
                         "the history)")
    charging_growth_per_year: Quantity | EstimatedTrend = Field(
        description="growth of public charging points per year ({dist = \"estimated\"}: from the history)")
    charging_effect: Quantity = Field(description="utility of NEVs per unit of log charging points")
    phev_to_bev_ratio: Quantity | EstimatedTrend = Field(
        description="PHEV sales per BEV sale in the base period ({dist = \"estimated\"}: from the history)")
    missing_price_band: dict[str, Quantity] = Field(
        default_factory=dict, description="guide price by segment for models whose price is unknown, CNY")
    estimate_sales_from_monthly: list[str] = Field(
        default_factory=list, description="lineup models without sales whose rate is estimated from monthly rows")
    tastes: Tastes = Field(default_factory=Tastes, description="taste heterogeneity within regions")

    @model_validator(mode="after")
    def _price_sensitivity_inputs(self) -> Market:
        if self.price_sensitivity == "us_elasticity" and self.own_price_elasticity is None:
            raise ValueError("market.price_sensitivity = 'us_elasticity' needs market.own_price_elasticity (a "
                             "negative number or distribution); or set market.price_sensitivity = 'china_margins' "
                             "with market.gross_margin and market.margin_firms")
        if self.price_sensitivity == "china_margins" and (self.gross_margin is None or not self.margin_firms):
            raise ValueError("market.price_sensitivity = 'china_margins' needs market.gross_margin (the reported "
                             "gross margin to match) and market.margin_firms (firm in firm_margins.csv = its lineup "
                             "group); or set market.price_sensitivity = 'us_elasticity' with "
                             "market.own_price_elasticity")
        unknown = sorted(set(self.fringe_low_share) - {"BEV", "PHEV", "ICE"})
        if unknown:
            raise ValueError(f"market.fringe_low_share: got key(s) {', '.join(unknown)}; expected BEV, PHEV or ICE")
        return self


class CompetitorLaunch(_Config):
    """A scheduled competitor model (e.g. another tech company's car) entering at a known month."""

    name: str = Field(min_length=1, max_length=120)
    group: str = Field(min_length=1, max_length=120)
    month: YearMonth
    powertrain: Literal["BEV", "PHEV", "ICE"]
    segment: str = Field(min_length=1, max_length=20)
    price: Quantity
    body: str = Field("sedan", max_length=40)
    adas: StrictBool = False
    comparables: list[str] = Field(min_length=1)
    quality_utility: Quantity = 0.0
    probability: Quantity = Field(1.0, description="probability the launch happens at all (0..1; 1 = announced "
                                                   "and certain), decided per draw")


class Competition(_Config):
    """How incumbents respond: fixed prices with an entry price cut, or Bertrand-Nash re-pricing."""

    reprice: Literal["fixed", "bertrand"] = Field(
        "fixed", description="'fixed': incumbents keep list prices (battery pass-through aside) and cut BEV prices "
                             "by price_war_cut after the entrant's launch; 'bertrand': named models re-price to the "
                             "Bertrand-Nash equilibrium of their groups, with marginal costs recovered from the base "
                             "period (supply.repricing)")
    price_war_cut: Quantity = Field(0.0, description="incumbents' BEV price cut after the entrant's launch "
                                                     "(reprice = 'fixed' only; ignored with 'bertrand')")
    launches: list[CompetitorLaunch] = Field(default_factory=list, max_length=50)


class Finance(_Config):
    """Budget, exchange rate, discounting and the entrant's running costs."""

    budget_usd: Number = Field(gt=0, description="funds pledged for the car business, US$")
    usd_cny: Quantity = Field(description="CNY per US$")
    discount_rate: Quantity = Field(description="annual discount rate for NPV")
    rnd_per_month: Quantity = Field(description="R&D and engineering spend, CNY/month")
    opex_per_month: Quantity = Field(description="sales network, marketing, overheads, CNY/month")
    variable_cost_per_vehicle: Quantity = Field(0.0, description="logistics, warranty, delivery, CNY/vehicle")
    vat_rate: Quantity = Field(description="VAT included in guide prices")
    battery_cost_change_per_year: Quantity = Field(description="change of pack price per year after the data")
    terminal_value_multiple: Quantity = Field(0.0, description="years of final-year operating cash flow "
                                              "credited at the horizon (0 = none)")
    price_policy: Literal["fixed", "best_response"] = Field(
        "fixed", description="the entrant's price: 'fixed' at product.price, or 'best_response' (reset each month "
                             "to its own Bertrand first-order condition at last month's demand and costs while "
                             "the queue is within price_backlog_months of output; held both ways while it is "
                             "longer, plus a capacity shadow price while the plant is at capacity; every move at "
                             "most price_step_cap a month)")
    price_backlog_months: Quantity = Field(2.0, description="tolerated wait, months: the price is held (neither "
                                           "cut nor raised to the best response) while the backlog exceeds this "
                                           "many months of the month's output (ramp included), and gets the "
                                           "capacity shadow price while it exceeds this many months of installed "
                                           "capacity at capacity")
    price_step_cap: Quantity = Field(1.0, description="largest change of the entrant's price in one month, share "
                                     "of the current price, either way (1: no limit; best_response only)")
    capacity_premium_cap: Quantity = Field(
        0.0, description="largest capacity shadow price as a share of the best-response price without it "
                         "(0: a backlog never raises the price; new brands held list prices while orders waited)")
    pledge_start: YearMonth | None = Field(None, description="first month of the parent's pledge schedule (the "
                                           "pacing check; the budget test uses the total); none = the whole budget "
                                           "is available from the start")
    pledge_years: Number = Field(10.0, gt=0, le=50, description="years over which the budget is pledged evenly")
    spent_before_start_usd: Quantity = Field(0.0, description="part of the pledge spent before the scenario "
                                             "start, US$ (the budget available is the pledge less this)")
    inventory_days: Quantity = Field(0.0, description="days of cost of goods held as stock (working capital)")
    receivable_days: Quantity = Field(0.0, description="days of revenue owed by buyers and dealers (working "
                                      "capital)")

    @field_validator("pledge_start")
    @classmethod
    def _pledge_month(cls, value: str | None) -> str | None:
        return None if value is None else _year_month(value)


class SupplyShock(_Config):
    """A chip-shortage-style event: with some probability, capacity is cut and costs rise for a while."""

    probability: Quantity
    start_months: Quantity = Field(description="months after the scenario start when it begins")
    duration_months: Quantity
    capacity_cut: Quantity = Field(description="fraction of capacity lost while it lasts")
    cost_increase: Quantity = Field(0.0, description="fractional rise of unit cost while it lasts")


class Region(_Config):
    """A part of the market (e.g. large cities, lower-tier cities and rural areas); see `market.regions`."""

    label: str = Field("", max_length=120)
    weight: Quantity = Field(description="share of potential buyers (weights are normalised to sum to 1)")
    price_sensitivity: Quantity = Field(1.0, description="multiplier on the price coefficient (income); "
                                        "normalised so the buyer-weighted mean is 1")
    charging_share: Quantity = Field(description="share of the public charging points in the region "
                                     "(normalised to sum to 1)")
    charging_growth_extra: Quantity = Field(0.0, description="added to market.charging_growth_per_year in "
                                            "this region after the as-of date")
    plate_utility: Quantity = Field(0.0, description="NEV utility while large-city plate privileges are in force")
    campaign_utility: Quantity = Field(0.0, description="NEV utility while a rural NEV campaign runs")
    note: str = Field("", max_length=2000)


def _default_regions() -> dict[str, Region]:
    return {"national": Region(label="whole market", weight=1.0, charging_share=1.0)}


class Dynamics(_Config):
    """Time-varying product inputs: battery-cost pass-through, technology progress and model ageing."""

    battery_pass_through: Quantity = Field(0.0, description="share of the pack-cost change since the base "
                                           "period passed into incumbents' BEV/PHEV prices (reprice = 'fixed' "
                                           "only; with 'bertrand' the pack cost moves marginal costs)")
    bev_battery_kwh: Quantity | None = Field(None, description="pack of incumbent BEVs without a sourced figure")
    phev_battery_kwh: Quantity | None = Field(None, description="pack of incumbent PHEVs without a sourced figure")
    range_growth_per_year: Quantity = Field(0.0, description="growth of incumbent BEVs' range per year")
    range_utility: Quantity = Field(0.0, description="BEV utility per unit of log range")
    ageing_per_year: Quantity = Field(0.0, description="utility lost per year by a named model after the base "
                                      "period (launches and the entrant: after their launch)")
    missing_range_band: dict[str, Quantity] = Field(
        default_factory=dict, description="range (km) by segment for BEVs whose range is not sourced")


class PolicyAssumptions(_Config):
    """Policy the sourced schedule (`policy_schedule.csv`) does not hold: an assumed extra purchase subsidy
    for NEVs, e.g. the local subsidies the 2023 seeds say were "brought back" (no amounts in the data), or a
    policy analyst's counterfactual. It is paid per vehicle to buyers of qualifying models on top of the
    schedule's subsidy, from `extra_subsidy_from` (default: the scenario start) to `extra_subsidy_to`
    (default: open-ended), for guide prices up to `extra_subsidy_price_cap` (default: no cap)."""

    extra_nev_subsidy: Quantity = Field(0.0, description="extra purchase subsidy per qualifying NEV, CNY")
    extra_subsidy_powertrains: list[Literal["BEV", "PHEV"]] = Field(["BEV", "PHEV"], min_length=1, max_length=2)
    extra_subsidy_from: YearMonth | None = Field(None, description="first month of the extra subsidy")
    extra_subsidy_to: YearMonth | None = Field(None, description="last month of the extra subsidy")
    extra_subsidy_price_cap: Number | None = Field(None, description="highest guide price that qualifies, CNY")

    @field_validator("extra_subsidy_from", "extra_subsidy_to")
    @classmethod
    def _month(cls, value: str | None) -> str | None:
        return None if value is None else _year_month(value)

    @model_validator(mode="after")
    def _window(self) -> PolicyAssumptions:
        first, last = self.extra_subsidy_from, self.extra_subsidy_to
        if first is not None and last is not None and month_number(first) > month_number(last):
            raise ValueError(f"field policy.extra_subsidy_from: got {first!r}, after extra_subsidy_to {last!r}; "
                             f"expected a first month no later than the last (else the subsidy never applies)")
        return self


class Recommendation(_Frozen):
    """How the recommended path is chosen."""

    criterion: Literal["max_expected_npv", "max_median_npv", "max_cvar_npv", "max_p_launch_by_target"] = (
        "max_expected_npv")
    max_p_budget_exceeded: StrictInt | StrictFloat = Field(0.10, ge=0, le=1)


class DataSources(_Frozen):
    """Which tables the scenario uses: bundled names, or paths (relative to the scenario file) to own tables."""

    lineup: str = Field("lineup_2023", min_length=1, max_length=500)
    tables: dict[str, Annotated[str, Field(min_length=1, max_length=500)]] = Field(default_factory=dict)

    @field_validator("tables")
    @classmethod
    def _known_tables(cls, value: dict[str, str]) -> dict[str, str]:
        for name, path in value.items():
            if name not in USER_TABLES:
                raise ValueError(f"field data.tables.{name}: no such table a scenario can replace; expected one "
                                 f"of {', '.join(USER_TABLES)} (the lineup is set by data.lineup)")
            if not path.lower().endswith(".csv"):
                raise ValueError(f"field data.tables.{name}: got {path!r}; expected a path to a .csv file "
                                 f"(relative to the scenario file) with the bundled table's columns")
        return value


class Scenario(_Config):
    """A complete, validated scenario (frozen)."""

    name: str = Field(min_length=1, max_length=120, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\- ]*$")
    description: str = Field("", max_length=4000)
    as_of: date
    start: YearMonth
    horizon_months: StrictInt = Field(ge=12, le=MAX_HORIZON_MONTHS)
    target_launch: YearMonth
    data: DataSources = Field(default_factory=DataSources)
    market: Market
    product: Product
    paths: dict[str, EntryPath] = Field(min_length=1, max_length=12)
    competition: Competition = Field(default_factory=Competition)
    finance: Finance
    supply_shocks: dict[str, SupplyShock] = Field(default_factory=dict, max_length=10)
    regions: dict[str, Region] = Field(default_factory=_default_regions, min_length=1, max_length=8)
    dynamics: Dynamics = Field(default_factory=Dynamics)
    policy: PolicyAssumptions = Field(default_factory=PolicyAssumptions)
    recommendation: Recommendation = Field(default_factory=Recommendation)

    @field_validator("start", "target_launch")
    @classmethod
    def _month(cls, value: str) -> str:
        return _year_month(value)

    @field_validator("as_of", mode="before")
    @classmethod
    def _as_of_is_a_date(cls, value: Any) -> Any:
        if not isinstance(value, (date, str)):
            raise ValueError("a date such as 2023-10-31")
        if isinstance(value, str) and not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value, re.ASCII):
            raise ValueError("a date such as 2023-10-31")
        return value

    @field_validator("as_of")
    @classmethod
    def _as_of(cls, value: date) -> date:
        if not date(2000, 1, 1) <= value <= date(2100, 1, 1):
            raise ValueError("must be between 2000-01-01 and 2100-01-01")
        return value

    @field_validator("paths")
    @classmethod
    def _path_names(cls, value: dict[str, EntryPath]) -> dict[str, EntryPath]:
        for name in value:
            if not re.match(r"^[A-Za-z][A-Za-z0-9_\-]{0,39}$", name):
                raise ValueError(f"path name {name!r} must be a letter then letters, digits, '_' or '-'")
            if name in RESERVED_PATH_NAMES:
                raise ValueError(f"path name {name!r} is reserved; choose another")
        return value

    @field_validator("regions")
    @classmethod
    def _region_names(cls, value: dict[str, Region]) -> dict[str, Region]:
        for name in value:
            if not re.match(r"^[A-Za-z][A-Za-z0-9_\-]{0,39}$", name):
                raise ValueError(f"region name {name!r} must be a letter then letters, digits, '_' or '-'")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        """Cross-field checks, in a fixed order so the first failing one is the error reported."""
        as_of_month = self.as_of.year * 12 + self.as_of.month - 1
        self._check_start(as_of_month)
        first, last = month_number(self.start), month_number(self.start) + self.horizon_months - 1
        window = f"{month_label(first)}..{month_label(last)}"
        self._check_launches(first, last, window)
        self._check_policy_window(first, last, window)
        self._check_base_period(as_of_month)
        self._check_fallbacks()
        self._check_plants()
        return self

    def _check_start(self, as_of_month: int) -> None:
        """The start month lies after the as-of month and at most MAX_START_AFTER_AS_OF_MONTHS later."""
        if month_number(self.start) <= as_of_month:
            raise ValueError(f"field start: got {self.start!r}; expected a month after the as-of month "
                             f"{self.as_of:%Y-%m}")
        if month_number(self.start) > as_of_month + MAX_START_AFTER_AS_OF_MONTHS:
            raise ValueError(f"field start: got {self.start!r}; expected a month within "
                             f"{MAX_START_AFTER_AS_OF_MONTHS} months after the as-of month {self.as_of:%Y-%m} "
                             f"(up to {month_label(as_of_month + MAX_START_AFTER_AS_OF_MONTHS)})")

    def _check_launches(self, first: int, last: int, window: str) -> None:
        """The target launch lies in the simulated months; competitor launches after the base period."""
        if not first <= month_number(self.target_launch) <= last:
            raise ValueError(f"field target_launch: got {self.target_launch!r}; expected a month within the "
                             f"simulated months {window}")
        names = [launch.name for launch in self.competition.launches]
        for k, launch in enumerate(self.competition.launches):
            if names.index(launch.name) != k:
                raise ValueError(f"field competition.launches.{k}.name: got {launch.name!r}; expected a name no "
                                 f"other launch has (it names the launch's output columns)")
            if not month_number(self.market.base_period[1]) < month_number(launch.month) <= last:
                raise ValueError(f"field competition.launches.{k}.month: got {launch.month!r}; expected a month "
                                 f"after the base period (which ends {self.market.base_period[1]}; models on "
                                 f"sale then belong to the lineup) and up to the last simulated month "
                                 f"{month_label(last)}")

    def _check_policy_window(self, first: int, last: int, window: str) -> None:
        """An extra subsidy's window overlaps the simulated months."""
        policy = self.policy
        if policy.extra_subsidy_to is not None and month_number(policy.extra_subsidy_to) < first:
            raise ValueError(f"field policy.extra_subsidy_to: got {policy.extra_subsidy_to!r}; expected a month "
                             f"within the simulated months {window} (else the subsidy never applies)")
        if policy.extra_subsidy_from is not None and month_number(policy.extra_subsidy_from) > last:
            raise ValueError(f"field policy.extra_subsidy_from: got {policy.extra_subsidy_from!r}; expected a "
                             f"month within the simulated months {window} (else the subsidy never applies)")

    def _check_base_period(self, as_of_month: int) -> None:
        """The base period ends by the as-of month and is given in order."""
        for month in self.market.base_period:
            if month_number(month) > as_of_month:
                raise ValueError(f"field market.base_period: got month {month!r}; expected months up to the "
                                 f"as-of date {self.as_of} (nothing later may be read)")
        if month_number(self.market.base_period[0]) > month_number(self.market.base_period[1]):
            raise ValueError(f"field market.base_period: got {list(self.market.base_period)}; expected "
                             f"(first month, last month) in order")

    def _check_plants(self) -> None:
        """A partner's plant, or a partner's licence used in the own plant, needs the partner named."""
        for name, path in self.paths.items():
            if path.plant == "partner" and path.partner is None:
                raise ValueError(f"field paths.{name}.plant: got 'partner' with no `partner`; expected `partner` "
                                 f"naming the firm whose plant builds the cars (a firm of firms.csv), or "
                                 f"plant = \"own\"")
            if path.licence == "partner" and path.plant == "own" and path.partner is None:
                raise ValueError(f"field paths.{name}.partner: got none for a partner licence used in the own "
                                 f"plant; expected `partner` naming the firm whose licence the cars are listed "
                                 f"under (a firm of firms.csv)")

    def _check_fallbacks(self) -> None:
        """Every path's fallback chain names existing paths and has no cycle."""
        for name, path in self.paths.items():
            seen = [name]
            while path.fallback is not None:
                if path.fallback not in self.paths:
                    raise ValueError(f"field paths.{seen[-1]}.fallback: got {path.fallback!r}; expected one of "
                                     f"the paths: {', '.join(self.paths)}")
                if path.fallback in seen:
                    raise ValueError(f"field paths.{seen[-1]}.fallback: got {path.fallback!r}; expected no cycle "
                                     f"of fallbacks ({' -> '.join(seen + [path.fallback])})")
                seen.append(path.fallback)
                path = self.paths[path.fallback]

    @property
    def start_month(self) -> int:
        return month_number(self.start)

    @property
    def target_launch_index(self) -> int:
        """The target launch month as months after the start (0 = the start month)."""
        return month_number(self.target_launch) - self.start_month

    @property
    def months(self) -> list[str]:
        """Labels of the simulated months, 'YYYY-MM'."""
        return [month_label(self.start_month + t) for t in range(self.horizon_months)]

    @property
    def years(self) -> list[int]:
        return sorted({int(label[:4]) for label in self.months})


# Allowed range of each quantity, by its field name: a fixed value or a distribution's support
# (its 1e-6 and 1-1e-6 quantiles) must lie inside, so that no draw can be meaningless.
ALLOWED_RANGES: dict[str, tuple[float, float]] = {
    "months": (0, 240), "failure": (0, 1), "price": (1_000, 1e8), "battery_kwh": (1, 300),
    "range_km": (10, 2_000), "ready_months": (0, 240), "capacity_per_year": (0, 1e8),
    "ramp_months": (0, 120), "upfront_cost": (0, 1e13), "fee_per_vehicle": (0, 1e7),
    "unit_cost_factor": (0.1, 10), "learning_rate": (0, 0.5), "learning_base": (1, 1e8), "awareness_midpoint": (0, 120),
    "awareness_width": (0.1, 60), "order_cancellation": (0, 1), "cancellation_per_month_waited": (0, 1),
    "prelaunch_build_months": (0, 12), "expansion_capacity_per_year": (0, 1e8), "expansion_lead_months": (0, 120),
    "expansion_capex": (0, 1e13), "expansion_backlog_months": (0, 60), "expansion_persistence_months": (1, 60),
    "binding_utilisation": (0.5, 1), "capacity_premium_cap": (0, 0.5), "price_step_cap": (0, 1),
    "awareness_outside_reach": (0, 1), "launch_order_multiple": (0, 100), "outside_share": (0.01, 0.99),
    "own_price_elasticity": (-50, -0.1), "gross_margin": (-0.5, 0.9), "growth_per_year": (-0.5, 1), "nev_trend_per_year": (-5, 5),
    "phev_trend_per_year": (-5, 5),
    "charging_growth_per_year": (-0.5, 3), "charging_effect": (0, 10), "price_war_cut": (0, 0.9),
    "usd_cny": (0.1, 100), "discount_rate": (0, 1), "rnd_per_month": (0, 1e12), "opex_per_month": (0, 1e12),
    "variable_cost_per_vehicle": (0, 1e7), "vat_rate": (0, 0.5), "battery_cost_change_per_year": (-0.5, 0.5),
    "probability": (0, 1), "start_months": (0, 240), "duration_months": (0, 240), "capacity_cut": (0, 1),
    "cost_increase": (0, 5), "rest_of_vehicle_cost": (1_000, 1e7), "quality_utility": (-10, 10),
    "brand_utility": (-10, 10), "budget_usd": (1, 1e13), "phev_to_bev_ratio": (0, 5),
    "terminal_value_multiple": (0, 30), "price_backlog_months": (0, 60), "spent_before_start_usd": (0, 1e13),
    "inventory_days": (0, 365), "receivable_days": (0, 365),
    "weight": (0, 1), "price_sensitivity": (0.05, 20), "charging_share": (0, 1), "charging_growth_extra": (-0.5, 1),
    "plate_utility": (-5, 5), "campaign_utility": (-5, 5), "battery_pass_through": (0, 2),
    "bev_battery_kwh": (1, 300), "phev_battery_kwh": (1, 100), "range_growth_per_year": (-0.2, 0.5),
    "range_utility": (-5, 5), "ageing_per_year": (0, 3),
    "income_dispersion": (0, 3), "sigma_new_car": (0, 10), "sigma_nev": (0, 10), "sigma_suv": (0, 10),
    "sigma_size": (0, 10), "sigma_range": (0, 10), "sigma_adas": (0, 10), "sigma_brand": (0, 10),
    "adas_unknown": (0, 1), "extra_nev_subsidy": (0, 200_000), "extra_subsidy_price_cap": (1_000, 1e8),
}
RESERVED_PATH_NAMES = {"market", "product", "paths", "finance", "competition", "supply_shocks", "recommendation",
                       "data", "scenario", "regions", "dynamics", "policy"}


def _range_rule(path: str) -> tuple[float, float] | None:
    parts = path.split(".")
    if "missing_price_band" in parts:
        return ALLOWED_RANGES["price"]
    if "missing_range_band" in parts:
        return ALLOWED_RANGES["range_km"]
    if "fringe_low_share" in parts:
        return (0.01, 0.99)
    return ALLOWED_RANGES.get(parts[-1])


def check_ranges(scenario: Scenario) -> list[str]:
    """Problems with quantities outside their allowed range, as 'field: got ...; expected ...' lines."""
    problems = []
    for path, value in quantities(scenario).items():
        if hasattr(value, "ppf"):
            unsampleable = value.support_problem()
            if unsampleable is not None:
                problems.append(f"field {path}: got a {value.dist} distribution that cannot be sampled: "
                                f"{unsampleable}; expected parameters whose draws are finite numbers")
                continue
        elif isinstance(value, float) and not math.isfinite(value):
            problems.append(f"field {path}: got {value!r}; expected a finite number (not nan or inf)")
            continue
        rule = _range_rule(path)
        if rule is None or (isinstance(value, EstimatedTrend) and not value.resolved):
            continue
        low, high = rule
        if is_uncertain(value):
            support = value.ppf(np.array([1e-6, 1 - 1e-6]))
            if support[0] < low or support[1] > high:
                problems.append(f"field {path}: got a {value.dist} distribution spanning "
                                f"[{support[0]:.4g}, {support[1]:.4g}]; expected values within [{low:g}, {high:g}] "
                                f"(narrow or truncate it with low/high)")
        elif not low <= value <= high:
            shown = repr(value) if len(repr(value)) <= 40 else f"{float(value):.4g}" if isinstance(
                value, float) or abs(value) < 1e300 else f"an integer of {len(str(abs(value)))} digits"
            problems.append(f"field {path}: got {shown}; expected a number within [{low:g}, {high:g}]")
    return problems


def _walk(value: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    if isinstance(value, BaseModel):
        if "dist" in type(value).model_fields:
            yield prefix, value
            return
        for key in type(value).model_fields:
            yield from _walk(getattr(value, key), f"{prefix}.{key}" if prefix else key)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _walk(item, f"{prefix}.{key}")
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from _walk(item, f"{prefix}.{index}")
    else:
        yield prefix, value


def quantities(scenario: Scenario) -> dict[str, Any]:
    """Every numeric leaf of the scenario by dotted path: numbers and distributions (not strings or flags)."""
    return {path: value for path, value in _walk(scenario, "")
            if (isinstance(value, (int, float)) and not isinstance(value, bool)) or is_uncertain(value)}


def uncertain_parameters(scenario: Scenario) -> dict[str, Any]:
    """The scenario's distributions by dotted path (what the Monte Carlo varies)."""
    return {path: value for path, value in quantities(scenario).items() if is_uncertain(value)}


def _describe_expected(error: Mapping[str, Any]) -> str:
    kind = error.get("type", "")
    message = error.get("msg", "")
    if kind == "extra_forbidden":
        return "no such field (check spelling; unknown fields are not allowed)"
    if kind == "missing":
        return "this field is required"
    if kind in ("int_type", "float_type", "int_parsing", "float_parsing", "int_from_float", "finite_number"):
        return "a number" + (" (or a distribution table)" if error.get("quantity") else "")
    if kind.startswith("union_tag") or "discriminator" in kind:
        return f"a distribution table with dist = one of {', '.join(DISTRIBUTION_NAMES)}"
    return message.removeprefix("Value error, ")


def _format_location(location: tuple[Any, ...]) -> str:
    parts = []
    for part in location:
        text = str(part)
        if text in {"int", "float", "str", "bool"} or text in DISTRIBUTION_NAMES or text.startswith(
                ("constrained-", "function-", "tagged-union", "Strict", "lax-")):
            continue
        parts.append(text)
    return ".".join(parts) or "(top level)"


def format_validation_error(source: str, error: ValidationError) -> str:
    """One line per problem: `file: field path: got VALUE; expected WHAT`."""
    lines: dict[str, str] = {}
    items = error.errors(include_url=False)
    fields = [_format_location(tuple(item.get("loc", ()))) for item in items]
    for item, field in zip(items, fields):
        value = item.get("input")
        if (isinstance(value, dict) and item.get("type", "").endswith("_type")
                and any(other.startswith(field + ".") for other in fields)):
            continue  # a number was not given but a table whose own problems are reported below
        shown = repr(value) if not isinstance(value, (dict, list)) else type(value).__name__
        if len(shown) > 80:
            shown = shown[:77] + "..."
        expected = _describe_expected(item)
        key = field
        if key in lines and item.get("type", "").endswith("_type"):
            continue  # a union reports each alternative; keep the first, clearest message
        if field == "(top level)" or expected.startswith("field "):  # a check across fields: it names them
            lines[key] = f"{source}: {expected}"
            continue
        lines[key] = f"{source}: field {field}: got {shown}; expected {expected}"
    return "\n".join(lines.values())


def parse_scenario(text: str, source: str = "<scenario>") -> Scenario:
    """Validate scenario TOML text; raise ScenarioError with file, field, value and expectation."""
    if len(text.encode("utf-8", errors="replace")) > MAX_SCENARIO_BYTES:
        raise ScenarioError(f"{source}: file is larger than {MAX_SCENARIO_BYTES // 1000} kB; "
                            f"a scenario is a short TOML file")
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ScenarioError(f"{source}: not valid TOML: {error}") from None
    except ValueError as error:  # e.g. an integer of more digits than Python converts (sys.get_int_max_str_digits)
        raise ScenarioError(f"{source}: not a usable TOML value: {error}") from None
    except RecursionError:
        raise ScenarioError(f"{source}: TOML nested too deeply") from None
    try:
        scenario = Scenario.model_validate(raw)
    except ValidationError as error:
        raise ScenarioError(format_validation_error(source, error)) from None
    except RecursionError:
        raise ScenarioError(f"{source}: values nested too deeply") from None
    problems = check_ranges(scenario)
    if problems:
        raise ScenarioError("\n".join(f"{source}: {problem}" for problem in problems))
    return scenario


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file."""
    file_path = Path(path)
    if not file_path.is_file():
        raise ScenarioError(f"{path}: no such scenario file")
    if file_path.stat().st_size > MAX_SCENARIO_BYTES:
        raise ScenarioError(f"{path}: file is larger than {MAX_SCENARIO_BYTES // 1000} kB; "
                            f"a scenario is a short TOML file")
    try:
        text = file_path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ScenarioError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    except OSError as error:
        raise ScenarioError(f"{path}: cannot read ({error.strerror})") from None
    return parse_scenario(text, str(path))
