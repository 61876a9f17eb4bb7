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

Compiled. Every month of every path asks for these figures over draws x types x products, so they are numba
kernels that read the types' shares once per (draw, type): the outside share `s0 = 1 - sum_k s[k]` (the logit
denominator, in share terms) is computed once and reused by the shares without the entrant or the scheduled
launches, the log-sums and the second choices; draws with nothing to compute (not on sale, nothing
cancelled) are skipped where the answer is zero. They are deterministic loops without fast-math that reduce
over products (the [N, T] arithmetic after them, logs and weighted sums over types, stays numpy's): sums run in
numpy's pairwise order (`_pairwise_sum`), the second choices' sum over types in einsum's order, divisions are
divisions, so the figures equal the plain numpy formulas' bit for bit (tests/simulation/test_welfare.py keeps
those formulas as the reference and checks equality).

Shapes: N draws, T consumer types, K products (the base lineup, the scheduled launches, the entrant last).
"""

from __future__ import annotations

import numba as nb
import numpy as np

TINY = 1e-300    # floor of a no-purchase share or of a remaining share, against log(0) and 0 / 0


PAIRWISE_BLOCK = 128   # numpy's PW_BLOCKSIZE: sums of up to this many terms are not split further


@nb.njit(cache=True, inline="always")
def _block_sum(values: np.ndarray, start: int, count: int) -> float:  # pragma: no cover - compiled
    """sum of values[start:start + count], count <= PAIRWISE_BLOCK, in numpy's order: below 8 terms one by
    one; else eight running sums combined as a tree, then the rest one by one."""
    if count < 8:
        total = 0.0
        for i in range(start, start + count):
            total += values[i]
        return total
    r0, r1, r2, r3 = values[start], values[start + 1], values[start + 2], values[start + 3]
    r4, r5, r6, r7 = values[start + 4], values[start + 5], values[start + 6], values[start + 7]
    end = start + count - count % 8
    i = start + 8
    while i < end:
        r0 += values[i]
        r1 += values[i + 1]
        r2 += values[i + 2]
        r3 += values[i + 3]
        r4 += values[i + 4]
        r5 += values[i + 5]
        r6 += values[i + 6]
        r7 += values[i + 7]
        i += 8
    total = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < start + count:
        total += values[i]
        i += 1
    return total


@nb.njit(cache=True, inline="always")
def _pairwise_sum(values: np.ndarray, start: int, count: int) -> float:  # pragma: no cover - compiled
    """sum of values[start:start + count] in numpy's pairwise order (`np.add.reduce` over a contiguous axis:
    blocks of up to PAIRWISE_BLOCK terms by `_block_sum`, longer runs split into a first part of half the
    terms rounded down to a multiple of 8 and the rest, added), so a compiled sum equals numpy's `.sum()` bit
    for bit. The split is walked with an explicit stack (numba cannot cache recursive functions), in
    `_pairwise_split` (apart, so that a short sum allocates nothing)."""
    if count <= PAIRWISE_BLOCK:
        return _block_sum(values, start, count)
    return _pairwise_split(values, start, count)


@nb.njit(cache=True)
def _pairwise_split(values: np.ndarray, start: int, count: int) -> float:  # pragma: no cover - compiled
    """`_pairwise_sum` of more than PAIRWISE_BLOCK terms."""
    starts, counts = np.empty(64, dtype=np.int64), np.empty(64, dtype=np.int64)
    stage, partial = np.zeros(64, dtype=np.int64), np.empty(64)
    starts[0], counts[0], top, done = start, count, 0, 0
    while top >= 0:
        here, size = starts[top], counts[top]
        if size <= PAIRWISE_BLOCK:
            partial[done] = _block_sum(values, here, size)
            done += 1
            top -= 1
            continue
        half = size // 2
        half -= half % 8
        if stage[top] == 2:                       # both halves summed: add them
            partial[done - 2] = partial[done - 2] + partial[done - 1]
            done -= 1
            top -= 1
            continue
        stage[top] += 1
        first = stage[top] == 1
        top += 1
        starts[top] = here if first else here + half
        counts[top] = half if first else size - half
        stage[top] = 0
    return partial[0]


@nb.njit(cache=True, inline="always")
def _outside_share(shares: np.ndarray, start: int, products: int) -> float:  # pragma: no cover - compiled
    """A type's no-purchase share from its product shares shares[start:start + products], floored at TINY."""
    return max(1.0 - _pairwise_sum(shares, start, products), TINY)


@nb.njit(cache=True, inline="always")
def _outside_share_without(shares: np.ndarray, start: int, products: int, first: int, end: int,
                           row: np.ndarray) -> float:  # pragma: no cover - compiled
    """The no-purchase share of the type whose product shares are shares[start:start + products] once the
    products first..end-1 leave the choice set at unchanged utilities (module docstring: theirs become 0,
    every other's rises by 1 / (1 - the removed share)); `row` [K] is scratch and holds those shares on
    return. Three loops without a branch, so the divisions vectorise."""
    gone = 0.0
    for k in range(first, end):
        gone += shares[start + k]
    remaining = max(1.0 - gone, TINY)
    for k in range(first):
        row[k] = shares[start + k] / remaining
    for k in range(first, end):
        row[k] = 0.0
    for k in range(end, products):
        row[k] = shares[start + k] / remaining
    return _outside_share(row, 0, products)


ON_SALE_KEPT = -1   # `update_outside_shares` codes of a draw (a row of `before` is >= 0): on sale, out[2] kept
NOT_ON_SALE = -2    # not on sale: no change from the entrant
NOT_COMPUTED = -3   # left as it is


@nb.njit(cache=True)
def _type_outside_shares(typed, before, before_row, first_launch, end_launch, out):  # pragma: no cover - compiled
    """The kernel of `month_effects` (`typed`, `before` C-contiguous), into out [5, N, T]: each type's
    no-purchase share with every product (`typed`), without the entrant, in the no-entry market (these two
    the first where the entrant is not on sale: no change), without the scheduled launches
    first_launch..end_launch-1; then the entrant's share without those. `before_row` [N] per draw: the row of
    `before` with its no-entry market's shares (on sale), or ON_SALE_KEPT (on sale, out[2] kept), NOT_ON_SALE,
    NOT_COMPUTED (the draw's out kept)."""
    draws, types, products = typed.shape
    row = np.empty(products)
    shares, shares_before = typed.reshape(-1), before.reshape(-1)
    for n in range(draws):
        code = before_row[n]
        if code == NOT_COMPUTED:
            continue
        for t in range(types):
            start = (n * types + t) * products
            out[0, n, t] = _outside_share(shares, start, products)
            out[3, n, t] = _outside_share_without(shares, start, products, first_launch, end_launch, row)
            out[4, n, t] = row[products - 1]
            if code == NOT_ON_SALE:
                out[1, n, t] = out[2, n, t] = out[0, n, t]
                continue
            out[1, n, t] = _outside_share_without(shares, start, products, products - 1, products, row)
            if code >= 0:
                out[2, n, t] = _outside_share(shares_before, (code * types + t) * products, products)


def month_effects(typed: np.ndarray, before: np.ndarray, weights: np.ndarray, coefficient: np.ndarray,
                  on: np.ndarray, launches: tuple[int, int]
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One month's figures of entry per potential buyer [N] each, from the types' shares `typed` [N, T, K]
    (the entrant last) and those of the no-entry market `before` [N, T, K] (read only where `on`):

    - the rivals' price response and the entrant's own contribution to consumer surplus, CNY (module
      docstring, "Rationing"; 0 where `on` [N] bool, the entrant on sale, is False): with the no-entrant
      market at the with-entry prices (the entrant removed), `sum_t w_t (log s0_before - log
      s0_without) / -coefficient_t` and `sum_t w_t (log s0_without - log s0_after) / -coefficient_t`; the two
      add up to the change of the log-sum from `before` to `typed`;
    - the share of potential buyers choosing a new car, `sum_t w_t (1 - s0_t)`;
    - the same and the entrant's share had the products `launches` = (first, end) (the scheduled launches,
      products first..end-1) not come, at unchanged utilities.

    `weights` [N, T] sum to 1 per draw; `coefficient` [N, T] is each type's price coefficient (utility per CNY,
    negative). The kernel reduces over products (`outside_shares`); the [N, T] arithmetic (logs, sums over
    types) is numpy's (`effects_of_outside_shares`)."""
    return effects_of_outside_shares(outside_shares(typed, before, on, launches), weights, coefficient)


def outside_shares(typed: np.ndarray, before: np.ndarray, on: np.ndarray, launches: tuple[int, int]) -> np.ndarray:
    """[5, N, T] the no-purchase shares `month_effects` needs, per draw and type: with every product (`typed`),
    without the entrant, in the no-entry market `before` (these two equal to the first where `on` is False),
    without the scheduled launches `launches` = (first, end); then the entrant's share without those. A draw's
    figures are its own (`simulation.simulate` computes the draws every path shares once)."""
    draws = typed.shape[0]
    out = np.empty((5, draws, typed.shape[1]))
    update_outside_shares(out, typed, before, np.where(on, np.arange(draws), NOT_ON_SALE), launches)
    return out


def update_outside_shares(out: np.ndarray, typed: np.ndarray, before: np.ndarray, before_row: np.ndarray,
                          launches: tuple[int, int]) -> None:
    """`outside_shares` into `out` [5, N, T] (in place) for the draws `before_row` [N] asks for: the row of
    `before` [M, T, K] with a draw's no-entry market (the entrant on sale), ON_SALE_KEPT (on sale, its no-entry
    no-purchase share out[2] already there), NOT_ON_SALE, or NOT_COMPUTED (left as it is)."""
    first, end = launches
    _type_outside_shares(np.ascontiguousarray(typed), np.ascontiguousarray(before),
                         np.ascontiguousarray(before_row, dtype=np.int64), int(first), int(end), out)


def effects_of_outside_shares(no_purchase: np.ndarray, weights: np.ndarray, coefficient: np.ndarray
                              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """`month_effects` from its no-purchase shares `no_purchase` [5, N, T] (`outside_shares`)."""
    outside, no_entrant, outside_before, no_launches, entrant_no_launches = no_purchase
    log_no_entrant = np.log(no_entrant)
    response = np.einsum("nt,nt->n", weights, (np.log(outside_before) - log_no_entrant) / -coefficient)
    own = np.einsum("nt,nt->n", weights, (log_no_entrant - np.log(outside)) / -coefficient)
    return (response, own, (weights * (1.0 - outside)).sum(axis=1), (weights * (1.0 - no_launches)).sum(axis=1),
            (weights * entrant_no_launches).sum(axis=1))


@nb.njit(cache=True)
def _second_choices(typed, weights, source, rows):  # pragma: no cover - compiled
    """The kernel of `second_choices` (`typed` C-contiguous) for the draws `rows` [N] bool (other rows 0)."""
    draws, types, products = typed.shape
    out = np.zeros((draws, products + 1))
    buyers = np.empty(types)
    shares = typed.reshape(-1)
    for n in range(draws):
        if not rows[n]:
            continue
        for t in range(types):
            start = (n * types + t) * products
            own = shares[start + source]
            buyers[t] = weights[n, t] * own
            per_other = buyers[t] / max(1.0 - own, TINY)
            for k in range(source):                       # the source's own entry stays 0
                out[n, k] += per_other * shares[start + k]
            for k in range(source + 1, products):
                out[n, k] += per_other * shares[start + k]
            out[n, products] += per_other * _outside_share(shares, start, products)
        total = _pairwise_sum(buyers, 0, types)
        for k in range(products + 1):
            out[n, k] = out[n, k] / max(total, TINY) if total > 0 else 0.0
    return out


def second_choices(typed: np.ndarray, weights: np.ndarray, source: int, rows: np.ndarray | None = None
                   ) -> np.ndarray:
    """[N, K + 1] where product `source`'s buyers would go if it were not on sale, as shares of them (the
    products, then the outside option last; the source's own entry is 0; a row sums to 1, or is 0 where the
    source sells nothing): `sum_t w_t s_src,t s_k,t / (1 - s_src,t) / sum_t w_t s_src,t`. Only the draws
    `rows` [N] bool (default: all) are computed, the others are 0."""
    rows = np.ones(typed.shape[0], dtype=np.bool_) if rows is None else np.ascontiguousarray(rows, dtype=np.bool_)
    return _second_choices(np.ascontiguousarray(typed), weights, int(source), rows)


def returning_buyers(cancelled: np.ndarray, typed: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """[N, K + 1] where the buyers of the cancelled orders `cancelled` [N] (vehicles) go in the month of
    cancellation: the entrant's (last product's) second choices at the month's types' shares `typed`
    [N, T, K] (`second_choices`; the entrant's own column 0, the outside option last). A row sums to
    `cancelled` where the entrant has buyers this month; where it has none (nothing to learn their tastes
    from) they buy no car (all to the outside option). Negative `cancelled` moves buyers the other way: orders
    booked beyond the month's logit choices (those waiting at the launch) leave their second choices. Rows
    with nothing cancelled are 0 without computing their choices."""
    moving = cancelled != 0.0
    choices = _second_choices(np.ascontiguousarray(typed), weights, typed.shape[2] - 1, moving)
    unseen = moving & (choices.sum(axis=1) <= 0.0)
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
