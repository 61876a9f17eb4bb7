"""Price sensitivity from China's margins (supply.margin_fit) and the re-pricing fringe (supply.repricing)."""

from dataclasses import replace

import numpy as np
import pytest

from evlaunch.config.scenario import parse_scenario
from evlaunch.errors import ScenarioError
from evlaunch.market.firm_margins import reported_margins
from evlaunch.market.rc_logit import choice_probabilities, elasticities, utilities
from evlaunch.simulation import prepare
from evlaunch.supply.equilibrium import PricingProblem, solve_prices
from evlaunch.supply.margin_fit import fit_margins, warm_start
from evlaunch.supply.repricing import base_market, fringe_markups, recover_costs, type_market


@pytest.fixture(scope="module")
def fit(reference_model):
    return fit_margins(reference_model.market, reference_model.parameters())


def test_central_margins_match_the_reported_ones_within_five_points(reference_model, fit):
    firms = reference_model.scenario.market.margin_firms
    assert list(firms) == ["BYD", "Tesla (global)", "Li Auto", "Great Wall"]
    reported = reported_margins(reference_model.scenario.as_of, list(firms))
    np.testing.assert_allclose(fit.firm_margin.mean(axis=1), fit.target, atol=1e-6)
    for firm, implied in zip(firms, fit.firm_margin[0]):
        assert abs(implied - reported[firm].value) <= 0.05, (firm, implied, reported[firm].value)
    # more price sensitive than the US: BLP's median elasticity is -4.07
    assert fit.elasticity[0] < -4.07


def test_a_higher_target_margin_means_less_price_sensitive_buyers(reference_model):
    low, high = (fit_margins(reference_model.market, reference_model.parameters(
        {"market.gross_margin": np.array([margin])})) for margin in (0.15, 0.25))
    assert abs(low.base.alpha[0]) > abs(high.base.alpha[0])
    assert np.all(low.supply.margin < high.supply.margin)


def test_a_firm_that_prices_nothing_is_named(reference_text, reference_path):
    text = reference_text.replace('"Li Auto" = "other PHEV high"', '"Li Auto" = "Li Auto"', 1)
    model = prepare(parse_scenario(text, "bad.toml"), reference_path.parent)
    with pytest.raises(ScenarioError, match=r"market.margin_firms.Li Auto: got 'Li Auto'"):
        fit_margins(model.market, model.parameters())


def test_china_margins_as_of_2021_is_refused_with_the_reason(cli, tmp_path, reference_path):
    """No firm_margins row was public by 2021-03-31, so the 2021 scenario cannot use China's margins."""
    text = (reference_path.parent / "xiaomi-2021.toml").read_text(encoding="utf-8")
    text = text.replace('price_sensitivity = "us_elasticity"', 'price_sensitivity = "china_margins"\n'
                        'gross_margin = 0.18\nmargin_firms = { "BYD" = "BYD" }', 1)
    path = tmp_path / "china-2021.toml"
    path.write_text(text, encoding="utf-8")
    code, out, err = cli("validate", path)
    message = " ".join(err.split())
    assert code == 2 and "market.margin_firms: firm 'BYD' has no row in firm_margins.csv public by 2021-03-31" \
        in message, message
    assert "Traceback" not in out + err


def test_fringe_markup_is_that_of_many_small_firms():
    """One consumer type: a negligible logit product's markup is 1/|alpha| whatever its share; two types:
    s_j / sum_t w_t |alpha_t| s_tj, computed here from the logit formula."""
    rng = np.random.default_rng(1)
    mean, price = rng.normal(-2.0, 0.5, (3, 4)), rng.uniform(1.0, 3.0, (3, 4))
    alpha = np.array([-1.5, -0.7, -2.0])
    available = np.ones((3, 4), dtype=bool)
    one = type_market(mean, price, np.zeros((3, 1, 4)), available, alpha, np.ones((3, 1)), np.ones((3, 1)),
                      np.arange(4))
    np.testing.assert_allclose(fringe_markups(one), np.broadcast_to(-1.0 / alpha[:, None], (3, 4)), rtol=1e-12)
    weights, sensitivity = np.array([[0.3, 0.7]] * 3), np.array([[2.0, 0.6]] * 3)
    extras = rng.normal(0.0, 0.5, (3, 2, 4))
    two = type_market(mean, price, extras, available, alpha, weights, sensitivity, np.arange(4))
    coefficient = alpha[:, None] * sensitivity                                             # [3, 2]
    utility = mean[:, None, :] + coefficient[:, :, None] * price[:, None, :] + extras
    typed = np.exp(utility) / (1.0 + np.exp(utility).sum(axis=2, keepdims=True))
    shares = np.einsum("nt,ntj->nj", weights, typed)
    expected = shares / np.einsum("nt,nt,ntj->nj", weights, -coefficient, typed)
    np.testing.assert_allclose(fringe_markups(two), expected, rtol=1e-10)


@pytest.fixture(scope="module")
def fringe_supply(reference_model, fit):
    model = reference_model
    parameters = model.parameters()
    supply = recover_costs(model.lineup, fit.base, model.policy, round(model.base_mid_month),
                           parameters.finance.vat_rate, fringe=True)
    return supply, base_market(model.lineup, fit.base, supply.index)


def test_the_fringe_is_priced_and_its_base_prices_are_an_equilibrium(reference_model, fringe_supply):
    supply, market = fringe_supply
    names = [reference_model.lineup.names[j] for j in supply.index]
    fringe = np.array([n.startswith("other ") for n in names])
    assert fringe.sum() == 6 and len(set(supply.firms[fringe])) == 6   # each band its own price setter
    assert np.all(supply.solver_shift[:, ~fringe] == 0) and np.all(supply.solver_shift[:, fringe] < 0)
    assert supply.foc_residual[0] < 1e-15
    prices = solve_for(supply, market, supply.cost + supply.solver_shift)
    np.testing.assert_allclose(prices, market.products.price, rtol=1e-7)


def solve_for(supply, market, cost):
    """Equilibrium effective prices [1, P] of the base market at guide-price costs `cost`."""
    rate = market.products.price / supply.base_price   # ad valorem: the 2023 purchase tax, NEVs exempt
    ownership = (supply.firms[:, None] == supply.firms[None, :]) * rate[:, :, None] / rate[:, None, :]
    problem = PricingProblem(delta=market.delta, products=market.products, tastes=market.tastes,
                             costs=cost * rate, ownership=ownership)
    result = solve_prices(problem, start=market.products.price)
    assert result.converged.all()
    return result.prices


def test_a_battery_cost_fall_lowers_the_fringes_bev_prices(reference_model, fringe_supply):
    supply, market = fringe_supply
    lineup = reference_model.lineup
    names = [lineup.names[j] for j in supply.index]
    pack_fall = -200.0   # CNY per kWh incl. VAT
    prices = solve_for(supply, market, supply.cost + supply.solver_shift + supply.battery * pack_fall)
    base = market.products.price
    for k, name in enumerate(names):
        if name in ("other BEV low", "other BEV high", "other PHEV low", "other PHEV high"):
            assert supply.battery[0, k] > 0 and prices[0, k] < base[0, k] - 1_000, name
    # shares with the outside option sum to one, from the logit's log-sum
    _, shares = choice_probabilities(market.delta, market.products, market.tastes, prices)
    u = utilities(market.delta, market.products, market.tastes, prices)
    outside = np.einsum("nt,nt->n", market.tastes.weights, 1.0 / (1.0 + np.exp(u).sum(axis=2)))
    np.testing.assert_allclose(shares.sum(axis=1) + outside, 1.0, rtol=1e-12)
    # own-price elasticities stay negative and cross-price ones positive
    eps = elasticities(market.delta, market.products, market.tastes, prices)[0]
    own = np.diagonal(eps)
    cross = eps[~np.eye(len(own), dtype=bool)]
    assert np.all(own < 0) and np.all(cross > 0)


def test_the_warm_start_follows_the_secant_through_the_last_two_calibrations(fit):
    """alpha moves along log|alpha| against log|e| through the draw's last two calibrations (exact for a
    power law: here alpha ~ |e|^2), proportionally to e without an earlier one; xi keeps the price term."""
    base = replace(fit.base, alpha=np.array([-2e-5 * 5.0 ** 2]))
    earlier = (np.array([-4.0]), np.array([-2e-5 * 4.0 ** 2]))
    alpha, xi = warm_start(base, np.array([-5.0]), np.array([-5.5]), earlier)
    np.testing.assert_allclose(alpha, -2e-5 * 5.5 ** 2, rtol=1e-12)
    np.testing.assert_allclose(xi, base.quality + base.quality_adjustment
                               - (alpha - base.alpha)[:, None] * base.effective_price, rtol=1e-12)
    proportional, _ = warm_start(base, np.array([-5.0]), np.array([-5.5]))
    np.testing.assert_allclose(proportional, base.alpha * 1.1, rtol=1e-12)
    flat = (np.array([-5.0]), base.alpha)   # no secant through one point: proportional again
    np.testing.assert_allclose(warm_start(base, np.array([-5.0]), np.array([-5.5]), flat)[0], base.alpha * 1.1,
                               rtol=1e-12)
