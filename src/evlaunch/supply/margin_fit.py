"""Price sensitivity from reported margins (`market.price_sensitivity = "china_margins"`).

The price coefficient is set per draw so that the gross margins (p - c) / p the Bertrand first-order
conditions imply at the base period (`supply.repricing.recover_costs`, the lineup's ownership: a group
prices its named models jointly; each 'other' product has the markup of many small single-product firms,
whether or not it re-prices in the simulation, `market.fringe`) average, over the firms of `market.margin_firms`, to the draw's `market.gross_margin`. A firm's
implied margin is the mean of its products' margins weighted by their base-period sales; a firm maps to
a lineup group or to an 'other' product (a firm whose models have no sourced sales is inside one).

The search runs on the calibrated sales-weighted own-price elasticity e (the calibration's own input,
`market.calibration.calibrate(..., elasticity=e)`): margins scale about as 1/|e|, so secant steps in
log |e| against log(m(e) / target) converge in a few steps. With `market.price_sensitivity = "us_elasticity"` the elasticity is the
scenario's (BLP 1995, US cars) and nothing is searched.

Margin basis. Prices and recovered costs are both in guide-price terms including VAT, so (p - c) / p is
the margin net of VAT too: (p / (1 + v) - c / (1 + v)) / (p / (1 + v)). Accounting gross margins put
fixed production costs (depreciation, plant labour) into the cost of sales and mix in other businesses
(batteries and electronics at BYD; Tesla's is global), so they sit below an economic margin over
marginal cost: matching them makes demand, if anything, too price sensitive.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from evlaunch.config.parameters import Parameters
from evlaunch.errors import DataError, ScenarioError
from evlaunch.market.calibration import BaseMarket, calibrate
from evlaunch.market.firm_margins import reported_margins
from evlaunch.market.lineup import Lineup
from evlaunch.market.market_data import MarketData
from evlaunch.supply.repricing import SupplySide, recover_costs

START_ELASTICITY = -5.0     # first guess of the sales-weighted own-price elasticity (the reference settles near -5.1)
MARGIN_TOLERANCE = 1e-6     # |mean implied margin - target| at which the search stops (fraction of price)
MAX_STEPS = 40


@dataclass(frozen=True)
class MarginFit:
    """The calibrated base period and the margins it implies, per draw."""

    base: BaseMarket
    supply: SupplySide
    elasticity: np.ndarray      # [N] sales-weighted own-price elasticity the search settled on
    firm_margin: np.ndarray     # [N, F] implied margin of each firm of market.margin_firms, in their order
    target: np.ndarray          # [N] market.gross_margin


def firm_weights(lineup: Lineup, supply: SupplySide, margin_firms: dict[str, str]) -> np.ndarray:
    """[N, F, P] base-sales weights of each firm's re-priced products (rows sum to 1). A firm maps to a
    lineup group or to an 'other' product; one that maps to no re-priced product is a ScenarioError."""
    owners = [lineup.names[j] if lineup.names[j].startswith("other ") else lineup.groups[j] for j in supply.index]
    weights = np.zeros((supply.base_shares.shape[0], len(margin_firms), len(owners)))
    for f, (firm, owner) in enumerate(margin_firms.items()):
        mine = np.array([o == owner for o in owners])
        if not mine.any():
            priced = ", ".join(dict.fromkeys(owners))
            raise ScenarioError(f"field market.margin_firms.{firm}: got {owner!r}, which prices no product of the "
                                f"base lineup; expected one of {priced}")
        shares = supply.base_shares * mine
        weights[:, f, :] = shares / shares.sum(axis=1, keepdims=True)
    return weights


def implied_firm_margins(lineup: Lineup, supply: SupplySide, margin_firms: dict[str, str]) -> np.ndarray:
    """[N, F] each firm's sales-weighted implied margin (p - c) / p at the base period."""
    return np.einsum("nfp,np->nf", firm_weights(lineup, supply, margin_firms), supply.margin)


def fringe_priced(data: MarketData) -> bool:
    """Whether the 'other' products set prices (market.fringe with Bertrand re-pricing)."""
    scenario = data.scenario
    return scenario.market.fringe == "bertrand" and scenario.competition.reprice == "bertrand"


def fit_margins(data: MarketData, parameters: Parameters) -> MarginFit:
    """Search the elasticity per draw so the firms' mean implied margin meets market.gross_margin."""
    market = data.scenario.market
    target = parameters.market.gross_margin
    if target is None:
        raise ScenarioError(f"scenario {data.scenario.name}: market.gross_margin is required with "
                            f"market.price_sensitivity = 'china_margins'")
    reported_margins(data.scenario.as_of, list(market.margin_firms))  # each firm has a row public by the as-of date
    target = np.asarray(target, dtype=float)
    if np.any(target <= 0):
        raise ScenarioError(f"field market.gross_margin: got a margin of {float(target.min()):.3f}; expected a "
                            f"positive margin (Bertrand first-order conditions imply p > c)")
    elasticity = np.full(parameters.draws, START_ELASTICITY)
    previous: tuple[np.ndarray, np.ndarray] | None = None
    base: BaseMarket | None = None
    earlier: tuple[np.ndarray, np.ndarray] | None = None   # (elasticity, alpha) of the calibration before `base`
    done, last_elasticity = np.zeros(parameters.draws, dtype=bool), elasticity
    for _ in range(MAX_STEPS):
        if base is None:
            base = calibrate(data, parameters, elasticity)
        else:  # each search from the draw's last calibration
            start = warm_start(base, last_elasticity, elasticity, earlier)
            earlier = (last_elasticity, base.alpha)
            base = kept(base, calibrate(data, parameters, elasticity, start), done)
        supply = recover_costs(data.lineup, base, data.policy, round(data.base_mid_month),
                               parameters.finance.vat_rate, fringe=True)
        margins = implied_firm_margins(data.lineup, supply, market.margin_firms)
        mean = margins.mean(axis=1)
        done = np.abs(mean - target) <= MARGIN_TOLERANCE
        if np.all(done):
            return MarginFit(base, supply, elasticity, margins, target)
        # a draw that has met the tolerance keeps its elasticity and its calibration, so its result does not
        # depend on the other draws of its batch (runs are identical however they are chunked)
        stepped, previous = secant_step(elasticity, mean, target, previous)
        last_elasticity, elasticity = elasticity, np.where(done, elasticity, stepped)
    worst = int(np.argmax(np.abs(mean - target)))
    raise DataError(f"field market.gross_margin: the price coefficient found no match for a margin of "
                    f"{target[worst]:.3f} in {MAX_STEPS} steps (implied {mean[worst]:.3f} at an elasticity of "
                    f"{elasticity[worst]:.2f}); expected a margin the lineup's Bertrand FOCs can imply")


def secant_step(elasticity: np.ndarray, margin: np.ndarray, target: np.ndarray,
                previous: tuple[np.ndarray, np.ndarray] | None) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """The next elasticity [N] and (log |e|, log margin gap) of this step: a secant step in log |e| against
    log(margin / target), the first (and any whose slope is not negative) with the slope -1 of margin ~ 1/|e|."""
    x, y = np.log(-elasticity), np.log(margin / target)
    slope = np.full_like(x, -1.0)
    if previous is not None:
        moved = np.abs(x - previous[0]) > 1e-12
        secant = np.divide(y - previous[1], x - previous[0], out=np.full_like(x, -1.0), where=moved)
        slope = np.where(secant < -1e-3, secant, -1.0)
    step = np.clip(-y / slope, -1.0, 1.0)       # at most a factor e per step
    return -np.exp(x + step), (x, y)


def warm_start(base: BaseMarket, elasticity: np.ndarray, new_elasticity: np.ndarray,
               earlier: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(alpha [N], xi [N, J]) to start the calibration at `new_elasticity` [N] from `base`, calibrated at
    `elasticity`: alpha moved along the secant of log |alpha| against log |e| through `earlier` (the
    (elasticity, alpha) of the calibration before, where it is one: under consumer types alpha grows
    faster than the elasticity, about as |e|^2 in the reference scenario), else scaled with the elasticity;
    xi moved by the change of the price term at the mean price sensitivity, so shares stay near the observed
    ones."""
    power = np.ones_like(elasticity)
    if earlier is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            secant = np.log(base.alpha / earlier[1]) / np.log(elasticity / earlier[0])
        power = np.where(np.isfinite(secant) & (secant > 0.2) & (secant < 5.0), secant, 1.0)
    alpha = base.alpha * (new_elasticity / elasticity) ** power
    xi = base.quality + base.quality_adjustment - (alpha - base.alpha)[:, None] * base.effective_price
    return alpha, xi


def kept(old: BaseMarket, new: BaseMarket, done: np.ndarray) -> BaseMarket:
    """`new` with the draws `done` [N] (bool) as in `old` (their elasticity has not moved)."""
    def pick(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.where(done.reshape((-1,) + (1,) * (a.ndim - 1)), a, b)
    return replace(new, alpha=pick(old.alpha, new.alpha), quality=pick(old.quality, new.quality),
                   quality_adjustment=pick(old.quality_adjustment, new.quality_adjustment))


def calibrate_market(data: MarketData, parameters: Parameters) -> BaseMarket:
    """The calibrated base period under the scenario's `market.price_sensitivity` (module docstring)."""
    if data.scenario.market.price_sensitivity == "china_margins":
        return fit_margins(data, parameters).base
    return calibrate(data, parameters)
