"""`evlaunch calibrate`: the calibrated base period at the scenario's central values, for an analyst to judge.

Shows each base-period product's share, price, implied own-price elasticity and diversion to the
outside option, the price coefficient, and the history's NEV log-odds trend the scenario's drift
assumption should be compared with. With the regions as consumer types (the demand the simulation uses):
own-price elasticities, diversion to the outside option, to the 'other' aggregates and to the top-2 named
substitutes, and the marginal costs and margins (p - c) / p that the Bertrand first-order conditions imply
at the base period (`supply.repricing`), beside BLP's margins (elasticities.csv).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from rich.table import Table

from evlaunch.data import load_table
from evlaunch.market.lineup import OTHER_PRODUCTS
from evlaunch.market.logit import own_price_elasticities
from evlaunch.market.policy import purchase_tax
from evlaunch.market.rc_logit import diversion_ratios, elasticities
from evlaunch.scenario import Scenario
from evlaunch.simulate import calibrate, parameter_getter, prepare
from evlaunch.supply.repricing import recover_costs, type_market


def calibration_tables(scenario: Scenario, base_dir: str | Path, top: int = 12) -> list[Table]:
    """Rich tables describing the calibration at the median of every uncertain input."""
    model = prepare(scenario, base_dir)
    value = parameter_getter(model, {}, 1)
    base = calibrate(model, value, 1)
    lineup = model.lineup
    effective = base.price + purchase_tax(base.price, lineup.is_nev, int(round(model.base_mid_month)),
                                          value("finance.vat_rate"), scenario.as_of)
    elasticity = own_price_elasticities(base.alpha, effective, base.shares)[0]
    diversion_outside = base.outside_share[0] / (1.0 - base.shares[0])
    order = np.argsort(-base.shares[0])[:top]
    products = Table(title=f"{scenario.name}: base period {scenario.market.base_period[0]}..."
                           f"{scenario.market.base_period[1]} at the inputs' medians (plain logit)")
    for column in ("model", "powertrain", "sales/month", "share of potential buyers", "price (CNY)",
                   "own-price elasticity", "diversion to no purchase"):
        products.add_column(column, justify="left" if column == "model" else "right")
    for j in order:
        products.add_row(lineup.names[j], lineup.powertrains[j], f"{base.shares[0, j] * base.potential[0]:,.0f}",
                         f"{base.shares[0, j]:.4f}", f"{base.price[0, j]:,.0f}", f"{elasticity[j]:.2f}",
                         f"{diversion_outside[j]:.3f}")
    history = model.history
    drivers = Table(title="price sensitivity and adoption history")
    drivers.add_column("quantity")
    drivers.add_column("value", justify="right")
    drivers.add_row("price coefficient (utility per CNY 10,000)", f"{base.alpha[0] * 1e4:.4f}")
    drivers.add_row("outside share (no new car)", f"{base.outside_share[0]:.3f}")
    drivers.add_row("potential buyers per month", f"{base.potential[0]:,.0f}")
    drivers.add_row("NEV log-odds slope per year, last public years (CAAM passenger)",
                    f"{history.nev_log_odds_slope():.3f}")
    for year, share in sorted(history.nev_share_by_year.items()):
        drivers.add_row(f"NEV share {year} (CAAM passenger)", f"{share:.1%}")
    return [products, drivers, *supply_tables(model, value, base, top)]


def blp_margins(as_of) -> str:
    """BLP (1995) margins as elasticities.csv states them (median, and p10-p90 where its note gives them)."""
    rows = load_table("elasticities", as_of).rows
    row = rows[rows["quantity"].astype(str).str.startswith("implied price-cost margin")]
    if row.empty:
        return "no BLP margin in elasticities.csv"
    note = str(row["note"].iloc[0])
    spread = re.search(r"p10 ([0-9]+(?:\.[0-9]+)?), p90 ([0-9]+(?:\.[0-9]+)?)", note)
    extra = f", p10-p90 {float(spread[1]):.2f}-{float(spread[2]):.2f}" if spread else ""
    return f"BLP (1995) US cars: median {float(row['value'].iloc[0]):.2f}{extra} (elasticities.csv)"


def supply_tables(model, value, base, top: int) -> list[Table]:
    """Elasticities, diversion, marginal costs and margins with the regions as consumer types."""
    lineup, scenario = model.lineup, model.scenario
    utility = base.quality + base.quality_adjustment
    everything = np.arange(len(lineup.names))
    market = type_market(utility, base.effective_price, base.extras, np.ones(utility.shape, dtype=bool), base.alpha,
                         base.regions.weights, base.regions.price_sensitivity, everything)
    own = np.diagonal(elasticities(market.delta, market.products, market.tastes), axis1=1, axis2=2)[0]
    diversion = diversion_ratios(market.delta, market.products, market.tastes)[0]
    supply = recover_costs(lineup, base, model.policy, round(model.base_mid_month), value("finance.vat_rate"))
    named = [j for j in everything if lineup.names[j] not in OTHER_PRODUCTS]
    others = [j for j in everything if lineup.names[j] in OTHER_PRODUCTS]
    order = sorted(named, key=lambda j: -base.shares[0, j])[:top]
    demand = Table(title=f"regions as consumer types ({', '.join(base.regions.names)}): own-price elasticities "
                         f"(effective price) and diversion ratios")
    for column in ("model", "own-price elasticity", "to no purchase", "to 'other' aggregates",
                   "1st named substitute", "2nd named substitute"):
        demand.add_column(column, justify="right" if column in ("own-price elasticity", "to no purchase",
                                                                "to 'other' aggregates") else "left")
    costs = Table(title="marginal costs from the Bertrand FOCs at the base period (firm = group; the 'other' "
                        "aggregates are a fringe at fixed prices)")
    for column in ("model", "group", "price (CNY)", "marginal cost (CNY)", "margin (p-c)/p"):
        costs.add_column(column, justify="left" if column in ("model", "group") else "right")
    position = {j: k for k, j in enumerate(supply.index)}
    for j in order:
        rivals = sorted((k for k in named if k != j), key=lambda k: -diversion[j, k])[:2]
        demand.add_row(lineup.names[j], f"{own[j]:.2f}", f"{diversion[j, j]:.3f}", f"{diversion[j, others].sum():.3f}",
                       *[f"{lineup.names[r]} {diversion[j, r]:.3f}" for r in rivals])
        k = position[j]
        costs.add_row(lineup.names[j], lineup.groups[j], f"{supply.base_price[0, k]:,.0f}",
                      f"{supply.cost[0, k]:,.0f}", f"{supply.margin[0, k]:.2f}")
    margins = supply.margin[0]
    weights = supply.base_shares[0] / supply.base_shares[0].sum()
    summary = Table(title="margins the model implies, for judging them")
    summary.add_column("quantity")
    summary.add_column("value", justify="right")
    summary.add_row("sales-weighted mean margin, named models", f"{(weights * margins).sum():.2f}")
    summary.add_row("median margin, named models", f"{np.median(margins):.2f}")
    summary.add_row("comparison", blp_margins(scenario.as_of))
    summary.add_row("max |FOC residual| at base prices with these costs", f"{supply.foc_residual[0]:.1e}")
    implausible = [lineup.names[j] for j, c in zip(supply.index, supply.cost[0]) if c <= 0]
    summary.add_row("models with a marginal cost <= 0 (inputs' medians)",
                    ", ".join(implausible) if implausible else "none")
    sampled = sampled_costs(model)
    summary.add_row(f"... in {SAMPLED_DRAWS} sampled draws (share of draws)",
                    ", ".join(f"{lineup.names[j]} {share:.0%}" for j, share in zip(supply.index, sampled) if share > 0)
                    or "none")
    summary.add_row("note", "one price coefficient per region gives every model about the same absolute markup: "
                            "cheap models get high margins, and may get costs <= 0")
    return [demand, costs, summary]


SAMPLED_DRAWS = 500


def sampled_costs(model) -> np.ndarray:
    """Share of sampled draws (the run's sampler, default seed) in which each re-priced model's recovered
    marginal cost is <= 0."""
    from evlaunch.runner import DEFAULT_SEED
    from evlaunch.uncertainty.sampling import design, sample_inputs

    inputs = sample_inputs(model.scenario, design(model.scenario, DEFAULT_SEED, model.event_names), 0, SAMPLED_DRAWS)
    value = parameter_getter(model, inputs, SAMPLED_DRAWS)
    base = calibrate(model, value, SAMPLED_DRAWS)
    supply = recover_costs(model.lineup, base, model.policy, round(model.base_mid_month),
                           value("finance.vat_rate"))
    return (supply.cost <= 0).mean(axis=0)
