"""Random-coefficients logit demand: closed forms, derivatives, inversion and properties."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evlaunch.market.rc_logit import (
    ConsumerTastes,
    ProductSet,
    choice_probabilities,
    consumer_surplus,
    diversion_ratios,
    elasticities,
    mean_utility_at,
    pad_markets,
    price_derivatives,
    solve_mean_utilities,
    utilities,
)


def random_market(
    seed: int,
    markets: int = 3,
    products: int = 6,
    types: int = 40,
    chars: int = 2,
    alpha: float = -0.8,
    spread: float = 1.0,
):
    """Random-coefficients markets with income-like price heterogeneity (all alpha_i + alpha < 0)."""
    rng = np.random.default_rng(seed)
    x2 = rng.normal(size=(markets, products, chars))
    price = rng.uniform(1.0, 3.0, size=(markets, products))
    weights = rng.uniform(0.5, 1.5, size=(markets, types))
    weights /= weights.sum(axis=1, keepdims=True)
    tastes = ConsumerTastes(
        alpha_mean=alpha,
        alpha_i=-0.5 * rng.uniform(0.0, 1.0, size=(markets, types)),
        sigma_nu=spread * rng.normal(size=(markets, types, chars)),
        weights=weights,
    )
    delta = rng.normal(-1.0, 1.0, size=(markets, products))
    return delta, ProductSet(x2, price), tastes


def test_plain_logit_shares_equal_softmax_formula():
    delta = np.array([[1.0, -0.5, 0.3], [2.0, 2.0, -4.0]])
    price = np.array([[2.0, 1.0, 1.5], [1.0, 3.0, 0.5]])
    alpha = -0.7
    tastes = ConsumerTastes.plain_logit(alpha, markets=2)
    products = ProductSet(np.zeros((2, 3, 0)), price)
    new_price = price + 0.25
    _, shares = choice_probabilities(delta, products, tastes, new_price)
    u = delta + alpha * 0.25  # mean utility moves with alpha_mean when prices move
    expected = np.exp(u) / (1.0 + np.exp(u).sum(axis=1, keepdims=True))
    np.testing.assert_allclose(shares, expected, rtol=1e-14)
    np.testing.assert_allclose(mean_utility_at(delta, products, tastes, new_price), u, rtol=1e-15)


def test_probabilities_are_safe_for_extreme_utilities():
    delta = np.array([[800.0, 799.0, -900.0], [-1000.0, -1200.0, -999.0]])
    products = ProductSet(np.zeros((2, 3, 0)), np.ones((2, 3)))
    tastes = ConsumerTastes.plain_logit(0.0, markets=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _s_ij, shares = choice_probabilities(delta, products, tastes)
        cs = consumer_surplus(delta, products, ConsumerTastes.plain_logit(-1.0, markets=2))
    assert np.all(np.isfinite(shares)) and np.all(np.isfinite(cs))
    np.testing.assert_allclose(
        shares[0, :2], [1 / (1 + np.exp(-1.0)), np.exp(-1.0) / (1 + np.exp(-1.0))], rtol=1e-14
    )
    assert np.all(shares[1] <= 1e-300)  # exp(-999) underflows; no NaN from 0/0
    np.testing.assert_allclose(cs[0], 800.0 + np.log1p(np.exp(-1.0)), rtol=1e-14)


def test_unavailable_product_has_zero_share_and_equals_removing_it():
    delta, products, tastes = random_market(1)
    available = np.ones_like(products.available)
    available[:, 2] = False
    masked = products.with_available(available)
    s_ij, shares = choice_probabilities(delta, masked, tastes)
    assert np.all(shares[:, 2] == 0.0) and np.all(s_ij[:, :, 2] == 0.0)
    keep = [0, 1, 3, 4, 5]
    removed = ProductSet(products.x2[:, keep], products.price[:, keep])
    _, shares_removed = choice_probabilities(delta[:, keep], removed, tastes)
    np.testing.assert_allclose(shares[:, keep], shares_removed, rtol=1e-13)
    np.testing.assert_allclose(
        consumer_surplus(delta, masked, tastes), consumer_surplus(delta[:, keep], removed, tastes), rtol=1e-13
    )
    jac = price_derivatives(delta, masked, tastes)
    assert np.all(jac[:, 2, :] == 0.0) and np.all(jac[:, :, 2] == 0.0)
    np.testing.assert_allclose(
        jac[:, keep][:, :, keep], price_derivatives(delta[:, keep], removed, tastes), rtol=1e-12
    )
    assert np.all(np.isnan(elasticities(delta, masked, tastes)[:, 2]))


def test_contraction_recovers_mean_utilities():
    delta, products, tastes = random_market(2, spread=2.0)
    _, shares = choice_probabilities(delta, products, tastes)
    result = solve_mean_utilities(shares, products, tastes)
    assert result.converged.all() and np.all(result.iterations > 0)
    assert result.max_log_share_error.max() <= 1e-14
    np.testing.assert_allclose(result.delta, delta, rtol=1e-11, atol=1e-12)
    _, again = choice_probabilities(result.delta, products, tastes)
    np.testing.assert_allclose(again, shares, rtol=1e-13)


def test_contraction_with_padding_and_a_cap_reports_non_convergence():
    delta, products, tastes = random_market(3, spread=2.0)
    available = products.available.copy()
    available[0, -1] = False
    products = products.with_available(available)
    _, shares = choice_probabilities(delta, products, tastes)
    result = solve_mean_utilities(shares, products, tastes)
    assert result.converged.all() and result.delta[0, -1] == 0.0
    np.testing.assert_allclose(result.delta[available], delta[available], rtol=1e-11, atol=1e-12)
    capped = solve_mean_utilities(shares, products, tastes, max_iterations=1)
    assert not capped.converged.any() and np.all(capped.iterations == 1)


@pytest.mark.parametrize("types,spread", [(2, 5.0), (3, 8.0), (4, 8.0)])
def test_inversion_survives_few_types_with_very_wide_tastes(types, spread):
    """Shares down to ~1e-14: plain Newton overshoots into zero shares and the contraction alone crawls
    (neither converges in 10,000 evaluations here); the trust region, the return to the best point and the
    contraction from there reproduce the shares."""
    delta, products, tastes = random_market(7, markets=20, products=8, types=types, spread=spread)
    _, shares = choice_probabilities(delta, products, tastes)
    result = solve_mean_utilities(shares, products, tastes, max_iterations=10_000)
    assert result.converged.all() and result.iterations.max() < 200
    np.testing.assert_allclose(result.delta, delta, rtol=0, atol=1e-8)
    plain = solve_mean_utilities(shares, products, tastes, max_iterations=2_000, max_step=np.inf)
    assert not plain.converged.all()


def test_closed_form_without_heterogeneity():
    shares = np.array([[0.2, 0.1, 0.05], [0.3, 0.3, 0.01]])
    products = ProductSet(np.zeros((2, 3, 0)), np.ones((2, 3)))
    result = solve_mean_utilities(shares, products, ConsumerTastes.plain_logit(-1.0, markets=2))
    outside = 1 - shares.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(result.delta, np.log(shares) - np.log(outside), rtol=1e-15)
    assert np.all(result.iterations == 0) and result.converged.all()


@pytest.mark.parametrize("bad", [[[0.5, 0.6]], [[0.0, 0.1]], [[-0.1, 0.2]]])
def test_contraction_rejects_impossible_shares(bad):
    products = ProductSet(np.zeros((1, 2, 0)), np.ones((1, 2)))
    with pytest.raises(ValueError, match="shares"):
        solve_mean_utilities(np.array(bad), products, ConsumerTastes.plain_logit(-1.0, markets=1))


def test_price_derivatives_match_finite_differences():
    delta, products, tastes = random_market(4)
    jac = price_derivatives(delta, products, tastes)
    h = 1e-6
    for k in range(products.products):
        up, down = products.price.copy(), products.price.copy()
        up[:, k] += h
        down[:, k] -= h
        _, s_up = choice_probabilities(delta, products, tastes, up)
        _, s_down = choice_probabilities(delta, products, tastes, down)
        np.testing.assert_allclose(jac[:, :, k], (s_up - s_down) / (2 * h), rtol=1e-6, atol=1e-11)


def test_plain_logit_elasticities_and_diversion_closed_forms():
    delta = np.array([[0.5, -0.2, 0.1, -1.0]])
    price = np.array([[2.0, 1.5, 3.0, 1.0]])
    alpha = -1.3
    products = ProductSet(np.zeros((1, 4, 0)), price)
    tastes = ConsumerTastes.plain_logit(alpha, markets=1)
    _, s = choice_probabilities(delta, products, tastes)
    e = elasticities(delta, products, tastes)[0]
    expected = -alpha * price[0][None, :] * s[0][None, :] * np.ones((4, 4))
    np.fill_diagonal(expected, alpha * price[0] * (1 - s[0]))
    np.testing.assert_allclose(e, expected, rtol=1e-13)
    d = diversion_ratios(delta, products, tastes)[0]
    expected = s[0][None, :] / (1 - s[0][:, None]) * np.ones((4, 4))
    np.fill_diagonal(expected, (1 - s[0].sum()) / (1 - s[0]))
    np.testing.assert_allclose(d, expected, rtol=1e-13)


def test_diversion_rows_sum_to_one_with_heterogeneity():
    delta, products, tastes = random_market(5)
    d = diversion_ratios(delta, products, tastes)
    np.testing.assert_allclose(d.sum(axis=2), 1.0, rtol=1e-12)
    assert np.all(d > 0)


def test_consumer_surplus_plain_logit_and_roys_identity():
    delta, products, tastes = random_market(6)
    cs = consumer_surplus(delta, products, tastes)
    per_type = consumer_surplus(delta, products, tastes, keep_all=True)
    np.testing.assert_allclose((per_type * tastes.weights).sum(axis=1), cs, rtol=1e-14)
    u = utilities(delta, products, tastes)
    expected_i = np.log1p(np.exp(u).sum(axis=2)) / -tastes.price_derivative
    np.testing.assert_allclose(per_type, expected_i, rtol=1e-13)
    # Roy's identity: d CS / d p_j = -s_j (no income effects)
    h = 1e-6
    _, shares = choice_probabilities(delta, products, tastes)
    for j in range(products.products):
        up, down = products.price.copy(), products.price.copy()
        up[:, j] += h
        down[:, j] -= h
        slope = (
            consumer_surplus(delta, products, tastes, up) - consumer_surplus(delta, products, tastes, down)
        ) / (2 * h)
        np.testing.assert_allclose(slope, -shares[:, j], rtol=1e-6)


def test_pad_markets_round_trip():
    ids = np.array([7, 3, 7, 3, 3, 9])
    values = np.arange(6.0)
    padded, mask, unique = pad_markets(ids, values, fill=-1.0)
    np.testing.assert_array_equal(unique, [3, 7, 9])
    np.testing.assert_array_equal(padded, [[1, 3, 4], [0, 2, -1], [5, -1, -1]])
    np.testing.assert_array_equal(padded[mask], [1, 3, 4, 0, 2, 5])


def test_shapes_are_validated():
    with pytest.raises(ValueError):
        ConsumerTastes(0.0, np.zeros((2, 3)), np.zeros((2, 4, 1)), np.ones((2, 3)) / 3)
    with pytest.raises(ValueError):
        ProductSet(np.zeros((2, 3, 1)), np.ones((2, 4)))
    with pytest.raises(ValueError, match="weights"):
        ConsumerTastes(0.0, np.zeros((1, 2)), np.zeros((1, 2, 0)), np.array([[0.5, -0.5]]))


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    products=st.integers(1, 7),
    types=st.integers(1, 12),
    scale=st.floats(0.0, 30.0),
)
def test_share_and_elasticity_properties(seed, products, types, scale):
    delta, product_set, tastes = random_market(seed, markets=2, products=products, types=types, spread=scale)
    delta = delta * (1.0 + scale)
    s_ij, shares = choice_probabilities(delta, product_set, tastes)
    # the outside option's probability computed independently: 1 / (1 + sum_j exp u_ij)
    u = utilities(delta, product_set, tastes)
    outside_i = np.exp(
        -np.logaddexp.reduce(np.concatenate([np.zeros(u.shape[:2] + (1,)), u], axis=2), axis=2)
    )
    np.testing.assert_allclose(s_ij.sum(axis=2) + outside_i, 1.0, rtol=1e-12)
    assert np.all(shares >= 0) and np.all(shares.sum(axis=1) <= 1.0)  # == 1 only by rounding
    e = elasticities(delta, product_set, tastes)
    finite = np.isfinite(e)
    diag = np.diagonal(e, axis1=1, axis2=2)
    assert np.all(diag[np.isfinite(diag)] <= 0)
    off = e[finite & ~np.eye(products, dtype=bool)[None]]
    assert np.all(off >= 0)  # all products are substitutes in a logit


@pytest.mark.parametrize("types,spread", [(40, 1.0), (40, 2.0), (3, 8.0)])
def test_compiled_inversion_takes_the_numpy_inversions_steps(types, spread):
    """The numba kernel (`invert_market`) is the numpy algorithm compiled: the same share evaluations per
    market and the same mean utilities to rounding, with padding, wide tastes and an evaluation cap."""
    delta, products, tastes = random_market(5, markets=12, products=7, types=types, spread=spread)
    available = products.available.copy()
    available[0, -1] = available[3, 2] = False
    products = products.with_available(available)
    _, shares = choice_probabilities(delta, products, tastes)
    for cap in (1, 3, 10_000):
        numpy_ = solve_mean_utilities(shares, products, tastes, max_iterations=cap)
        compiled = solve_mean_utilities(shares, products, tastes, max_iterations=cap, compiled=True)
        np.testing.assert_array_equal(compiled.iterations, numpy_.iterations)
        np.testing.assert_array_equal(compiled.converged, numpy_.converged)
        np.testing.assert_allclose(compiled.delta, numpy_.delta, rtol=0, atol=1e-10)  # rounding, grown by steps
    assert np.all(compiled.delta[~available] == 0.0) and compiled.converged.sum() >= 11  # 3 wide types: 1 fails
    solved = available & compiled.converged[:, None]
    np.testing.assert_allclose(compiled.delta[solved], delta[solved], rtol=0, atol=1e-8)
