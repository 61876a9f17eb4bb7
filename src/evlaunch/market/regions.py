"""Regions of the new-car market (e.g. large cities vs lower-tier cities and rural areas).

Each region r holds a share `w_r` of the potential buyers, has its own price sensitivity (a multiplier
`m_r` on the price coefficient, normalised so the buyer-weighted mean is 1), its share of the public
charging points, and NEV utility bonuses for policies that act in it: the large-city plate privilege
(`plate_utility`, while the plate rules favour the powertrain) and rural NEV campaigns
(`campaign_utility`, while a campaign runs). All of these are scenario assumptions; the bundled data
hold no regional split. The timing of the plate rules and campaigns comes from `policy_schedule.csv`.

Utility of product k for a buyer in region r (logit within the region, outside option 0):

    u[r,k] = xi[k] + alpha * m_r * p_eff[k] + extra[r,k]
    extra[r,k] = nev[k] * (kappa * log(charging density_r / national base density) + campaign_r * A_campaign)
                 + plate_r * A_plate[k] (+ the scenario's common NEV drift)

National shares are the buyer-weighted sum over regions. The mean utilities `xi` are calibrated jointly
so that the national base-period shares are reproduced exactly.

Within each region buyers differ further (income, tastes for NEVs, body, size, range, ADAS, brand):
`market.consumer_types` splits each region into consumer types; the functions here take any object with
`weights` and `price_sensitivity` [N, T] (regions or consumer types) and extras [N, T, K].
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numba as nb
import numpy as np

from evlaunch.config.parameters import RegionParameters
from evlaunch.errors import DataError
from evlaunch.market.logit import logit_shares
from evlaunch.market.rc_logit import (
    INVERSION_TOLERANCE,
    MAX_NEWTON_STEP,
    ConsumerTastes,
    ProductSet,
    choice_probabilities,
    elasticities,
    evaluate_market,
    invert_market,
    solve_mean_utilities,
)

INVERSION_MAX_ITERATIONS = 10_000  # share evaluations per draw in the inversion over consumer types
ROUNDING_FLOOR = 1e-11          # log-share error below which an inversion stalled at rounding level has converged


@dataclass(frozen=True)
class RegionSet:
    """Per-draw region parameters, arrays [N, R] (R regions in the scenario's order)."""

    names: tuple[str, ...]
    weights: np.ndarray               # share of potential buyers, sums to 1 per draw
    price_sensitivity: np.ndarray     # multiplier on the price coefficient, buyer-weighted mean 1
    charging_share: np.ndarray        # share of public charging points, sums to 1 per draw
    charging_growth_extra: np.ndarray  # added to the national charging growth after the as-of date
    plate_utility: np.ndarray         # NEV utility while plate privileges are in force
    campaign_utility: np.ndarray      # NEV utility while a rural campaign runs

    @property
    def log_density_ratio(self) -> np.ndarray:
        """log(regional charging points per potential buyer / national), [N, R]."""
        return np.log(self.charging_share / self.weights)

    def rows(self, rows: np.ndarray) -> RegionSet:
        """The same regions for a subset of draws."""
        return RegionSet(self.names, self.weights[rows], self.price_sensitivity[rows], self.charging_share[rows],
                         self.charging_growth_extra[rows], self.plate_utility[rows], self.campaign_utility[rows])


def _normalised(values: np.ndarray, name: str) -> np.ndarray:
    if np.any(values < 0) or np.any(values.sum(axis=1) <= 0):
        raise DataError(f"field regions.*.{name}: got {np.min(values):.3g} or all zero; expected non-negative "
                        f"values, at least one positive")
    return values / values.sum(axis=1, keepdims=True)


def region_set(regions: Mapping[str, RegionParameters], draws: int) -> RegionSet:
    """The scenario's regions (name -> per-draw parameters, in order) for every draw, normalised."""
    names = list(regions)

    def stack(field: str) -> np.ndarray:
        return np.stack([np.broadcast_to(getattr(regions[name], field), (draws,)) for name in names], axis=1)

    weights = _normalised(stack("weight"), "weight")
    charging = _normalised(stack("charging_share"), "charging_share")
    if np.any(charging <= 0) or np.any(weights <= 0):
        raise DataError("field regions.*.weight / charging_share: expected each region to have a positive weight "
                        "and a positive charging_share "
                        "(charging density enters as a logarithm)")
    multiplier = stack("price_sensitivity")
    if np.any(multiplier <= 0):
        raise DataError(f"field regions.*.price_sensitivity: got {np.min(multiplier):.3g}; expected positive values")
    multiplier = multiplier / (weights * multiplier).sum(axis=1, keepdims=True)
    return RegionSet(tuple(names), weights, multiplier, charging, stack("charging_growth_extra"),
                     stack("plate_utility"), stack("campaign_utility"))


def single_region(draws: int) -> RegionSet:
    """One national region: reproduces the plain logit exactly."""
    ones, zeros = np.ones((draws, 1)), np.zeros((draws, 1))
    return RegionSet(("national",), ones, ones.copy(), ones.copy(), zeros, zeros.copy(), zeros.copy())


def nev_extras(regions: RegionSet, is_nev: np.ndarray, plate_active: np.ndarray, campaign_active: float,
               charging_term: np.ndarray, common: np.ndarray | float = 0.0) -> np.ndarray:
    """Regional NEV utility terms [N, R, K].

    is_nev [K]; plate_active [K] (1 where the product's powertrain has the plate privilege now);
    campaign_active: 1 while a rural campaign runs (or its share of base months); charging_term [N, R]:
    charging_effect * log(regional density / national base density); common [N]: drift shared by all NEVs.
    """
    nev = np.asarray(is_nev, dtype=float)
    per_region = regional_nev_utility(regions, campaign_active, charging_term, common)
    return (per_region[:, :, None] * nev[None, None, :]
            + regions.plate_utility[:, :, None] * np.asarray(plate_active, dtype=float)[None, None, :])


def regional_nev_utility(regions: RegionSet, campaign_active: float, charging_term: np.ndarray,
                         common: np.ndarray | float = 0.0) -> np.ndarray:
    """[N, R] utility every NEV gets in each region (before the plate privilege): the charging term, the rural
    campaign's while it runs (`campaign_active`) and the drift `common` [N] shared by all NEVs (`nev_extras`)."""
    common = np.asarray(common, dtype=float)
    return charging_term + regions.campaign_utility * campaign_active + (common[:, None] if common.ndim else common)


def regional_utilities(mean_utility: np.ndarray, alpha: np.ndarray, effective_price: np.ndarray,
                       regions: RegionSet, extras: np.ndarray | None = None) -> np.ndarray:
    """u[N, R, K] = mean_utility[N, K] + alpha[N] * m[N, R] * price[N, K] + extras[N, R, K]."""
    utility = (mean_utility[:, None, :]
               + (np.asarray(alpha, float)[:, None] * regions.price_sensitivity)[:, :, None]
               * effective_price[:, None, :])
    return utility if extras is None else utility + extras


def regional_shares(utility: np.ndarray, available: np.ndarray | None = None) -> np.ndarray:
    """Logit shares within each region, [N, R, K] (the outside option takes the rest of each region)."""
    return logit_shares(utility, None if available is None else np.asarray(available)[:, None, :])


def national_shares(shares: np.ndarray, regions: RegionSet) -> np.ndarray:
    """Buyer-weighted national shares [N, K] from regional shares [N, R, K]."""
    return (regions.weights[:, :, None] * shares).sum(axis=1)


def type_demand(alpha: np.ndarray, effective_price: np.ndarray, types,
                extras: np.ndarray | None = None) -> tuple[ProductSet, ConsumerTastes]:
    """The consumer `types` (weights and price_sensitivity [N, T]) as `market.rc_logit` demand whose mean
    utility is xi: each type's whole price coefficient alpha * m_t [N, T] is its `alpha_i` (so
    `alpha_mean` = 0 and delta = xi, CNY prices `effective_price` [N, J]), and its utility terms `extras`
    [N, T, J] are characteristics x2 [N, J, T] with `sigma_nu` the identity (exact: u = xi + extras +
    alpha m_t p)."""
    alpha = np.asarray(alpha, dtype=float)
    weights = np.asarray(types.weights, dtype=float)
    coefficient = alpha[:, None] * np.asarray(types.price_sensitivity, dtype=float)         # [N, T]
    draws, count = weights.shape
    price = np.asarray(effective_price, dtype=float)
    if extras is None:
        x2, sigma_nu = np.zeros(price.shape + (0,)), np.zeros((draws, count, 0))
    else:
        x2, sigma_nu = np.asarray(extras, dtype=float).transpose(0, 2, 1), np.broadcast_to(np.eye(count),
                                                                                          (draws, count, count))
    return ProductSet(x2, price), ConsumerTastes(np.zeros(draws), coefficient, sigma_nu, weights)


def calibrate_mean_utilities(observed: np.ndarray, alpha: np.ndarray, effective_price: np.ndarray,
                             types, extras: np.ndarray | None = None,
                             start: np.ndarray | None = None) -> np.ndarray:
    """Mean utilities xi [N, J] (excluding price and type terms) whose buyer-weighted shares over the
    consumer `types` (anything with `weights` and `price_sensitivity` [N, T], e.g. a `RegionSet` or
    `market.consumer_types.ConsumerTypes`) equal `observed` [N, J] exactly; `extras` [N, T, J].

    The BLP inversion `market.rc_logit.solve_mean_utilities` (Newton with a trust region; from its best
    point the contraction when Newton stops improving or overshoots into zero shares) on the types in
    `type_demand` form, from `start` (default: the plain logit's xi at the mean price coefficient).  Converged at `rc_logit.INVERSION_TOLERANCE` (1e-14) in log
    shares, or at rounding level below ROUNDING_FLOOR (1e-11); otherwise a DataError."""
    observed = _checked_shares(observed)
    alpha = np.asarray(alpha, dtype=float)
    effective_price = np.asarray(effective_price, dtype=float)
    if start is None:
        outside = 1.0 - observed.sum(axis=1)
        start = np.log(observed) - np.log(outside)[:, None] - alpha[:, None] * effective_price
    products, tastes = type_demand(alpha, effective_price, types, extras)
    result = solve_mean_utilities(observed, products, tastes, initial_delta=start,
                                  max_iterations=INVERSION_MAX_ITERATIONS, compiled=True)
    error = result.max_log_share_error
    if not np.all(result.converged | (error < ROUNDING_FLOOR)):
        raise DataError(_not_converged(np.nanmax(error)))
    return result.delta


def _not_converged(error: float) -> str:
    return (f"field market.tastes: the calibration over consumer types did not converge in "
            f"{INVERSION_MAX_ITERATIONS} iterations (max log-share error {error:.2e}); expected "
            f"taste spreads (sigma_*) and income_dispersion small enough that every type buys every "
            f"product with a share above rounding (try narrower ranges)")


def _checked_shares(observed: np.ndarray) -> np.ndarray:
    """The base-period shares [N, J] as floats; a DataError unless positive with a positive outside share."""
    observed = np.asarray(observed, dtype=float)
    if np.any(observed <= 0) or np.any(observed.sum(axis=1) >= 1):
        raise DataError(f"field market.outside_share: the base-period shares to calibrate must be positive and sum "
                        f"below 1 (got a smallest share of {np.min(observed):.3g} and a largest sum of "
                        f"{np.max(observed.sum(axis=1)):.3g}); expected an outside share in (0, 1) and sourced sales "
                        f"above zero for every product")
    return observed


PRICE_COEFFICIENT_TOLERANCE = 1e-10   # relative error of the implied sales-weighted own-price elasticity
PRICE_COEFFICIENT_MAX_ITERATIONS = 200
PRICE_COEFFICIENT_FLOOR = 1e-7        # accepted at the last iteration where the secant stalls short of 1e-10


def own_price_elasticities(alpha: np.ndarray, effective_price: np.ndarray, types, extras: np.ndarray | None,
                           xi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(own-price elasticities [N, J] w.r.t. the effective price, shares [N, J]) under the consumer types:
    e_j = p_j / s_j * sum_t w_t alpha m_t s_tj (1 - s_tj), the diagonal of `rc_logit.elasticities`."""
    products, tastes = type_demand(alpha, effective_price, types, extras)
    _, shares = choice_probabilities(xi, products, tastes)
    return np.diagonal(elasticities(xi, products, tastes), axis1=1, axis2=2), shares


def calibrate_price_coefficient(observed: np.ndarray, elasticity: np.ndarray, effective_price: np.ndarray,
                                basis: np.ndarray, types, extras: np.ndarray | None, alpha: np.ndarray,
                                xi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(alpha [N], xi [N, J]): the price coefficient whose implied sales-weighted own-price elasticity over
    the products `basis` [J] (bool) equals `elasticity` [N] under the consumer types, with the mean
    utilities that reproduce `observed` exactly. Starts from `alpha` and `xi` (e.g. the plain-logit values);
    each draw takes secant steps on log|alpha| against log|implied elasticity| (nearly proportional) until
    the relative error is below PRICE_COEFFICIENT_TOLERANCE (1e-10), each step's mean utilities by the BLP
    inversion of `calibrate_mean_utilities` (`rc_logit.invert_market`, 1e-14 in log shares), started from
    the previous step's moved by the change of each product's share-weighted price term. So alpha is
    determined to ~1e-10 relative on any CPU: where a draw stops can differ between machines, not how close
    it is. With few consumer types the secant can stall a little short (seen: 1.7e-8 with 4 types after a
    fresh numba compile); a draw still within PRICE_COEFFICIENT_FLOOR (1e-7, far inside the elasticity's
    own uncertainty) at the last iteration is accepted with the mean utilities of its last step, so shares
    are still reproduced exactly. Each draw's search runs on its own in one compiled kernel."""
    observed = _checked_shares(observed)
    draws = observed.shape[0]
    target = np.ascontiguousarray(np.broadcast_to(np.asarray(elasticity, dtype=float), (draws,)))
    price = np.ascontiguousarray(effective_price, dtype=float)
    weights = np.ascontiguousarray(types.weights, dtype=float)
    multiplier = np.ascontiguousarray(types.price_sensitivity, dtype=float)
    terms = (np.zeros(weights.shape + price.shape[1:]) if extras is None
             else np.ascontiguousarray(extras, dtype=float))
    alpha, xi, status, detail = _price_coefficients(
        np.ascontiguousarray(observed), target, price, np.ascontiguousarray(basis, dtype=bool), multiplier, weights,
        terms, np.array(alpha, dtype=float), np.array(xi, dtype=float))
    if np.any(status == 1):
        raise DataError(_not_converged(np.nanmax(detail[status == 1])))
    if np.any(status == 2):
        raise DataError(f"the price coefficient did not reach market.own_price_elasticity in "
                        f"{PRICE_COEFFICIENT_MAX_ITERATIONS} iterations (relative error "
                        f"{np.max(detail[status == 2]):.1e})")
    return alpha, xi


@nb.njit(cache=True)
def _implied_elasticity(s_ij, s, price, basis, coefficient, weights):  # pragma: no cover - compiled
    """The sales-weighted own-price elasticity over the products `basis` of shares s_ij [T, J], s [J]
    (`own_price_elasticities`: e_j = p_j / s_j * sum_t w_t alpha m_t s_tj (1 - s_tj))."""
    types, products = s_ij.shape
    total, weighted = 0.0, 0.0
    for j in range(products):
        if basis[j]:
            slope = 0.0
            for t in range(types):
                slope += weights[t] * coefficient[t] * s_ij[t, j] * (1.0 - s_ij[t, j])
            total += s[j]
            weighted += s[j] * (price[j] / s[j] * slope)
    return weighted / total


@nb.njit(cache=True)
def _price_coefficient_of_draw(  # noqa: PLR0913 - a compiled kernel takes its arrays one by one
        observed, target, price, basis, multiplier, weights, extras, alpha, xi):  # pragma: no cover - compiled
    """One draw of `calibrate_price_coefficient`: (alpha, status 0 ok / 1 inversion failed / 2 no alpha,
    the failed inversion's error or alpha's last relative error); xi [J] is updated in place."""
    types, products = extras.shape
    log_target = np.log(observed)
    available = np.ones(products, dtype=np.bool_)
    mu, coefficient = np.empty((types, products)), np.empty(types)
    s_ij, s, resid = np.empty((types, products)), np.empty(products), np.empty(products)
    last_log_alpha, last_log_implied = np.nan, np.nan
    for iteration in range(PRICE_COEFFICIENT_MAX_ITERATIONS):
        for t in range(types):
            coefficient[t] = alpha * multiplier[t]
            for j in range(products):
                mu[t, j] = extras[t, j] + coefficient[t] * price[j]
        solved, _, error = invert_market(mu, weights, log_target, available, xi, INVERSION_TOLERANCE,
                                         INVERSION_MAX_ITERATIONS, MAX_NEWTON_STEP)
        if not (error <= INVERSION_TOLERANCE or error < ROUNDING_FLOOR):
            return alpha, 1, error
        xi[:] = solved
        evaluate_market(xi, mu, weights, log_target, available, s_ij, s, resid)
        implied = _implied_elasticity(s_ij, s, price, basis, coefficient, weights)
        ratio = target / implied
        last = iteration == PRICE_COEFFICIENT_MAX_ITERATIONS - 1
        if abs(ratio - 1.0) < (PRICE_COEFFICIENT_FLOOR if last else PRICE_COEFFICIENT_TOLERANCE):
            return alpha, 0, 0.0
        # secant on log |implied| against log |alpha| (the elasticity is nearly proportional to alpha)
        log_alpha, log_implied = math.log(-alpha), math.log(-implied)
        slope = (log_implied - last_log_implied) / (log_alpha - last_log_alpha)
        if not (np.isfinite(slope) and 0.2 < slope < 5.0):
            slope = 1.0
        last_log_alpha, last_log_implied = log_alpha, log_implied
        moved = -math.exp(log_alpha + math.log(ratio) / slope)
        # the next start: each product's mean utility keeps its share-weighted utility at the new alpha
        for j in range(products):
            price_term = 0.0
            for t in range(types):
                price_term += weights[t] * multiplier[t] * s_ij[t, j]
            xi[j] -= (moved - alpha) * price[j] * price_term / s[j]
        alpha = moved
    return alpha, 2, abs(ratio - 1.0)


@nb.njit(cache=True)
def _price_coefficients(  # noqa: PLR0913 - a compiled kernel takes its arrays one by one
        observed, target, price, basis, multiplier, weights, extras, alpha, xi):  # pragma: no cover - compiled
    """`_price_coefficient_of_draw` for every draw: (alpha [N], xi [N, J], status [N], detail [N])."""
    draws = observed.shape[0]
    status, detail = np.zeros(draws, dtype=np.int64), np.zeros(draws)
    for n in range(draws):
        alpha[n], status[n], detail[n] = _price_coefficient_of_draw(observed[n], target[n], price[n], basis,
                                                                    multiplier[n], weights[n], extras[n],
                                                                    alpha[n], xi[n])
    return alpha, xi, status, detail
