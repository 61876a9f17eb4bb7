"""What entry does to buyers (`simulation.welfare`): the consumer-surplus change against closed forms and
against the log-sum kernel checked on pyblp's Petrin case; shares and second choices without products."""

import numpy as np
import pytest

from evlaunch.market.rc_logit import ConsumerTastes, ProductSet, choice_probabilities, consumer_surplus
from evlaunch.simulation.welfare import outside_shares, second_choices, shares_without, surplus_change


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
