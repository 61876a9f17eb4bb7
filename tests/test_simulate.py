"""The simulation reproduces its base period and keeps the invariants an analyst relies on."""

import numpy as np
import pytest

from evlaunch.config.columns import DELIVERIES, NPV, path_column, yearly
from evlaunch.config.distributions import is_uncertain
from evlaunch.config.scenario import quantities, uncertain_parameters
from evlaunch.market.logit import logit_shares
from evlaunch.market.policy import purchase_tax
from evlaunch.market.regions import own_price_elasticities
from evlaunch.runs.sampling import sample_draws
from evlaunch.simulation import simulate
from evlaunch.simulation.outputs import diversion_group_names, output_names
from evlaunch.simulation.simulate import prepare
from evlaunch.supply.margin_fit import fit_margins

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


@pytest.mark.parametrize("field, low_value, high_value, fixed", [
    # the first phase, with the expansion option held off (a smaller plant orders its next phase sooner,
    # which may deliver more than a larger first phase that never expands)
    ("paths.own.capacity_per_year", 60_000.0, 240_000.0, {"paths.own.expansion_capacity_per_year": 0.0}),
    # the expansion phase: the rule orders it in the same month, a bigger phase never delivers less
    ("paths.own.expansion_capacity_per_year", 50_000.0, 300_000.0, {"paths.own.capacity_per_year": 60_000.0}),
])
def test_more_capacity_never_lowers_deliveries(reference_model, inputs, field, low_value, high_value, fixed):
    low = run(reference_model, inputs, **fixed, **{field: low_value})
    high = run(reference_model, inputs, **fixed, **{field: high_value})
    # cumulative deliveries to every year end (a bigger plant may clear the backlog earlier, so a single
    # later year can be lower; what was delivered by any date never is)
    cumulative_low = cumulative_high = 0.0
    for year in reference_model.scenario.years:
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


def test_higher_price_never_raises_the_entrants_share(reference_model, inputs, reference_path):
    """At a fixed price policy (under a best response the guide price sets only the first month's price)."""
    scenario = reference_model.scenario
    fixed = prepare(scenario.model_copy(update={"finance": scenario.finance.model_copy(
        update={"price_policy": "fixed"})}), reference_path.parent)
    cheap = run(fixed, inputs, **{"product.price": 200_000.0})
    dear = run(fixed, inputs, **{"product.price": 290_000.0})
    for year in reference_model.scenario.years:
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
