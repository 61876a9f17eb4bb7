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

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from evlaunch.config.parameters import RegionParameters
from evlaunch.errors import DataError
from evlaunch.market.logit import logit_shares

CONTRACTION_TOLERANCE = 1e-13   # max |log observed share - log predicted share|
CONTRACTION_MAX_ITERATIONS = 10_000
ROUNDING_FLOOR = 1e-11          # log-share error below which a stalled Newton iteration has converged
MAX_NEWTON_STEP = 1.0           # logit units: the most a Newton step moves any mean utility


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
    common = np.asarray(common, dtype=float)
    per_region = charging_term + regions.campaign_utility * campaign_active + (common[:, None] if common.ndim
                                                                                else common)
    return (per_region[:, :, None] * nev[None, None, :]
            + regions.plate_utility[:, :, None] * np.asarray(plate_active, dtype=float)[None, None, :])


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


def calibrate_mean_utilities(observed: np.ndarray, alpha: np.ndarray, effective_price: np.ndarray,
                             types, extras: np.ndarray | None = None,
                             start: np.ndarray | None = None) -> np.ndarray:
    """Mean utilities xi [N, J] (excluding price and type terms) whose buyer-weighted shares over the
    consumer `types` (anything with `weights` and `price_sensitivity` [N, T], e.g. a `RegionSet` or
    `market.consumer_types.ConsumerTypes`) equal `observed` [N, J] exactly; `extras` [N, T, J].

    Newton's method on log shares (the share Jacobian d s / d xi = sum_t w_t (diag s_t - s_t s_t')),
    with steps capped at MAX_NEWTON_STEP, typically 6-10 steps; a draw whose error stops falling for five
    steps above the rounding floor, or whose step overshoots into zero shares, continues from its best
    point with the BLP contraction xi += log s_obs - log s_pred (always convergent, slower).
    Converged at CONTRACTION_TOLERANCE in log shares, or at rounding level below ROUNDING_FLOOR."""
    observed = np.asarray(observed, dtype=float)
    if np.any(observed <= 0) or np.any(observed.sum(axis=1) >= 1):
        raise DataError("calibration needs positive shares that leave room for the outside option")
    log_observed = np.log(observed)
    outside = 1.0 - observed.sum(axis=1)
    alpha = np.asarray(alpha, dtype=float)
    effective_price = np.asarray(effective_price, dtype=float)
    weights, sensitivity = np.asarray(types.weights, dtype=float), np.asarray(types.price_sensitivity, dtype=float)
    xi = (log_observed - np.log(outside)[:, None] - alpha[:, None] * effective_price
          if start is None else np.array(start, dtype=float))
    # Each draw iterates until its own error is below the tolerance and is then left alone, so a draw's
    # result does not depend on which other draws share its chunk (runs are identical however split).
    draws = observed.shape[0]
    active = np.arange(draws)
    best = np.full(draws, np.inf)          # smallest error seen, and the xi that gave it
    best_xi = xi.copy()
    newton = np.ones(draws, dtype=bool)
    stalled = np.zeros(draws, dtype=int)
    error = np.zeros(0)
    for _ in range(CONTRACTION_MAX_ITERATIONS):
        w = weights[active]
        utility = (xi[active][:, None, :] + (alpha[active][:, None] * sensitivity[active])[:, :, None]
                   * effective_price[active][:, None, :])
        if extras is not None:
            utility = utility + extras[active]
        typed = logit_shares(utility)                                   # [n, T, J]
        predicted = np.einsum("nt,ntj->nj", w, typed)
        with np.errstate(divide="ignore", invalid="ignore"):
            step = log_observed[active] - np.log(predicted)
        error = np.max(np.abs(step), axis=1)
        # a Newton step that overshot into shares of 0 (or NaN): back to the best point, contraction from there
        broken = ~np.isfinite(error)
        if broken.any():
            rows = active[broken]
            xi[rows], newton[rows], stalled[rows] = best_xi[rows], False, 0
        improved = error < best[active]
        stalled[active] = np.where(improved | broken, 0, stalled[active] + 1)
        best_xi[active[improved]] = xi[active[improved]]
        best[active[improved]] = error[improved]
        # at rounding level (a few Newton steps without progress below ROUNDING_FLOOR) a draw is done
        done = ~broken & ((error < CONTRACTION_TOLERANCE) | ((stalled[active] >= 3) & (error < ROUNDING_FLOOR)))
        # Newton not improving for a while above the floor: the contraction (always convergent) from now on
        newton[active] &= ~((stalled[active] >= 5) & (error > ROUNDING_FLOOR))
        use = newton[active] & ~done & ~broken
        if use.any():
            weighted = typed[use] * w[use][:, :, None]
            jacobian = np.einsum("ntj,ntk->njk", weighted, typed[use])
            jacobian = -jacobian
            jacobian[:, np.arange(jacobian.shape[1]), np.arange(jacobian.shape[1])] += predicted[use]
            with np.errstate(all="ignore"):
                try:
                    newton_step = np.linalg.solve(jacobian, (predicted[use] * step[use])[..., None])[..., 0]
                except np.linalg.LinAlgError:
                    newton_step = np.full_like(step[use], np.nan)
            # a trust region: no mean utility moves more than MAX_NEWTON_STEP logit units in one step
            size = np.max(np.abs(newton_step), axis=1, keepdims=True)
            newton_step = newton_step / np.maximum(size / MAX_NEWTON_STEP, 1.0)
            finite = np.all(np.isfinite(newton_step), axis=1)
            step[np.flatnonzero(use)[finite]] = newton_step[finite]
        moving = ~done & ~broken
        xi[active[moving]] += step[moving]
        active = active[~done]
        if active.size == 0:
            return xi
    raise DataError(f"the calibration over consumer types did not converge in {CONTRACTION_MAX_ITERATIONS} "
                    f"iterations (max log-share error {np.nanmax(error):.2e}); types may be too different")


PRICE_COEFFICIENT_TOLERANCE = 1e-10   # relative error of the implied sales-weighted own-price elasticity
PRICE_COEFFICIENT_MAX_ITERATIONS = 200


def own_price_elasticities(alpha: np.ndarray, effective_price: np.ndarray, types, extras: np.ndarray | None,
                           xi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(own-price elasticities [N, J] w.r.t. the effective price, shares [N, J]) under the consumer types:
    e_j = p_j / s_j * sum_t w_t alpha m_t s_tj (1 - s_tj)."""
    coefficient = np.asarray(alpha, dtype=float)[:, None] * types.price_sensitivity            # [N, T]
    typed = regional_shares(regional_utilities(xi, alpha, effective_price, types, extras))    # [N, T, J]
    shares = national_shares(typed, types)
    slope = np.einsum("nt,ntj->nj", types.weights * coefficient, typed * (1.0 - typed))
    return effective_price * slope / shares, shares


def calibrate_price_coefficient(observed: np.ndarray, elasticity: np.ndarray, effective_price: np.ndarray,
                                basis: np.ndarray, types, extras: np.ndarray | None, alpha: np.ndarray,
                                xi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(alpha [N], xi [N, J]): the price coefficient whose implied sales-weighted own-price elasticity over
    the products `basis` [J] (bool) equals `elasticity` [N] under the consumer types, with the mean
    utilities that reproduce `observed` exactly. Starts from `alpha` and `xi` (e.g. the plain-logit values);
    each draw takes secant steps on log|alpha| against log|implied elasticity| (nearly proportional) until
    the relative error is below PRICE_COEFFICIENT_TOLERANCE."""
    alpha, xi = np.array(alpha, dtype=float), np.array(xi, dtype=float)
    target = np.broadcast_to(np.asarray(elasticity, dtype=float), alpha.shape)
    active = np.arange(alpha.shape[0])
    last_log_alpha = np.full(alpha.shape, np.nan)
    last_log_implied = np.full(alpha.shape, np.nan)
    for _ in range(PRICE_COEFFICIENT_MAX_ITERATIONS):
        part = types.rows(active)
        extra = None if extras is None else extras[active]
        xi[active] = calibrate_mean_utilities(observed[active], alpha[active], effective_price[active], part,
                                              extra, start=xi[active])
        own, shares = own_price_elasticities(alpha[active], effective_price[active], part, extra, xi[active])
        weights = shares[:, basis] / shares[:, basis].sum(axis=1, keepdims=True)
        implied = (weights * own[:, basis]).sum(axis=1)
        ratio = target[active] / implied
        done = np.abs(ratio - 1.0) < PRICE_COEFFICIENT_TOLERANCE
        # secant on log |implied| against log |alpha| (the elasticity is nearly proportional to alpha)
        log_alpha, log_implied = np.log(-alpha[active]), np.log(-implied)
        with np.errstate(invalid="ignore", divide="ignore"):
            slope = (log_implied - last_log_implied[active]) / (log_alpha - last_log_alpha[active])
        slope = np.where(np.isfinite(slope) & (slope > 0.2) & (slope < 5.0), slope, 1.0)
        last_log_alpha[active], last_log_implied[active] = log_alpha, log_implied
        alpha[active[~done]] = -np.exp(log_alpha + np.log(ratio) / slope)[~done]
        active = active[~done]
        if active.size == 0:
            return alpha, xi
    raise DataError(f"the price coefficient did not reach market.own_price_elasticity in "
                    f"{PRICE_COEFFICIENT_MAX_ITERATIONS} iterations (relative error {np.max(np.abs(ratio - 1)):.1e})")
