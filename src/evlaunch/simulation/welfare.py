"""What entry does to buyers, and what the announced rivals do to the entrant: pure functions on the consumer
types' logit shares.

Within one consumer type choice is a plain logit (type-I extreme-value errors, the outside option at utility
0), so from the type's shares `s[k]` (products) and `s0 = 1 - sum_k s[k]` (no purchase):

- the expected maximum utility (the log-sum, or inclusive value) is `log(1 + sum_k exp u_k) = -log s0`, and
  consumer surplus per potential buyer is that over the type's marginal utility of money, `-log(s0) /
  -coefficient` (CNY; `market.rc_logit.consumer_surplus`, checked against pyblp's Petrin (2002) minivan
  case, computes the same quantity from utilities; tests/simulation/test_welfare.py checks the two agree);
- removing products from the choice set leaves the others' odds unchanged (IIA holds within a type, not
  across types): a remaining product's share becomes `s[k] / (1 - sum_removed s)`, and the removed
  products' buyers go to product k in proportion `s[k] / (1 - s_removed)` (second choices).

Shapes: N draws, T consumer types, K products (the base lineup, the scheduled launches, the entrant last).
"""

from __future__ import annotations

import numpy as np


def outside_shares(typed: np.ndarray) -> np.ndarray:
    """[N, T] each type's no-purchase share from its product shares [N, T, K]."""
    return np.maximum(1.0 - typed.sum(axis=2), 1e-300)


def surplus_change(typed_after: np.ndarray, typed_before: np.ndarray, weights: np.ndarray,
                   coefficient: np.ndarray) -> np.ndarray:
    """[N] change of consumer surplus per potential buyer, CNY, from the market `typed_before` to
    `typed_after` (each [N, T, K] types' shares; the products need not be the same): the type-weighted
    change of the log-sum over each type's marginal utility of money, `sum_t w_t (log s0_before - log
    s0_after) / -coefficient_t`. `weights` [N, T] sum to 1 per draw; `coefficient` [N, T] is each type's
    price coefficient (utility per CNY, negative)."""
    change = np.log(outside_shares(typed_before)) - np.log(outside_shares(typed_after))
    return np.einsum("nt,nt->n", weights, change / -coefficient)


def shares_without(typed: np.ndarray, removed: np.ndarray) -> np.ndarray:
    """[N, T, K] the types' shares once the products `removed` (bool [K]) leave the choice set at unchanged
    utilities (their shares become 0, every other product's rises by 1 / (1 - the removed share))."""
    gone = typed[:, :, removed].sum(axis=2, keepdims=True)
    return np.where(removed[None, None, :], 0.0, typed / np.maximum(1.0 - gone, 1e-300))


def second_choices(typed: np.ndarray, weights: np.ndarray, source: int) -> np.ndarray:
    """[N, K + 1] where product `source`'s buyers would go if it were not on sale, as shares of them (the
    products, then the outside option last; the source's own entry is 0; a row sums to 1, or is 0 where the
    source sells nothing): `sum_t w_t s_src,t s_k,t / (1 - s_src,t) / sum_t w_t s_src,t`."""
    own = typed[:, :, source]                                                        # [N, T]
    others = np.concatenate([typed, outside_shares(typed)[:, :, None]], axis=2)      # [N, T, K + 1]
    others[:, :, source] = 0.0
    buyers = weights * own
    moved = np.einsum("nt,ntk->nk", buyers / np.maximum(1.0 - own, 1e-300), others)
    total = buyers.sum(axis=1)
    return np.where(total[:, None] > 0, moved / np.maximum(total, 1e-300)[:, None], 0.0)
