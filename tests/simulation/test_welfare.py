"""What entry does to buyers (`simulation.welfare`): the consumer-surplus change against closed forms and
against the log-sum kernel checked on pyblp's Petrin case; shares and second choices without products. The
compiled kernels are checked against the plain numpy formulas kept here (`outside_shares`, `shares_without`,
`surplus_change`, `reference_second_choices`), themselves checked against the logit without the products."""

import numpy as np
import pytest

from evlaunch.market.rc_logit import ConsumerTastes, ProductSet, choice_probabilities, consumer_surplus
from evlaunch.simulation.welfare import (
    _pairwise_sum,
    month_effects,
    profit_change,
    queue_surplus,
    returning_buyers,
    second_choices,
)


def outside_shares(typed: np.ndarray) -> np.ndarray:
    """[N, T] each type's no-purchase share from its product shares [N, T, K] (the reference formula)."""
    return np.maximum(1.0 - typed.sum(axis=2), 1e-300)


def surplus_change(typed_after, typed_before, weights, coefficient):
    """[N] change of consumer surplus per potential buyer from `typed_before` to `typed_after`:
    sum_t w_t (log s0_before - log s0_after) / -coefficient_t (the reference formula)."""
    change = np.log(outside_shares(typed_before)) - np.log(outside_shares(typed_after))
    return np.einsum("nt,nt->n", weights, change / -coefficient)


def shares_without(typed: np.ndarray, removed: np.ndarray) -> np.ndarray:
    """[N, T, K] the types' shares once the products `removed` (bool [K]) leave the choice set at unchanged
    utilities (the reference formula)."""
    gone = typed[:, :, removed].sum(axis=2, keepdims=True)
    return np.where(removed[None, None, :], 0.0, typed / np.maximum(1.0 - gone, 1e-300))


def reference_second_choices(typed: np.ndarray, weights: np.ndarray, source: int) -> np.ndarray:
    """[N, K + 1] product `source`'s buyers' second choices, the outside option last (the reference formula)."""
    own = typed[:, :, source]
    others = np.concatenate([typed, outside_shares(typed)[:, :, None]], axis=2)
    others[:, :, source] = 0.0
    buyers = weights * own
    moved = np.einsum("nt,ntk->nk", buyers / np.maximum(1.0 - own, 1e-300), others)
    total = buyers.sum(axis=1)
    return np.where(total[:, None] > 0, moved / np.maximum(total, 1e-300)[:, None], 0.0)


def entry_surplus(typed_after, typed_before, weights, coefficient, on=None):
    """(the rivals' price response, the entrant's own contribution) [N] of `month_effects`."""
    on = np.ones(typed_after.shape[0], dtype=bool) if on is None else on
    products = typed_after.shape[2]
    response, own, *_ = month_effects(typed_after, typed_before, weights, coefficient, on, (products, products))
    return response, own


def random_market(seed: int, markets: int = 3, products: int = 6, types: int = 40):
    """Random-coefficients markets with income-like price heterogeneity (every type's alpha < 0)."""
    rng = np.random.default_rng(seed)
    x2 = rng.normal(size=(markets, products, 2))
    weights = rng.uniform(0.5, 1.5, size=(markets, types))
    weights /= weights.sum(axis=1, keepdims=True)
    tastes = ConsumerTastes(alpha_mean=-0.8, alpha_i=-0.5 * rng.uniform(0.0, 1.0, size=(markets, types)),
                            sigma_nu=rng.normal(size=(markets, types, 2)), weights=weights)
    return rng.normal(-1.0, 1.0, size=(markets, products)), ProductSet(x2, rng.uniform(1.0, 3.0, (markets, products))), tastes


def test_plain_logit_surplus_change_is_the_closed_form():
    # one type, products with mean utilities delta (price included); adding a product with utility d_new
    # raises CS by log(1 + exp(d_new) / (1 + sum exp delta)) / -alpha
    alpha, delta, d_new = -0.5, np.array([0.3, -1.2, 0.8]), 0.4
    before = np.exp(delta) / (1.0 + np.exp(delta).sum())
    every = np.append(delta, d_new)
    after = np.exp(every) / (1.0 + np.exp(every).sum())
    change = surplus_change(after[None, None, :], np.append(before, 0.0)[None, None, :], np.ones((1, 1)),
                            np.full((1, 1), alpha))
    expected = np.log1p(np.exp(d_new) / (1.0 + np.exp(delta).sum())) / -alpha
    np.testing.assert_allclose(change, [expected], rtol=1e-13)


@pytest.mark.parametrize("seed", range(5))
def test_surplus_change_matches_the_petrin_checked_kernel_and_is_positive_when_a_product_is_added(seed):
    delta, products, tastes = random_market(seed)
    available = np.ones_like(products.available)
    available[:, -1] = False                                         # the last product is the newcomer
    without = products.with_available(available)
    typed_after, _ = choice_probabilities(delta, products, tastes)
    typed_before, _ = choice_probabilities(delta, without, tastes)
    coefficient = tastes.price_derivative                             # alpha_mean + alpha_i, [B, I]
    change = surplus_change(typed_after, typed_before, tastes.weights, coefficient)
    kernel = consumer_surplus(delta, products, tastes) - consumer_surplus(delta, without, tastes)
    np.testing.assert_allclose(change, kernel, rtol=1e-10)
    assert np.all(change > 0)                                         # more choice at fixed prices never hurts
    # and a price cut by incumbents adds to it (prices fall, nothing else moves)
    cheaper, _ = choice_probabilities(delta, products, tastes, products.price * 0.9)
    assert np.all(surplus_change(cheaper, typed_before, tastes.weights, coefficient) > change)


def test_shares_without_products_equal_the_logit_without_them():
    delta, products, tastes = random_market(7)
    typed, _ = choice_probabilities(delta, products, tastes)
    removed = np.array([False, True, False, False, True, False])
    available = np.broadcast_to(~removed, products.available.shape).copy()
    expected, _ = choice_probabilities(delta, products.with_available(available), tastes)
    np.testing.assert_allclose(shares_without(typed, removed), expected, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(outside_shares(shares_without(typed, removed)), outside_shares(expected), rtol=1e-12)


def test_second_choices_are_where_a_removed_products_buyers_go():
    delta, products, tastes = random_market(11)
    typed, shares = choice_probabilities(delta, products, tastes)
    source = 2
    available = np.ones_like(products.available)
    available[:, source] = False
    typed_without, shares_without_source = choice_probabilities(delta, products.with_available(available), tastes)
    choices = second_choices(typed, tastes.weights, source)
    gained = np.concatenate([shares_without_source - shares,
                             (tastes.weights * (outside_shares(typed_without) - outside_shares(typed))).sum(
                                 axis=1, keepdims=True)], axis=1)
    gained[:, source] = 0.0
    np.testing.assert_allclose(choices, gained / shares[:, source:source + 1], rtol=1e-10)
    np.testing.assert_allclose(choices.sum(axis=1), 1.0, rtol=1e-13)
    assert np.all(choices[:, source] == 0.0)


def test_second_choices_of_a_product_that_sells_nothing_are_zero():
    typed = np.zeros((1, 2, 3))
    typed[:, :, 0] = 0.2
    assert np.all(second_choices(typed, np.full((1, 2), 0.5), 1) == 0.0)


def entry_market(seed: int, types: int = 40):
    """(with the entrant, without it at the no-entry prices, weights, price coefficients): random markets whose
    last product is the entrant, incumbents 3% cheaper after entry."""
    delta, products, tastes = random_market(seed, types=types)
    available = np.ones_like(products.available)
    available[:, -1] = False
    before, _ = choice_probabilities(delta, products.with_available(available), tastes)
    after, _ = choice_probabilities(delta, products, tastes, products.price * np.append(np.full(5, 0.97), 1.0))
    return after, before, tastes.weights, tastes.price_derivative


@pytest.mark.parametrize("seed", range(4))
def test_entry_surplus_splits_the_log_sum_into_the_price_response_and_the_entrants_own_gain(seed):
    after, before, weights, coefficient = entry_market(seed)
    response, own = entry_surplus(after, before, weights, coefficient)
    np.testing.assert_allclose(response + own, surplus_change(after, before, weights, coefficient), rtol=1e-12)
    entrant = np.arange(after.shape[2]) == after.shape[2] - 1
    # the response is the no-entrant market at the with-entry prices against the no-entry market
    np.testing.assert_allclose(response, surplus_change(shares_without(after, entrant), before, weights, coefficient),
                               rtol=1e-12)
    assert np.all(response > 0) and np.all(own > 0)                   # cheaper rivals, one more product


@pytest.mark.parametrize("seed", range(4))
def test_queue_surplus_is_the_log_sum_when_every_order_is_served_at_once_and_nothing_when_none_is(seed):
    after, before, weights, coefficient = entry_market(seed)
    response, own = entry_surplus(after, before, weights, coefficient)
    full = surplus_change(after, before, weights, coefficient)
    orders = np.full(full.shape, 1234.0)
    none = np.zeros_like(orders)
    served, left = queue_surplus(none, none, orders, own / orders, orders, none)
    np.testing.assert_allclose(response + served, full, rtol=1e-12)
    np.testing.assert_array_equal(left, 0.0)
    # nothing delivered, all cancelled: the price response only, nothing carried
    served, left = queue_surplus(none, none, orders, own / orders, none, none)
    np.testing.assert_array_equal(response + served, response)
    np.testing.assert_array_equal(left, 0.0)


def test_queue_surplus_carries_the_waiting_orders_gain_until_their_car_comes():
    # month 1: 100 orders at 50k each, 20 delivered, 60 wait (20 cancel); month 2: 40 orders at 80k join,
    # 100 waiting are all delivered: the cancelled fifth of month 1's orders never gains
    gain, carried = queue_surplus(np.zeros(1), np.zeros(1), np.array([100.0]), np.array([50e3]), np.array([20.0]),
                                  np.array([60.0]))
    np.testing.assert_allclose(gain, 20 * 50e3)
    np.testing.assert_allclose(carried, 60 * 50e3)
    second, rest = queue_surplus(carried, np.array([60.0]), np.array([40.0]), np.array([80e3]), np.array([100.0]),
                                 np.zeros(1))
    np.testing.assert_allclose(second, 60 * 50e3 + 40 * 80e3)
    np.testing.assert_allclose(gain + second, 80 * 50e3 + 40 * 80e3)     # delivered buyers' gains, once each
    np.testing.assert_array_equal(rest, 0.0)


@pytest.mark.parametrize("seed", range(4))
def test_cancelled_buyers_are_conserved_and_go_where_the_entrants_buyers_would(seed):
    after, _, weights, _ = entry_market(seed)
    cancelled = np.random.default_rng(seed).uniform(0.0, 5e3, after.shape[0])
    returning = returning_buyers(cancelled, after, weights)
    np.testing.assert_allclose(returning.sum(axis=1), cancelled, rtol=1e-12)   # every cancelled buyer lands once
    np.testing.assert_array_equal(returning[:, after.shape[2] - 1], 0.0)       # never back to the entrant
    np.testing.assert_allclose(returning, cancelled[:, None] * second_choices(after, weights, after.shape[2] - 1),
                               rtol=1e-12)
    assert np.all(returning >= 0.0)
    # an entrant without buyers this month: its cancelled buyers buy no car
    silent = after.copy()
    silent[:, :, -1] = 0.0
    np.testing.assert_allclose(returning_buyers(cancelled, silent, weights)[:, -1], cancelled)


@pytest.mark.parametrize("seed", range(4))
def test_incumbents_lose_profit_when_entry_adds_a_substitute_at_fixed_prices(seed):
    # the same prices with and without the entrant: every incumbent sells less (its odds are unchanged, the
    # outside option's share falls too), so profit at a positive margin falls
    rng = np.random.default_rng(seed)
    delta, products, tastes = random_market(seed)
    price = products.price
    _, shares = choice_probabilities(delta, products, tastes)
    entrant = ProductSet(np.concatenate([products.x2, rng.normal(size=(3, 1, 2))], axis=1),
                         np.concatenate([price, rng.uniform(1.0, 3.0, (3, 1))], axis=1))
    _, with_entrant = choice_probabilities(np.concatenate([delta, rng.normal(-1.0, 1.0, (3, 1))], axis=1),
                                           entrant, tastes)
    cost = 0.7 * price
    vat = np.full(3, 0.13)
    size = 1e6
    change = profit_change(size * with_entrant[:, :-1], price, size * shares, price, cost, vat)
    assert np.all(change < 0.0)
    np.testing.assert_allclose(change, (size * (price - cost) * (with_entrant[:, :-1] - shares)).sum(axis=1) / 1.13,
                               rtol=1e-12)
    np.testing.assert_array_equal(profit_change(size * shares, price, size * shares, price, cost, vat), 0.0)


def test_gain_per_served_buyer_of_one_type_is_the_closed_form():
    # plain logit, entrant share s: own gain per potential buyer log(1 / (1 - s)) / -alpha, so per buyer of the
    # entrant -log(1 - s) / (s (-alpha)), which lies between 1 / -alpha and 1 / (-alpha (1 - s))
    alpha, delta = -0.4, np.array([0.3, -1.2, 0.8, 0.1])
    shares = np.exp(delta) / (1.0 + np.exp(delta).sum())
    before = np.append(np.exp(delta[:-1]) / (1.0 + np.exp(delta[:-1]).sum()), 0.0)
    response, own = entry_surplus(shares[None, None, :], before[None, None, :], np.ones((1, 1)),
                                  np.full((1, 1), alpha))
    s = shares[-1]
    np.testing.assert_allclose(own / s, -np.log1p(-s) / (s * -alpha), rtol=1e-12)
    assert 1.0 / -alpha < own[0] / s < 1.0 / (-alpha * (1.0 - s))
    np.testing.assert_allclose(response, 0.0, atol=1e-15)              # same prices: no response


@pytest.mark.parametrize("seed", range(4))
def test_gain_per_served_buyer_is_bounded_by_the_types_closed_forms(seed):
    # the own gain per entrant buyer is a buyer-weighted mean of the types' -log(1 - s_t) / (s_t (-alpha_t)),
    # so it lies between the smallest 1 / -alpha_t and the largest 1 / (-alpha_t (1 - s_t))
    after, before, weights, coefficient = entry_market(seed)
    _, own = entry_surplus(after, before, weights, coefficient)
    s = after[:, :, -1]
    per_buyer = own / (weights * s).sum(axis=1)
    assert np.all(per_buyer >= (1.0 / -coefficient).min(axis=1))
    assert np.all(per_buyer <= (1.0 / (-coefficient * (1.0 - s))).max(axis=1))
    # and rationing leaves the gain per delivered car unchanged: it scales the gain and the cars alike
    delivered, booked = 0.3 * (weights * s).sum(axis=1), (weights * s).sum(axis=1)
    rationed, _ = queue_surplus(np.zeros_like(own), np.zeros_like(own), booked, own / booked, delivered,
                                0.5 * booked)
    np.testing.assert_allclose(rationed / delivered, per_buyer, rtol=1e-12)


def launch_market(seed: int, types: int = 40):
    """(with the entrant, without it, weights, price coefficients, on sale [N]) over 9 products (6 base, 2
    scheduled launches at 6..7, the entrant last) in 5 markets, the entrant not on sale in the second."""
    rng = np.random.default_rng(seed)
    markets, products = 5, 9
    x2 = rng.normal(size=(markets, products, 2))
    weights = rng.uniform(0.5, 1.5, size=(markets, types))
    weights /= weights.sum(axis=1, keepdims=True)
    tastes = ConsumerTastes(alpha_mean=-0.8, alpha_i=-0.5 * rng.uniform(0.0, 1.0, size=(markets, types)),
                            sigma_nu=rng.normal(size=(markets, types, 2)), weights=np.asfortranarray(weights))
    delta = rng.normal(-1.0, 1.0, size=(markets, products))
    market = ProductSet(x2, rng.uniform(1.0, 3.0, (markets, products)))
    available = np.ones_like(market.available)
    available[:, -1] = False
    before, _ = choice_probabilities(delta, market.with_available(available), tastes)
    after, _ = choice_probabilities(delta, market, tastes, market.price * np.append(np.full(products - 1, 0.97), 1.0))
    on = np.ones(markets, dtype=bool)
    on[1] = False
    return after, before, tastes.weights, tastes.price_derivative, on


@pytest.mark.parametrize("seed", range(4))
def test_month_effects_are_the_numpy_formulas(seed):
    after, before, weights, coefficient, on = launch_market(seed)
    response, own, buying, buying_without, entrant_without = month_effects(after, before, weights, coefficient,
                                                                           on, (6, 8))
    entrant, launches = np.arange(9) == 8, (np.arange(9) >= 6) & (np.arange(9) < 8)
    # same operations in the same order: equal to the last bit
    np.testing.assert_array_equal(response[on], surplus_change(shares_without(after, entrant), before, weights,
                                                               coefficient)[on])
    np.testing.assert_array_equal(own[on], surplus_change(after, shares_without(after, entrant), weights,
                                                          coefficient)[on])
    np.testing.assert_array_equal(response[~on], 0.0)
    np.testing.assert_array_equal(own[~on], 0.0)
    without = shares_without(after, launches)
    np.testing.assert_array_equal(buying, (weights * (1.0 - outside_shares(after))).sum(axis=1))
    np.testing.assert_array_equal(buying_without, (weights * (1.0 - outside_shares(without))).sum(axis=1))
    np.testing.assert_array_equal(entrant_without, (weights * without[:, :, -1]).sum(axis=1))
    # and the closed forms: buyers are the national shares' sum; the launches' buyers go to the others
    np.testing.assert_allclose(buying, np.einsum("nt,ntk->n", weights, after), rtol=1e-13)
    assert np.all(buying_without < buying) and np.all(entrant_without > (weights * after[:, :, -1]).sum(axis=1))


@pytest.mark.parametrize("seed", range(3))
def test_compiled_second_choices_are_the_numpy_formula_and_sum_to_the_buyers_who_moved(seed):
    after, _, weights, _, _ = launch_market(seed)
    after[2, :5, 6] = 0.0                           # some types do not buy launch 6
    after[3, :, 7] = 0.0                            # nobody buys launch 7 in market 3
    for source in range(9):
        choices = second_choices(after, weights, source)
        np.testing.assert_array_equal(choices, reference_second_choices(after, weights, source))
        sells = (weights * after[:, :, source]).sum(axis=1) > 0
        np.testing.assert_allclose(choices[sells].sum(axis=1), 1.0, rtol=1e-13)
        np.testing.assert_array_equal(choices[~sells], 0.0)
    cancelled = np.array([100.0, 0.0, -20.0, 0.0, 3.5])
    returning = returning_buyers(cancelled, after, weights)
    np.testing.assert_array_equal(returning, cancelled[:, None] * reference_second_choices(after, weights, 8))
    np.testing.assert_allclose(returning.sum(axis=1), cancelled, rtol=1e-13)


@pytest.mark.parametrize("count", [1, 5, 7, 8, 9, 29, 30, 31, 64, 127, 128, 129, 200, 257, 1000])
def test_compiled_sums_are_numpys_bit_for_bit(count):
    values = np.random.default_rng(count).uniform(0.0, 1.0, (4, count)) ** 8
    expected = values.sum(axis=1)
    np.testing.assert_array_equal([_pairwise_sum(row, 0, count) for row in values], expected)
    np.testing.assert_array_equal(_pairwise_sum(values.ravel(), count, count), expected[1])
