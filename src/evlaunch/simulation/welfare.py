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

Rationing. The log-sum counts every buyer who would choose the entrant as served. When orders wait in a
backlog, the gain of entry splits into (a) the rivals' price response: the market without the entrant at the
with-entry prices against the no-entry market, which every buyer gets, and (b) the entrant's own contribution:
the market with the entrant against the same market without it, which only buyers who get the car get. Under
random rationing (each would-be buyer served with the same probability phi, independent of taste), a type's
expected surplus is `phi CS(with the entrant) + (1 - phi) CS(without it)` (Conlon & Mortimer 2013,
"Demand estimation under incomplete product availability", AEJ: Microeconomics 5(4), the availability-weighted
log-sum; random rather than efficient rationing as in Glaeser & Luttmer 2003, AER 93(4)), so the change is
`(a) + phi (b)`. Within a type (b) per potential buyer is `-log(1 - s_e) / -alpha` (IIA), so the gain per
served buyer of the entrant is `-log(1 - s_e) / (s_e (-alpha))`, between `1 / -alpha` and
`1 / -alpha / (1 - s_e)`.

Counting a buyer once. A buyer who orders the entrant's car leaves the market for its rivals while the
order waits (the month's logit shares take them from the rivals when they order). A buyer whose order is
cancelled returns in the month of cancellation and buys their next choice: the cancellations are spread over
the products and the outside option by the entrant's buyers' logit second choices at that month's choice set
and prices (`returning_buyers`; the orders waiting at the launch, booked outside the month's logit, take
their buyers from the same second choices in the launch month; buyers are conserved: orders booked =
delivered + cancelled-and-rebought + cancelled-to-no-car + backlog). The gain of the entrant's own car (b) is counted only for cars delivered,
with the orders in the book served and cancelled at random (`queue_surplus`): each month's orders enter the
book with that month's gain per order; deliveries take the book's average gain, cancellations take theirs
away, so a cancelled buyer gains nothing from the car (they hold their second choice, which (a) counts).

Welfare. Consumer surplus is not welfare: `profit_change` is the change of the incumbents' variable profit,
sum_j (p_j - c_j) q_j with the entrant less without it (their re-priced equilibrium against the no-entrant
one, the returning buyers included), and the total change is consumer surplus + that + the entrant's own
variable profit (`simulation.simulate.entry_outputs`). Taxes and subsidies (the state's side) are left out.

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


def entry_surplus(typed_after: np.ndarray, typed_before: np.ndarray, weights: np.ndarray,
                  coefficient: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """([N] the rivals' price response, [N] the entrant's own contribution), CNY per potential buyer, of the
    change from the no-entry market `typed_before` to `typed_after` (the entrant its last product; module
    docstring, "Rationing"); the two add up to `surplus_change(typed_after, typed_before, ...)`."""
    entrant = np.zeros(typed_after.shape[2], dtype=bool)
    entrant[-1] = True
    without = shares_without(typed_after, entrant)
    return (surplus_change(without, typed_before, weights, coefficient),
            surplus_change(typed_after, without, weights, coefficient))


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


def returning_buyers(cancelled: np.ndarray, typed: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """[N, K + 1] where the buyers of the cancelled orders `cancelled` [N] (vehicles) go in the month of
    cancellation: the entrant's (last product's) second choices at the month's types' shares `typed`
    [N, T, K] (`second_choices`; the entrant's own column 0, the outside option last). A row sums to
    `cancelled` where the entrant has buyers this month; where it has none (nothing to learn their tastes
    from) they buy no car (all to the outside option). Negative `cancelled` moves buyers the other way: orders
    booked beyond the month's logit choices (those waiting at the launch) leave their second choices."""
    choices = second_choices(typed, weights, typed.shape[2] - 1)
    unseen = choices.sum(axis=1) <= 0.0
    choices[unseen, -1] = 1.0
    return cancelled[:, None] * choices


def queue_surplus(book_value: np.ndarray, backlog_before: np.ndarray, booked: np.ndarray,
                  gain_per_order: np.ndarray, delivered: np.ndarray, backlog_after: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(gain of the buyers served this month, the book's gain carried) [N], CNY: the entrant's own
    contribution to consumer surplus (module docstring, "Counting a buyer once") under random rationing of
    the order book. `book_value` is the gain of the `backlog_before` orders waiting; `booked` orders (cars)
    join with `gain_per_order` (CNY each); of the `backlog_before + booked` waiting, `delivered` are served
    and `backlog_after` carried, the rest cancelled, each with the book's mean gain."""
    value = book_value + booked * gain_per_order
    waiting = backlog_before + booked
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(waiting > 0, value / np.where(waiting > 0, waiting, 1.0), 0.0)
    return delivered * mean, backlog_after * mean


def profit_change(units_with: np.ndarray, price_with: np.ndarray, units_without: np.ndarray,
                  price_without: np.ndarray, cost: np.ndarray, vat: np.ndarray) -> np.ndarray:
    """[N] change of the products' variable profit net of VAT, CNY: sum_j [(p_j - c_j) q_j with the entrant
    - the same without it] / (1 + VAT). Units q [N, P] (vehicles), guide prices p and marginal costs c
    [N, P] (CNY incl. VAT), `vat` [N]."""
    margin_with = (price_with - cost) * units_with
    margin_without = (price_without - cost) * units_without
    return (margin_with - margin_without).sum(axis=1) / (1.0 + vat)
