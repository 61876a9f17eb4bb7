"""Multinomial logit demand with an outside option: shares, calibration of the price coefficient and
inversion of mean utilities so the base period's shares are reproduced exactly.

Arrays carry any leading axes (draws, months); the last axis is products. The outside option (no new
car this month) has utility 0. Elasticities and diversion ratios (for any consumer types): `market.rc_logit`.
"""

from __future__ import annotations

import numpy as np


def logit_shares(utility: np.ndarray, available: np.ndarray | None = None) -> np.ndarray:
    """Choice shares of each product (the outside option takes the rest); safe for extreme utilities."""
    utility = np.asarray(utility, dtype=float)
    if available is not None:
        utility = np.where(available, utility, -np.inf)
    peak = np.maximum(np.max(utility, axis=-1, keepdims=True), 0.0)
    # one work array, updated in place (the same operations as exp(u - peak) / (exp(-peak) + sum))
    work = np.subtract(utility, peak, out=utility if available is not None else None)
    np.exp(work, out=work)
    denominator = np.exp(-peak) + work.sum(axis=-1, keepdims=True)
    work /= denominator
    return work


def price_coefficient(own_price_elasticity: np.ndarray, price: np.ndarray, shares: np.ndarray) -> np.ndarray:
    """Price coefficient (utility per CNY, negative) whose sales-weighted own-price elasticity
    alpha * p_j * (1 - s_j) averages to the given elasticity."""
    weights = shares / shares.sum(axis=-1, keepdims=True)
    scale = (weights * price * (1.0 - shares)).sum(axis=-1)
    return np.asarray(own_price_elasticity, dtype=float) / scale


def mean_utilities(shares: np.ndarray, outside_share: np.ndarray) -> np.ndarray:
    """Utilities that reproduce `shares` exactly: log(s_j) - log(s_0) (Berry 1994 inversion)."""
    return np.log(shares) - np.log(np.asarray(outside_share, dtype=float))[..., None]

