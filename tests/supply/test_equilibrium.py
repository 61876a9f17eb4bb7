"""Bertrand-Nash pricing: closed forms, cost recovery, backends, fallback, capacity, properties."""

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
    mean_utility_at,
    price_derivatives,
)
from evlaunch.supply.equilibrium import (
    EquilibriumOptions,
    EquilibriumWarning,
    PricingProblem,
    _foc_and_jacobian,
    foc_residual,
    marginal_costs,
    ownership_matrix,
    solve_prices,
)

COMBOS = [(m, b) for m in ("simple", "anderson") for b in ("numba", "numpy")]


def rc_markets(
    seed: int,
    markets: int = 4,
    products: int = 7,
    types: int = 30,
    chars: int = 2,
    firms: int = 3,
    spread: float = 1.0,
):
    rng = np.random.default_rng(seed)
    x2 = rng.normal(size=(markets, products, chars))
    price = rng.uniform(2.0, 4.0, size=(markets, products))
    weights = rng.uniform(0.5, 1.5, size=(markets, types))
    weights /= weights.sum(axis=1, keepdims=True)
    tastes = ConsumerTastes(
        alpha_mean=-1.0,
        alpha_i=-0.8 * rng.uniform(0.0, 1.0, size=(markets, types)),
        sigma_nu=spread * rng.normal(size=(markets, types, chars)),
        weights=weights,
    )
    delta = rng.normal(0.0, 1.0, size=(markets, products))
    firm_ids = rng.integers(0, firms, size=(markets, products)) * 10 + 3  # arbitrary labels
    costs = rng.uniform(0.5, 1.5, size=(markets, products))
    return delta, ProductSet(x2, price, None, firm_ids), tastes, costs


def test_ownership_matrix():
    h = ownership_matrix(np.array([[4, 7, 4]]), np.array([[True, True, False]]))
    np.testing.assert_array_equal(h[0], [[1, 0, 0], [0, 1, 0], [0, 0, 0]])
    np.testing.assert_array_equal(
        ownership_matrix(np.array([[4, 7, 4]]))[0], [[1, 0, 1], [0, 1, 0], [1, 0, 1]]
    )


def test_marginal_costs_invert_the_focs_for_any_jacobian():
    # FOC: s_j + sum_k H[j,k] (d s_k / d p_j) m_k = 0 -- note the transpose of jacobian[k,j] = d s_k / d p_j
    jacobian = np.array([[[-2.0, 0.3, 0.1], [0.7, -1.5, 0.2], [0.05, 0.4, -1.0]]])
    ownership = ownership_matrix(np.array([[1, 1, 2]]))
    markup = np.array([[0.4, 0.9, 0.6]])
    shares = -np.einsum("bjk,bkj,bk->bj", ownership, jacobian, markup)
    price = np.array([[3.0, 2.0, 1.5]])
    np.testing.assert_allclose(marginal_costs(price, shares, jacobian, ownership), price - markup, rtol=1e-14)
    unavailable = np.array([[True, True, False]])
    costs = marginal_costs(price, np.where(unavailable, shares, 0.0), jacobian, ownership)
    assert np.isnan(costs[0, 2])


@pytest.mark.parametrize("method,backend", COMBOS)
def test_single_product_monopoly_logit_markup(method, backend):
    alphas = np.array([-0.5, -1.0, -2.0])
    products = ProductSet(np.zeros((3, 1, 0)), np.full((3, 1), 5.0), None, np.zeros((3, 1), dtype=int))
    tastes = ConsumerTastes.plain_logit(alphas, markets=3)
    delta = np.array([[3.0], [1.0], [-1.0]])
    costs = np.array([[1.0], [2.0], [0.5]])
    eq = solve_prices(
        PricingProblem(delta=delta, products=products, tastes=tastes, costs=costs),
        options=EquilibriumOptions(method=method, backend=backend),
    )
    assert eq.converged.all() and not eq.fallback.any()
    s = eq.shares[:, 0]
    np.testing.assert_allclose(eq.prices[:, 0] - costs[:, 0], 1.0 / (-alphas * (1.0 - s)), rtol=1e-10)
    _, check = choice_probabilities(delta, products, tastes, eq.prices)
    np.testing.assert_allclose(eq.shares, check, rtol=1e-12)


@pytest.mark.parametrize("method,backend", COMBOS)
def test_multiproduct_logit_firms_charge_a_common_markup(method, backend):
    # plain logit: every product of firm f carries the markup 1 / (|alpha| (1 - sum_{j in f} s_j))
    alpha = -0.9
    firm_ids = np.array([[0, 0, 1, 2, 2, 2]])
    products = ProductSet(np.zeros((1, 6, 0)), np.full((1, 6), 3.0), None, firm_ids)
    delta = np.array([[1.0, 0.2, 0.5, -0.3, 0.8, 0.0]])
    costs = np.array([[1.0, 1.5, 0.8, 2.0, 1.2, 0.9]])
    eq = solve_prices(
        PricingProblem(
            delta=delta, products=products, tastes=ConsumerTastes.plain_logit(alpha, 1), costs=costs
        ),
        options=EquilibriumOptions(method=method, backend=backend),
    )
    markup = eq.prices[0] - costs[0]
    for f in (0, 1, 2):
        own = firm_ids[0] == f
        np.testing.assert_allclose(markup[own], 1.0 / (-alpha * (1.0 - eq.shares[0, own].sum())), rtol=1e-10)


@pytest.mark.parametrize("method,backend", COMBOS)
def test_solution_satisfies_focs_and_costs_are_recovered(method, backend):
    delta, products, tastes, costs = rc_markets(11)
    eq = solve_prices(
        PricingProblem(delta=delta, products=products, tastes=tastes, costs=costs),
        options=EquilibriumOptions(method=method, backend=backend),
    )
    assert eq.converged.all()
    assert eq.foc_norm.max() <= 1e-12
    resid = foc_residual(eq.prices, costs, delta, products, tastes)
    assert np.abs(resid).max() <= 1e-12
    # inverting the FOCs at the equilibrium gives back the costs
    moved = ProductSet(products.x2, eq.prices, None, products.firm_ids)
    delta_at = delta + tastes.alpha_mean[:, None] * (eq.prices - products.price)
    _, shares = choice_probabilities(delta_at, moved, tastes)
    np.testing.assert_allclose(shares, eq.shares, rtol=1e-12)
    recovered = marginal_costs(
        eq.prices, shares, price_derivatives(delta_at, moved, tastes), ownership_matrix(products.firm_ids)
    )
    np.testing.assert_allclose(recovered, costs, rtol=1e-8)


def test_backends_and_methods_agree():
    delta, products, tastes, costs = rc_markets(12, markets=6, spread=2.0)
    results = {
        (m, b): solve_prices(
            PricingProblem(delta=delta, products=products, tastes=tastes, costs=costs),
            options=EquilibriumOptions(method=m, backend=b),
        )
        for m, b in COMBOS
    }
    ref = results[("simple", "numpy")]
    for key, eq in results.items():
        np.testing.assert_allclose(eq.prices, ref.prices, rtol=1e-9, err_msg=str(key))
        np.testing.assert_allclose(eq.shares, ref.shares, rtol=1e-8, err_msg=str(key))
    # the same algorithm in both backends takes the same number of steps
    assert np.abs(results[("simple", "numba")].iterations - ref.iterations).max() <= 1
    assert (
        np.abs(results[("anderson", "numba")].iterations - results[("anderson", "numpy")].iterations).max()
        <= 1
    )
    assert results[("anderson", "numba")].iterations.sum() < ref.iterations.sum()


def test_threads_and_read_only_inputs_give_identical_results():
    delta, products, tastes, costs = rc_markets(21, markets=12)
    one = solve_prices(
        PricingProblem(delta=delta, products=products, tastes=tastes, costs=costs),
        options=EquilibriumOptions(threads=1),
    )
    frozen = [
        np.array(a) for a in (delta, products.x2, products.price, tastes.sigma_nu, tastes.weights, costs)
    ]
    for a in frozen:
        a.setflags(write=False)  # e.g. pandas copy-on-write views
    d, x2, price, sigma_nu, weights, c = frozen
    two = solve_prices(
        PricingProblem(
            delta=d,
            products=ProductSet(x2, price, None, products.firm_ids),
            tastes=ConsumerTastes(tastes.alpha_mean, tastes.alpha_i, sigma_nu, weights),
            costs=c,
        ),
        options=EquilibriumOptions(threads=2),
    )
    np.testing.assert_array_equal(two.prices, one.prices)
    np.testing.assert_array_equal(two.iterations, one.iterations)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_unavailable_product_equals_removing_it(backend):
    delta, products, tastes, costs = rc_markets(13)
    available = np.ones_like(products.available)
    available[:, 3] = False
    available[1, 5] = False
    masked = ProductSet(products.x2, products.price, available, products.firm_ids)
    eq = solve_prices(
        PricingProblem(delta=delta, products=masked, tastes=tastes, costs=costs),
        options=EquilibriumOptions(backend=backend),
    )
    assert np.all(eq.shares[~available] == 0.0)
    np.testing.assert_array_equal(eq.prices[~available], products.price[~available])
    for b in range(products.markets):
        keep = np.flatnonzero(available[b])
        sl = slice(b, b + 1)
        sub = ProductSet(
            products.x2[sl][:, keep], products.price[sl][:, keep], None, products.firm_ids[sl][:, keep]
        )
        sub_tastes = ConsumerTastes(
            tastes.alpha_mean[sl], tastes.alpha_i[sl], tastes.sigma_nu[sl], tastes.weights[sl]
        )
        alone = solve_prices(
            PricingProblem(
                delta=delta[sl][:, keep], products=sub, tastes=sub_tastes, costs=costs[sl][:, keep]
            ),
            options=EquilibriumOptions(backend=backend),
        )
        np.testing.assert_allclose(eq.prices[b, keep], alone.prices[0], rtol=1e-10)
        np.testing.assert_allclose(eq.shares[b, keep], alone.shares[0], rtol=1e-9)


def test_general_ownership_matrix_uses_the_numpy_path():
    delta, products, tastes, costs = rc_markets(14, markets=2)
    h = ownership_matrix(products.firm_ids)
    partial = h.copy()
    partial[:, 0, 1] = partial[:, 1, 0] = 0.4  # a 40% cross-holding between products 0 and 1
    by_ids = solve_prices(PricingProblem(delta=delta, products=products, tastes=tastes, costs=costs))
    by_matrix = solve_prices(
        PricingProblem(delta=delta, products=products, tastes=tastes, costs=costs, ownership=h),
        options=EquilibriumOptions(backend="numba"),
    )
    np.testing.assert_allclose(by_matrix.prices, by_ids.prices, rtol=1e-10)
    eq = solve_prices(
        PricingProblem(delta=delta, products=products, tastes=tastes, costs=costs, ownership=partial),
        options=EquilibriumOptions(backend="numba"),
    )
    assert eq.converged.all()
    assert np.abs(foc_residual(eq.prices, costs, delta, products, tastes, partial)).max() <= 1e-12
    assert np.abs(eq.prices - by_ids.prices).max() > 1e-6  # the cross-holding matters


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_fallback_rescues_markets_that_hit_the_cap(backend):
    delta, products, tastes, costs = rc_markets(15, markets=3)
    ref = solve_prices(
        PricingProblem(delta=delta, products=products, tastes=tastes, costs=costs),
        options=EquilibriumOptions(backend=backend),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # rescued markets must not warn
        eq = solve_prices(
            PricingProblem(delta=delta, products=products, tastes=tastes, costs=costs),
            options=EquilibriumOptions(backend=backend, method="simple", max_evaluations=3),
        )
    assert eq.fallback.all() and eq.converged.all()
    np.testing.assert_allclose(eq.prices, ref.prices, rtol=1e-9)
    assert np.all(eq.iterations > 3)


def test_newton_hand_over_converges_from_a_rough_point():
    delta, products, tastes, costs = rc_markets(19, markets=3, spread=2.0)
    ref = solve_prices(
        PricingProblem(delta=delta, products=products, tastes=tastes, costs=costs),
        options=EquilibriumOptions(tol=1e-14),
    )
    eq = solve_prices(
        PricingProblem(delta=delta, products=products, tastes=tastes, costs=costs),
        options=EquilibriumOptions(newton_after=2),
    )
    assert eq.fallback.all() and eq.converged.all() and eq.foc_norm.max() <= 1e-12
    np.testing.assert_allclose(eq.prices, ref.prices, rtol=1e-9)


def test_foc_jacobian_matches_finite_differences():
    delta, products, tastes, costs = rc_markets(20, markets=1, products=6, spread=1.5)
    base = delta[0][None, :] + tastes.sigma_nu[0] @ products.x2[0].T  # alpha_mean * price is in delta
    base = base - tastes.alpha_mean[0] * products.price[0][None, :]
    d, w, p, c = tastes.price_derivative[0], tastes.weights[0], products.price[0], costs[0]
    h = ownership_matrix(products.firm_ids)[0]
    h[0, 1] = h[1, 0] = 0.3  # partial ownership too
    F, _shares, jac = _foc_and_jacobian(base, d, w, p, c, h)
    np.testing.assert_allclose(
        F, foc_residual(p[None], c[None], delta, products, tastes, h[None])[0], rtol=1e-12
    )
    step = 1e-6
    for k in range(p.size):
        up, down = p.copy(), p.copy()
        up[k] += step
        down[k] -= step
        numeric = (
            _foc_and_jacobian(base, d, w, up, c, h, False)[0]
            - _foc_and_jacobian(base, d, w, down, c, h, False)[0]
        )
        np.testing.assert_allclose(jac[:, k], numeric / (2 * step), rtol=1e-6, atol=1e-10)


def test_unconverged_markets_warn_with_their_count_and_do_not_hang():
    delta, products, tastes, costs = rc_markets(16, markets=5)
    with pytest.warns(EquilibriumWarning, match="5 of 5 markets did not converge"):
        eq = solve_prices(
            PricingProblem(delta=delta, products=products, tastes=tastes, costs=costs),
            options=EquilibriumOptions(method="simple", max_evaluations=1, fallback=False),
        )
    assert not eq.converged.any() and np.all(eq.iterations == 1)
    assert np.all(np.isfinite(eq.prices)) and np.all(eq.foc_norm > 1e-12)


def test_capacity_binds_at_the_shadow_cost():
    delta, products, tastes, costs = rc_markets(17, markets=3)
    free = solve_prices(PricingProblem(delta=delta, products=products, tastes=tastes, costs=costs))
    capacity = np.full(delta.shape, np.inf)
    capacity[:, 2] = 0.6 * free.shares[:, 2]  # binding
    capacity[:, 4] = 2.0 * free.shares[:, 4]  # slack
    eq = solve_prices(
        PricingProblem(delta=delta, products=products, tastes=tastes, costs=costs, capacity=capacity)
    )
    assert eq.converged.all()
    np.testing.assert_allclose(eq.shares[:, 2], capacity[:, 2], rtol=1e-8)
    assert np.all(eq.shares[:, 4] < capacity[:, 4])
    assert np.all(eq.shadow_costs[:, 2] > 0) and np.all(eq.shadow_costs[:, [0, 1, 3, 4, 5, 6]] == 0)
    assert np.all(eq.prices[:, 2] > free.prices[:, 2])
    # everybody best-responds: FOCs hold with the shadow cost added to the constrained product's cost
    resid = foc_residual(eq.prices, costs + eq.shadow_costs, delta, products, tastes)
    assert np.abs(resid).max() <= 1e-11
    unconstrained = solve_prices(
        PricingProblem(
            delta=delta, products=products, tastes=tastes, costs=costs, capacity=np.full(delta.shape, np.inf)
        )
    )
    np.testing.assert_allclose(unconstrained.prices, free.prices, rtol=1e-12)


def test_invalid_inputs_are_rejected():
    delta, products, tastes, costs = rc_markets(18, markets=1)
    with pytest.raises(ValueError, match="method"):
        solve_prices(
            PricingProblem(delta=delta, products=products, tastes=tastes, costs=costs),
            options=EquilibriumOptions(method="newton"),
        )
    with pytest.raises(ValueError, match="firm_ids or ownership"):
        solve_prices(
            PricingProblem(
                delta=delta, products=ProductSet(products.x2, products.price), tastes=tastes, costs=costs
            )
        )
    with pytest.raises(ValueError, match="finite"):
        solve_prices(
            PricingProblem(delta=delta, products=products, tastes=tastes, costs=np.full_like(costs, np.nan))
        )


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    products=st.integers(1, 8),
    firms=st.integers(1, 4),
    spread=st.floats(0.0, 3.0),
)
def test_equilibrium_properties(seed, products, firms, spread):
    delta, product_set, tastes, costs = rc_markets(
        seed, markets=2, products=products, types=8, firms=firms, spread=spread
    )
    eq = solve_prices(PricingProblem(delta=delta, products=product_set, tastes=tastes, costs=costs))
    assert eq.converged.all()
    # the solver stops when the residual of the last zeta step is below tol (1e-12, as pyblp) and returns
    # the updated prices, so the residual re-evaluated at those prices is within a small multiple of tol
    assert np.abs(foc_residual(eq.prices, costs, delta, product_set, tastes)).max() <= 1e-10
    assert np.all(eq.prices > costs)  # positive markups with downward-sloping demand
    assert np.all(eq.shares > 0) and np.all(eq.shares.sum(axis=1) < 1)


def test_rates_in_the_kernel_equal_the_rate_weighted_ownership():
    """Firms set q with demand's price p = r q + k (a purchase tax): the numba kernel with `rates` solves the
    same FOCs as the numpy path with the ownership H[j,k] r_j / r_k, and they are the firms' FOCs in q."""
    delta, products, tastes, costs = rc_markets(31, markets=3, products=6, types=12, firms=2)
    rng = np.random.default_rng(31)
    rates = rng.choice([1.0, 1.0885, 1.044], size=delta.shape)
    with_rates = solve_prices(
        PricingProblem(delta=delta, products=products, tastes=tastes, costs=costs, rates=rates)
    )
    firms = products.firm_ids
    ownership = (firms[:, :, None] == firms[:, None, :]) * rates[:, :, None] / rates[:, None, :]
    explicit = solve_prices(
        PricingProblem(delta=delta, products=products, tastes=tastes, costs=costs, ownership=ownership),
        options=EquilibriumOptions(backend="numpy"),
    )
    assert with_rates.converged.all() and explicit.converged.all()
    np.testing.assert_allclose(with_rates.prices, explicit.prices, rtol=1e-9)
    # firm f maximises sum_k (q_k - c_k / r_k) s_k: FOC in q_j is r_j * (ds/dp)' (p - c) / r + s = 0
    moved = mean_utility_at(delta, products, tastes, with_rates.prices)
    at = ProductSet(products.x2, with_rates.prices, None, firms)
    _, shares = choice_probabilities(moved, at, tastes)
    jacobian = price_derivatives(moved, at, tastes)
    same = (firms[:, :, None] == firms[:, None, :]).astype(float)
    guide_margin = (with_rates.prices - costs) / rates
    foc = shares + rates * np.einsum("bjk,bkj,bk->bj", same, jacobian, guide_margin)
    assert np.abs(foc).max() < 1e-10
    # rates of 1 change nothing (bit for bit)
    plain = solve_prices(PricingProblem(delta=delta, products=products, tastes=tastes, costs=costs))
    ones = solve_prices(
        PricingProblem(delta=delta, products=products, tastes=tastes, costs=costs, rates=np.ones_like(costs))
    )
    np.testing.assert_array_equal(plain.prices, ones.prices)
    with pytest.raises(ValueError, match="rates"):
        solve_prices(PricingProblem(delta=delta, products=products, tastes=tastes, costs=costs, rates=-rates))


def test_types_as_characteristics_take_the_identity_path_and_change_no_bit():
    """sigma_nu = I (consumer types carried by x2, as supply.repricing builds them) skips the I x K products
    per utility; the prices must equal, bit for bit, the general path's (here forced by an extra all-zero
    characteristic) and agree with the numpy backend."""
    rng = np.random.default_rng(5)
    markets, products, types = 6, 8, 5
    x2 = rng.normal(size=(markets, products, types))
    weights = rng.uniform(0.5, 1.5, size=(markets, types))
    tastes = ConsumerTastes(-1.0, -0.5 * rng.uniform(size=(markets, types)),
                            np.broadcast_to(np.eye(types), (markets, types, types)), weights / weights.sum(1, keepdims=True))
    price = rng.uniform(2.0, 4.0, size=(markets, products))
    firm_ids = rng.integers(0, 3, size=(markets, products))
    delta, costs = rng.normal(size=(markets, products)), rng.uniform(0.5, 1.5, size=(markets, products))
    identity = solve_prices(PricingProblem(delta=delta, products=ProductSet(x2, price, None, firm_ids), tastes=tastes,
                                           costs=costs))
    padded_sigma = np.concatenate([tastes.sigma_nu, np.zeros((markets, types, 1))], axis=2)
    general = solve_prices(PricingProblem(
        delta=delta, products=ProductSet(np.concatenate([x2, np.zeros((markets, products, 1))], axis=2), price, None,
                                         firm_ids),
        tastes=ConsumerTastes(-1.0, tastes.alpha_i, padded_sigma, tastes.weights), costs=costs))
    assert identity.converged.all()
    assert identity.prices.tobytes() == general.prices.tobytes()
    np.testing.assert_array_equal(identity.iterations, general.iterations)
    numpy = solve_prices(PricingProblem(delta=delta, products=ProductSet(x2, price, None, firm_ids), tastes=tastes,
                                        costs=costs), options=EquilibriumOptions(backend="numpy"))
    np.testing.assert_allclose(identity.prices, numpy.prices, rtol=1e-9)
