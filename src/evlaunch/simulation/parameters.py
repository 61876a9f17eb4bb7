"""From a scenario and its sampled inputs to typed per-draw parameters (`config.parameters`).

This is the only place that maps the scenario's dotted field paths (`"paths.own.capacity_per_year"`) to
arrays. A quantity's per-draw values are, in order of precedence: the input column of that name (sampled
or overridden), its fixed value, the centre of its distribution (a run without sampled inputs), or 0.5
for a random event's uniform (its central case).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from evlaunch.config.distributions import is_uncertain
from evlaunch.config.parameters import (
    CompetitionParameters,
    DynamicsParameters,
    FinanceParameters,
    LaunchParameters,
    MarketParameters,
    Parameters,
    PathParameters,
    PolicyParameters,
    ProductParameters,
    RegionParameters,
    ShockParameters,
    StageParameters,
    TasteParameters,
)
from evlaunch.config.scenario import EstimatedTrend, Scenario, quantities
from evlaunch.entry.paths import failure_event_name

AWARENESS_EVENTS = ("product.awareness_shape_event_1", "product.awareness_shape_event_2")
LAUNCH_ORDERS_EVENT = "product.launch_orders_event"
OPTIONAL_PRODUCT = ("awareness_outside_reach", "launch_order_multiple")


def launch_event_name(index: int) -> str:
    """Name of the uniform draw that decides whether scheduled launch `index` happens (when below its
    probability); only launches whose probability is not a fixed 1 have one (else it is 0: always happens)."""
    return f"competition.launches.{index}.occurrence_event"


def shock_event_name(shock: str) -> str:
    """Name of the uniform draw that decides whether a supply shock happens (when below its probability)."""
    return f"supply_shocks.{shock}.occurrence_event"


class _Values:
    """`values(path)`: the per-draw values [N] of one scenario quantity or random event (read-only)."""

    def __init__(self, scenario: Scenario, inputs: Mapping[str, np.ndarray], draws: int,
                 events: tuple[str, ...]) -> None:
        self.fixed, self.inputs, self.draws, self.events = quantities(scenario), inputs, draws, events

    def __call__(self, path: str) -> np.ndarray:
        if path in self.inputs:
            array = np.asarray(self.inputs[path], dtype=float).view()
        elif path in self.fixed and not is_uncertain(self.fixed[path]):
            array = np.full(self.draws, float(self.fixed[path]))
        elif path in self.fixed:
            array = np.full(self.draws, self.fixed[path].centre)
        elif path in self.events:
            array = np.full(self.draws, 0.5)  # the central case of a random event's uniform draw
        else:
            raise KeyError(f"no input or scenario value for {path!r}")
        array.flags.writeable = False
        return array

    def group(self, prefix: str, names: tuple[str, ...] | list[str]) -> dict[str, np.ndarray]:
        return {name: self(f"{prefix}.{name}") for name in names}


WALK_QUANTITIES = ("growth_per_year", "nev_trend_per_year", "phev_trend_per_year", "charging_growth_per_year")


def step_years(scenario: Scenario) -> tuple[int, ...]:
    """Calendar years that take a yearly innovation of the market's random walks: those whose middle
    (1 July) comes after the as-of date, up to the last simulated year."""
    as_of = scenario.as_of
    first = as_of.year if (as_of.month, as_of.day) < (7, 1) else as_of.year + 1
    last = (scenario.start_month + scenario.horizon_months - 1) // 12
    return tuple(range(first, last + 1))


def step_event_name(quantity: str, year: int) -> str:
    """Name of the uniform draw of the yearly innovation of market.`quantity` in calendar `year`."""
    return f"market.{quantity}.step_{year}"


def walk_quantities(scenario: Scenario) -> tuple[str, ...]:
    """The market quantities resolved to a random walk with yearly innovations (`{dist = "estimated"}`)."""
    return tuple(name for name in WALK_QUANTITIES
                 if isinstance(value := getattr(scenario.market, name), EstimatedTrend)
                 and value.step_scale is not None)


def step_event_names(scenario: Scenario) -> tuple[str, ...]:
    """The yearly innovations' uniform draws, quantity by quantity, year by year."""
    return tuple(step_event_name(name, year) for name in walk_quantities(scenario) for year in step_years(scenario))


def _steps(scenario: Scenario, values: _Values) -> dict[str, np.ndarray]:
    """Quantity -> [N, Y] yearly innovations of its level (`EstimatedTrend.step_ppf`; a run without sampled
    inputs takes the median innovation, 0)."""
    years = step_years(scenario)
    steps = {}
    for name in walk_quantities(scenario):
        trend = getattr(scenario.market, name)
        steps[name] = (np.stack([trend.step_ppf(values(step_event_name(name, year))) for year in years], axis=1)
                       if years else np.zeros((values.draws, 0)))
    return steps


def _fields(cls) -> list[str]:
    return [name for name in cls.__dataclass_fields__]


def _market(scenario: Scenario, values: _Values) -> MarketParameters:
    market = scenario.market
    optional = ("own_price_elasticity", "gross_margin")
    scalar = [name for name in _fields(MarketParameters)
              if name not in ("missing_price_band", "fringe_low_share", "steps", "step_years", *optional)]
    bands = values.group("market.missing_price_band", list(market.missing_price_band))
    given = {name: None if getattr(market, name) is None else values(f"market.{name}") for name in optional}
    return MarketParameters(**values.group("market", scalar), missing_price_band=bands, **given,
                            fringe_low_share=values.group("market.fringe_low_share", list(market.fringe_low_share)),
                            steps=_steps(scenario, values), step_years=step_years(scenario))


def _dynamics(scenario: Scenario, values: _Values) -> DynamicsParameters:
    dynamics = scenario.dynamics
    scalar = ["battery_pass_through", "range_growth_per_year", "range_utility", "ageing_per_year"]
    optional = {field: None if getattr(dynamics, field) is None else values(f"dynamics.{field}")
                for field in ("bev_battery_kwh", "phev_battery_kwh")}
    bands = values.group("dynamics.missing_range_band", list(dynamics.missing_range_band))
    return DynamicsParameters(**values.group("dynamics", scalar), **optional, missing_range_band=bands)


def _product(scenario: Scenario, values: _Values) -> ProductParameters:
    events = ("awareness_shape_uniforms", "launch_orders_event")
    scalar = [name for name in _fields(ProductParameters) if name not in events + OPTIONAL_PRODUCT]
    uniforms = None
    if AWARENESS_EVENTS[0] in values.events:
        uniforms = (values(AWARENESS_EVENTS[0]), values(AWARENESS_EVENTS[1]))
    optional = {name: None if getattr(scenario.product, name) is None else values(f"product.{name}")
                for name in OPTIONAL_PRODUCT}
    launch_event = values(LAUNCH_ORDERS_EVENT) if LAUNCH_ORDERS_EVENT in values.events else None
    return ProductParameters(**values.group("product", scalar), awareness_shape_uniforms=uniforms, **optional,
                             launch_orders_event=launch_event)


def _path(name: str, stage_count: int, values: _Values) -> PathParameters:
    prefix = f"paths.{name}"
    stages = tuple(StageParameters(values(f"{prefix}.stages.{index}.months"),
                                   values(f"{prefix}.stages.{index}.failure"),
                                   values(failure_event_name(name, index))) for index in range(stage_count))
    scalar = [field for field in _fields(PathParameters) if field != "stages"]
    return PathParameters(stages, **values.group(prefix, scalar))


def _shock(name: str, values: _Values) -> ShockParameters:
    scalar = [field for field in _fields(ShockParameters) if field != "occurrence_event"]
    return ShockParameters(values(shock_event_name(name)), **values.group(f"supply_shocks.{name}", scalar))


def build_parameters(scenario: Scenario, inputs: Mapping[str, np.ndarray], draws: int,
                     events: tuple[str, ...] = ()) -> Parameters:
    """Every quantity of `scenario` for `draws` draws: from `inputs` (arrays [draws] keyed by dotted path),
    else fixed values, distributions' centres, and 0.5 for the random `events` (module docstring)."""
    values = _Values(scenario, inputs, draws, events)
    launches = tuple(LaunchParameters(values(f"competition.launches.{k}.price"),
                                      values(f"competition.launches.{k}.quality_utility"),
                                      values(f"competition.launches.{k}.probability"),
                                      values(launch_event_name(k)) if launch_event_name(k) in values.events
                                      else np.zeros(draws))
                     for k in range(len(scenario.competition.launches)))
    return Parameters(
        draws=draws,
        market=_market(scenario, values),
        tastes=TasteParameters(**values.group("market.tastes", _fields(TasteParameters))),
        regions={name: RegionParameters(**values.group(f"regions.{name}", _fields(RegionParameters)))
                 for name in scenario.regions},
        dynamics=_dynamics(scenario, values),
        policy=PolicyParameters(values("policy.extra_nev_subsidy")),
        competition=CompetitionParameters(values("competition.price_war_cut"), launches),
        product=_product(scenario, values),
        paths={name: _path(name, len(path.stages), values) for name, path in scenario.paths.items()},
        finance=FinanceParameters(**values.group("finance", _fields(FinanceParameters))),
        shocks={name: _shock(name, values) for name in scenario.supply_shocks},
    )


def draw_count(inputs: Mapping[str, np.ndarray]) -> int:
    """The number of draws in `inputs` (1 when there are none: the central case)."""
    return len(next(iter(inputs.values()))) if inputs else 1
