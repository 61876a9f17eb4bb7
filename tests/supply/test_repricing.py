"""Bertrand re-pricing inside the simulation (supply.repricing): cost recovery, the entrant's effect on
incumbents' prices, diversion, reproducibility however a run is split, and fixed mode unchanged.

`data/fixed_reference.*` hold the reference scenario as it was before re-pricing existed (reprice = "fixed",
no taste heterogeneity within regions) with 6 draws of inputs and their outputs: a regression snapshot of
fixed mode. Its outputs were regenerated on purpose when the model changed: the price coefficient is
calibrated under the regional demand itself (so the scenario's elasticity holds exactly with regions);
lineup sums that include months published after the as-of date give way to the public months; a
fallback path's stages `under_way` are not restarted and an abandoned project stops its running costs;
the ramp is counted once (the reference class is the plant's joint delivery ramp, buyers do not ramp, and
cancellations follow the new order book); cost learning applies to the non-battery cost only, the pack following
the battery-cost path, and the money spent on the own plant carries over to the own-licence fallback.
If the model is changed on purpose again, regenerate them: load the scenario, `simulate` the stored
inputs and save the outputs the same way (names + [outputs, draws] array, `np.savez_compressed`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from evlaunch.config.scenario import load_scenario, parse_scenario
from evlaunch.market.rc_logit import diversion_ratios
from evlaunch.runs.runner import RunOptions, run_scenario
from evlaunch.runs.sampling import sample_draws
from evlaunch.simulation import prepare, simulate
from evlaunch.supply.equilibrium import PricingProblem, solve_prices
from evlaunch.supply.margin_fit import calibrate_market
from evlaunch.supply.repricing import base_market, entrant_diversion, recover_costs, type_market

DATA = Path(__file__).parent / "data"
# Outputs agree across CPUs and BLAS kernels to 1e-5 relative (to the value, or to the output's largest value
# across draws where flows nearly cancel): the ramp reference class's least-squares fit reproduces its
# log-normal to ~1e-6 relative (measured 3e-7..1e-6 across OpenBLAS core types), the inversion to 1e-14 in log
# shares, the price coefficient to 1e-10, the equilibrium to a FOC residual of 1e-12; measured worst 2.3e-6
# (OPENBLAS_CORETYPE=Nehalem, NUMBA_CPU_NAME=generic, numpy without AVX2/AVX-512 against the stored host run).
OUTPUT_RTOL = 1e-5
DRAWS = 32


def with_reprice(text: str, mode: str) -> str:
    lines = [f'reprice = "{mode}"' if line.startswith("reprice = ") else line for line in text.splitlines()]
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def bertrand_text(reference_text):
    return with_reprice(reference_text, "bertrand")


@pytest.fixture(scope="module")
def bertrand_model(bertrand_text, reference_path):
    model = prepare(parse_scenario(bertrand_text, "bertrand.toml"), reference_path.parent)
    assert model.scenario.competition.reprice == "bertrand"
    return model


@pytest.fixture(scope="module")
def inputs(bertrand_model):
    return sample_draws(bertrand_model, 3, 0, DRAWS)


@pytest.fixture(scope="module")
def outputs(bertrand_model, inputs):
    return simulate(bertrand_model, inputs)


def test_recovered_costs_make_the_base_prices_an_equilibrium(bertrand_model, inputs):
    parameters = bertrand_model.parameters(inputs)
    base = calibrate_market(bertrand_model.market, parameters)
    supply = recover_costs(bertrand_model.lineup, base, bertrand_model.policy,
                           round(bertrand_model.base_mid_month), parameters.finance.vat_rate)
    assert np.all(supply.foc_residual < 1e-15)  # shares are ~1e-2: relative residual < 1e-13
    # the model's shares at base are the calibrated ones, and the firms are the lineup's groups
    np.testing.assert_allclose(supply.base_shares, base.shares[:, supply.index], rtol=1e-10)
    groups = [bertrand_model.lineup.groups[j] for j in supply.index]
    assert all((groups[a] == groups[b]) == (supply.firms[a] == supply.firms[b])
               for a in range(len(groups)) for b in range(len(groups)))
    assert not any(bertrand_model.lineup.names[j].startswith("other ") for j in supply.index)
    # solving the base market with these costs from perturbed prices returns the base prices (the base
    # period's purchase tax on NEVs is fully exempt and ICEs share one rate, so guide and effective
    # price changes differ by the rate only)
    market = base_market(bertrand_model.lineup, base, supply.index)
    rate = market.products.price / base.price[:, supply.index]  # ad valorem tax, no subsidy in 2023
    cost_effective = supply.cost * rate
    start = market.products.price * 1.05
    ownership = (supply.firms[:, None] == supply.firms[None, :]) * rate[:, :, None] / rate[:, None, :]
    problem = PricingProblem(delta=market.delta, products=market.products, tastes=market.tastes,
                             costs=cost_effective, ownership=ownership)
    result = solve_prices(problem, start=start)
    assert result.converged.all()
    np.testing.assert_allclose(result.prices, market.products.price, rtol=1e-7)


def test_entry_does_not_raise_incumbents_bev_prices(bertrand_model, outputs):
    scenario = bertrand_model.scenario
    for path in scenario.paths:
        changes = np.stack([outputs[f"{path}.incumbent_price_change.{year}"] for year in scenario.years], axis=1)
        assert np.all(np.isfinite(changes))
        # under random-coefficients demand entry can raise a rival's price a little (the entrant takes its
        # most price-sensitive buyers); with the fringe re-pricing too (market.fringe) it happens in a few
        # draws by up to ~0.03%: the response stays a cut on average and never a rise of 0.1%
        assert np.all(changes <= 1e-3), f"{path}: an incumbent BEV price rose with the entrant"
        assert np.all(changes.mean(axis=0) <= 0.0)
        last_year = []
        for group in ("other BEV low", "other BEV high", "other PHEV low", "other PHEV high", "other ICE low",
                      "other ICE high"):
            fringe = np.stack([outputs[f"{path}.fringe_price_change.{group}.{year}"] for year in scenario.years],
                              axis=1)
            # a band whose price-sensitive buyers the entrant takes may raise its price a little (RC demand)
            assert np.all(np.isfinite(fringe)) and np.all(np.abs(fringe) < 0.05) and fringe[:, 0].max() == 0.0, group
            last_year.append(fringe[:, -1].mean())
        assert min(last_year) < 0.0 and np.mean(last_year) < 0.0   # the fringe as a whole cuts its prices
        assert changes[:, 0].max() == 0.0  # nobody launches in the start year
        assert changes[:, -1].mean() < 0.0
        assert np.all(outputs[f"{path}.equilibrium_failures"] == 0)
        launched = np.isfinite(outputs[f"{path}.launch_month_index"])
        # a draw whose entrant never launches sees no price change at all
        assert np.all(changes[~launched] == 0.0)


def test_more_capacity_never_lowers_cumulative_deliveries_with_bertrand(bertrand_model, inputs):
    def run(capacity):
        changed = dict(inputs)
        changed["paths.own.capacity_per_year"] = np.full(DRAWS, capacity)
        return simulate(bertrand_model, changed)

    low, high = run(60_000.0), run(240_000.0)
    cumulative_low = cumulative_high = 0.0
    for year in bertrand_model.scenario.years:
        cumulative_low = cumulative_low + low[f"own.deliveries.{year}"]
        cumulative_high = cumulative_high + high[f"own.deliveries.{year}"]
        assert np.all(cumulative_high >= cumulative_low - 1e-6)
    assert cumulative_high.sum() > cumulative_low.sum()


def test_diversion_shares_sum_to_one_including_the_outside_option(bertrand_model, outputs):
    for path in bertrand_model.scenario.paths:
        columns = [key for key in outputs if key.startswith(f"{path}.diversion.")]
        assert f"{path}.diversion.outside" in columns and f"{path}.diversion.BYD" in columns
        values = np.stack([outputs[c] for c in columns], axis=1)
        launched = outputs[f"{path}.launch_month_index"] < bertrand_model.scenario.horizon_months
        np.testing.assert_allclose(values[launched].sum(axis=1), 1.0, rtol=1e-12)
        assert np.all(values[launched] >= 0.0)
        assert np.all(np.isnan(values[~launched]))


def test_entrant_diversion_agrees_with_the_random_coefficients_module():
    rng = np.random.default_rng(4)
    draws, types, products = 5, 3, 6
    mean_utility = rng.normal(-3.0, 1.0, (draws, products))
    effective = rng.uniform(1e5, 3e5, (draws, products))
    extras = rng.normal(0.0, 0.5, (draws, types, products))
    weights = rng.dirichlet(np.ones(types), draws)
    sensitivity = rng.uniform(0.6, 1.2, (draws, types))
    alpha = -rng.uniform(1e-5, 3e-5, draws)
    available = np.ones((draws, products), dtype=bool)
    market = type_market(mean_utility, effective, extras, available, alpha, weights, sensitivity,
                         np.arange(products))
    expected = diversion_ratios(market.delta, market.products, market.tastes)[:, -1, :]  # from the last product
    utility = mean_utility[:, None, :] + (alpha[:, None] * sensitivity)[:, :, None] * effective[:, None, :] + extras
    regional = np.exp(utility) / (1.0 + np.exp(utility).sum(axis=2, keepdims=True))
    ours = entrant_diversion(regional, weights, alpha[:, None] * sensitivity)
    np.testing.assert_allclose(ours[:, :-2], expected[:, :-1], rtol=1e-10)  # to the other products
    np.testing.assert_allclose(ours[:, -1], expected[:, -1], rtol=1e-10)    # to the outside option
    np.testing.assert_allclose(ours.sum(axis=1), 1.0, rtol=1e-12)


def test_fixed_prices_reproduce_the_stored_reference_outputs():
    model = prepare(load_scenario(DATA / "fixed_reference.toml"), DATA)
    assert model.scenario.competition.reprice == "fixed"
    stored = np.load(DATA / "fixed_reference.npz")
    inputs = {name: stored["inputs"][i] for i, name in enumerate(stored["input_names"])}
    outputs = simulate(model, inputs)
    for i, name in enumerate(stored["output_names"]):
        expected = stored["outputs"][i]
        scale = float(np.max(np.abs(expected[np.isfinite(expected)]), initial=0.0))  # an NPV near 0 cancels flows
        np.testing.assert_allclose(outputs[name], expected, rtol=OUTPUT_RTOL, atol=OUTPUT_RTOL * scale + 1e-6,
                                   err_msg=name)
    # the new outputs exist in fixed mode too: the price change is the entry cut, weighted by units
    cut = inputs["competition.price_war_cut"]
    for year in model.scenario.years:
        change = outputs[f"own.incumbent_price_change.{year}"]
        assert np.all((change <= 0.0) & (change >= -cut - 1e-12))
    assert "own.equilibrium_failures" not in outputs


def test_bertrand_summary_and_outputs_do_not_depend_on_the_chunking(bertrand_text, reference_path, tmp_path):
    scenario_path = reference_path.parent / "bertrand-test.toml"  # named like the reference's neighbours
    runs = [run_scenario(scenario_path, tmp_path / f"chunk{size}", RunOptions(draws=300, seed=11, chunk_size=size,
                                                                               report=False),
                         scenario_text=bertrand_text) for size in (300, 70)]
    assert runs[0].summary_path.read_bytes() == runs[1].summary_path.read_bytes()
    tables = [pq.read_table(run.draws_path) for run in runs]
    new_columns = [c for c in tables[0].column_names
                   if ".incumbent_price_change." in c or ".diversion." in c or c.endswith(".equilibrium_failures")]
    assert len(new_columns) > 40
    for column in new_columns:
        first, second = (table.column(column).to_numpy() for table in tables)
        assert first.tobytes() == second.tobytes(), column
