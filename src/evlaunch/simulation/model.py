"""The model of one scenario: its market data, its random events, the reference class of new brands'
ramp-ups and what buyers knew before the launch, with every check of the scenario against the data made
once, in `prepare`."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from evlaunch.config.parameters import Parameters
from evlaunch.config.scenario import Scenario
from evlaunch.data import load_table
from evlaunch.entry.launch_prior import LaunchOrderPrior, brand_reach, fit_launch_orders, launch_order_events
from evlaunch.entry.partners import check_partners
from evlaunch.entry.paths import failure_event_name
from evlaunch.entry.ramp_panel import panel_sources
from evlaunch.entry.ramp_spread import reference_class_as_of
from evlaunch.entry.reference_class import RampReferenceClass, ReferenceClassError
from evlaunch.errors import DataError, ScenarioError, naming_source
from evlaunch.market.adoption import resolve_adoption
from evlaunch.market.calibration import check_tastes, prepare_policy
from evlaunch.market.history import MarketHistory, load_history
from evlaunch.market.lineup import OTHER_PRODUCTS, Lineup, build_lineup
from evlaunch.market.market_data import MarketData
from evlaunch.market.policy import PolicySchedule
from evlaunch.simulation.parameters import (
    AWARENESS_EVENTS,
    LAUNCH_ORDERS_EVENT,
    build_parameters,
    draw_count,
    launch_event_name,
    shock_event_name,
    step_event_names,
)


@dataclass(frozen=True)
class Model:
    """A scenario joined with the sourced data it may see (nothing dated after its as-of date), plus what
    only the simulation needs: the names of the random events, the reference class of ramp-ups (the joint
    delivery ramp) and the demand prior (comparable launches' orders, the brand's reach)."""

    market: MarketData
    event_names: tuple[str, ...]    # extra uniform draws: stage failures, supply shocks, ramp shapes
    reference_class: RampReferenceClass | None = None
    tables: dict[str, str] = field(default_factory=dict)  # the scenario's own tables, paths joined to its folder
    launch_orders: LaunchOrderPrior | None = None  # comparable launches' order events (launch_order_multiple)
    reach: tuple[float, str] | None = None  # the brand's reach (share, row) (awareness_outside_reach)

    @property
    def scenario(self) -> Scenario:
        return self.market.scenario

    @property
    def history(self) -> MarketHistory:
        return self.market.history

    @property
    def lineup(self) -> Lineup:
        return self.market.lineup

    @property
    def policy(self) -> PolicySchedule:
        return self.market.policy

    @property
    def competitor_names(self) -> tuple[str, ...]:
        return self.market.competitor_names

    @property
    def path_names(self) -> tuple[str, ...]:
        return tuple(self.scenario.paths)

    @property
    def base_mid_month(self) -> float:
        return self.market.base_mid_month

    def parameters(self, inputs: Mapping[str, np.ndarray] | None = None) -> Parameters:
        """The scenario's typed per-draw parameters for `inputs` (dotted path -> [N]); without inputs one draw
        at the central values (`simulation.parameters`)."""
        inputs = inputs or {}
        return build_parameters(self.scenario, inputs, draw_count(inputs), self.event_names)


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


def check_lineup(scenario: Scenario, lineup: Lineup) -> None:
    """Every comparable the scenario names is a model of the base lineup, and every price band whose models
    have no sourced price has a price in `market.missing_price_band`."""
    _named_products(lineup, "product.comparables", scenario.product.comparables)
    for k, launch in enumerate(scenario.competition.launches):
        _named_products(lineup, f"competition.launches.{k}.comparables", launch.comparables)
    bands = scenario.market.missing_price_band
    needed = {band for band, price in zip(lineup.price_band, lineup.known_price) if math.isnan(price)}
    missing = sorted(needed - set(bands))
    if missing:
        raise ScenarioError(f"scenario {scenario.name}: field market.missing_price_band lacks "
                            f"{', '.join(missing)}; expected a price (or distribution) for each segment "
                            f"whose models have no sourced price, and for each model whose base-period price "
                            f"the sources lack (base_period_prices.csv)")


def event_names(scenario: Scenario, with_reference_class: bool) -> tuple[str, ...]:
    """The random events' uniform draws, in the Sobol dimension order: stage failures path by path, supply
    shocks, the two ramp-shape uniforms when the ramp comes from the reference class, the comparable
    launch's orders when the scenario sets orders waiting at the launch, then one per scheduled launch that
    may not happen (its probability is not a fixed 1; appended after the others so adding one leaves their
    dimensions in place), then the market random walks' yearly innovations (`step_event_names`; the scenario
    must be resolved, `market.adoption.resolve_adoption`)."""
    events = [failure_event_name(name, index) for name, path in scenario.paths.items()
              for index in range(len(path.stages))]
    events += [shock_event_name(name) for name in scenario.supply_shocks]
    if with_reference_class:
        events += [AWARENESS_EVENTS[0], AWARENESS_EVENTS[1]]
    if scenario.product.launch_order_multiple is not None:
        events.append(LAUNCH_ORDERS_EVENT)
    events += [launch_event_name(k) for k, launch in enumerate(scenario.competition.launches)
               if launch.probability != 1.0]
    return tuple(events) + step_event_names(scenario)


def demand_prior(scenario: Scenario, tables: dict[str, str]
                 ) -> tuple[LaunchOrderPrior | None, tuple[float, str] | None]:
    """What buyers knew at the as-of date, as far as the scenario uses it: comparable launches' order events
    (when `product.launch_order_multiple` is set) and the brand's reach (`product.awareness_outside_reach`)."""
    product, as_of = scenario.product, scenario.as_of
    orders = None
    if product.launch_order_multiple is not None:
        frames = [load_table(name, as_of, tables.get(name)).rows for name in ("new_brand_orders", "launch_orders_extra")]
        orders = fit_launch_orders(launch_order_events(*(frame[~frame["gap"]] for frame in frames)))
    reach = None
    if product.awareness_outside_reach is not None:
        reach = brand_reach(load_table("xiaomi_reach", as_of, tables.get("xiaomi_reach")).rows)
    return orders, reach


def _prepare(scenario: Scenario, base_dir: str | Path) -> Model:
    tables = {name: str(Path(base_dir) / path) for name, path in scenario.data.tables.items()}
    lineup_source = scenario.data.lineup
    if lineup_source.endswith(".csv"):
        lineup_source = str(Path(base_dir) / lineup_source)
    history = load_history(scenario.as_of, tables)
    lineup = build_lineup(lineup_source, scenario.as_of, scenario.market.estimate_sales_from_monthly,
                          scenario.market.base_period, tables.get("china_bev_monthly_by_model"),
                          split=list(scenario.market.fringe_low_share))
    scenario = resolve_adoption(scenario, history, lineup)
    check_lineup(scenario, lineup)
    policy = prepare_policy(scenario, lineup, tables)
    check_tastes(scenario, lineup)
    check_partners(scenario.paths, scenario.as_of, tables.get("firms"))
    reference_class = None
    if scenario.product.awareness_from_reference_class:
        try:
            reference_class = reference_class_as_of(scenario.as_of, tables)
        except ReferenceClassError as error:
            raise DataError(f"{panel_sources(tables)} (the reconciled ramp panel as of {scenario.as_of}): {error} "
                            "(field product.awareness_from_reference_class draws the ramp from it)") from None
    launch_orders, reach = demand_prior(scenario, tables)
    return Model(MarketData(scenario, history, lineup, policy), event_names(scenario, reference_class is not None),
                 reference_class, tables, launch_orders, reach)
