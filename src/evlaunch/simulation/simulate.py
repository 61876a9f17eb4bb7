"""The monthly simulation, vectorised over Monte Carlo draws.

`prepare(scenario)` (`simulation.model`) reads the sourced data once (as of the scenario's date) into a
`Model`; `simulate(model, inputs)` is a plain function from per-draw inputs (dict of arrays [N], keyed by
the scenario's dotted parameter paths) to per-draw outputs (dict of arrays [N], named by
`simulation.outputs`), so samplers, sensitivity analysis, scenario discovery, dask or a dashboard can all
drive it unchanged.

Per draw and month: market size grows with seasonality; NEV utility drifts with the trend and with
charging points by region; purchase subsidy and tax follow the policy schedule (`market.policy`);
regions differ in price sensitivity, charging and policy bonuses (`market.regions`), and within each
region consumer types differ in income and tastes (random-coefficients demand, `market.consumer_types`);
battery cost, range progress and model ageing move incumbents (`market.demand`); incumbents cut BEV
prices after the entrant's launch (`competition.reprice = "fixed"`) or re-price to the Bertrand-Nash
equilibrium (`"bertrand"`, `supply.repricing`); the entrant's car enters at its launch month, considered by
a constant share of buyers (the prior awareness, `entry.launch_prior`) and with the orders waiting at the
launch; the plant delivers on the joint delivery ramp of the new-brand reference class (one ramp, counted
once: `supply.capacity`), may build stock before the launch and expands under the scenario's stated rule;
orders above its output queue and cancel the more the longer the wait, and each buyer is counted once
(a waiting buyer is out of the rivals' market, a cancelled one buys their second choice, incumbents re-price
against the deliverable share of the orders, the entrant's own surplus counts for cars delivered:
`simulation.welfare`); the money follows (a draw in which every path of the chain
fails abandons the project at the last failure: R&D and opex stop). Market figures by year are whole
calendar years (the start year's months before the start are simulated too).

`simulate` runs, for each path and month, the phases below in order: supply shocks (once), the entrant's
utility and awareness, demand for the month, capacity and deliveries, unit cost and cash flow, regional
sums; then per path the money (NPV, peak cash), the yearly and the monthly outputs.

The months run month-major (`simulate_paths`): each month first computes what every path shares, once (the
market without the entrant at the no-entrant prices, `NoEntrantMonth`: its shares, no-purchase shares and the
scheduled launches' second choices, which are every path's figures for its draws whose entrant is not on
sale), then solves every path's due re-pricing in one call (`reprice_paths`), then runs each path's month,
computing only its own draws. A path's figures are what it would compute alone, bit for bit
(tests/simulation/test_shared_month.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evlaunch.config import columns
from evlaunch.config.parameters import Parameters, PathParameters, ShockParameters
from evlaunch.config.scenario import month_label, month_number
from evlaunch.entry.launch_prior import launch_orders, prior_awareness
from evlaunch.entry.paths import PathOutcome, path_outcomes
from evlaunch.entry.reference_class import ramp_shape_from_uniforms
from evlaunch.finance import (
    ahead_of_pledge_schedule,
    best_response_markup,
    budget_available,
    budget_exceeded,
    budget_needed,
    capacity_shadow_price,
    gradual_price,
    gross_margin,
    net_present_value,
    peak_cash_need,
    pledge_paid_in,
    pledged_fraction,
    queue_held_price,
    queue_is_long,
    terminal_value,
    unit_cost,
    working_capital,
)
from evlaunch.market.calibration import BaseMarket
from evlaunch.market.demand import Demand, MonthState, PreStart, pre_start_market
from evlaunch.market.lineup import OTHER_PRODUCTS, Lineup
from evlaunch.simulation.model import Model, prepare
from evlaunch.simulation.outputs import rival_groups
from evlaunch.simulation.welfare import (
    NOT_COMPUTED,
    NOT_ON_SALE,
    ON_SALE_KEPT,
    effects_of_outside_shares,
    outside_shares,
    profit_change,
    queue_surplus,
    returning_buyers,
    second_choices,
    update_outside_shares,
)
from evlaunch.supply.capacity import Book, Month, Plant, delivery_probability, plant_month, plant_output
from evlaunch.supply.margin_fit import calibrate_market
from evlaunch.supply.repricing import (
    Entrant,
    IncumbentPricing,
    Markets,
    PathPricing,
    diversion_groups,
    entrant_diversion,
    solve_incumbents,
    solve_markets,
)

__all__ = ["Model", "prepare", "simulate"]  # `prepare` and `Model` re-exported for the old import path

Inputs = dict[str, np.ndarray]
Outputs = dict[str, np.ndarray]
NATIONAL_SERIES = ("orders", "deliveries", "revenue", "cash_flow", "operating_flow", "market", "nev", "share",
                   "price", "marginal_cost", "cost_of_goods", "cancellations", "backlog",
                   "list_price")  # list_price: the entrant's price without the capacity shadow price (held)
REGIONAL_SERIES = ("deliveries", "market", "nev")


@dataclass(frozen=True)
class Calendar:
    """The simulated months after the scenario start."""

    months: np.ndarray           # [H] months since year 0
    years: np.ndarray            # [H] calendar year of each month
    labels: tuple[str, ...]      # [H] 'YYYY-MM'

    @property
    def year_list(self) -> list[int]:
        return sorted(set(self.years.tolist()))


@dataclass(frozen=True)
class Setting:
    """What every path of one `simulate` call shares (arrays over draws N and months H after the start)."""

    parameters: Parameters
    base: BaseMarket
    demand: Demand
    calendar: Calendar
    size: np.ndarray             # [N, H] potential buyers per month
    pack_cny: np.ndarray         # [N, H] battery pack price, CNY/kWh
    pre_start: PreStart          # the start year's months before the start (market only)
    shock_cut: np.ndarray        # [N, H] fraction of capacity lost to supply shocks
    shock_cost: np.ndarray       # [N, H] fractional rise of the unit cost from supply shocks
    entrant_quality: np.ndarray  # [N] comparables' mean utility + the product's quality utility
    ramp_midpoint: np.ndarray    # [N] production months until the delivery ramp is half-way
    ramp_width: np.ndarray       # [N] logistic width of the delivery ramp, months
    awareness: np.ndarray        # [N] share of potential buyers who consider the car from its launch
    launch_orders: np.ndarray    # [N] orders waiting at the launch, vehicles
    pricing: IncumbentPricing | None  # Bertrand re-pricing (None: fixed prices with an entry cut)
    named_bev: np.ndarray        # [J] bool: the named BEVs of the base lineup
    group_names: list[str]       # diversion groups (firms, fringe aggregates, 'outside')
    group_matrix: np.ndarray     # [K + 1, G] products and the outside option -> groups
    price_coefficient: np.ndarray  # [N, T] alpha x each consumer type's price sensitivity
    budget_cny: np.ndarray       # [N] funds pledged for the car business, CNY
    price_policy: str            # the entrant's price: "fixed" or "best_response" (finance.price_policy)
    pledged: np.ndarray          # [H] share of the budget pledged by each month's end (1: all from the start)
    spent_before_cny: np.ndarray  # [N] part of the pledge spent before the start, CNY


@dataclass(frozen=True)
class PathTerms:
    """One path's per-draw terms, constant over the months (those of the path that actually operates)."""

    outcome: PathOutcome
    launch_index: np.ndarray     # [N] months after the start of the first month on sale; inf = never
    capacity_per_month: np.ndarray  # [N] vehicles/month at full capacity
    ramp: np.ndarray             # [N] months to full capacity
    brand: np.ndarray            # [N] utility shift from co-branding or channel
    fee: np.ndarray              # [N] contract-manufacturing fee, CNY/vehicle
    cost_factor: np.ndarray      # [N] multiplier on the unit cost
    upfront: np.ndarray          # [N] upfront cost of the operating path, CNY
    upfront_begin: np.ndarray    # [N] month the operating path's upfront spending begins
    upfront_months: np.ndarray   # [N] months it is spread over (>= 1)
    sunk_months: np.ndarray      # [N] months the failed paths' sunk upfront is spread over (>= 1)
    abandoned_at: np.ndarray     # [N] month the project is abandoned (every path failed), else inf
    prelaunch_months: np.ndarray  # [N] months the plant builds stock before the launch
    expansion_per_month: np.ndarray  # [N] the next phase's capacity, vehicles/month (0: none)
    expansion_lead: np.ndarray   # [N] months from ordering the next phase until it produces
    expansion_capex: np.ndarray  # [N] its capex, CNY, spread over the lead time


@dataclass
class PathState:
    """What carries from one month to the next along a path (the order book's backlog is `book.backlog`)."""

    cumulative: np.ndarray       # [N] cars built so far (learning)
    working_capital: np.ndarray  # [N] CNY tied up in stock and receivables
    diversion: np.ndarray        # [N, G] diversion ratios to groups, summed over the first 12 months on sale
    diversion_weight: np.ndarray  # [N] the orders weighting them
    book: Book                   # the order book, stock and expansion decision (`supply.capacity`)


@dataclass(frozen=True)
class PathSeries:
    """A path's monthly results: national [N, H] and regional [N, R, H] series, and the incumbents' prices."""

    national: dict[str, np.ndarray]
    regional: dict[str, np.ndarray]
    price_change: np.ndarray     # [N, H] named incumbent BEVs: units x (p / p_no_entrant - 1)
    bev_units: np.ndarray        # [N, H] named incumbent BEVs' units sold
    fringe_change: np.ndarray    # [N, F, H] each re-priced 'other' product: units x (p / p_no_entrant - 1)
    fringe_units: np.ndarray     # [N, F, H] each re-priced 'other' product's units sold


@dataclass(frozen=True)
class MonthBuyers:
    """Month t's buyers of one path [N] (vehicles) and their choices: who ordered, what the book did, and where
    the cancelled orders' buyers went (`simulation.welfare.returning_buyers`)."""

    typed: np.ndarray            # [N, T, K] shares per consumer type (the entrant's orders: gross, every order)
    shares: np.ndarray           # [N, K] national shares
    orders: np.ndarray           # the month's new orders (logit)
    booked: np.ndarray           # the same plus the orders waiting at the launch (launch month)
    backlog_before: np.ndarray   # orders waiting at the month's start
    month: Month                 # the plant and the book: deliveries, cancellations, backlog at the month's end
    returning: np.ndarray        # [N, K + 1] the cancelled orders' buyers by product, the outside option last,
    #                              less (launch month) the buyers of the orders waiting at the launch
    own_rows: np.ndarray         # [N] bool: draws whose shares are the path's own (else `NoEntrantMonth`'s)


@dataclass(frozen=True)
class EntryEffects:
    """What entry does to buyers and the scheduled launches to the entrant, along one path (`simulation.welfare`)."""

    response: np.ndarray         # [N, H] consumer surplus from incumbents' price response to the launch, CNY
    served: np.ndarray           # [N, H] the entrant's own contribution to the buyers whose car came, CNY
    book_value: np.ndarray       # [N] the own contribution waiting in the order book (carried), CNY
    profit: np.ndarray           # [N, H] incumbents' variable profit with less without the entrant, CNY
    buyers: np.ndarray           # [N, H] buyers choosing a new car (orders basis)
    buyers_without: np.ndarray   # [N, H] the same had the scheduled launches not come
    orders_without: np.ndarray   # [N, H] the entrant's orders had the scheduled launches not come
    rival_choices: np.ndarray    # [N, L, G + 1] launches' buyers' second choices by group (then the entrant), summed
    rival_units: np.ndarray      # [N, L] the launches' units weighting them

    @staticmethod
    def empty(draws: int, horizon: int, launches: int, groups: int, priced: bool) -> EntryEffects:
        """Zeros; `profit` NaN without re-pricing (`priced` False: no marginal costs are recovered)."""
        return EntryEffects(np.zeros((draws, horizon)), np.zeros((draws, horizon)), np.zeros(draws),
                            np.zeros((draws, horizon)) if priced else np.full((draws, horizon), np.nan),
                            np.zeros((draws, horizon)), np.zeros((draws, horizon)), np.zeros((draws, horizon)),
                            np.zeros((draws, launches, groups + 1)), np.zeros((draws, launches)))


def simulate(model: Model, inputs: Inputs) -> Outputs:
    """Run every path for every draw over the horizon; return per-draw outputs keyed by name."""
    parameters = model.parameters(inputs)
    setting = prepare_setting(model, parameters)
    outcomes = path_outcomes(model.scenario.paths, parameters.paths)
    names = list(model.scenario.paths)
    every_terms = [path_terms(outcomes[path_name], parameters.paths, parameters) for path_name in names]
    out: Outputs = {}
    for path_name, terms, run in zip(names, every_terms, simulate_paths(setting, every_terms)):
        series, state, path_pricing = run.series, run.state, run.pricing
        out.update(path_outputs(path_name, setting, terms, series, state, path_pricing))
        out.update(order_book_outputs(path_name, setting, terms, series, state))
        out.update(yearly_outputs(path_name, setting, series))
        out.update(monthly_outputs(path_name, setting, series))
        out.update(entry_outputs(path_name, model, setting, series, run.effects))
    out.update(global_outputs(setting))
    return out


@dataclass
class PathRun:
    """One path on its way through the months: its terms, plant, series, state, prices and entry effects."""

    terms: PathTerms
    plant: Plant
    series: PathSeries
    state: PathState
    pricing: PathPricing | None
    effects: EntryEffects

    @staticmethod
    def start(setting: Setting, terms: PathTerms) -> PathRun:
        """The path before its first month: empty series and book, the guide price, prices at the base."""
        draws, horizon = setting.size.shape
        regions = len(setting.demand.regions.names)
        series = PathSeries({key: np.zeros((draws, horizon)) for key in NATIONAL_SERIES},
                            {key: np.zeros((draws, regions, horizon)) for key in REGIONAL_SERIES},
                            np.zeros((draws, horizon)), np.zeros((draws, horizon)),
                            *(np.zeros((draws, len(fringe_groups(setting)), horizon)) for _ in range(2)))
        state = PathState(np.zeros(draws), np.zeros(draws),
                          np.zeros((draws, len(setting.group_names))), np.zeros(draws), Book.empty(draws))
        series.national["price"][:] = setting.parameters.product.price[:, None]  # the guide price until re-set
        path_pricing = setting.pricing.path() if setting.pricing is not None else None
        effects = EntryEffects.empty(draws, horizon, setting.demand.size_l, len(setting.group_names),
                                     path_pricing is not None)
        return PathRun(terms, path_plant(setting, terms), series, state, path_pricing, effects)


def simulate_paths(setting: Setting, every_terms: list[PathTerms]) -> list[PathRun]:
    """The months in order, each for every path (month-major): the month's market without the entrant
    (`NoEntrantMonth`, the same for every path) once, then each path's month (`path_month`)."""
    runs = [PathRun.start(setting, terms) for terms in every_terms]
    for t in range(setting.size.shape[1]):
        shared = NoEntrantMonth(setting, t)
        launch_counterfactuals(setting, runs, shared, t)
        entrants = [month_entrant(setting, run, t) for run in runs]
        reprice_paths(setting, runs, entrants)
        for run, entrant in zip(runs, entrants):
            path_month(setting, run, shared, t, entrant)
    return runs


def launch_counterfactuals(setting: Setting, runs: list[PathRun], shared: NoEntrantMonth, t: int) -> None:
    """Outside the common re-solve months: solve, in one call, the no-entrant equilibrium of every draw that
    launches in month t on some path (from the no-entrant prices in force, `NoEntrantMonth.prices`), which
    each such path then takes (`IncumbentPricing.launch_counterfactual` keeps the month's solutions)."""
    pricing = setting.pricing
    if pricing is None or shared.prices is None or pricing.common[t]:
        return
    launching = np.any([run.terms.launch_index == t for run in runs], axis=0)
    if launching.any():
        draws = launching.shape[0]
        pricing.launch_counterfactual(t, launching, shared.prices,
                                      Entrant(np.zeros(draws), setting.parameters.product.price, np.full(draws, np.inf)))


@dataclass(frozen=True)
class MonthEntrant:
    """The entrant along one path in month t, before the month's demand: on sale [N] bool, the incumbents' entry
    price cut [N] (fixed prices), its mean utility [N] (`entrant_utility`), and the incumbents' markets due for
    re-pricing against it (`PathPricing.due`; None: none, or fixed prices)."""

    after_launch: np.ndarray
    cut: np.ndarray
    utility: np.ndarray
    due: Markets | None


def month_entrant(setting: Setting, run: PathRun, t: int) -> MonthEntrant:
    """Month t's entrant along `run` and (re-pricing incumbents) the no-entrant re-solves done, the markets with
    the entrant due. Counting a buyer once: the incumbents re-price against the entrant's deliverable demand,
    its utility + log(the share of its orders expected to be delivered, `deliverable_share`; as if only that
    share of buyers considered the car, like the prior awareness), since a buyer whose order is cancelled
    returns to them; buyers then order at those prices with the entrant's full utility (`month_demand`)."""
    terms = run.terms
    after_launch, cut, utility = entrant_utility(setting, terms, t)
    due = None
    if run.pricing is not None:
        deliverable = utility + np.log(np.maximum(deliverable_share(setting, terms, run.plant, run.state, t), 1e-12))
        due = run.pricing.due(t, deliverable, run.series.national["price"][:, t], after_launch, terms.launch_index)
    return MonthEntrant(after_launch, cut, utility, due)


def reprice_paths(setting: Setting, runs: list[PathRun], entrants: list[MonthEntrant]) -> None:
    """Solve the month's markets with the entrant that every path has due in one call (`solve_markets`: each
    draw's market is its own) and give each path its prices."""
    due = [(run.pricing, entrant.due) for run, entrant in zip(runs, entrants)
           if run.pricing is not None and entrant.due is not None]
    if setting.pricing is None or not due:
        return
    solutions = solve_markets([markets for _, markets in due], setting.demand, setting.pricing.supply)
    for (path_pricing, markets), solution in zip(due, solutions):
        path_pricing.apply(markets, solution)


def path_month(setting: Setting, run: PathRun, shared: NoEntrantMonth, t: int, entrant: MonthEntrant) -> None:
    """Month t of one path, in order (the entrant and the incumbents' prices set, `month_entrant`): demand,
    capacity and deliveries, cost and cash, regional sums, what entry does to buyers."""
    terms, state, series = run.terms, run.state, run.series
    after_launch = entrant.after_launch
    typed, shares, own = month_demand(setting, run, shared, t, (after_launch, entrant.cut), entrant.utility)
    orders = setting.size[:, t] * shares[:, -1]
    booked = orders + np.where(t == terms.launch_index, setting.launch_orders, 0.0)
    backlog_before = state.book.backlog.copy()
    month = capacity_and_deliveries(setting, run.plant, state, series, t, booked)
    delivered = month.deliveries
    # cancelled buyers return to their next choice; the orders waiting at the launch (not the month's
    # logit choices) take their buyers from it
    moving = month.cancellations - (booked - orders)
    buyers = MonthBuyers(typed, shares, orders, booked, backlog_before, month,
                         returning_buyers(moving, typed, setting.demand.types.weights), own)
    record_diversion(setting, terms, state, t, after_launch, delivered, typed)
    cash_flow(setting, terms, state, series, t, orders, delivered, shares)
    record_returning(setting, series, t, buyers.returning)
    record_order_book(terms, state, series, t, booked)
    entrant_price(setting, terms, month, series, t, typed)
    regional_sums(setting, series, t, orders, delivered, typed, buyers.returning)
    record_entry_effects(setting, run, shared, t, after_launch, buyers)


class NoEntrantMonth:
    """Month t's market without the entrant, the same for every path: the consumer types' and national
    shares at the incumbents' prices every path has for its draws not yet on sale (fixed prices without a
    cut, or the no-entrant equilibrium of the latest common re-solve month, `IncumbentPricing.counterfactual`),
    computed once per month; and, on first use, its no-purchase shares (`welfare.outside_shares`) and the
    scheduled launches' second choices. A path takes these for every draw whose shares are these (the entrant
    not on sale: not available, its utility and price do not enter the others' shares) and computes its own
    only for the other draws."""

    def __init__(self, setting: Setting, t: int) -> None:
        demand, draws, pricing = setting.demand, setting.size.shape[0], setting.pricing
        self.prices = None if pricing is None else no_entrant_prices(pricing, setting.parameters.product.price, t)
        incumbent = None if pricing is None or self.prices is None else pricing.lineup_prices(self.prices)
        self.typed, self.shares = demand.month(demand.lead + t, np.zeros(draws), np.zeros(draws),
                                               setting.parameters.product.price, np.zeros(draws, dtype=bool),
                                               np.full(draws, np.inf), incumbent)
        for values in (self.typed, self.shares):
            values.setflags(write=False)
        self.launches = (demand.size_j, demand.size_j + demand.size_l)
        self._outside: np.ndarray | None = None
        self._second: dict[int, np.ndarray] = {}

    @property
    def outside(self) -> np.ndarray:
        """[5, N, T] `welfare.outside_shares` of this market (the entrant nowhere on sale)."""
        if self._outside is None:
            self._outside = outside_shares(self.typed, self.typed, np.zeros(self.typed.shape[0], dtype=bool),
                                           self.launches)
        return self._outside

    def second_choices(self, weights: np.ndarray, source: int) -> np.ndarray:
        """[N, K + 1] product `source`'s buyers' second choices in this market (`welfare.second_choices`)."""
        if source not in self._second:
            self._second[source] = second_choices(self.typed, weights, source)
        return self._second[source]


def no_entrant_prices(pricing: IncumbentPricing, price: np.ndarray, t: int) -> np.ndarray:
    """[N, P] the incumbents' no-entrant guide prices in force in month t for draws whose entrant (guide price
    `price` [N]) is not on sale: the equilibrium of the latest common re-solve month (month 0 is one)."""
    draws = price.shape[0]
    latest = max(k for k in range(t + 1) if pricing.common[k])
    never = Entrant(np.zeros(draws), price, np.full(draws, np.inf))
    return pricing.counterfactual(latest, never)[0]


def supply_shocks(shocks: dict[str, ShockParameters], draws: int, horizon: int) -> tuple[np.ndarray, np.ndarray]:
    """(capacity cut [N, H], unit-cost increase [N, H]) of the supply shocks: per draw, whether each happens
    (its event's uniform below its probability) and when; cuts of overlapping shocks take the largest,
    cost increases add up."""
    shock_cut = np.zeros((draws, horizon))
    shock_cost = np.zeros((draws, horizon))
    month = np.arange(horizon)[None, :]
    for shock in shocks.values():
        happens = shock.occurrence_event < shock.probability
        begin = shock.start_months[:, None]
        active = happens[:, None] & (month >= begin) & (month < begin + shock.duration_months[:, None])
        shock_cut = np.maximum(shock_cut, active * shock.capacity_cut[:, None])
        shock_cost = shock_cost + active * shock.cost_increase[:, None]
    return shock_cut, shock_cost


def awareness_shape(model: Model, parameters: Parameters) -> tuple[np.ndarray, np.ndarray]:
    """(midpoint, width) [N] of the joint delivery ramp, production months: drawn from the reference class of
    new brands' ramp-ups (fitted to deliveries, so plant and buyers together) when the scenario asks for it,
    else the scenario's own `awareness_midpoint` / `awareness_width` (names kept for the scenario contract)."""
    product = parameters.product
    if model.reference_class is not None and product.awareness_shape_uniforms is not None:
        return ramp_shape_from_uniforms(model.reference_class, *product.awareness_shape_uniforms)
    return product.awareness_midpoint, product.awareness_width


def demand_prior(model: Model, parameters: Parameters) -> tuple[np.ndarray, np.ndarray]:
    """(awareness, orders waiting at the launch) [N]: the share of potential buyers who consider the car from
    its launch (the brand's reach plus a stated share of the others; 1 without a prior) and comparable
    launches' order events times the scenario's multiple (0 without one), `entry.launch_prior`."""
    product, draws = parameters.product, parameters.draws
    awareness = np.ones(draws)
    if model.reach is not None and product.awareness_outside_reach is not None:
        awareness = prior_awareness(model.reach[0], product.awareness_outside_reach)
    waiting = np.zeros(draws)
    if (model.launch_orders is not None and product.launch_order_multiple is not None
            and product.launch_orders_event is not None):
        waiting = launch_orders(model.launch_orders, product.launch_orders_event, product.launch_order_multiple)
    return np.broadcast_to(awareness, (draws,)).astype(float), np.broadcast_to(waiting, (draws,)).astype(float)


def mean_quality(base: BaseMarket, lineup: Lineup, names: list[str]) -> np.ndarray:
    """[N] mean utility (excluding price) of the named lineup models at the base period."""
    utility = base.quality if base.quality_adjustment is None else base.quality + base.quality_adjustment
    return utility[:, [lineup.index(name) for name in names]].mean(axis=1)


def prepare_setting(model: Model, parameters: Parameters) -> Setting:
    """Calibrate the base period and build what every path shares: demand, shocks, the entrant's quality and
    awareness shape, incumbents' pricing, diversion groups."""
    scenario, lineup, draws = model.scenario, model.lineup, parameters.draws
    base = calibrate_market(model.market, parameters)
    horizon = scenario.horizon_months
    months = scenario.start_month + np.arange(horizon)
    calendar = Calendar(months, np.array([m // 12 for m in months]), tuple(month_label(m) for m in months))
    # Products (base lineup, scheduled launches, the entrant last) and the time-varying market drivers,
    # the same for every path. `lead` months of the start year precede the start.
    demand = Demand(model.market, parameters, base)
    shock_cut, shock_cost = supply_shocks(parameters.shocks, draws, horizon)
    entrant_quality = mean_quality(base, lineup, scenario.product.comparables) + parameters.product.quality_utility
    midpoint, width = awareness_shape(model, parameters)
    awareness, waiting = demand_prior(model, parameters)
    pricing = (IncumbentPricing(model.market, parameters.finance.vat_rate, base, demand)
               if scenario.competition.reprice == "bertrand" else None)
    if pricing is not None:
        anchor_at_equilibrium(demand, pricing, parameters.product.price)
    named_bev = np.array([name not in OTHER_PRODUCTS and powertrain == "BEV"
                          for name, powertrain in zip(lineup.names, lineup.powertrains)])
    group_names, group_matrix = diversion_groups(demand, lineup, [c.group for c in scenario.competition.launches])
    return Setting(parameters, base, demand, calendar, demand.size[:, demand.lead:], demand.pack_cny[:, demand.lead:],
                   pre_start_market(demand, parameters.product.price), shock_cut, shock_cost, entrant_quality,
                   midpoint, width, awareness, waiting, pricing, named_bev, group_names, group_matrix,
                   base.alpha[:, None] * demand.types.price_sensitivity,
                   scenario.finance.budget_usd * parameters.finance.usd_cny, scenario.finance.price_policy,
                   pledge_schedule(scenario.finance.pledge_start, scenario.finance.pledge_years, months),
                   parameters.finance.spent_before_start_usd * parameters.finance.usd_cny)


ANCHOR_PRICE_TOLERANCE = 1e-7   # max change of the anchor (utility) between two no-entrant equilibria
ANCHOR_PRICE_ITERATIONS = 10


def anchor_at_equilibrium(demand: Demand, pricing: IncumbentPricing, price: np.ndarray) -> None:
    """Set the market anchor (`Demand.outside_offset`) of every simulated month at the no-entrant Bertrand
    prices the paths use (solved in the common re-solve months, held in between; `price` [N] the entrant's
    guide price, not on sale there), so that without the entrant the market follows the growth path.

    In a common month the anchor and the no-entrant equilibrium depend on each other: alternate (the anchor
    at the prices, the equilibrium at the anchor, from the previous month's prices; a contraction, by ~0.1 per
    round in the reference scenario, sped up by `AnchorJumps` where it is steady) until the anchor moves by
    less than ANCHOR_PRICE_TOLERANCE (each round re-solves only the draws still moving, so a draw's result is
    its own; at most ANCHOR_PRICE_ITERATIONS plain rounds per draw), then let `pricing.counterfactual` solve
    (and keep, for every path) the equilibrium at that anchor, and set the anchor at its prices. Paths then
    solve their prices with the entrant at the same anchor as the no-entrant world's, so the incumbents' response to entry compares like with like."""
    draws = price.shape[0]
    never = Entrant(np.zeros(draws), price, np.full(draws, np.inf))
    absent = np.zeros(draws, dtype=bool)
    prices = pricing.supply.base_price
    for t in range(pricing.common.shape[0]):
        step = demand.lead + t
        if pricing.common[t]:
            demand.anchor(step, pricing.lineup_prices(prices))
            moving, prices = np.ones(draws, dtype=bool), prices.copy()
            jumps = AnchorJumps(prices)
            while (moving & (jumps.rounds < ANCHOR_PRICE_ITERATIONS)).any():
                moving &= jumps.rounds < ANCHOR_PRICE_ITERATIONS
                state = demand.state(step, np.zeros(draws), never.utility, price, absent, never.launch_index,
                                     pricing.lineup_prices(prices))
                last = prices.copy()
                prices[moving], _ = solve_incumbents(state, moving, prices, pricing.cost(step), pricing.rate(state),
                                                     demand, pricing.supply)
                jumps.rounds += moving
                before = demand.outside_offset(step).copy()
                demand.anchor(step, pricing.lineup_prices(prices), moving)  # the others' prices did not move
                change = demand.outside_offset(step) - before
                missed = jumps.check(prices, change)   # a jump that missed: back to the plain round's prices
                if jumps.extrapolate(prices, last, change, moving) | missed:
                    demand.anchor(step, pricing.lineup_prices(prices), moving)
                moving &= jumps.pending | (np.abs(change) >= ANCHOR_PRICE_TOLERANCE)
            prices, _ = pricing.counterfactual(t, never)
        demand.anchor(step, pricing.lineup_prices(prices))


ANCHOR_STEADY_RATIO = 0.5   # the largest |contraction ratio| extrapolated (the reference scenario's: about -0.1)
ANCHOR_JUMP_CHECK = 1e-3    # after a jump the anchor moves by at most this share of the move before it, or it is undone


class AnchorJumps:
    """Aitken's extrapolation of the alternation in `anchor_at_equilibrium`, per draw, where it is safe.

    A draw whose anchor moved three times in a row by a steady geometric ratio (|ratio| below
    ANCHOR_STEADY_RATIO, the two ratios within a quarter of each other) jumps to the extrapolated prices
    p + (p - p_last) ratio / (1 - ratio). The next round checks the jump: if the anchor then moves by more
    than ANCHOR_JUMP_CHECK of the move before the jump, the draw goes back to the prices it had (so its
    anchor is the plain alternation's again), that round does not count, and it takes only plain rounds
    from then on. A draw that alternates between two equilibria (ratio near -1) never jumps, so it ends
    where the plain alternation ends."""

    def __init__(self, prices: np.ndarray) -> None:
        draws = prices.shape[0]
        self.rounds = np.zeros(draws, dtype=np.int64)        # plain rounds taken, per draw
        self.changes = np.full((draws, 2), np.nan)           # the anchor's last two moves
        self.pending = np.zeros(draws, dtype=bool)           # jumped last round, to check
        self.barred = np.zeros(draws, dtype=bool)            # a jump missed: plain rounds only
        self.saved = prices.copy()                           # prices before the jump

    def check(self, prices: np.ndarray, change: np.ndarray) -> bool:
        """Undo the jumps of last round that missed (in place: prices, change); whether any was undone."""
        missed = self.pending & ~(np.abs(change) <= ANCHOR_JUMP_CHECK * np.abs(self.changes[:, 1]))
        prices[missed] = self.saved[missed]
        change[missed] = self.changes[missed, 1]
        self.rounds[missed] -= 1
        self.barred |= missed
        self.changes[self.pending & ~missed] = np.nan
        self.pending[:] = False
        return bool(missed.any())

    def extrapolate(self, prices: np.ndarray, last: np.ndarray, change: np.ndarray, moving: np.ndarray) -> bool:
        """Jump the draws with a steady contraction (in place: prices); record `change`; whether any jumped."""
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio, earlier = change / self.changes[:, 1], self.changes[:, 1] / self.changes[:, 0]
        steady = ((np.abs(ratio) < ANCHOR_STEADY_RATIO) & (np.abs(earlier) < ANCHOR_STEADY_RATIO)
                  & (np.abs(ratio - earlier) <= 0.25 * np.abs(earlier)))
        jump = (moving & steady & ~self.barred & (np.abs(change) >= ANCHOR_PRICE_TOLERANCE)
                & (self.rounds < ANCHOR_PRICE_ITERATIONS))          # a round is left to check the jump
        self.changes = np.stack([self.changes[:, 1], np.where(moving, change, np.nan)], axis=1)
        self.saved[jump] = prices[jump]
        prices[jump] += (ratio[jump] / (1.0 - ratio[jump]))[:, None] * (prices[jump] - last[jump])  # |ratio| < 0.5
        self.pending = jump
        return bool(jump.any())


def pledge_schedule(pledge_start: str | None, pledge_years: float, months: np.ndarray) -> np.ndarray:
    """[H] share of the budget pledged by the end of each simulated month (`months`: months since year 0);
    all of it from the start when the scenario gives no pledge schedule."""
    if pledge_start is None:
        return np.ones(len(months))
    return pledged_fraction(months - month_number(pledge_start), pledge_years)


def fringe_groups(setting: Setting) -> list[str]:
    """The re-priced 'other' products (`market.fringe`), in lineup order; [] when none re-prices."""
    return [] if setting.pricing is None else setting.pricing.fringe_names


def path_terms(outcome: PathOutcome, paths: dict[str, PathParameters], parameters: Parameters) -> PathTerms:
    """The terms of the path that operates in each draw (0 where none does), its launch month, and how its
    upfront and the failed paths' sunk costs spread over the months."""
    operating, order = outcome.operating_path, list(paths)
    rows = np.arange(parameters.draws)

    def of_operating(field: str) -> np.ndarray:
        values = np.stack([getattr(paths[p], field) for p in order], axis=1)
        return np.where(operating >= 0, values[rows, np.maximum(operating, 0)], 0.0)

    production_start = outcome.production_start
    return PathTerms(
        outcome=outcome,
        launch_index=np.ceil(np.maximum(parameters.product.ready_months, production_start)),
        capacity_per_month=of_operating("capacity_per_year") / 12.0,
        ramp=of_operating("ramp_months"),
        brand=of_operating("brand_utility"),
        fee=of_operating("fee_per_vehicle"),
        cost_factor=of_operating("unit_cost_factor"),
        upfront=of_operating("upfront_cost"),
        upfront_begin=outcome.months_lost,
        upfront_months=np.maximum(np.where(np.isfinite(production_start),
                                           production_start - outcome.months_lost, 0.0), 1.0),
        sunk_months=np.maximum(outcome.months_lost, 1.0),
        # every path of the chain failed: the project is abandoned at the last failure, its running costs stop
        abandoned_at=np.where(operating < 0, outcome.months_lost, np.inf),
        prelaunch_months=plant_flex(outcome, paths, "prelaunch_build_months", parameters.draws),
        expansion_per_month=plant_flex(outcome, paths, "expansion_capacity_per_year", parameters.draws) / 12.0,
        expansion_lead=plant_flex(outcome, paths, "expansion_lead_months", parameters.draws),
        expansion_capex=plant_flex(outcome, paths, "expansion_capex", parameters.draws),
    )


def plant_flex(outcome: PathOutcome, paths: dict[str, PathParameters], field: str, draws: int) -> np.ndarray:
    """[N] the operating path's plant-flex `field` (stock building, expansion; 0 where unset or none operates)."""
    values = np.stack([np.zeros(draws) if getattr(path, field) is None
                       else np.broadcast_to(getattr(path, field), (draws,)) for path in paths.values()], axis=1)
    operating = outcome.operating_path
    return np.where(operating >= 0, values[np.arange(draws), np.maximum(operating, 0)], 0.0)


def entrant_utility(setting: Setting, terms: PathTerms, t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(on sale [N] bool, incumbents' entry price cut [N], the entrant's mean utility [N]) in month t after
    the start: quality + brand + log awareness, the buyers' prior awareness, constant from the launch (the
    ramp is the plant's and buyers' joint delivery ramp, `capacity_and_deliveries`, not counted again here)."""
    after_launch = t >= terms.launch_index
    cut = np.where(after_launch, setting.parameters.competition.price_war_cut, 0.0)
    utility = setting.entrant_quality + terms.brand + np.log(np.maximum(setting.awareness, 1e-300))
    return after_launch, cut, utility


def deliverable_share(setting: Setting, terms: PathTerms, plant: Plant, state: PathState, t: int) -> np.ndarray:
    """[N] the share of the entrant's orders placed in month t expected to be delivered rather than cancelled
    (`supply.capacity.delivery_probability`: the queue ahead of them, the orders waiting at the launch
    included, over the month's output and stock, and the cancellation rate at that wait); 1 without a queue."""
    product = setting.parameters.product
    queue = state.book.backlog + np.where(t == terms.launch_index, setting.launch_orders, 0.0)
    output = plant_output(plant, state.book, t, setting.shock_cut[:, t])
    return delivery_probability(queue, output, state.book.stock, product.order_cancellation,
                                product.cancellation_per_month_waited)


def month_demand(setting: Setting, run: PathRun, shared: NoEntrantMonth, t: int,
                 on_sale: tuple[np.ndarray, np.ndarray], utility: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(shares per consumer type [N, T, K], national shares [N, K], the draws [N] bool whose shares are the
    path's own) in month t, with incumbents' prices fixed (cut after the launch) or re-priced (`month_entrant`,
    `reprice_paths`: at the path's guide prices); records the named incumbent BEVs' units and price change.
    Buyers order with the entrant's full `utility` (every order is booked, and leaves the rivals while it
    waits). Draws whose entrant is not on sale, at the no-entrant prices, take the month's shared market
    (`NoEntrantMonth`: the same shares, computed once). `on_sale`: (on sale [N] bool, the entry price cut [N]),
    `entrant_utility`'s first two."""
    after_launch, cut = on_sale
    terms, series, path_pricing, demand = run.terms, run.series, run.pricing, setting.demand
    price = series.national["price"][:, t]
    if path_pricing is None:
        own = after_launch | (cut != 0.0)
        state = None if not own.any() else demand.state(demand.lead + t, cut, utility, price, after_launch,
                                                        terms.launch_index)
    else:
        own = after_launch | np.any(path_pricing.guide != shared.prices, axis=1)
        state = None if not own.any() else demand.state(
            demand.lead + t, np.zeros(price.shape), utility, price, after_launch, terms.launch_index,
            path_pricing.pricing.lineup_prices(path_pricing.guide))
    typed, shares = shared_or_own(demand, state, own, shared.typed, shared.shares)
    if path_pricing is None:
        series.bev_units[:, t] = setting.size[:, t] * shares[:, :len(setting.named_bev)][:, setting.named_bev].sum(
            axis=1)
        series.price_change[:, t] = -cut * series.bev_units[:, t]
    else:
        series.price_change[:, t], series.bev_units[:, t] = path_pricing.bev_price_change(shares, setting.size[:, t])
        series.fringe_change[:, :, t], series.fringe_units[:, :, t] = path_pricing.fringe_price_change(
            shares, setting.size[:, t])
    return typed, shares, own


OWN_ROWS_SUBSET = 0.5   # below this share of own draws, gather them; above, compute every draw (same figures)


def shared_or_own(demand: Demand, state: MonthState | None, own: np.ndarray, typed: np.ndarray,
                  shares: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(shares per consumer type [N, T, K], national shares [N, K]): those of `state` for the draws `own` [N]
    bool, the given (shared, read-only) `typed` and `shares` for the others (returned as they are when no
    draw is `own`; `state` is None then)."""
    if state is None or not own.any():
        return typed, shares
    if own.mean() < OWN_ROWS_SUBSET:
        typed, shares = typed.copy(), shares.copy()
        typed[own], shares[own] = demand.shares(state, own)
        return typed, shares
    own_typed, own_shares = demand.shares(state)   # every draw: cheaper than gathering most of them
    rest = ~own
    own_typed[rest], own_shares[rest] = typed[rest], shares[rest]
    return own_typed, own_shares


def record_diversion(setting: Setting, terms: PathTerms, state: PathState, t: int, after_launch: np.ndarray,
                     delivered: np.ndarray, typed: np.ndarray) -> None:
    """Add month t's diversion ratios to groups, weighted by the month's deliveries (buyers counted once: a
    cancelled order takes no buyer from anyone), in the first 12 months on sale."""
    first_year = after_launch & (t < terms.launch_index + 12)
    if first_year.any():
        weight = np.where(first_year, delivered, 0.0)
        rows = np.flatnonzero(first_year)           # the other draws add 0: their ratios are not computed
        ratios = np.nan_to_num(entrant_diversion(typed[rows], setting.demand.types.weights[rows],
                                                 setting.price_coefficient[rows])) @ setting.group_matrix
        state.diversion[rows] += weight[rows, None] * ratios
        state.diversion_weight += weight


def path_plant(setting: Setting, terms: PathTerms) -> Plant:
    """The operating path's plant per draw: capacity on the joint delivery ramp, stock building, and the
    expansion option under the scenario's rule (at capacity with a persistent backlog; an expansion ramps over
    the path's `ramp_months`)."""
    product = setting.parameters.product
    return Plant(terms.capacity_per_month, terms.launch_index, terms.prelaunch_months, setting.ramp_midpoint,
                 setting.ramp_width, terms.expansion_per_month, terms.expansion_lead, terms.ramp,
                 product.expansion_backlog_months, product.expansion_persistence_months, product.binding_utilisation)


def capacity_and_deliveries(setting: Setting, plant: Plant, state: PathState, series: PathSeries, t: int,
                            orders: np.ndarray) -> Month:
    """Month t of the plant and the book (`supply.capacity.plant_month`; its deliveries [N]): the plant's
    output on the delivery ramp (less supply shocks) and stock serve the backlog and the month's orders; the
    rest waits, cancelling the more the longer the wait; a persistent backlog at capacity triggers the
    expansion. Records cancellations and the backlog."""
    product = setting.parameters.product
    month = plant_month(plant, state.book, t, orders, product.order_cancellation,
                        product.cancellation_per_month_waited, setting.shock_cut[:, t])
    series.national["cancellations"][:, t] = month.cancellations
    series.national["backlog"][:, t] = month.backlog
    return month


def record_order_book(terms: PathTerms, state: PathState, series: PathSeries, t: int, booked: np.ndarray) -> None:
    """Month t's orders including those waiting at the launch, and the expansion's capex (spread evenly over
    its lead time from the month after it is ordered) taken from the cash flow."""
    series.national["orders"][:, t] = booked
    ordered = state.book.expansion_decided
    months = np.maximum(terms.expansion_lead, 1.0)
    spending = (t > ordered) & (t <= ordered + months)
    series.national["cash_flow"][:, t] -= np.where(spending, terms.expansion_capex / months, 0.0)


def cash_flow(setting: Setting, terms: PathTerms, state: PathState, series: PathSeries, t: int,
              orders: np.ndarray, delivered: np.ndarray, shares: np.ndarray) -> None:
    """Month t's unit cost (learning on the rest of the vehicle, shocks), revenue at the month's price, cost of
    goods, operating flow, the change of working capital (stock and receivables) and total cash flow, and the
    national market: new-car sales, NEV sales and the entrant's share of them."""
    product, finance, national = setting.parameters.product, setting.parameters.finance, series.national
    cost = unit_cost(product.battery_kwh, setting.pack_cny[:, t], product.rest_of_vehicle_cost,
                     terms.cost_factor, state.cumulative, product.learning_rate, product.learning_base
                     ) * (1.0 + setting.shock_cost[:, t])
    state.cumulative = state.cumulative + delivered
    national["marginal_cost"][:, t] = cost + terms.fee + finance.variable_cost_per_vehicle
    revenue = delivered * national["price"][:, t] / (1.0 + finance.vat_rate)
    national["cost_of_goods"][:, t] = delivered * national["marginal_cost"][:, t]
    operating_flow = revenue - national["cost_of_goods"][:, t]
    tied_up = working_capital(national["cost_of_goods"][:, t], revenue, finance.inventory_days,
                              finance.receivable_days)
    working_capital_change, state.working_capital = tied_up - state.working_capital, tied_up
    upfront_now = np.where((t >= terms.upfront_begin) & (t < terms.upfront_begin + terms.upfront_months),
                           terms.upfront / terms.upfront_months, 0.0)
    sunk_now = np.where(t < terms.outcome.months_lost, terms.outcome.sunk_upfront / terms.sunk_months, 0.0)
    size, nev = setting.size[:, t], setting.demand.is_nev
    sold = size * shares.sum(axis=1) - orders + delivered
    national["orders"][:, t] = orders
    national["deliveries"][:, t] = delivered
    national["revenue"][:, t] = revenue
    running = np.where(t < terms.abandoned_at, finance.rnd_per_month + finance.opex_per_month, 0.0)
    national["operating_flow"][:, t] = operating_flow - running
    national["cash_flow"][:, t] = operating_flow - running - upfront_now - sunk_now - working_capital_change
    national["market"][:, t] = sold
    national["nev"][:, t] = size * (shares[:, :-1] * nev[None, :-1]).sum(axis=1) + delivered
    national["share"][:, t] = delivered / sold


def record_returning(setting: Setting, series: PathSeries, t: int, returning: np.ndarray) -> None:
    """Add to month t's new-car and NEV sales the cancelled orders' buyers who buy another car in the month of
    cancellation (`returning` [N, K + 1], `simulation.welfare.returning_buyers`), and re-take the entrant's
    share of the sales."""
    national = series.national
    national["market"][:, t] += returning[:, :-1].sum(axis=1)
    national["nev"][:, t] += (returning[:, :-1] * setting.demand.is_nev[None, :]).sum(axis=1)
    national["share"][:, t] = national["deliveries"][:, t] / national["market"][:, t]


def entrant_price(setting: Setting, terms: PathTerms, month: Month, series: PathSeries, t: int,
                  typed: np.ndarray) -> None:
    """Set next month's price of the entrant under the scenario's policy. 'fixed': the guide price throughout.
    'best_response': the first month on sale is at the guide price. While the queue is long (the backlog
    above `finance.price_backlog_months` of the month's output, the delivery ramp and supply shocks included)
    the list price is HELD both ways (`finance.queue_held_price`; new brands held list prices while orders
    waited, launch_orders_extra.csv); only while the plant is at its installed capacity (`month.at_capacity`:
    not on its delivery ramp) with a backlog above `price_backlog_months` of that capacity is a capacity
    shadow price added to the held list price, at most `finance.capacity_premium_cap` of the best-response
    price (`finance.capacity_shadow_price`). Within the tolerated wait the price moves to the entrant's own
    Bertrand first-order condition at this month's demand (its shares among the consumer types), marginal
    cost (unit cost, fee, variable cost; VAT added) and the incumbents' current prices, cuts included, and
    that price becomes the new list price. Every move is at most `finance.price_step_cap` of the current
    price a month (`finance.gradual_price`) — except that a long queue never holds the price below the
    VAT-inclusive marginal cost: a held list price below it steps up to it at once (a one-off list-price step,
    as the data's 9-16% steps; while the plant cannot build more, a price below cost buys no extra output, so
    no learning either)."""
    finance, national = setting.parameters.finance, series.national
    if setting.price_policy != "best_response" or t + 1 >= national["price"].shape[1]:
        return
    on_sale = t >= terms.launch_index
    markup = best_response_markup(typed[:, :, -1], setting.demand.types.weights, setting.price_coefficient)
    unconstrained = (1.0 + finance.vat_rate) * national["marginal_cost"][:, t] + markup
    shadow = capacity_shadow_price(markup, month.backlog, month.installed, month.at_capacity,
                                   finance.price_backlog_months, finance.capacity_premium_cap * unconstrained)
    current = national["price"][:, t]
    listed = np.where(t > terms.launch_index, national["list_price"][:, t], current)  # launch month: the guide
    held = queue_is_long(month.backlog, month.output, finance.price_backlog_months)
    target = queue_held_price(unconstrained + shadow, listed, shadow, held)
    target = np.where(np.isfinite(target), target, listed)  # no sales this month: no best response
    price = gradual_price(target, current, finance.price_step_cap)
    cost = (1.0 + finance.vat_rate) * national["marginal_cost"][:, t]
    price = np.where(held, np.fmax(price, cost), price)  # a queue never holds the price below marginal cost
    national["price"][:, t + 1] = np.where(on_sale, price, current)
    national["list_price"][:, t + 1] = np.where(on_sale & held, np.fmax(listed, cost), national["price"][:, t + 1])


def regional_sums(setting: Setting, series: PathSeries, t: int, orders: np.ndarray, delivered: np.ndarray,
                  typed: np.ndarray, returning: np.ndarray) -> None:
    """Month t by region: the entrant's deliveries (split as its orders are), new-car and NEV sales (the
    cancelled orders' buyers who buy another car, `returning` [N, K + 1], split as the orders are)."""
    demand = setting.demand
    regions, nev = demand.regions, demand.is_nev
    regional = demand.types.within_regions(typed)                                      # [N, R, K]
    buyers = setting.size[:, t:t + 1] * regions.weights                                 # [N, R]
    orders_region = buyers * regional[:, :, -1]
    mix = np.where(orders[:, None] > 0, orders_region / np.maximum(orders, 1e-300)[:, None], regions.weights)
    delivered_region = delivered[:, None] * mix
    rebought = returning[:, :-1].sum(axis=1)[:, None] * mix
    rebought_nev = (returning[:, :-1] * nev[None, :]).sum(axis=1)[:, None] * mix
    by_region = series.regional
    by_region["deliveries"][:, :, t] = delivered_region
    by_region["market"][:, :, t] = buyers * regional.sum(axis=2) - orders_region + delivered_region + rebought
    by_region["nev"][:, :, t] = (buyers * (regional[:, :, :-1] * nev[None, None, :-1]).sum(axis=2)
                                 + delivered_region + rebought_nev)


def path_outputs(path: str, setting: Setting, terms: PathTerms, series: PathSeries, state: PathState,
                 path_pricing: PathPricing | None) -> Outputs:
    """A path's launch, failure and money outputs (NPV with the terminal value, peak cash need, budget) and
    its first-year diversion shares."""
    finance, name = setting.parameters.finance, columns.path_column
    flows = series.national["cash_flow"]
    npv = net_present_value(flows, finance.discount_rate,
                            terminal_value(flows, finance.terminal_value_multiple, series.national["operating_flow"]))
    peak = peak_cash_need(flows)
    paid_in = pledge_paid_in(setting.budget_cny, setting.pledged, setting.spent_before_cny)
    out = {
        name(path, columns.LAUNCH_MONTH_INDEX): terms.launch_index,
        name(path, columns.MONTHS_LOST): terms.outcome.months_lost,
        name(path, columns.PATH_FAILED): terms.outcome.failed,
        name(path, columns.OPERATING_PATH): terms.outcome.operating_path.astype(float),
        name(path, columns.NPV): npv,
        name(path, columns.PEAK_CASH_NEED): peak,
        name(path, columns.BUDGET_EXCEEDED): budget_exceeded(peak, budget_available(setting.budget_cny,
                                                                                    setting.spent_before_cny)),
        name(path, columns.BUDGET_NEEDED): budget_needed(peak, setting.spent_before_cny),
        name(path, columns.AHEAD_OF_PLEDGE): ahead_of_pledge_schedule(flows, paid_in),
    }
    if path_pricing is not None:
        out[name(path, columns.EQUILIBRIUM_FAILURES)] = path_pricing.failures.copy()
    with np.errstate(invalid="ignore", divide="ignore"):
        shares_of_buyers = state.diversion / state.diversion_weight[:, None]  # NaN: not on sale within the horizon
    for g, group in enumerate(setting.group_names):
        out[columns.diversion(path, group)] = np.where(state.diversion_weight > 0, shares_of_buyers[:, g], np.nan)
    return out


def order_book_outputs(path: str, setting: Setting, terms: PathTerms, series: PathSeries, state: PathState
                       ) -> Outputs:
    """A path's order book (`simulation.outputs.order_book_names`): the month the expansion was ordered,
    deliveries in the first 12 months on sale; cancellations and the backlog at each year's end; orders and
    the backlog by month (float32)."""
    national, calendar = series.national, setting.calendar
    months = np.arange(len(calendar.labels))[None, :]
    first_year = (months >= terms.launch_index[:, None]) & (months < terms.launch_index[:, None] + 12)
    out: Outputs = {
        columns.path_column(path, columns.EXPANSION_ORDERED_MONTH): state.book.expansion_decided.copy(),
        columns.path_column(path, columns.FIRST_12_MONTHS_DELIVERIES): (national["deliveries"] * first_year).sum(
            axis=1),
    }
    for year in calendar.year_list:
        in_year = np.flatnonzero(calendar.years == year)
        out[columns.yearly(path, columns.CANCELLATIONS, year)] = national["cancellations"][:, in_year].sum(axis=1)
        out[columns.yearly(path, columns.BACKLOG_END, year)] = national["backlog"][:, in_year[-1]].copy()
    for t, label in enumerate(calendar.labels):
        out[columns.monthly(path, columns.ORDERS_MONTH, label)] = national["orders"][:, t].astype(np.float32)
        out[columns.monthly(path, columns.BACKLOG_MONTH, label)] = national["backlog"][:, t].astype(np.float32)
    return out


def yearly_outputs(path: str, setting: Setting, series: PathSeries) -> Outputs:
    """A path's outputs by calendar year (whole years: the start year's months before the start add the
    market's sales, `PreStart`), nationally and by region."""
    national, by_region, pre_start = series.national, series.regional, setting.pre_start
    regions = setting.demand.regions.names
    out: Outputs = {}
    for year in setting.calendar.year_list:
        in_year = setting.calendar.years == year
        for key in (columns.ORDERS, columns.DELIVERIES, columns.REVENUE):
            out[columns.yearly(path, key, year)] = national[key][:, in_year].sum(axis=1)
        before = year == pre_start.year  # the start year's months before the start (market only)
        market_year = national["market"][:, in_year].sum(axis=1) + (pre_start.market if before else 0.0)
        nev_year = national["nev"][:, in_year].sum(axis=1) + (pre_start.nev if before else 0.0)
        out[columns.yearly(path, columns.SHARE, year)] = national["deliveries"][:, in_year].sum(axis=1) / market_year
        out[columns.yearly(path, columns.MARKET_TOTAL, year)] = market_year
        out[columns.yearly(path, columns.NEV_SHARE, year)] = nev_year / market_year
        units = series.bev_units[:, in_year].sum(axis=1)
        out[columns.yearly(path, columns.INCUMBENT_PRICE_CHANGE, year)] = np.where(
            units > 0, series.price_change[:, in_year].sum(axis=1) / np.maximum(units, 1e-300), 0.0)
        revenue, delivered = national["revenue"][:, in_year].sum(axis=1), national["deliveries"][:, in_year].sum(axis=1)
        out[columns.yearly(path, columns.GROSS_MARGIN, year)] = gross_margin(
            revenue, national["cost_of_goods"][:, in_year].sum(axis=1))
        with np.errstate(divide="ignore", invalid="ignore"):
            out[columns.yearly(path, columns.ENTRANT_PRICE, year)] = np.where(
                delivered > 0, (national["deliveries"][:, in_year] * national["price"][:, in_year]).sum(axis=1)
                / delivered, np.nan)
        fringe_units = series.fringe_units[:, :, in_year].sum(axis=2)
        fringe_change = series.fringe_change[:, :, in_year].sum(axis=2) / np.maximum(fringe_units, 1e-300)
        for f, group in enumerate(fringe_groups(setting)):
            out[columns.fringe_yearly(path, group, year)] = np.where(fringe_units[:, f] > 0, fringe_change[:, f], 0.0)
        for r, region in enumerate(regions):
            market_region = by_region["market"][:, r, in_year].sum(axis=1) + (
                pre_start.market_region[:, r] if before else 0.0)
            nev_region = by_region["nev"][:, r, in_year].sum(axis=1) + (
                pre_start.nev_region[:, r] if before else 0.0)
            out[columns.regional(path, columns.DELIVERIES_REGION, region, year)] = by_region["deliveries"][
                :, r, in_year].sum(axis=1)
            out[columns.regional(path, columns.MARKET_REGION, region, year)] = market_region
            out[columns.regional(path, columns.NEV_SHARE_REGION, region, year)] = nev_region / market_region
    return out


def monthly_outputs(path: str, setting: Setting, series: PathSeries) -> Outputs:
    """A path's deliveries and NEV share of new-car sales by month (float32: for charts)."""
    national = series.national
    out: Outputs = {}
    for t, label in enumerate(setting.calendar.labels):
        out[columns.monthly(path, columns.DELIVERIES_MONTH, label)] = national["deliveries"][:, t].astype(np.float32)
        out[columns.monthly(path, columns.NEV_SHARE_MONTH, label)] = (
            national["nev"][:, t] / national["market"][:, t]).astype(np.float32)
    return out


def record_entry_effects(setting: Setting, run: PathRun, shared: NoEntrantMonth, t: int, after_launch: np.ndarray,
                         buyers: MonthBuyers) -> None:
    """Month t, counting each buyer once (`simulation.welfare`, "Counting a buyer once"): the change in consumer
    surplus from the entrant against the same month without it (no entry cut, or incumbents at their
    no-entrant equilibrium prices): the incumbents' price response for every buyer, and the entrant's own
    contribution for the buyers whose car is delivered (the order book served at random,
    `welfare.queue_surplus`); the incumbents' variable-profit change (`incumbent_profit_change`); buyers and
    the entrant's orders with and without the scheduled launches (at the same prices; the orders waiting at
    the launch count in both); the launches' buyers' second choices in their first 12 months on sale."""
    size, effects, path_pricing = setting.size[:, t], run.effects, run.pricing
    no_purchase, shares_without_entrant = entry_outside_shares(setting, run, shared, t, after_launch, buyers)
    response, own, buying, buying_without, entrant_without = effects_of_outside_shares(
        no_purchase, setting.demand.types.weights, setting.price_coefficient)
    if after_launch.any():
        effects.response[:, t] = np.where(after_launch, size * response, 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            gain = np.where(after_launch & (buyers.orders > 0), size * own / buyers.orders, 0.0)
        effects.served[:, t], effects.book_value[:] = queue_surplus(
            effects.book_value, buyers.backlog_before, buyers.booked, gain, buyers.month.deliveries,
            buyers.month.backlog)
        if path_pricing is not None:
            effects.profit[:, t] = np.where(after_launch, incumbent_profit_change(
                setting, path_pricing, t, buyers, shares_without_entrant), 0.0)
    effects.buyers[:, t] = size * buying
    effects.buyers_without[:, t] = size * buying_without
    effects.orders_without[:, t] = size * entrant_without + buyers.booked - buyers.orders
    record_rival_choices(setting, effects, shared, t, buyers)


def entry_outside_shares(setting: Setting, run: PathRun, shared: NoEntrantMonth, t: int, after_launch: np.ndarray,
                         buyers: MonthBuyers) -> tuple[np.ndarray, np.ndarray]:
    """(the no-purchase shares of `welfare.month_effects` [5, N, T], national shares without the entrant [N, K])
    in month t: the month's market against the same market without the entrant, at the path's no-entrant
    prices. The draws whose shares are the month's shared market (`buyers.own_rows` False) take its figures;
    the others are computed, the market without the entrant being the shared one too where the path's
    no-entrant prices are the shared ones (they differ only for draws launched since the latest common
    re-solve month outside one)."""
    rows = buyers.own_rows
    if not rows.any():
        return shared.outside, shared.shares
    demand, draws = setting.demand, setting.size.shape[0]
    before, shares_without = shared.typed, shared.shares
    before_row = np.where(rows, np.where(after_launch, ON_SALE_KEPT, NOT_ON_SALE), NOT_COMPUTED)
    if run.pricing is not None:
        differ = after_launch & np.any(run.pricing.counterfactual != shared.prices, axis=1)
        if differ.any():
            state = demand.state(demand.lead + t, np.zeros(draws), np.zeros(draws), setting.parameters.product.price,
                                 np.zeros(draws, dtype=bool), np.full(draws, np.inf),
                                 run.pricing.pricing.lineup_prices(run.pricing.counterfactual))
            before, shares_differ = demand.shares(state, differ)
            before_row[differ] = np.arange(before.shape[0])
            shares_without = shares_without.copy()
            shares_without[differ] = shares_differ
    no_purchase = shared.outside.copy()
    update_outside_shares(no_purchase, buyers.typed, before, before_row, shared.launches)
    return no_purchase, shares_without


def record_rival_choices(setting: Setting, effects: EntryEffects, shared: NoEntrantMonth, t: int,
                         buyers: MonthBuyers) -> None:
    """Add month t's buyers of the scheduled launches in their first 12 months on sale and their second choices
    by group (then the entrant); the shared market's choices where the path's shares are its."""
    demand, size, typed, rows = setting.demand, setting.size[:, t], buyers.typed, buyers.own_rows
    weights, products = demand.types.weights, typed.shape[2]
    first_year = [k for k in range(demand.size_l) if 0 <= setting.calendar.months[t] - demand.launch_month[k] < 12]
    if first_year:
        to_groups = np.concatenate([setting.group_matrix, np.zeros((products + 1, 1))], axis=1)
        to_groups[products - 1, -1] = 1.0                                   # the entrant, its own group
        for k in first_year:
            source = demand.size_j + k
            units = size * (weights * typed[:, :, source]).sum(axis=1)
            choices = shared.second_choices(weights, source)
            if rows.any():
                choices = np.where(rows[:, None], second_choices(typed, weights, source, rows), choices)
            effects.rival_choices[:, k] += units[:, None] * (choices @ to_groups)
            effects.rival_units[:, k] += units


def incumbent_profit_change(setting: Setting, path_pricing: PathPricing, t: int, buyers: MonthBuyers,
                            shares_without_entrant: np.ndarray) -> np.ndarray:
    """[N] month t's change of the re-priced incumbents' variable profit net of VAT, CNY, the fringe included
    (`welfare.profit_change`): their units with the entrant (the month's logit sales plus the cancelled
    orders' buyers who return to them) at the path's prices, against the no-entrant world's units at its
    equilibrium prices (`shares_without_entrant` [N, K]), at the month's marginal costs (the fringe's own,
    without the solver's aggregate shift). Products that do not re-price (the scheduled launches; the fringe
    when it keeps its prices) have no recovered cost and are left out."""
    pricing = path_pricing.pricing
    supply, size = pricing.supply, setting.size[:, t]
    shift = 0.0 if supply.solver_shift is None else supply.solver_shift
    cost = pricing.cost(setting.demand.lead + t) - shift
    units_with = size[:, None] * buyers.shares[:, supply.index] + buyers.returning[:, supply.index]
    units_without = size[:, None] * shares_without_entrant[:, supply.index]
    return profit_change(units_with, path_pricing.guide, units_without, path_pricing.counterfactual, cost,
                         setting.parameters.finance.vat_rate)


def entry_outputs(path: str, model: Model, setting: Setting, series: PathSeries, effects: EntryEffects) -> Outputs:
    """A path's welfare by calendar year: the consumer-surplus change (the incumbents' price response for
    every buyer plus the entrant's own contribution for the cars delivered, `record_entry_effects`), the
    incumbents' variable-profit change (NaN with fixed prices: no costs recovered), the entrant's variable
    profit (revenue less cost of goods, net of VAT) and their sum, the total welfare change; order shares with
    and without the scheduled launches; then each launch's buyers' second choices by group (NaN where it sold
    nothing in its first year)."""
    out: Outputs = {}
    national = series.national
    surplus = effects.response + effects.served
    entrant_profit = national["revenue"] - national["cost_of_goods"]
    with np.errstate(invalid="ignore", divide="ignore"):
        for year in setting.calendar.year_list:
            in_year = setting.calendar.years == year
            consumers = surplus[:, in_year].sum(axis=1)
            incumbents = effects.profit[:, in_year].sum(axis=1)
            entrant = entrant_profit[:, in_year].sum(axis=1)
            out[columns.yearly(path, columns.SURPLUS_CHANGE, year)] = consumers
            out[columns.yearly(path, columns.ORDER_SHARE, year)] = (
                national["orders"][:, in_year].sum(axis=1) / effects.buyers[:, in_year].sum(axis=1))
            out[columns.yearly(path, columns.ORDER_SHARE_WITHOUT_RIVALS, year)] = (
                effects.orders_without[:, in_year].sum(axis=1) / effects.buyers_without[:, in_year].sum(axis=1))
            out[columns.yearly(path, columns.INCUMBENT_PROFIT_CHANGE, year)] = incumbents
            out[columns.yearly(path, columns.ENTRANT_VARIABLE_PROFIT, year)] = entrant
            out[columns.yearly(path, columns.WELFARE_CHANGE, year)] = consumers + incumbents + entrant
        groups = rival_groups(setting.group_names)
        for k, launch in enumerate(model.scenario.competition.launches):
            units = effects.rival_units[:, k]
            shares = effects.rival_choices[:, k, :] / units[:, None]
            for g, group in enumerate(groups):
                out[columns.rival_diversion(path, launch.name, group)] = np.where(units > 0, shares[:, g], np.nan)
    return out


def global_outputs(setting: Setting) -> Outputs:
    """Outputs shared by every path: the drawn delivery-ramp shape, the demand prior, public chargers at the
    end, alpha."""
    draws = setting.parameters.draws
    return {
        columns.AWARENESS_MIDPOINT_DRAWN: np.broadcast_to(setting.ramp_midpoint, (draws,)).astype(float),
        columns.AWARENESS_WIDTH_DRAWN: np.broadcast_to(setting.ramp_width, (draws,)).astype(float),
        columns.AWARENESS_PRIOR_DRAWN: setting.awareness.copy(),
        columns.LAUNCH_ORDERS_DRAWN: setting.launch_orders.copy(),
        columns.PUBLIC_CHARGERS_END: setting.demand.public_chargers_end,
        columns.PRICE_COEFFICIENT: setting.base.alpha,
    }
