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
(BLP contraction) so that the national base-period shares are reproduced exactly.

Everything here is an array function of per-draw values, so the regions can later be fed to the
random-coefficients module as consumer types: `consumer_types` gives the type weights and price-
coefficient deviations in the form `market.rc_logit.ConsumerTastes` takes.
"""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Callable

import numpy as np

from evlaunch.errors import DataError
from evlaunch.market.logit import logit_shares

CONTRACTION_TOLERANCE = 1e-13   # max |log observed share - log predicted share|
CONTRACTION_MAX_ITERATIONS = 10_000


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


def _normalised(values: np.ndarray, name: str) -> np.ndarray:
    if np.any(values < 0) or np.any(values.sum(axis=1) <= 0):
        raise DataError(f"regions: every {name} must be non-negative and at least one positive")
    return values / values.sum(axis=1, keepdims=True)


def region_set(names: list[str], value: Callable[[str], np.ndarray], draws: int) -> RegionSet:
    """Read the scenario's regions (`regions.<name>.<field>`) for every draw and normalise them."""
    def stack(field: str) -> np.ndarray:
        return np.stack([np.broadcast_to(value(f"regions.{name}.{field}"), (draws,)) for name in names], axis=1)

    weights = _normalised(stack("weight"), "weight")
    charging = _normalised(stack("charging_share"), "charging_share")
    if np.any(charging <= 0) or np.any(weights <= 0):
        raise DataError("regions: each region needs a positive weight and a positive charging_share "
                        "(charging density enters as a logarithm)")
    multiplier = stack("price_sensitivity")
    if np.any(multiplier <= 0):
        raise DataError("regions: price_sensitivity must be positive")
    multiplier = multiplier / (weights * multiplier).sum(axis=1, keepdims=True)
    return RegionSet(tuple(names), weights, multiplier, charging, stack("charging_growth_extra"),
                     stack("plate_utility"), stack("campaign_utility"))


def single_region(draws: int) -> RegionSet:
    """One national region: reproduces the plain logit exactly."""
    ones, zeros = np.ones((draws, 1)), np.zeros((draws, 1))
    return RegionSet(("national",), ones, ones.copy(), ones.copy(), zeros, zeros.copy(), zeros.copy())


def consumer_types(regions: RegionSet, alpha: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(weights [N, R], alpha_i [N, R]): the regions as consumer types for `rc_logit.ConsumerTastes`
    (alpha_mean = alpha; a type's price coefficient is alpha * m_r = alpha + alpha_i)."""
    alpha = np.asarray(alpha, dtype=float)
    return regions.weights, alpha[:, None] * (regions.price_sensitivity - 1.0)


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
                             regions: RegionSet, extras: np.ndarray | None = None,
                             start: np.ndarray | None = None) -> np.ndarray:
    """Mean utilities xi [N, J] (excluding price and regional terms) whose region-weighted shares equal
    `observed` [N, J] exactly (Berry 1994 / BLP 1995 contraction xi += log s_obs - log s_pred)."""
    observed = np.asarray(observed, dtype=float)
    if np.any(observed <= 0) or np.any(observed.sum(axis=1) >= 1):
        raise DataError("calibration needs positive shares that leave room for the outside option")
    log_observed = np.log(observed)
    outside = 1.0 - observed.sum(axis=1)
    alpha = np.asarray(alpha, dtype=float)
    effective_price = np.asarray(effective_price, dtype=float)
    xi = (log_observed - np.log(outside)[:, None] - alpha[:, None] * effective_price
          if start is None else np.array(start, dtype=float))
    # Each draw iterates until its own error is below the tolerance and is then left alone, so a draw's
    # result does not depend on which other draws share its chunk (runs are identical however split).
    active = np.arange(observed.shape[0])
    for _ in range(CONTRACTION_MAX_ITERATIONS):
        part = _subset(regions, active)
        extra = None if extras is None else extras[active]
        predicted = national_shares(regional_shares(regional_utilities(
            xi[active], alpha[active], effective_price[active], part, extra)), part)
        step = log_observed[active] - np.log(predicted)
        done = np.max(np.abs(step), axis=1) < CONTRACTION_TOLERANCE
        xi[active[~done]] += step[~done]
        active = active[~done]
        if active.size == 0:
            return xi
    raise DataError(f"the regional calibration did not converge in {CONTRACTION_MAX_ITERATIONS} iterations "
                    f"(max log-share error {np.max(np.abs(step)):.2e}); regions may be too different")


def _subset(regions: RegionSet, rows: np.ndarray) -> RegionSet:
    return RegionSet(regions.names, regions.weights[rows], regions.price_sensitivity[rows],
                     regions.charging_share[rows], regions.charging_growth_extra[rows], regions.plate_utility[rows],
                     regions.campaign_utility[rows])
