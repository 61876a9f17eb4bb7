"""Regions: the joint calibration reproduces national base-period shares exactly; shares are proper
per region; charging, prices and policy bonuses move shares the way they should."""

from pathlib import Path

import numpy as np
import pytest

from evlaunch.config.parameters import RegionParameters
from evlaunch.config.scenario import load_scenario
from evlaunch.errors import DataError
from evlaunch.market.calibration import base_activity, calibrate
from evlaunch.market.logit import logit_shares, mean_utilities
from evlaunch.market.regions import (
    RegionSet,
    calibrate_mean_utilities,
    calibrate_price_coefficient,
    national_shares,
    nev_extras,
    own_price_elasticities,
    region_set,
    regional_shares,
    regional_utilities,
    single_region,
)
from evlaunch.runs.sampling import sample_draws
from evlaunch.simulation.simulate import prepare, simulate

ROOT = Path(__file__).resolve().parents[2]
SCENARIO_2021 = ROOT / "scenarios" / "xiaomi-2021.toml"
DRAWS = 16


@pytest.fixture(scope="module")
def model_2021():
    return prepare(load_scenario(SCENARIO_2021), SCENARIO_2021.parent)


@pytest.fixture(scope="module")
def inputs_2021(model_2021):
    return sample_draws(model_2021, 11, 0, DRAWS)


def two_regions(draws: int, rng: np.random.Generator) -> RegionSet:
    weights = rng.uniform(0.2, 0.8, (draws, 1))
    weights = np.hstack([weights, 1 - weights])
    multiplier = rng.uniform(0.5, 1.5, (draws, 2))
    multiplier /= (weights * multiplier).sum(axis=1, keepdims=True)
    charging = rng.uniform(0.1, 0.9, (draws, 1))
    charging = np.hstack([charging, 1 - charging])
    zeros = np.zeros((draws, 2))
    return RegionSet(("a", "b"), weights, multiplier, charging, zeros, rng.uniform(0, 1, (draws, 2)),
                     rng.uniform(0, 0.5, (draws, 2)))


def test_joint_calibration_reproduces_national_shares_exactly():
    rng = np.random.default_rng(3)
    draws, products = 20, 9
    shares = rng.dirichlet(np.ones(products + 1), draws)[:, :products] * 0.9
    price = rng.uniform(5e4, 4e5, (draws, products))
    alpha = -rng.uniform(1e-5, 4e-5, draws)
    regions = two_regions(draws, rng)
    is_nev = rng.uniform(size=products) < 0.5
    extras = nev_extras(regions, is_nev, is_nev * 1.0, 0.5, rng.normal(0, 0.3, (draws, 2)))
    xi = calibrate_mean_utilities(shares, alpha, price, regions, extras)
    predicted = national_shares(regional_shares(regional_utilities(xi, alpha, price, regions, extras)), regions)
    np.testing.assert_allclose(predicted, shares, rtol=1e-9, atol=0)


def test_one_region_is_the_plain_logit_inversion():
    rng = np.random.default_rng(5)
    shares = rng.dirichlet(np.ones(6), 4)[:, :5]
    price = rng.uniform(5e4, 3e5, (4, 5))
    alpha = np.full(4, -2e-5)
    xi = calibrate_mean_utilities(shares, alpha, price, single_region(4))
    np.testing.assert_allclose(xi, mean_utilities(shares, 1 - shares.sum(axis=1)) - alpha[:, None] * price,
                               rtol=1e-12)


def test_2021_scenario_base_year_reproduced_by_region_weighted_shares(model_2021, inputs_2021):
    parameters = model_2021.parameters(inputs_2021)
    base = calibrate(model_2021.market, parameters)
    assert len(base.regions.names) == 2 and np.any(np.abs(base.quality_adjustment) > 1e-3)
    campaign, plate = base_activity(model_2021.policy, model_2021.scenario, model_2021.lineup.powertrains)
    assert campaign == pytest.approx(0.5)           # rural campaign Jul-Dec 2020 (policy_schedule)
    extras = nev_extras(base.regions, model_2021.lineup.is_nev, plate, campaign,
                        parameters.market.charging_effect[:, None] * base.regions.log_density_ratio)
    # the consumer types carry their region's terms plus their tastes
    types = base.types
    size_j = base.shares.shape[1]
    np.testing.assert_allclose(base.extras, types.expand(extras) + base.taste_utility[:, :, :size_j], rtol=1e-12)
    utility = regional_utilities(base.quality + base.quality_adjustment, base.alpha, base.effective_price,
                                 types, base.extras)
    national = national_shares(regional_shares(utility), types)
    np.testing.assert_allclose(national, base.shares, rtol=1e-9, atol=0)
    total = model_2021.history.base_month_totals(*model_2021.scenario.market.base_period).mean()
    np.testing.assert_allclose(base.potential * national.sum(axis=1), total, rtol=1e-9)
    # the plain national inversion stays what `quality` means
    plain = logit_shares(base.quality + base.alpha[:, None] * base.effective_price)
    np.testing.assert_allclose(plain, base.shares, rtol=1e-9)


def test_shares_with_the_outside_option_sum_to_one_per_region():
    rng = np.random.default_rng(7)
    regions = two_regions(6, rng)
    utility = regional_utilities(rng.normal(0, 2, (6, 8)), np.full(6, -2e-5), rng.uniform(5e4, 3e5, (6, 8)),
                                 regions, rng.normal(0, 1, (6, 2, 8)))
    available = rng.uniform(size=(6, 8)) < 0.8
    shares = regional_shares(utility, available)
    outside = 1 - shares.sum(axis=2)
    assert np.all(outside > 0) and np.all(shares >= 0)
    np.testing.assert_allclose(shares.sum(axis=2) + outside, 1.0, rtol=0, atol=1e-15)
    assert np.all(shares[np.broadcast_to(~available[:, None, :], shares.shape)] == 0)


def test_more_charging_never_lowers_nev_share():
    rng = np.random.default_rng(9)
    regions = two_regions(5, rng)
    is_nev = np.array([True, True, False, False, True])
    mean = rng.normal(0, 1, (5, 5))
    price = rng.uniform(5e4, 3e5, (5, 5))
    alpha = np.full(5, -2e-5)
    previous = None
    for charging in np.linspace(-1, 2, 7):
        extras = nev_extras(regions, is_nev, is_nev * 0.0, 0.0, np.full((5, 2), charging))
        shares = regional_shares(regional_utilities(mean, alpha, price, regions, extras))
        nev_share = (shares * is_nev).sum(axis=2) / shares.sum(axis=2)
        if previous is not None:
            assert np.all(nev_share >= previous - 1e-15)
        previous = nev_share


def test_more_charging_growth_never_lowers_nev_share_in_the_simulation(model_2021, inputs_2021):
    def run(growth):
        changed = dict(inputs_2021)
        changed["market.charging_growth_per_year"] = np.full(DRAWS, growth)
        return simulate(model_2021, changed)

    slow, fast = run(0.1), run(0.6)
    for year in model_2021.scenario.years:
        for key in [f"GreatWall.nev_share.{year}"] + [f"GreatWall.nev_share_region.{r}.{year}"
                                                        for r in model_2021.scenario.regions]:
            assert np.all(fast[key] >= slow[key] - 1e-12), key
    assert np.all(fast["GreatWall.nev_share.2025"] > slow["GreatWall.nev_share.2025"])
    assert np.all(fast["market.public_chargers.end"] > slow["market.public_chargers.end"])


def test_regional_outputs_add_up_and_differ_as_assumed(model_2021, inputs_2021):
    out = simulate(model_2021, inputs_2021)
    regions = list(model_2021.scenario.regions)
    for year in model_2021.scenario.years:
        market = sum(out[f"own.market_region.{r}.{year}"] for r in regions)
        np.testing.assert_allclose(market, out[f"own.market_total.{year}"], rtol=1e-9)
        deliveries = sum(out[f"own.deliveries_region.{r}.{year}"] for r in regions)
        np.testing.assert_allclose(deliveries, out[f"own.deliveries.{year}"], rtol=1e-9, atol=1e-6)
        nev = sum(out[f"own.nev_share_region.{r}.{year}"] * out[f"own.market_region.{r}.{year}"] for r in regions)
        np.testing.assert_allclose(nev / market, out[f"own.nev_share.{year}"], rtol=1e-9)
    # more chargers per buyer, a plate privilege and less price sensitivity: large cities buy more NEVs
    assert np.all(out["own.nev_share_region.large_cities.2024"] > out["own.nev_share_region.lower_tier.2024"])


def test_region_weights_are_normalised_per_draw():
    values = {"regions.a.weight": np.array([2.0, 1.0]), "regions.b.weight": np.array([2.0, 3.0]),
              "regions.a.charging_share": np.array([1.0, 1.0]), "regions.b.charging_share": np.array([3.0, 1.0]),
              "regions.a.price_sensitivity": np.array([1.0, 0.5]), "regions.b.price_sensitivity": np.array([1.0, 1.5])}
    fields = ("weight", "price_sensitivity", "charging_share", "charging_growth_extra", "plate_utility",
              "campaign_utility")
    regions = region_set({name: RegionParameters(*(values.get(f"regions.{name}.{field}", np.zeros(2))
                                                   for field in fields)) for name in ("a", "b")}, 2)
    np.testing.assert_allclose(regions.weights, [[0.5, 0.5], [0.25, 0.75]])
    np.testing.assert_allclose(regions.charging_share, [[0.25, 0.75], [0.5, 0.5]])
    np.testing.assert_allclose((regions.weights * regions.price_sensitivity).sum(axis=1), 1.0)


def test_calibration_of_a_draw_does_not_depend_on_the_other_draws_in_its_chunk():
    rng = np.random.default_rng(13)
    draws, products = 10, 7
    shares = rng.dirichlet(np.ones(products + 1), draws)[:, :products] * 0.8
    price = rng.uniform(5e4, 4e5, (draws, products))
    alpha = -rng.uniform(1e-5, 4e-5, draws)
    regions = two_regions(draws, rng)
    extras = rng.normal(0, 0.5, (draws, 2, products))
    whole = calibrate_mean_utilities(shares, alpha, price, regions, extras)
    rows = np.arange(3, 7)
    part = regions.rows(rows)
    np.testing.assert_array_equal(calibrate_mean_utilities(shares[rows], alpha[rows], price[rows], part, extras[rows]),
                                  whole[rows])


@pytest.mark.parametrize("shares", [[[0.6, 0.5]], [[0.3, 0.0]]])
def test_shares_that_cannot_be_calibrated_name_the_outside_share(shares):
    """Shares summing to 1 or more (no room for the outside option) or a zero share are refused naming the field."""
    with pytest.raises(DataError, match=r"field market\.outside_share: .*expected an outside share in \(0, 1\)"):
        calibrate_mean_utilities(np.array(shares), np.full(1, -2e-5), np.full((1, 2), 2e5), single_region(1))


def test_price_coefficient_search_meets_the_elasticity_and_the_shares_on_its_own_draws():
    """The compiled search (`calibrate_price_coefficient`): at its (alpha, xi) the numpy random-coefficients
    module gives the target sales-weighted elasticity to 1e-10 and the observed shares to 1e-13, and a
    draw's answer is the same in a smaller chunk or from another start."""
    rng = np.random.default_rng(17)
    draws, products = 8, 6
    shares = rng.dirichlet(np.ones(products + 1), draws)[:, :products] * 0.7
    price = rng.uniform(5e4, 4e5, (draws, products))
    regions = two_regions(draws, rng)
    extras = rng.normal(0, 0.5, (draws, 2, products))
    target = -rng.uniform(3.0, 6.0, draws)
    basis = np.arange(products) < 4
    outside = 1.0 - shares.sum(axis=1)
    plain_alpha = np.full(draws, -2e-5)
    plain_xi = mean_utilities(shares, outside) - plain_alpha[:, None] * price
    alpha, xi = calibrate_price_coefficient(shares, target, price, basis, regions, extras, plain_alpha, plain_xi)
    own, fitted = own_price_elasticities(alpha, price, regions, extras, xi)
    implied = (fitted[:, basis] * own[:, basis]).sum(axis=1) / fitted[:, basis].sum(axis=1)
    np.testing.assert_allclose(implied, target, rtol=1e-10)
    np.testing.assert_allclose(fitted, shares, rtol=1e-13)
    rows = np.arange(2, 5)
    part_alpha, part_xi = calibrate_price_coefficient(shares[rows], target[rows], price[rows], basis,
                                                      regions.rows(rows), extras[rows], plain_alpha[rows],
                                                      plain_xi[rows])
    np.testing.assert_array_equal(part_alpha, alpha[rows])
    np.testing.assert_array_equal(part_xi, xi[rows])
    warm_alpha, warm_xi = calibrate_price_coefficient(shares, target, price, basis, regions, extras, alpha * 1.1,
                                                      xi - 0.1 * alpha[:, None] * price)
    np.testing.assert_allclose(warm_alpha, alpha, rtol=3e-10)
    np.testing.assert_allclose(warm_xi, xi, rtol=0, atol=1e-4 * 3e-10 * 4e5 + 1e-9)
