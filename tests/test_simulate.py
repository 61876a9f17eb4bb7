"""The simulation reproduces its base period and keeps the invariants an analyst relies on."""

import numpy as np
import pytest

from evlaunch.config.columns import DELIVERIES, MARKET_TOTAL, NPV, ORDERS, path_column, yearly
from evlaunch.config.distributions import is_uncertain
from evlaunch.config.scenario import quantities, uncertain_parameters
from evlaunch.market.calibration import base_months
from evlaunch.market.demand import as_of_point, walk_path
from evlaunch.market.logit import logit_shares
from evlaunch.market.policy import purchase_tax
from evlaunch.market.regions import own_price_elasticities
from evlaunch.runs.sampling import sample_draws
from evlaunch.simulation import simulate
from evlaunch.simulation.outputs import diversion_group_names, output_names
from evlaunch.simulation.simulate import prepare, prepare_setting
from evlaunch.supply.margin_fit import fit_margins
from evlaunch.supply.repricing import solve_markets

DRAWS = 64


@pytest.fixture(scope="module")
def inputs(reference_model):
    return sample_draws(reference_model, 7, 0, DRAWS)


def run(model, inputs, **overrides):
    changed = dict(inputs)
    for key, value in overrides.items():
        changed[key] = np.broadcast_to(np.asarray(value, dtype=float), (DRAWS,)).copy() if np.ndim(value) == 0 \
            else value
    return simulate(model, changed)


def test_calibration_reproduces_base_period_shares(reference_model, inputs):
    parameters = reference_model.parameters(inputs)
    fit = fit_margins(reference_model.market, parameters)
    base = fit.base
    lineup = reference_model.lineup
    effective = base.price + purchase_tax(base.price, lineup.is_nev, round(reference_model.base_mid_month),
                                          parameters.finance.vat_rate, reference_model.scenario.as_of)
    shares = logit_shares(base.quality + base.alpha[:, None] * effective)
    np.testing.assert_allclose(shares, base.shares, rtol=1e-9, atol=0)
    # shares plus the outside option sum to one, and the market total is the sourced monthly mean
    np.testing.assert_allclose(shares.sum(axis=1) + base.outside_share, 1.0, rtol=1e-12)
    history = reference_model.history
    total = history.base_month_totals(*reference_model.scenario.market.base_period).mean()
    np.testing.assert_allclose(base.potential * shares.sum(axis=1), total, rtol=1e-9)
    # the demand the simulation uses (consumer types: regions x taste types) reproduces the shares too
    assert len(base.types.region_of) > len(base.regions.names) and np.any(base.types.tastes != 0)
    own, typed_shares = own_price_elasticities(base.alpha, base.effective_price, base.types, base.extras,
                                               base.quality + base.quality_adjustment)
    np.testing.assert_allclose(typed_shares, base.shares, rtol=1e-9, atol=0)
    # ... and its sales-weighted own-price elasticity over the named models is the sampled one
    named = np.array([not name.startswith("other ") for name in lineup.names])
    weights = base.shares[:, named] / base.shares[:, named].sum(axis=1, keepdims=True)
    implied = (weights * own[:, named]).sum(axis=1)
    np.testing.assert_allclose(implied, fit.elasticity, rtol=1e-9)
    # ... which the search set so that the firms' mean implied gross margin is the sampled one
    np.testing.assert_allclose(fit.firm_margin.mean(axis=1), parameters.market.gross_margin, atol=1e-6)


def test_same_inputs_same_outputs(reference_model, inputs):
    first, second = simulate(reference_model, inputs), simulate(reference_model, inputs)
    for key in first:
        np.testing.assert_array_equal(first[key], second[key])


@pytest.fixture(scope="module")
def fixed_price_model(reference_model, reference_path):
    """The reference scenario with the entrant's guide price held throughout (`price_policy = "fixed"`)."""
    scenario = reference_model.scenario
    return prepare(scenario.model_copy(update={"finance": scenario.finance.model_copy(
        update={"price_policy": "fixed"})}), reference_path.parent)


@pytest.mark.parametrize("field, low_value, high_value, fixed", [
    # the first phase, with the expansion option held off (a smaller plant orders its next phase sooner,
    # which may deliver more than a larger first phase that never expands)
    ("paths.own.capacity_per_year", 60_000.0, 240_000.0, {"paths.own.expansion_capacity_per_year": 0.0}),
    # the expansion phase: the rule orders it in the same month, a bigger phase never delivers less
    ("paths.own.expansion_capacity_per_year", 50_000.0, 300_000.0, {"paths.own.capacity_per_year": 60_000.0}),
])
def test_more_capacity_never_lowers_deliveries(fixed_price_model, inputs, field, low_value, high_value, fixed):
    """At the entrant's guide price. Under the best-response policy it is not an invariant: a plant that clears
    its queue stops holding the launch price and moves towards its (higher) best response, which can sell fewer
    cars over the horizon than a smaller plant whose queue keeps the launch price (1 draw in 64 at these inputs)."""
    low = run(fixed_price_model, inputs, **fixed, **{field: low_value})
    high = run(fixed_price_model, inputs, **fixed, **{field: high_value})
    # cumulative deliveries to every year end (a bigger plant may clear the backlog earlier, so a single
    # later year can be lower; what was delivered by any date never is)
    cumulative_low = cumulative_high = 0.0
    for year in fixed_price_model.scenario.years:
        cumulative_low = cumulative_low + low[f"own.deliveries.{year}"]
        cumulative_high = cumulative_high + high[f"own.deliveries.{year}"]
        assert np.all(cumulative_high >= cumulative_low - 1e-6)
    assert cumulative_high.sum() > cumulative_low.sum()


def test_later_approval_never_gives_an_earlier_launch(reference_model, inputs):
    early = run(reference_model, inputs, **{"paths.own.stages.0.months": 2.0})
    late = run(reference_model, inputs, **{"paths.own.stages.0.months": 14.0})
    assert np.all(late["own.launch_month_index"] >= early["own.launch_month_index"])
    launched = np.isfinite(early["own.launch_month_index"])
    assert np.any(late["own.launch_month_index"][launched] > early["own.launch_month_index"][launched])


def test_higher_price_never_raises_the_entrants_share(fixed_price_model, inputs):
    """At a fixed price policy (under a best response the guide price sets only the first month's price)."""
    cheap = run(fixed_price_model, inputs, **{"product.price": 200_000.0})
    dear = run(fixed_price_model, inputs, **{"product.price": 290_000.0})
    for year in fixed_price_model.scenario.years:
        assert np.all(dear[f"own.orders.{year}"] <= cheap[f"own.orders.{year}"] + 1e-6)
    assert dear["own.orders.2026"].sum() < cheap["own.orders.2026"].sum()


def test_failing_stage_falls_back_and_launches_later(reference_model, inputs):
    never_fails = run(reference_model, inputs, **{"paths.Brilliance.stages.0.failure": 0.0})
    always_fails = run(reference_model, inputs, **{"paths.Brilliance.stages.0.failure": 1.0})
    assert np.all(always_fails["Brilliance.path_failed"])
    chery = list(reference_model.scenario.paths).index("Chery")
    own = list(reference_model.scenario.paths).index("own")
    rescued = always_fails["Brilliance.operating_path"]
    assert set(np.unique(rescued)) <= {chery, own, -1.0}
    both = np.isfinite(always_fails["Brilliance.launch_month_index"]) & np.isfinite(
        never_fails["Brilliance.launch_month_index"])
    assert np.all(always_fails["Brilliance.months_lost"] > 0)
    # falling back costs the time already spent: a draw rescued by Chery launches no earlier than Chery
    # taken up at the start, and on average clearly later
    by_chery = (rescued == chery) & np.isfinite(always_fails["Chery.launch_month_index"])
    assert by_chery.sum() >= 5
    fallen, direct = always_fails["Brilliance.launch_month_index"][by_chery], always_fails["Chery.launch_month_index"][
        by_chery]
    assert np.all(fallen >= direct) and fallen.mean() >= direct.mean() + 1.0
    assert np.all(always_fails["Brilliance.launch_month_index"][both]
                  >= np.minimum(never_fails["Brilliance.launch_month_index"][both],
                                always_fails["Chery.launch_month_index"][both]))


def test_deliveries_never_exceed_orders_and_capacity(reference_model, inputs):
    out = simulate(reference_model, inputs)
    for path in reference_model.scenario.paths:
        total_orders = sum(out[f"{path}.orders.{y}"] for y in reference_model.scenario.years)
        total_deliveries = sum(out[f"{path}.deliveries.{y}"] for y in reference_model.scenario.years)
        assert np.all(total_deliveries <= total_orders + 1e-6)
        # a year's deliveries: at most the first phase and the expansion at full output, plus stock built
        # before the launch (at most its months of the first phase's output)
        terms = reference_model.parameters(inputs).paths
        capacity = max((terms[p].capacity_per_year * (1 + terms[p].prelaunch_build_months / 12)
                        + terms[p].expansion_capacity_per_year).max() for p in reference_model.scenario.paths)
        for year in reference_model.scenario.years:
            assert np.all(out[f"{path}.deliveries.{year}"] <= capacity + 1e-6)
        share = out[f"{path}.nev_share.2026"]
        assert np.all((share > 0) & (share < 1))


def test_every_output_column_is_declared_by_the_schema_in_order(reference_model, inputs):
    out = simulate(reference_model, inputs)
    launch_groups = [c.group for c in reference_model.scenario.competition.launches]
    groups = diversion_group_names(reference_model.lineup, launch_groups)
    assert list(out) == output_names(reference_model.scenario, groups)
    assert path_column("own", NPV) == "own.npv" and "own.npv" in out  # the names are the contract's
    assert yearly("own", DELIVERIES, 2026) == "own.deliveries.2026"


def test_parameters_take_inputs_then_fixed_values_then_centres_then_half_for_events(reference_model, inputs):
    scenario = reference_model.scenario
    uncertain = uncertain_parameters(scenario)
    central = reference_model.parameters()
    assert central.draws == 1
    # a distribution without a sampled input sits at its centre; a random event at 0.5
    assert central.market.gross_margin[0] == uncertain["market.gross_margin"].centre
    assert np.all(central.paths["own"].stages[0].failure_event == 0.5)
    # a fixed value is used as it is; a sampled input is taken as given, and overrides a fixed value too
    fixed = quantities(scenario)["finance.vat_rate"]
    assert not is_uncertain(fixed) and central.finance.vat_rate[0] == fixed
    sampled = reference_model.parameters({**inputs, "finance.vat_rate": np.full(DRAWS, 0.2)})
    np.testing.assert_array_equal(sampled.finance.vat_rate, 0.2)
    np.testing.assert_array_equal(sampled.market.gross_margin, inputs["market.gross_margin"])
    np.testing.assert_array_equal(sampled.paths["own"].stages[0].failure_event,
                                  inputs["paths.own.stages.0.failure_event"])
    # kernels cannot change them behind each other's backs
    with pytest.raises(ValueError):
        sampled.market.outside_share[0] = 0.5


def test_market_supply_and_entry_code_never_imports_the_simulation_or_above():
    import ast
    from pathlib import Path

    import evlaunch

    root = Path(evlaunch.__file__).parent
    above = ("evlaunch.simulation", "evlaunch.runs", "evlaunch.studies", "evlaunch.report", "evlaunch.web",
             "evlaunch.cli")
    for package in ("market", "supply", "entry", "config", "analysis"):
        for module in (root / package).glob("*.py"):
            for node in ast.walk(ast.parse(module.read_text())):
                names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                         else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
                assert not any(name.startswith(above) for name in names), f"{module} imports {names}"


ANCHOR_DRAWS = 8
NEV_TRENDS = (0.0, 0.5, 1.0)   # logit per year, across and beyond the estimate's spread


def growth_path(model, market, year):
    """[N] a calendar year's new-car sales on the growth path, from the history alone: the base period's
    mean monthly total, seasonality, (1 + growth) per year from the base period's middle, and the growth
    walk's yearly innovations after the as-of date (`walk_path`, tested on its own in tests/market)."""
    history, scenario = model.history, model.scenario
    total = history.base_month_totals(*scenario.market.base_period).mean()
    season = history.seasonality / history.seasonality[[m % 12 for m in base_months(scenario)]].mean()
    months = year * 12 + np.arange(12)
    years = (months - model.base_mid_month) / 12.0
    walk = walk_path(market.steps["growth_per_year"], market.step_years, as_of_point(scenario), months)
    return total * (season[months % 12][None, :] * (1.0 + market.growth_per_year[:, None]) ** years[None, :]
                    * np.exp(walk)).sum(axis=1)


@pytest.fixture(scope="module")
def trend_inputs(reference_model):
    inputs = sample_draws(reference_model, 11, 0, ANCHOR_DRAWS)
    return {trend: {**inputs, "market.nev_trend_per_year": np.full(ANCHOR_DRAWS, trend)} for trend in NEV_TRENDS}


def no_entrant_years(model, inputs):
    """(parameters, {year: (new-car sales [N], NEV sales [N])}) of the market without the entrant, with the
    incumbents' no-entrant prices (re-priced as the scenario says)."""
    parameters = model.parameters(inputs)
    setting = prepare_setting(model, parameters)
    demand, draws = setting.demand, parameters.draws
    never, absent = np.full(draws, np.inf), np.zeros(draws, dtype=bool)
    path = setting.pricing.path()
    years = {}
    for step in range(demand.periods):
        prices = None
        if step >= demand.lead:  # re-priced where due, then the month's demand at those prices
            markets = path.due(step - demand.lead, np.zeros(draws), parameters.product.price, absent, never)
            if markets is not None:
                path.apply(markets, solve_markets([markets], demand, path.pricing.supply)[0])
            prices = path.pricing.lineup_prices(path.guide)
        _, shares = demand.month(step, np.zeros(draws), np.zeros(draws), parameters.product.price, absent, never,
                                 prices)
        size = demand.size[:, step]
        market, nev = years.get(int(demand.years[step]), (0.0, 0.0))
        years[int(demand.years[step])] = (market + size * shares.sum(axis=1),
                                          nev + size * (shares * demand.is_nev[None, :]).sum(axis=1))
    return parameters, years


def test_without_the_entrant_the_market_follows_the_growth_path_whatever_the_nev_trend(reference_model, trend_inputs):
    """The anchor: NEV adoption moves shares among cars, not the number of cars (the growth rate was
    estimated from total sales that already include NEVs' growth). Incumbents re-price (Bertrand)."""
    shares = []
    for trend in NEV_TRENDS:
        parameters, years = no_entrant_years(reference_model, trend_inputs[trend])
        assert set(years) == set(reference_model.scenario.years)
        for year, (market, _) in years.items():
            np.testing.assert_allclose(market, growth_path(reference_model, parameters.market, year), rtol=1e-9)
        shares.append({year: nev / market for year, (market, nev) in years.items()})
    # ... while the NEV share still rises with the NEV trend, the more the later (in log-odds: a share near one
    # can rise by fewer points later, as the trend is a drift in the NEV utility)
    for year in (2024, 2026, 2028):
        assert np.all(np.diff([share[year] for share in shares], axis=0) > 0)

    def log_odds(share):
        return np.log(share / (1.0 - share))

    assert np.all(log_odds(shares[-1][2028]) - log_odds(shares[0][2028])
                  > log_odds(shares[-1][2024]) - log_odds(shares[0][2024]))


def test_the_simulated_market_is_on_the_growth_path_until_the_entrant_sells(reference_model, trend_inputs):
    """The outputs themselves: 2023 (the entrant not on sale yet) on the growth path for every path and trend."""
    for trend in NEV_TRENDS:
        out = simulate(reference_model, trend_inputs[trend])
        market = reference_model.parameters(trend_inputs[trend]).market
        for path in reference_model.scenario.paths:
            assert np.all(out[yearly(path, ORDERS, 2023)] == 0)
            np.testing.assert_allclose(out[yearly(path, MARKET_TOTAL, 2023)],
                                       growth_path(reference_model, market, 2023), rtol=1e-9)


def test_entry_expands_the_market_only_by_the_entrants_buyers_from_the_outside_option(reference_model, trend_inputs,
                                                                                    reference_path):
    """At the incumbents' no-entrant prices, the entrant on sale adds to each consumer type's new-car share
    exactly its share times the no-entrant outside share (logit: 1/(1+D) - 1/(1+D+E) = s_e (1 - S'));
    so entry never shrinks the market and adds less than its own sales."""
    scenario = reference_model.scenario
    fixed = prepare(scenario.model_copy(update={"competition": scenario.competition.model_copy(
        update={"reprice": "fixed"})}), reference_path.parent)
    parameters = fixed.parameters(trend_inputs[0.5])
    demand = prepare_setting(fixed, parameters).demand
    draws, price = parameters.draws, parameters.product.price
    weights = demand.types.weights
    for step in (demand.lead, demand.periods - 1):
        without, _ = demand.month(step, np.zeros(draws), np.zeros(draws), price, np.zeros(draws, dtype=bool),
                                  np.full(draws, np.inf))
        with_entrant, _ = demand.month(step, np.zeros(draws), np.zeros(draws), price, np.ones(draws, dtype=bool),
                                       np.zeros(draws))
        np.testing.assert_allclose((weights * without.sum(axis=2)).sum(axis=1), demand.inside_target, rtol=1e-12)
        expansion = (weights * (with_entrant.sum(axis=2) - without.sum(axis=2))).sum(axis=1)
        entrant = with_entrant[:, :, -1]
        np.testing.assert_allclose(expansion, (weights * entrant * (1.0 - without.sum(axis=2))).sum(axis=1),
                                   rtol=1e-9)
        assert np.all(expansion > 0) and np.all(expansion < (weights * entrant).sum(axis=1))
