"""Incumbents' Bertrand-Nash re-pricing inside the simulation (`competition.reprice = "bertrand"`).

Who sets prices. Every named model of the base lineup is priced by its group: a firm owns all models of
its `group` (`Lineup.groups`) and sets their prices jointly. Not re-priced: the three 'other BEV / PHEV /
ICE' aggregates (a competitive fringe that keeps its band price: an aggregate of many models has no
single owner or first-order condition), the scheduled competitor launches and the entrant (their prices
are scenario inputs; no base-period cost can be recovered for them, so an incumbent group that also owns
a launch does not internalise the launch's profit). The fixed-price products stay in demand: within each
consumer type t they are folded into the outside option, whose utility becomes log(1 + sum_f exp u_tf).
This is exact for the re-priced products' shares and price derivatives because the folded prices do not
move while incumbents re-price.

Consumer types. The types of `market.consumer_types` (regions x taste types), exactly as the simulation's
demand uses them: type weights w_t, price coefficient alpha * m_t, and each type's utility terms (its
region's charging, plate privilege, rural campaign and NEV drift, and its tastes for the products'
characteristics). For `market.rc_logit` they are types with alpha_mean = alpha, alpha_i = alpha (m_t - 1)
and the type-specific terms carried by x2 (one column per type, sigma_nu the identity).

Prices and policy. Utility depends on effective prices (guide price + purchase tax - subsidy); firms set
guide prices. The solver works in effective prices with the local map p_eff = r_j p + k_j, where r_j =
d p_eff / d p is the policy's marginal rate at the current guide price: 1 + the marginal purchase tax
(10 % / (1 + VAT) for ICEs; for NEVs less the relief fraction while the relief is below its cap). A
subsidy is a lump sum per vehicle (its price cap makes it a step in the price, derivative 0 almost
everywhere) and enters k_j. A firm maximises sum_k (p_k - c_k) s_k = sum_k (e_k / r_k) s_k with
e = p_eff - c_eff, c_eff = r c + k, so its first-order conditions in effective prices are the standard ones
with the ownership H'[j,k] = H[j,k] r_j / r_k (`solve_prices(..., rates=r)`, which the numba kernel
solves directly). The guide price follows from
p = p0 + (p_eff - p_eff0) / r (a policy threshold crossed inside one re-solve is not re-checked).

Costs. Marginal costs are recovered once, at the base period (base guide prices, the calibrated utilities
and regional terms, the base period's policy), from these first-order conditions, in guide-price terms
(CNY per vehicle incl. VAT, like guide prices). Afterwards they move with the battery pack cost: the
model's kWh times the change of the pack price since the base period, incl. VAT.
`dynamics.battery_pass_through` does not apply (it moves prices only when prices are fixed); in the
Bertrand run the equilibrium decides how much of a cost change reaches prices.

When prices are re-solved (per draw, each path separately). In the first simulated month; every January
(demand drifts: NEV trend, charging, range progress, ageing); in months where a scheduled competitor
launches or a purchase subsidy, purchase-tax, plate or rural-campaign rule changes; and in the entrant's
launch month (per draw). Between re-solves guide prices are held. Each re-solve starts from the prices in
force and solves every draw as its own market (`supply.equilibrium.solve_prices`; a market stops when
its own FOC residual meets the tolerance, so a draw's prices do not depend on which draws share its
batch: the simulation solves every path's markets due in a month in one call, `solve_markets`). A market
that does not converge keeps its last prices and is counted in `{path}.equilibrium_failures`.

The no-entrant counterfactual is solved in the same months for the same draws with the entrant
unavailable (once for all paths: in the common months, each from the previous common month's prices; in a
launch month, for the draws launching then, `IncumbentPricing.launch_counterfactual`);
`{path}.incumbent_price_change.{year}` is the named incumbent BEVs' mean of p / p_counterfactual - 1,
weighted by their units sold in the entrant's world, over the year's months (0 before the launch). In fixed mode it is the entry price cut (`competition.price_war_cut`).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numba as nb
import numpy as np

from evlaunch.market.calibration import BaseMarket
from evlaunch.market.demand import Demand, MonthState
from evlaunch.market.lineup import OTHER_PRODUCTS, Lineup
from evlaunch.market.market_data import MarketData
from evlaunch.market.policy import PLATE_PRIVILEGE, RURAL_CAMPAIGN, SUBSIDY, TAX_EXEMPTION, PolicySchedule
from evlaunch.market.rc_logit import (
    ConsumerTastes,
    ProductSet,
    choice_probabilities,
    diversion_from_probabilities,
    price_derivatives,
)
from evlaunch.supply.equilibrium import (
    EquilibriumOptions,
    EquilibriumWarning,
    PricingProblem,
    marginal_costs,
    ownership_matrix,
    solve_prices,
)

OUTSIDE = "outside"
MAX_EVALUATIONS = 2000   # zeta-map evaluations per market and re-solve (then Newton; always bounded)
# FOC residual <= EQUILIBRIUM_TOLERANCE (1e-12 share units) per market, Anderson steps, the numba kernel
REPRICING_OPTIONS = EquilibriumOptions(method="anderson", backend="numba", max_evaluations=MAX_EVALUATIONS)


@dataclass(frozen=True)
class TypeMarket:
    """The re-priced products of a batch of markets in `rc_logit` form (fixed-price products folded)."""

    delta: np.ndarray           # [n, P] mean utility at the effective prices in `products.price`
    products: ProductSet
    tastes: ConsumerTastes


def repriced_products(lineup: Lineup, fringe: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """(base-lineup indices of the products incumbents re-price, integer firm label of each); with `fringe`
    the 'other' products too, each its own price setter."""
    index = np.array([j for j, name in enumerate(lineup.names) if fringe or name not in OTHER_PRODUCTS], dtype=int)
    groups = [lineup.names[j] if lineup.names[j] in OTHER_PRODUCTS else lineup.groups[j] for j in index]
    labels = {group: k for k, group in enumerate(dict.fromkeys(groups))}
    return index, np.array([labels[g] for g in groups], dtype=np.int64)


def type_market(mean_utility: np.ndarray, effective: np.ndarray, extras: np.ndarray, available: np.ndarray,
                alpha: np.ndarray, weights: np.ndarray, sensitivity: np.ndarray, index: np.ndarray) -> TypeMarket:
    """Consumer types in `rc_logit` form; products outside `index` keep their prices and join the outside
    option.

    mean_utility, effective, available [n, K]; extras [n, T, K] (each type's utility terms); alpha [n];
    weights, sensitivity [n, T]."""
    delta, products = folded_products(mean_utility, effective, extras, available, alpha, sensitivity, index)
    return TypeMarket(delta, products, type_tastes(alpha, weights, sensitivity))


def type_tastes(alpha: np.ndarray, weights: np.ndarray, sensitivity: np.ndarray) -> ConsumerTastes:
    """The consumer types of `type_market` as `rc_logit.ConsumerTastes` (alpha [n]; weights, sensitivity
    [n, T]): they do not change over the months (`SupplySide.tastes` keeps every draw's)."""
    n, types = weights.shape
    return ConsumerTastes(alpha, alpha[:, None] * (sensitivity - 1.0),
                          np.broadcast_to(np.eye(types), (n, types, types)), weights)


def folded_products(mean_utility: np.ndarray, effective: np.ndarray, extras: np.ndarray, available: np.ndarray,
                    alpha: np.ndarray, sensitivity: np.ndarray, index: np.ndarray) -> tuple[np.ndarray, ProductSet]:
    """(mean utility [n, P] at the effective prices, the re-priced products `index` as `rc_logit.ProductSet`)
    of `type_market`, the fixed-price products folded into each type's outside option."""
    size = mean_utility.shape[1]
    coefficient = alpha[:, None] * sensitivity                                          # [n, T]
    fixed = np.ones(size, dtype=bool)
    fixed[index] = False
    x2 = _folded_terms(np.ascontiguousarray(mean_utility, dtype=float), np.ascontiguousarray(coefficient),
                       np.ascontiguousarray(effective, dtype=float), np.ascontiguousarray(extras, dtype=float),
                       np.ascontiguousarray(available, dtype=bool), fixed, np.ascontiguousarray(index, dtype=np.int64))
    products = ProductSet(x2, effective[:, index], available[:, index])
    return mean_utility[:, index] + alpha[:, None] * effective[:, index], products


@nb.njit(cache=True)
def _folded_terms(mean_utility, coefficient, effective, extras, available, fixed, index):  # pragma: no cover
    """[n, P, T] each type's terms of the re-priced products `index` [P] with the fixed-price products folded
    into the outside option: extras[b, t, index[p]] - log(1 + sum_f avail_f exp u_btf) over the products
    `fixed` [K] (u = mean_utility + coefficient[b, t] * effective + extras, `type_market`), shifted by
    max(0, largest u) as the array form was."""
    n, types, size = extras.shape
    out = np.empty((n, index.shape[0], types))
    for b in range(n):
        for t in range(types):
            c = coefficient[b, t]
            peak = 0.0
            for k in range(size):
                if fixed[k] and available[b, k]:
                    peak = max(peak, mean_utility[b, k] + c * effective[b, k] + extras[b, t, k])
            total = 0.0
            for k in range(size):
                if fixed[k] and available[b, k]:
                    total += math.exp(mean_utility[b, k] + c * effective[b, k] + extras[b, t, k] - peak)
            log_outside = peak + math.log(math.exp(-peak) + total)
            for p in range(index.shape[0]):
                out[b, p, t] = extras[b, t, index[p]] - log_outside
    return out


def effective_ownership(firms: np.ndarray, rate: np.ndarray) -> np.ndarray:
    """H'[b, j, k] = H[j, k] r_j / r_k: the ownership of the FOCs in effective prices (module docstring)."""
    same = ownership_matrix(np.broadcast_to(firms, rate.shape))
    return same * rate[:, :, None] / rate[:, None, :]


@dataclass(frozen=True)
class SupplySide:
    """Who re-prices and their marginal costs at the base period (per draw)."""

    index: np.ndarray       # [P] base-lineup indices of the re-priced products
    firms: np.ndarray       # [P] integer firm labels (groups)
    cost: np.ndarray        # [N, P] marginal cost, CNY per vehicle in guide-price terms (incl. VAT)
    battery: np.ndarray     # [N, P] kWh whose pack-cost change moves the cost (0 for ICEs)
    base_price: np.ndarray  # [N, P] base-period guide prices
    base_shares: np.ndarray  # [N, P] base-period shares of potential buyers (as the model reproduces them)
    foc_residual: np.ndarray  # [N] max |FOC| at the base prices with the recovered costs (share units)
    # [N, P] CNY added to a fringe product's cost in the pricing problem (0 for named models): its own-firm
    # FOC then holds at the base price with the fringe's markup (`fringe_markups`)
    solver_shift: np.ndarray | None = None
    tastes: ConsumerTastes | None = None  # every draw's consumer types in `rc_logit` form (`type_market`)

    @property
    def margin(self) -> np.ndarray:
        """(p - c) / p at the base period, [N, P]."""
        return (self.base_price - self.cost) / self.base_price


def base_market(lineup: Lineup, base: BaseMarket, index: np.ndarray) -> TypeMarket:
    """The base period as `type_market` (every base product on sale; the fringe folded)."""
    utility = base.quality + base.quality_adjustment
    available = np.ones(utility.shape, dtype=bool)
    return type_market(utility, base.effective_price, base.extras, available, base.alpha, base.types.weights,
                       base.types.price_sensitivity, index)


def recover_costs(lineup: Lineup, base: BaseMarket, policy: PolicySchedule, base_month: int,
                  vat: np.ndarray, fringe: bool = False) -> SupplySide:
    """Marginal costs from the Bertrand FOCs at the base period (module docstring); with `fringe` the
    'other' products are price setters too."""
    index, firms = repriced_products(lineup, fringe)
    market = base_market(lineup, base, index)
    _, shares = choice_probabilities(market.delta, market.products, market.tastes)
    jacobian = price_derivatives(market.delta, market.products, market.tastes)
    rate = 1.0 + policy.purchase_tax_rate(base.price, lineup.is_nev, base_month, vat)[:, index]
    ownership = effective_ownership(firms, rate)
    effective = base.effective_price[:, index]
    cost_effective = marginal_costs(effective, shares, jacobian, ownership)
    cost = base.price[:, index] - (effective - cost_effective) / rate
    margin = effective - cost_effective
    residual = shares + np.einsum("bjk,bkj,bk->bj", ownership, jacobian, margin)
    battery = np.nan_to_num(base.battery_kwh[:, index]) * lineup.is_nev[index][None, :]
    fringe_cost = base.price[:, index] - fringe_markups(market) / rate
    fringe = np.array([lineup.names[j] in OTHER_PRODUCTS for j in index])
    shift = np.where(fringe, cost - fringe_cost, 0.0)
    return SupplySide(index, firms, cost - shift, battery, base.price[:, index].copy(), shares,
                      np.max(np.abs(residual), axis=1), shift, market.tastes)


def fringe_markups(market: TypeMarket) -> np.ndarray:
    """[n, P] markups, in effective-price CNY, of a product sold by many small single-product firms: the logit
    FOC of a model with a negligible share, s_j / sum_t w_t |alpha_t| s_tj (the own-firm FOC's
    -s_j / (d s_j / d p_j) without the (1 - s_tj) factors). An 'other' product stands for many models, so its
    margin is theirs, not that of one firm owning the whole aggregate (which a large share would inflate)."""
    typed, shares = choice_probabilities(market.delta, market.products, market.tastes)
    tastes = market.tastes
    coefficient = tastes.alpha_mean[:, None] + tastes.alpha_i                       # [n, T]
    derivative = np.einsum("nt,nt,ntp->np", tastes.weights, coefficient, typed)     # sum_t w_t alpha_t s_tj
    return -shares / derivative


def solve_incumbents(state: MonthState, rows: np.ndarray, guide: np.ndarray, cost: np.ndarray, rate: np.ndarray,
                     demand: Demand, supply: SupplySide) -> tuple[np.ndarray, np.ndarray]:
    """Equilibrium guide prices [n, P] of the re-priced products for the draws `rows` (bool [N]) and whether
    each market converged [n]; a market that did not keeps `guide`. `state` was built with `guide` in force;
    `guide`, `cost` (guide terms) and `rate` (d p_eff / d p) are [N, P]."""
    return solve_markets([Markets(state, rows, guide, cost, rate)], demand, supply)[0]


@dataclass(frozen=True)
class Markets:
    """Draws to re-price in one state (`solve_incumbents`' arguments): rows [N] bool; guide, cost, rate [N, P]."""

    state: MonthState
    rows: np.ndarray
    guide: np.ndarray
    cost: np.ndarray
    rate: np.ndarray


def solve_markets(batches: list[Markets], demand: Demand, supply: SupplySide
                  ) -> list[tuple[np.ndarray, np.ndarray]]:
    """`solve_incumbents` of several batches (e.g. every path's draws due in one month) in one `solve_prices`
    call: each draw is its own market, so its prices are those it gets alone; per batch (guide prices [n, P],
    converged [n])."""
    index, types = supply.index, demand.types
    every = len(batches) == 1 and bool(batches[0].rows.all())

    def gathered(values: list[np.ndarray]) -> np.ndarray:
        return values[0] if every else np.concatenate([v[batch.rows] for v, batch in zip(values, batches)])

    def of_rows(values: np.ndarray) -> np.ndarray:
        return gathered([values] * len(batches))

    effective = gathered([batch.state.effective for batch in batches])
    alpha, sensitivity = of_rows(demand.alpha), of_rows(types.price_sensitivity)
    delta, products = folded_products(gathered([batch.state.mean_utility for batch in batches]), effective,
                                      gathered([batch.state.extras for batch in batches]),
                                      gathered([batch.state.available for batch in batches]), alpha, sensitivity,
                                      index)
    tastes = supply.tastes if every and supply.tastes is not None else type_tastes(alpha, of_rows(types.weights),
                                                                                     sensitivity)
    start = effective[:, index]
    rate_rows, guide_rows = gathered([b.rate for b in batches]), gathered([b.guide for b in batches])
    cost_effective = start - rate_rows * (guide_rows - gathered([b.cost for b in batches]))
    firms = np.broadcast_to(supply.firms, rate_rows.shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EquilibriumWarning)  # counted per draw instead
        problem = PricingProblem(delta=delta, products=products, tastes=tastes,
                                 costs=cost_effective, firm_ids=firms, rates=rate_rows)
        result = solve_prices(problem, start=start, options=REPRICING_OPTIONS)
    new_guide = guide_rows + (result.prices - start) / rate_rows
    ok = result.converged & np.all(np.isfinite(new_guide), axis=1) & np.all(new_guide > 0, axis=1)
    solved = np.where(ok[:, None], new_guide, guide_rows)
    ends = np.cumsum([solved.shape[0] if every else int(batch.rows.sum()) for batch in batches])
    return [(solved[end - size:end], ok[end - size:end])
            for end, size in zip(ends, np.diff(np.concatenate([[0], ends])))]


def resolve_months(demand: Demand, horizon: int) -> np.ndarray:
    """[horizon] bool: months (after the start) in which every draw's prices are re-solved."""
    lead, policy = demand.lead, demand.policy
    common = np.zeros(horizon, dtype=bool)
    launches = set(demand.launch_month.tolist()) | demand.extra_subsidy.changes()
    for t in range(horizon):
        step = lead + t
        month = int(demand.months[step])
        if t == 0 or month % 12 == 0 or month in launches:
            common[t] = True
            continue
        for instrument in (SUBSIDY, TAX_EXEMPTION, RURAL_CAMPAIGN, PLATE_PRIVILEGE):
            for powertrain in ("BEV", "PHEV"):
                if policy.applied(instrument, powertrain, month).rule is not \
                        policy.applied(instrument, powertrain, month - 1).rule:
                    common[t] = True
    return common


@dataclass(frozen=True)
class Entrant:
    """The entrant's car as one path offers it, per draw."""

    utility: np.ndarray         # [N] mean utility excluding price and NEV terms (quality, brand, awareness)
    price: np.ndarray           # [N] guide price incl. VAT, CNY
    launch_index: np.ndarray    # [N] launch month, months after the scenario start (inf: never)


class IncumbentPricing:
    """Bertrand re-pricing for one simulation call: costs recovered once, then one `PathPricing` per path."""

    def __init__(self, data: MarketData, vat_rate: np.ndarray, base: BaseMarket, demand: Demand) -> None:
        """`vat_rate` [N]: VAT included in guide prices."""
        self.demand = demand
        self.vat = vat_rate
        self.supply = recover_costs(data.lineup, base, demand.policy, round(data.base_mid_month), self.vat,
                                    fringe=data.scenario.market.fringe == "bertrand")
        self.common = resolve_months(demand, data.scenario.horizon_months)
        self.draws = base.alpha.shape[0]
        names = data.lineup.names
        self.is_fringe = np.array([names[j] in OTHER_PRODUCTS for j in self.supply.index])
        self.fringe_names = [names[j] for j in self.supply.index[self.is_fringe]]
        self.is_bev = np.array([data.lineup.powertrains[j] == "BEV" for j in self.supply.index]) & ~self.is_fringe
        self.base_price = base.price
        # month t -> (no-entrant prices [N, P], converged [N]): the same for every path, solved once
        self._counterfactual: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._cost: tuple[int, np.ndarray] | None = None
        # (month, solved [N], from prices [N, P], prices [N, P], converged [N]) of `launch_counterfactual`
        self._launch: tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None

    def counterfactual(self, t: int, entrant: Entrant) -> tuple[np.ndarray, np.ndarray]:
        """(no-entrant equilibrium guide prices [N, P], converged [N]) in common re-solve month t, solved
        once for all paths, each month from the previous common month's solution."""
        if t not in self._counterfactual:
            earlier = [k for k in self._counterfactual if k < t]
            start = self._counterfactual[max(earlier)][0] if earlier else self.supply.base_price
            step = self.demand.lead + t
            state = self.demand.state(step, np.zeros(self.draws), entrant.utility, entrant.price,
                                      np.zeros(self.draws, dtype=bool), entrant.launch_index,
                                      self.lineup_prices(start))
            self._counterfactual[t] = solve_incumbents(state, np.ones(self.draws, dtype=bool), start, self.cost(step),
                                                       self.rate(state), self.demand, self.supply)
        return self._counterfactual[t]

    def cost(self, step: int) -> np.ndarray:
        """[N, P] marginal costs in time step `step` (guide-price terms; the last step's are kept, read-only:
        every path asks for them)."""
        if self._cost is None or self._cost[0] != step:
            change = self.demand.pack_change[:, step:step + 1] * (1.0 + self.vat)[:, None]
            shift = 0.0 if self.supply.solver_shift is None else self.supply.solver_shift
            cost = self.supply.cost + shift + self.supply.battery * change
            cost.setflags(write=False)
            self._cost = (step, cost)
        return self._cost[1]

    def launch_counterfactual(self, t: int, rows: np.ndarray, start: np.ndarray, entrant: Entrant
                              ) -> tuple[np.ndarray, np.ndarray]:
        """(no-entrant equilibrium guide prices [N, P], converged [N]) in month t outside the common re-solve
        months for the draws `rows` (bool [N], those launching now), from the prices `start` [N, P] in force
        (other rows: not solved). The same for every path whose draw launches then from the same prices: solved
        once (this month's solutions are kept; a draw's solution is its own, `solve_incumbents`)."""
        if self._launch is None or self._launch[0] != t:
            self._launch = (t, np.zeros(self.draws, dtype=bool), start.copy(), start.copy(), np.ones(self.draws, bool))
        _, solved, starts, prices, ok = self._launch
        known = solved & np.all(starts == start, axis=1)
        need = rows & ~known
        if need.any():
            step = self.demand.lead + t
            state = self.demand.state(step, np.zeros(self.draws), entrant.utility, entrant.price,
                                      np.zeros(self.draws, dtype=bool), entrant.launch_index, self.lineup_prices(start))
            prices[need], ok[need] = solve_incumbents(state, need, start, self.cost(step), self.rate(state),
                                                      self.demand, self.supply)
            starts[need], solved[need] = start[need], True
        return prices, ok

    def rate(self, state: MonthState) -> np.ndarray:
        index = self.supply.index
        price = state.price[:, index]
        return 1.0 + self.demand.policy.purchase_tax_rate(price, self.demand.is_nev[index], state.month, self.vat)

    def lineup_prices(self, guide: np.ndarray) -> np.ndarray:
        prices = self.base_price.copy()
        prices[:, self.supply.index] = guide
        return prices

    def path(self) -> PathPricing:
        return PathPricing(self)


class PathPricing:
    """Incumbents' guide prices along one path, with the entrant and in the no-entrant counterfactual."""

    def __init__(self, pricing: IncumbentPricing) -> None:
        self.pricing = pricing
        draws = pricing.draws
        self.guide = pricing.supply.base_price.copy()          # [N, P] with the entrant (when on sale)
        self.counterfactual = self.guide.copy()                 # [N, P] never an entrant
        self.failures = np.zeros(draws)

    def due(self, t: int, entrant_utility: np.ndarray, entrant_price: np.ndarray, after_launch: np.ndarray,
            launch_index: np.ndarray) -> Markets | None:
        """Re-pricing in month `t` after the start, where due (common re-solve months, launches): sets the
        no-entrant prices `counterfactual` (solved once for every path) and returns the draws whose prices with
        the entrant are due (the entrant on sale in a common re-solve month, or launching) as `Markets`, which
        `solve_markets` solves together with other paths' and `apply` takes into `guide`; None when none is. The
        month's demand then follows at `lineup_prices(guide)`."""
        pricing = self.pricing
        entrant = Entrant(entrant_utility, entrant_price, launch_index)
        launching = launch_index == t
        common = bool(pricing.common[t])
        if not (common or launching.any()):
            return None
        if common:  # every draw, shared by all paths; not on sale yet: the entrant's world is the counterfactual
            prices, ok = pricing.counterfactual(t, entrant)
            self.counterfactual = prices.copy()
            self.failures += ~ok
            waiting = ~after_launch
            self.guide[waiting] = self.counterfactual[waiting]
        else:       # the draws launching now: both worlds at the same costs and demand
            prices, ok = pricing.launch_counterfactual(t, launching, self.counterfactual, entrant)
            self.counterfactual = self.counterfactual.copy()
            self.counterfactual[launching] = prices[launching]
            self.failures[launching] += ~ok[launching]
        rows_entrant = (after_launch & common) | launching
        if not rows_entrant.any():
            return None
        step = pricing.demand.lead + t
        state = pricing.demand.state(step, np.zeros(pricing.draws), entrant.utility, entrant.price, after_launch,
                                     entrant.launch_index, pricing.lineup_prices(self.guide))
        return Markets(state, rows_entrant, self.guide, pricing.cost(step), pricing.rate(state))

    def apply(self, markets: Markets, solution: tuple[np.ndarray, np.ndarray]) -> None:
        """Take the solved prices (`solve_markets`' answer for `markets`, from `due`) and count the failures."""
        solved, ok = solution
        guide = markets.guide.copy()
        guide[markets.rows] = solved
        self.guide = guide
        self.failures[markets.rows] += ~ok

    def bev_price_change(self, shares: np.ndarray, size: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(sum over named incumbent BEVs of units x (p / p_counterfactual - 1), their units) this month."""
        weighted, units = self._price_change(self.pricing.is_bev, shares, size)
        return weighted.sum(axis=1), units.sum(axis=1)

    def fringe_price_change(self, shares: np.ndarray, size: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(units x (p / p_counterfactual - 1), units) [N, F] of each re-priced 'other' product this month."""
        return self._price_change(self.pricing.is_fringe, shares, size)

    def _price_change(self, which: np.ndarray, shares: np.ndarray, size: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`which` [P]: the re-priced products; shares [N, K]; size [N] potential buyers -> [N, sum(which)]."""
        units = size[:, None] * shares[:, self.pricing.supply.index[which]]
        change = self.guide[:, which] / self.counterfactual[:, which] - 1.0
        return units * change, units


def entrant_diversion(typed: np.ndarray, weights: np.ndarray, coefficient: np.ndarray) -> np.ndarray:
    """Diversion ratios from the last product (the entrant) to every product and, last, the outside option,
    [N, K + 1] (the entrant's own entry is 0; a row sums to 1): D_k = -(d s_k / d p_e) / (d s_e / d p_e) from
    the consumer types' logit shares [N, T, K], type weights [N, T] and price coefficients alpha * m_t [N, T]
    (any positive factor, e.g. d p_eff / d p, cancels); `rc_logit.diversion_from_probabilities`."""
    row = diversion_from_probabilities(typed, weights, coefficient, sources=[typed.shape[2] - 1])[:, 0, :]
    ratios = np.concatenate([row, row[:, -1:]], axis=1)                # [N, K + 1], outside last
    ratios[:, -2] = 0.0
    return ratios


def diversion_groups(demand: Demand, lineup: Lineup, launch_groups: list[str]) -> tuple[list[str], np.ndarray]:
    """(group names incl. 'outside', [K + 1, G] 0/1 matrix mapping products and the outside option to groups).
    Each 'other BEV / PHEV / ICE' aggregate is its own group (the fringe has no owner); the entrant maps to
    nothing."""
    base = [name if name in OTHER_PRODUCTS else group for name, group in zip(lineup.names, lineup.groups)]
    owners = base + list(launch_groups) + [None, OUTSIDE]
    names = list(dict.fromkeys(g for g in owners if g is not None))
    matrix = np.zeros((len(owners), len(names)))
    for k, group in enumerate(owners):
        if group is not None:
            matrix[k, names.index(group)] = 1.0
    return names, matrix
