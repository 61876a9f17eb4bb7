"""Consumer types (regions x taste types): the population is what the docstring says, the simulation's
demand equals the random-coefficients module's on the same types, the base period is reproduced exactly,
and tastes move substitution the way economics says they should."""

from __future__ import annotations

import re

import numpy as np
import pytest

from evlaunch.config.scenario import parse_scenario
from evlaunch.errors import ScenarioError
from evlaunch.market.consumer_types import CHARACTERISTICS, taste_nodes
from evlaunch.market.lineup import OTHER_PRODUCTS
from evlaunch.market.rc_logit import (
    ConsumerTastes,
    ProductSet,
    choice_probabilities,
    diversion_ratios,
    elasticities,
)
from evlaunch.market.regions import (
    calibrate_mean_utilities,
    national_shares,
    regional_shares,
    regional_utilities,
)
from evlaunch.runs.sampling import sample_draws
from evlaunch.simulation.simulate import prepare
from evlaunch.supply.margin_fit import calibrate_market
from evlaunch.supply.repricing import base_market

DRAWS = 12


def with_tastes(text: str, **values: float) -> str:
    """The scenario text with some `market.tastes` fields set to fixed values."""
    for field, number in values.items():
        text, count = re.subn(rf"(?m)^{field} = .*$", f"{field} = {number}", text)
        assert count == 1, field
    return text


def base_of(text: str, reference_path, draws: int = 1):
    model = prepare(parse_scenario(text, "tastes.toml"), reference_path.parent)
    if draws == 1:
        parameters = model.parameters()
    else:
        parameters = model.parameters(sample_draws(model, 5, 0, draws))
    return model, calibrate_market(model.market, parameters)


@pytest.mark.parametrize("count", [1, 4, 8, 12, 32])
def test_nodes_are_standardised_and_uncorrelated_where_the_count_allows(count):
    nodes = taste_nodes(count)
    assert nodes.shape == (count, 1 + len(CHARACTERISTICS))
    np.testing.assert_array_equal(nodes, taste_nodes(count))  # fixed: part of the model, not the Monte Carlo
    np.testing.assert_allclose(nodes.mean(axis=0), 0.0, atol=1e-12)
    if count == 1:
        assert np.all(nodes == 0)
        return
    np.testing.assert_allclose(nodes.std(axis=0), 1.0, rtol=1e-12)
    if count > nodes.shape[1]:
        np.testing.assert_allclose(nodes.T @ nodes / count, np.eye(nodes.shape[1]), atol=1e-12)


def test_types_weights_and_price_sensitivity_are_normalised(reference_path, reference_text):
    _, base = base_of(reference_text, reference_path, DRAWS)
    types = base.types
    per_region = len(types.region_of) // len(types.regions.names)
    assert per_region == 16
    np.testing.assert_allclose(types.weights.sum(axis=1), 1.0, rtol=1e-12)
    np.testing.assert_allclose((types.weights * types.price_sensitivity).sum(axis=1), 1.0, rtol=1e-12)
    # each region keeps its weight, and a region's types share it equally
    np.testing.assert_allclose(types.weights @ types.membership, types.regions.weights, rtol=1e-12)
    assert np.all(types.price_sensitivity > 0)


def test_simulation_demand_equals_the_random_coefficients_module_on_the_same_types(reference_path, reference_text):
    """Our demand (mean utility + type price coefficient + regional terms + tastes x characteristics) is the
    BLP model `market.rc_logit` computes (checked against pyblp elsewhere) with x2 = [characteristics, the
    regional terms] and sigma_nu = [tastes, region indicators]."""
    _, base = base_of(reference_text, reference_path, DRAWS)
    types = base.types
    size_j = base.shares.shape[1]
    regional_terms = base.extras - base.taste_utility[:, :, :size_j]          # [N, T, J], equal within a region
    per_region = regional_terms[:, np.unique(types.region_of, return_index=True)[1]]  # [N, R, J]
    x2 = np.concatenate([np.nan_to_num(base.characteristics[:, :size_j]), per_region.transpose(0, 2, 1)], axis=2)
    sigma_nu = np.concatenate([types.tastes, np.broadcast_to(types.membership, (DRAWS, *types.membership.shape))],
                              axis=2)
    delta = base.quality + base.quality_adjustment + base.alpha[:, None] * base.effective_price
    tastes = ConsumerTastes(base.alpha, base.alpha[:, None] * (types.price_sensitivity - 1.0), sigma_nu, types.weights)
    _, theirs = choice_probabilities(delta, ProductSet(x2, base.effective_price), tastes)
    ours = national_shares(regional_shares(regional_utilities(base.quality + base.quality_adjustment, base.alpha,
                                                              base.effective_price, types, base.extras)), types)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)
    np.testing.assert_allclose(ours, base.shares, rtol=1e-9)  # and it reproduces the base period


def test_newton_inversion_reproduces_shares_and_is_independent_of_the_chunk(reference_path, reference_text):
    _, base = base_of(reference_text, reference_path, DRAWS)
    types = base.types
    start = base.quality
    whole = calibrate_mean_utilities(base.shares, base.alpha, base.effective_price, types, base.extras, start=start)
    rows = np.arange(3, 9)
    part = calibrate_mean_utilities(base.shares[rows], base.alpha[rows], base.effective_price[rows], types.rows(rows),
                                    base.extras[rows], start=start[rows])
    np.testing.assert_array_equal(part, whole[rows])
    predicted = national_shares(regional_shares(regional_utilities(whole, base.alpha, base.effective_price, types,
                                                                   base.extras)), types)
    np.testing.assert_allclose(predicted, base.shares, rtol=1e-11)


def test_no_heterogeneity_within_regions_is_the_regional_logit(reference_path, reference_text):
    """Eight types per region with every spread 0 give exactly the demand of one type per region."""
    zero = {"income_dispersion": 0.0, **{f"sigma_{name}": 0.0 for name in CHARACTERISTICS}}
    _, eight = base_of(with_tastes(reference_text, **zero), reference_path)
    _, one = base_of(with_tastes(reference_text, types_per_region=1, **zero), reference_path)
    np.testing.assert_allclose(eight.alpha, one.alpha, rtol=1e-9)
    np.testing.assert_allclose(eight.quality + eight.quality_adjustment, one.quality + one.quality_adjustment,
                               rtol=1e-9, atol=1e-9)


def _diversion(text, reference_path, source: str):
    model, base = base_of(text, reference_path)
    market = base_market(model.lineup, base, np.arange(len(model.lineup.names)))
    diversion = diversion_ratios(market.delta, market.products, market.tastes)[0]
    return model.lineup, diversion[model.lineup.index(source)]


def test_a_taste_for_nevs_keeps_a_bevs_buyers_among_nevs(reference_path, reference_text):
    lineup, without = _diversion(with_tastes(reference_text, sigma_nev=0.0), reference_path, "BYD Seal")
    _, with_taste = _diversion(with_tastes(reference_text, sigma_nev=1.5), reference_path, "BYD Seal")
    seal = lineup.index("BYD Seal")
    nev = np.array([p in ("BEV", "PHEV") for p in lineup.powertrains]) & (np.arange(len(lineup.names)) != seal)
    assert with_taste[nev].sum() > without[nev].sum() + 0.05


def test_a_taste_for_suvs_keeps_a_sedans_buyers_among_sedans(reference_path, reference_text):
    lineup, without = _diversion(with_tastes(reference_text, sigma_suv=0.0), reference_path, "BYD Seal")
    _, with_taste = _diversion(with_tastes(reference_text, sigma_suv=1.5), reference_path, "BYD Seal")
    suv = np.array([b == "SUV" for b in lineup.bodies])
    assert with_taste[suv].sum() < without[suv].sum() - 0.01


def test_income_dispersion_makes_buyers_of_dear_cars_less_price_sensitive(reference_path, reference_text):
    """With one price coefficient, |elasticity| / price is about alpha (1 - s) for every model; with price
    sensitivity falling with income it falls with the price."""
    slopes = {}
    for dispersion in (0.0, 0.8):
        model, base = base_of(with_tastes(reference_text, income_dispersion=dispersion), reference_path)
        market = base_market(model.lineup, base, np.arange(len(model.lineup.names)))
        own = np.diagonal(elasticities(market.delta, market.products, market.tastes), axis1=1, axis2=2)[0]
        named = np.array([n not in OTHER_PRODUCTS for n in model.lineup.names])
        price = base.effective_price[0, named]
        slopes[dispersion] = np.polyfit(np.log(price), np.log(-own[named] / price), 1)[0]
    assert slopes[0.8] < slopes[0.0] - 0.3


def test_range_taste_needs_every_bev_range(reference_path, reference_text):
    text = reference_text.replace("[dynamics.missing_range_band]", "[dynamics.missing_range_band_gone]")
    text = re.sub(r"(?ms)^\[dynamics\.missing_range_band_gone\].*", "", text)
    with pytest.raises(ScenarioError, match=r"dynamics\.missing_range_band .*sigma_range"):
        prepare(parse_scenario(text, "no-ranges.toml"), reference_path.parent)
    prepare(parse_scenario(with_tastes(text, sigma_range=0.0), "no-ranges.toml"), reference_path.parent)


@pytest.mark.parametrize("per_region,spread", [(2, None), (4, None), (16, None), (4, 5.0)])
def test_calibration_reproduces_the_base_period_for_any_number_of_types(reference_path, reference_text, per_region,
                                                                         spread):
    """Few types (no whitening possible), many types, and very wide tastes: Newton with its trust region and
    contraction fallback still reproduces the base shares (4 types once overshot into zero shares)."""
    text = with_tastes(reference_text, types_per_region=per_region)
    if spread is not None:
        text = with_tastes(text, **{f"sigma_{name}": spread for name in CHARACTERISTICS})
    _, base = base_of(text, reference_path, DRAWS)
    types = base.types
    assert len(types.region_of) == per_region * len(types.regions.names)
    shares = national_shares(regional_shares(regional_utilities(base.quality + base.quality_adjustment, base.alpha,
                                                                base.effective_price, types, base.extras)), types)
    np.testing.assert_allclose(shares, base.shares, rtol=1e-9)


@pytest.mark.parametrize("name", ["xiaomi-2023.toml", "xiaomi-2021.toml"])
def test_reference_scenarios_tastes_are_uncorrelated_across_their_nodes(reference_path, name):
    """At the reference scenarios' node count no two taste dimensions (income and the seven characteristics)
    are correlated across the nodes by accident (8 nodes for 8 dimensions gave the brand taste a -0.48
    correlation with the NEV taste)."""
    scenario = parse_scenario((reference_path.parent / name).read_text(encoding="utf-8"), name)
    nodes = taste_nodes(scenario.market.tastes.types_per_region)
    correlation = np.corrcoef(nodes, rowvar=False)
    off_diagonal = np.abs(correlation - np.diag(np.diag(correlation)))
    assert off_diagonal.max() < 0.05
    unwhitened = np.corrcoef(taste_nodes(8), rowvar=False)
    assert np.abs(unwhitened - np.diag(np.diag(unwhitened))).max() > 0.05  # the artefact this guards against
