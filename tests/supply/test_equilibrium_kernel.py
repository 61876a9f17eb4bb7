"""The compiled zeta-map kernel: exponentials carried between evaluations, and results that depend on
neither the thread count nor the other markets of the batch."""

from __future__ import annotations

import numpy as np
import pytest

from evlaunch.market.rc_logit import ConsumerTastes, ProductSet
from evlaunch.supply.equilibrium import (
    EquilibriumOptions,
    PricingProblem,
    _Kernel,
    _scratch,
    _zeta_eval,
    solve_prices,
)


def one_market(seed: int, products: int = 9, types: int = 40, firms: int = 3) -> _Kernel:
    """A market in the kernel's form: products sorted by firm, price derivatives of utility in [-3, -0.2]."""
    rng = np.random.default_rng(seed)
    sizes = np.full(firms, products // firms)
    sizes[: products - sizes.sum()] += 1
    seg = np.r_[0, np.cumsum(sizes)].astype(np.int64)
    weights = rng.uniform(0.5, 1.5, size=types)
    return _Kernel(
        base=rng.normal(8.0, 2.0, size=(products, types)),
        d=-rng.uniform(0.2, 3.0, size=types),
        w=weights / weights.sum(),
        costs=rng.uniform(1.0, 2.0, size=products),
        rate=rng.uniform(1.0, 1.2, size=products),
        seg=seg,
    )


def evaluate(market: _Kernel, p: np.ndarray, scratch=None):
    """(p_new, FOC norm, shares, Lambda, Gamma-tilde margin) of one evaluation; a fresh scratch computes
    every exponential in full."""
    J, types = market.base.shape
    scratch = _scratch(J, types, market.seg.shape[0] - 1) if scratch is None else scratch
    p_new = np.empty(J)
    foc = _zeta_eval(market, p, scratch, p_new)
    return p_new, foc, scratch[7].copy(), scratch[8].copy(), scratch[9].copy()


def test_rescaled_exponentials_match_a_full_evaluation():
    """Moves of every size band (Taylor degrees 4, 6, 9, rows recomputed in full, a full refresh) over
    40 evaluations: each evaluation with carried exponentials equals a fresh one to rounding."""
    market = one_market(3)
    J, types = market.base.shape
    rng = np.random.default_rng(4)
    scratch = _scratch(J, types, market.seg.shape[0] - 1)
    p = rng.uniform(2.0, 4.0, size=J)
    evaluate(market, p, scratch)
    rescaled = 0
    for _ in range(40):
        # utilities move by |d_i dp_j| <= 3 |dp_j|: bands 1e-3, 1e-2, 0.1 and beyond, mixed within a step
        size = np.array([1e-5, 3.3e-4, 3.3e-3, 3.3e-2, 0.3])[rng.integers(0, 5, size=J)]
        p = p + size * rng.uniform(-1.0, 1.0, size=J)
        count_before = scratch[11][1]
        carried = evaluate(market, p, scratch)
        rescaled += scratch[11][1] > count_before
        np.testing.assert_array_equal(scratch[10], p)  # E is now held at p
        fresh = evaluate(market, p)
        for a, b in zip(carried, fresh, strict=True):
            np.testing.assert_allclose(a, b, rtol=5e-15, atol=1e-300)
    assert rescaled >= 30  # the carried path was taken (and refreshed in full now and then)


def test_a_large_move_recomputes_every_exponential():
    market = one_market(5)
    J, types = market.base.shape
    scratch = _scratch(J, types, market.seg.shape[0] - 1)
    p = np.full(J, 3.0)
    evaluate(market, p, scratch)
    far = p + 30.0  # utilities fall by up to 90: past the drift bound, E is recomputed with a new shift
    carried = evaluate(market, far, scratch)
    assert scratch[11][1] == 0.0
    for a, b in zip(carried, evaluate(market, far), strict=True):
        np.testing.assert_array_equal(a, b)


def batch(seed: int, markets: int):
    rng = np.random.default_rng(seed)
    J, types, K = 8, 25, 2
    weights = rng.uniform(0.5, 1.5, size=(markets, types))
    tastes = ConsumerTastes(
        alpha_mean=-1.0,
        alpha_i=-0.8 * rng.uniform(0.0, 1.0, size=(markets, types)),
        sigma_nu=rng.normal(size=(markets, types, K)),
        weights=weights / weights.sum(axis=1, keepdims=True),
    )
    available = rng.uniform(size=(markets, J)) < 0.85
    available[:, 0] = True
    products = ProductSet(
        rng.normal(size=(markets, J, K)),
        rng.uniform(2.0, 4.0, size=(markets, J)),
        available,
        rng.integers(0, 3, size=(markets, J)),
    )
    delta = rng.normal(size=(markets, J))
    costs = rng.uniform(0.5, 1.5, size=(markets, J))
    return delta, products, tastes, costs


def rows(delta, products, tastes, costs, which) -> PricingProblem:
    return PricingProblem(
        delta=delta[which],
        products=ProductSet(
            products.x2[which], products.price[which], products.available[which], products.firm_ids[which]
        ),
        tastes=ConsumerTastes(
            tastes.alpha_mean[which], tastes.alpha_i[which], tastes.sigma_nu[which], tastes.weights[which]
        ),
        costs=costs[which],
    )


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_each_market_is_solved_bit_for_bit_alone_or_in_any_batch(threads):
    data = batch(8, 40)
    whole = solve_prices(rows(*data, np.arange(40)), options=EquilibriumOptions(threads=threads))
    assert whole.converged.all()
    order = np.random.default_rng(threads).permutation(40)
    shuffled = solve_prices(rows(*data, order), options=EquilibriumOptions(threads=threads))
    for name in ("prices", "shares", "iterations", "foc_norm"):
        np.testing.assert_array_equal(getattr(shuffled, name), getattr(whole, name)[order])
    for b in (0, 17, 39):
        alone = solve_prices(rows(*data, np.array([b])), options=EquilibriumOptions(threads=threads))
        np.testing.assert_array_equal(alone.prices[0], whole.prices[b])
        np.testing.assert_array_equal(alone.shares[0], whole.shares[b])
        assert alone.iterations[0] == whole.iterations[b]
