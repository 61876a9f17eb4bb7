"""Demand and pricing checked against pyblp, market by market.

BLP (1995) automobile data with the random-coefficients specification of pyblp's tutorial at fixed
parameters (BLP's published estimates, the tutorial's starting values: sigma = diag(3.612, 0, 4.628,
1.818, 1.050, 2.056), pi on prices x 1/income = -43.501).  pyblp only evaluates the model at these values
(``Optimization('return')``), so no estimation runs.  Then the Petrin (2002) minivan counterfactual in
1984 (fixed parameters): remove the minivans, re-solve prices, compare the change in consumer surplus.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pyblp = pytest.importorskip("pyblp")
pd = pytest.importorskip("pandas")

from evlaunch.market.rc_logit import (
    ConsumerTastes,
    ProductSet,
    choice_probabilities,
    consumer_surplus,
    diversion_ratios,
    elasticities,
    pad_markets,
    price_derivatives,
    solve_mean_utilities,
)
from evlaunch.supply.equilibrium import (
    EquilibriumOptions,
    PricingProblem,
    marginal_costs,
    ownership_matrix,
    solve_prices,
)

BLP_SIGMA = np.array([3.612, 0.0, 4.628, 1.818, 1.050, 2.056])
BLP_PI_PRICE_INCOME = -43.501


@pytest.fixture(scope="module", autouse=True)
def _single_threaded_blas():
    """pyblp leans on BLAS; multithreaded OpenBLAS crawls on a busy 2-core machine."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        yield
        return
    with threadpool_limits(1, user_api="blas"):
        yield


def _quiet():
    pyblp.options.verbose = False
    warnings.simplefilter("ignore")  # weights that do not sum to 1 (importance sampling), collinearity


@pytest.fixture(scope="module")
def blp():
    with warnings.catch_warnings():
        _quiet()
        products = pd.read_csv(pyblp.data.BLP_PRODUCTS_LOCATION)
        agents = pd.read_csv(pyblp.data.BLP_AGENTS_LOCATION)
        formulations = (
            pyblp.Formulation("1 + hpwt + air + mpd + space"),
            pyblp.Formulation("1 + prices + hpwt + air + mpd + space"),
        )
        problem = pyblp.Problem(formulations, products, pyblp.Formulation("0 + I(1 / income)"), agents)
        pi = np.c_[[0, BLP_PI_PRICE_INCOME, 0, 0, 0, 0]]
        results = problem.solve(
            np.diag(BLP_SIGMA),
            pi,
            method="1s",
            optimization=pyblp.Optimization("return"),
            check_optimality="gradient",
        )
        costs = results.compute_costs()
        counterfactual = results.compute_prices(costs=costs * 1.1)
        iterations = []
        market_ids = products["market_ids"].to_numpy()
        for t in np.unique(market_ids):
            calls = []

            def norm(x, calls=calls):  # pyblp calls the norm once per contraction evaluation
                calls.append(1)
                return np.abs(x).max()

            pyblp_iteration = pyblp.Iteration("simple", {"atol": 1e-12, "norm": norm})
            results.compute_prices(
                costs=(costs * 1.1)[market_ids == t], market_id=t, iteration=pyblp_iteration
            )
            iterations.append(len(calls))
        ours = {}
        ours["x2"], ours["mask"], _ = pad_markets(
            market_ids, np.c_[np.ones(len(products)), products[["hpwt", "air", "mpd", "space"]]]
        )

        def pad(values, fill=0.0):
            return pad_markets(market_ids, np.asarray(values).ravel(), fill)[0]

        nodes, agent_mask, _ = pad_markets(
            agents["market_ids"], agents[[f"nodes{k}" for k in range(5)]].to_numpy()
        )
        assert agent_mask.all()
        income = pad_markets(agents["market_ids"], agents["income"].to_numpy())[0]
        weights = pad_markets(agents["market_ids"], agents["weights"].to_numpy())[0]
        # nodes fill the columns of X2 with nonzero sigma (all but prices), as in pyblp
        tastes = ConsumerTastes(0.0, BLP_PI_PRICE_INCOME / income, nodes * BLP_SIGMA[BLP_SIGMA != 0], weights)
        product_set = ProductSet(
            ours["x2"], pad(products["prices"]), ours["mask"], pad(products["firm_ids"], -1)
        )
        return {
            "mask": ours["mask"],
            "products": product_set,
            "tastes": tastes,
            "shares": pad(products["shares"]),
            "delta": pad(results.delta),
            "costs": pad(costs),
            "prices": pad(counterfactual),
            "iterations": np.array(iterations),
            "elasticities": pad_markets(market_ids, results.compute_elasticities(), np.nan)[0],
            "diversion": pad_markets(market_ids, results.compute_diversion_ratios(), np.nan)[0],
            "surplus": results.compute_consumer_surpluses().ravel(),
            "surplus_after": results.compute_consumer_surpluses(prices=counterfactual).ravel(),
        }


def _per_market(ours, theirs, mask, rtol):
    for b in range(mask.shape[0]):
        n = mask[b].sum()
        np.testing.assert_allclose(ours[b, :n, :n], theirs[b, :n, :n], rtol=rtol, err_msg=f"market {b}")


def test_blp_shares_given_pyblp_delta(blp):
    _, shares = choice_probabilities(blp["delta"], blp["products"], blp["tastes"])
    np.testing.assert_allclose(shares[blp["mask"]], blp["shares"][blp["mask"]], rtol=1e-12)
    assert np.all(shares[~blp["mask"]] == 0)


def test_blp_contraction_reproduces_pyblp_delta(blp):
    result = solve_mean_utilities(blp["shares"], blp["products"], blp["tastes"])
    assert result.converged.all() and result.max_log_share_error.max() <= 1e-14
    mask = blp["mask"]
    np.testing.assert_allclose(result.delta[mask], blp["delta"][mask], rtol=1e-9, atol=1e-12)


def test_blp_elasticities_and_diversion_ratios(blp):
    args = (blp["delta"], blp["products"], blp["tastes"])
    _per_market(elasticities(*args), blp["elasticities"], blp["mask"], rtol=1e-10)
    _per_market(diversion_ratios(*args), blp["diversion"], blp["mask"], rtol=1e-10)


def test_blp_marginal_costs(blp):
    args = (blp["delta"], blp["products"], blp["tastes"])
    _, shares = choice_probabilities(*args)
    products = blp["products"]
    costs = marginal_costs(
        products.price,
        shares,
        price_derivatives(*args),
        ownership_matrix(products.firm_ids, products.available),
        products.available,
    )
    np.testing.assert_allclose(costs[blp["mask"]], blp["costs"][blp["mask"]], rtol=1e-10)
    assert np.all(np.isnan(costs[~blp["mask"]]))


def test_blp_counterfactual_prices_simple_iteration_matches_pyblp_step_for_step(blp):
    eq = solve_prices(
        PricingProblem(
            delta=blp["delta"], products=blp["products"], tastes=blp["tastes"], costs=blp["costs"] * 1.1
        ),
        options=EquilibriumOptions(method="simple"),
    )
    assert eq.converged.all()
    np.testing.assert_allclose(eq.prices[blp["mask"]], blp["prices"][blp["mask"]], rtol=1e-10)
    assert np.abs(eq.iterations - blp["iterations"]).max() <= 1
    cs = consumer_surplus(blp["delta"], blp["products"], blp["tastes"], eq.prices)
    np.testing.assert_allclose(cs, blp["surplus_after"], rtol=1e-10)


def test_blp_counterfactual_prices_default_solver(blp):
    eq = solve_prices(
        PricingProblem(
            delta=blp["delta"], products=blp["products"], tastes=blp["tastes"], costs=blp["costs"] * 1.1
        )
    )
    assert eq.converged.all() and eq.foc_norm.max() <= 1e-12
    assert eq.iterations.sum() < blp["iterations"].sum() / 2
    np.testing.assert_allclose(eq.prices[blp["mask"]], blp["prices"][blp["mask"]], rtol=1e-6)
    np.testing.assert_allclose(
        consumer_surplus(blp["delta"], blp["products"], blp["tastes"]), blp["surplus"], rtol=1e-12
    )


# ------------------------------------------------------------------------------------------------
# Petrin (2002): the value of the minivan, 1984
# ------------------------------------------------------------------------------------------------

PETRIN_X2 = ["1", "prices", "hpwt", "space", "mi", "su"]
PETRIN_SIGMA = np.array([0.5, 0.0, 1.0, 0.8, 0.6, 0.5])
PETRIN_DEMOGRAPHICS = ["low", "mid", "high", "fs"]


def _petrin_pi():
    pi = np.zeros((6, 4))
    pi[1, :3] = [-0.5, -0.35, -0.2]  # price sensitivity by income group (per $1000)
    pi[4, 3] = 0.3  # larger families like minivans ...
    pi[5, 3] = 0.1  # ... and SUVs
    return pi


@pytest.fixture(scope="module")
def petrin():
    with warnings.catch_warnings():
        _quiet()
        products = pd.read_csv(pyblp.data.PETRIN_PRODUCTS_LOCATION)
        agents = pd.read_csv(pyblp.data.PETRIN_AGENTS_LOCATION)
        products = products[products["market_ids"] == 1984].reset_index(drop=True)
        agents = agents[agents["market_ids"] == 1984].reset_index(drop=True)
        products["product_ids"] = np.arange(len(products))
        x1 = pyblp.Formulation("1 + hpwt + space + air + mpd + fwd + mi + sw + su + pv")
        x2 = pyblp.Formulation("1 + prices + hpwt + space + mi + su")
        demographics = pyblp.Formulation("0 + low + mid + high + fs")
        pi = _petrin_pi()
        problem = pyblp.Problem((x1, x2), products, demographics, agents)
        # one market: identity weighting (beta does not matter, only delta and xi = delta - X1 beta do)
        results = problem.solve(
            np.diag(PETRIN_SIGMA),
            pi,
            method="1s",
            optimization=pyblp.Optimization("return"),
            W=np.eye(problem.MD),
            check_optimality="gradient",
        )
        costs = results.compute_costs().ravel()
        minivan = products["mi"].to_numpy() == 1
        keep = ~minivan
        simulation = pyblp.Simulation(
            (x1, x2),
            products[keep],
            beta=results.beta,
            sigma=np.diag(PETRIN_SIGMA),
            pi=pi,
            agent_formulation=demographics,
            agent_data=agents,
            xi=results.xi[keep],
        )
        equilibrium = simulation.replace_endogenous(
            costs=costs[keep],
            prices=products["prices"].to_numpy()[keep],
            iteration=pyblp.Iteration("simple", {"atol": 1e-12}),
            compute_gradients=False,
            compute_hessians=False,
        )
        nodes = agents[[f"nodes{k}" for k in range(6)]].to_numpy()  # one node column per X2 column here
        demo = agents[PETRIN_DEMOGRAPHICS].to_numpy()
        rc = [k for k, name in enumerate(PETRIN_X2) if name != "prices"]
        sigma_nu = nodes[:, rc] * PETRIN_SIGMA[rc] + demo @ pi[rc].T
        tastes = ConsumerTastes(0.0, (demo @ pi[1])[None], sigma_nu[None], agents["weights"].to_numpy()[None])
        x2_values = np.c_[np.ones(len(products)), products[["hpwt", "space", "mi", "su"]].to_numpy()]
        product_set = ProductSet(
            x2_values[None], products["prices"].to_numpy()[None], None, products["firm_ids"].to_numpy()[None]
        )
        return {
            "products": product_set,
            "tastes": tastes,
            "shares": products["shares"].to_numpy()[None],
            "minivan": minivan,
            "delta": results.delta.ravel()[None],
            "costs": costs[None],
            "surplus": results.compute_consumer_surpluses().ravel(),
            "surplus_without_minivans_same_prices": results.compute_consumer_surpluses(
                eliminate_product_ids=list(products["product_ids"][minivan])
            ).ravel(),
            "prices_without_minivans": np.asarray(equilibrium.product_data.prices).ravel(),
            "surplus_without_minivans": equilibrium.compute_consumer_surpluses().ravel(),
        }


def test_petrin_demand_and_costs_match(petrin):
    products, tastes = petrin["products"], petrin["tastes"]
    assert petrin["minivan"].sum() == 2  # Chrysler's Caravan and Voyager, new in 1984
    result = solve_mean_utilities(petrin["shares"], products, tastes)
    assert result.converged.all()
    np.testing.assert_allclose(result.delta, petrin["delta"], rtol=1e-9, atol=1e-12)
    _, shares = choice_probabilities(result.delta, products, tastes)
    costs = marginal_costs(
        products.price,
        shares,
        price_derivatives(result.delta, products, tastes),
        ownership_matrix(products.firm_ids),
    )
    np.testing.assert_allclose(costs, petrin["costs"], rtol=1e-9)
    np.testing.assert_allclose(
        consumer_surplus(result.delta, products, tastes), petrin["surplus"], rtol=1e-10
    )


@pytest.mark.parametrize("method,rtol", [("simple", 1e-9), ("anderson", 1e-6)])
def test_petrin_removing_minivans_in_1984(petrin, method, rtol):
    products, tastes, delta = petrin["products"], petrin["tastes"], petrin["delta"]
    without = products.with_available(~petrin["minivan"][None])
    # the choice set shrinks at unchanged prices (pyblp's eliminate_product_ids) ...
    same_prices = consumer_surplus(delta, without, tastes)
    np.testing.assert_allclose(same_prices, petrin["surplus_without_minivans_same_prices"], rtol=1e-10)
    # ... and rivals re-price without the minivans
    eq = solve_prices(
        PricingProblem(delta=delta, products=without, tastes=tastes, costs=petrin["costs"]),
        options=EquilibriumOptions(method=method),
    )
    assert eq.converged.all()
    np.testing.assert_allclose(eq.prices[0, ~petrin["minivan"]], petrin["prices_without_minivans"], rtol=rtol)
    after = consumer_surplus(delta, without, tastes, eq.prices)
    change = after - consumer_surplus(delta, products, tastes)
    expected = petrin["surplus_without_minivans"] - petrin["surplus"]
    assert expected[0] < 0
    np.testing.assert_allclose(change, expected, rtol=rtol)
