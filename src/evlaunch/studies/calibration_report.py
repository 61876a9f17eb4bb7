"""`evlaunch calibrate`: the calibrated base period at the scenario's central values, for an analyst to judge.

Under the demand the simulation uses (consumer types: regions x taste types, `market.consumer_types`):
each base-period product's share, price, own-price elasticity and diversion to no purchase; the price
coefficient, the implied median elasticity and diversion beside BLP's (elasticities.csv), and the
history's NEV log-odds trend the scenario's drift assumption should be compared with; whom each model's
buyers would turn to (the 'other' aggregates, the top-2 named substitutes); and the marginal costs and
margins (p - c) / p that the Bertrand first-order conditions imply at the base period (`supply.repricing`),
beside BLP's margins; and, for the firms of `market.margin_firms`, the implied gross margins beside the
reported ones (firm_margins.csv, rows public at the as-of date), ending with the line
`margins: max_abs_gap_pp=<x> firms=<names>` (`supply.margin_fit`).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from rich.table import Table

from evlaunch.config.scenario import Scenario
from evlaunch.data import load_table
from evlaunch.market.firm_margins import reported_margins
from evlaunch.market.lineup import OTHER_PRODUCTS
from evlaunch.market.rc_logit import diversion_ratios, elasticities
from evlaunch.runs.runner import DEFAULT_SEED
from evlaunch.runs.sampling import sample_draws
from evlaunch.simulation.simulate import prepare
from evlaunch.supply.margin_fit import calibrate_market, fringe_priced, implied_firm_margins
from evlaunch.supply.repricing import recover_costs, type_market


def calibration_tables(scenario: Scenario, base_dir: str | Path, top: int = 12) -> list[Table]:
    """Rich tables describing the calibration at the median of every uncertain input."""
    return calibration_report(scenario, base_dir, top)[0]


def calibration_report(scenario: Scenario, base_dir: str | Path, top: int = 12) -> tuple[list[Table], str | None]:
    """(the tables of `calibration_tables` with implied vs reported margins last, the line
    `margins: max_abs_gap_pp=<x> firms=<names>` or None without market.margin_firms)."""
    model = prepare(scenario, base_dir)
    parameters = model.parameters()
    base = calibrate_market(model.market, parameters)
    lineup = model.lineup
    demand = base_demand(base)
    elasticity = np.diagonal(elasticities(*demand), axis1=1, axis2=2)[0]
    diversion = diversion_ratios(*demand)[0]
    types = base.types
    per_region = len(types.region_of) // len(types.regions.names)
    order = np.argsort(-base.shares[0])[:top]
    products = Table(title=f"{scenario.name}: base period {scenario.market.base_period[0]}..."
                           f"{scenario.market.base_period[1]} at the inputs' medians ({len(types.region_of)} consumer "
                           f"types: {len(types.regions.names)} regions x {per_region})")
    for column in ("model", "powertrain", "sales/month", "share of potential buyers", "price (CNY)",
                   "own-price elasticity", "diversion to no purchase"):
        products.add_column(column, justify="left" if column == "model" else "right")
    for j in order:
        products.add_row(lineup.names[j], lineup.powertrains[j], f"{base.shares[0, j] * base.potential[0]:,.0f}",
                         f"{base.shares[0, j]:.4f}", f"{base.price[0, j]:,.0f}", f"{elasticity[j]:.2f}",
                         f"{diversion[j, j]:.3f}")
    history = model.history
    named = np.array([name not in OTHER_PRODUCTS for name in lineup.names])
    drivers = Table(title="price sensitivity, substitution and adoption history")
    drivers.add_column("quantity")
    drivers.add_column("value", justify="right")
    drivers.add_row("price coefficient (utility per CNY 10,000 of effective price, buyer-weighted mean)",
                    f"{base.alpha[0] * 1e4:.4f}")
    weights = base.shares[0, named] / base.shares[0, named].sum()
    drivers.add_row(f"sales-weighted own-price elasticity, named models ({elasticity_basis(scenario)})",
                    f"{(weights * elasticity[named]).sum():.2f}")
    drivers.add_row("median own-price elasticity, named models", f"{np.median(elasticity[named]):.2f}")
    drivers.add_row("median diversion to no purchase, named models", f"{np.median(np.diagonal(diversion)[named]):.3f}")
    drivers.add_row("comparison", blp_figures(scenario.as_of))
    drivers.add_row("outside share (no new car)", f"{base.outside_share[0]:.3f}")
    drivers.add_row("potential buyers per month", f"{base.potential[0]:,.0f}")
    drivers.add_row("NEV log-odds slope per year, last public years (CAAM passenger)",
                    f"{history.nev_log_odds_slope():.3f}")
    for year, share in sorted(history.nev_share_by_year.items()):
        drivers.add_row(f"NEV share {year} (CAAM passenger)", f"{share:.1%}")
    tables = [products, drivers, *supply_tables(model, parameters, base, diversion, top)]
    found = margin_report(model, base)
    return (tables + [found[0]], found[1]) if found else (tables, None)


def elasticity_basis(scenario: Scenario) -> str:
    """Where the calibrated elasticity comes from (market.price_sensitivity)."""
    if scenario.market.price_sensitivity == "china_margins":
        return "searched so the FOCs imply market.gross_margin"
    return "= market.own_price_elasticity"


def margin_report(model, base) -> tuple[Table, str] | None:
    """Implied vs reported gross margins of market.margin_firms at the inputs' medians, and the summary line
    `margins: max_abs_gap_pp=<x> firms=<names>`; None without market.margin_firms."""
    scenario = model.scenario
    firms = scenario.market.margin_firms
    if not firms:
        return None
    parameters = model.parameters()
    supply = recover_costs(model.lineup, base, model.policy, round(model.base_mid_month),
                           parameters.finance.vat_rate, fringe=True)
    implied = implied_firm_margins(model.lineup, supply, firms)[0]
    reported = reported_margins(scenario.as_of, list(firms))
    table = Table(title=f"implied vs reported gross margins (p - c) / p ({scenario.market.price_sensitivity}; "
                        f"firm_margins.csv rows public by {scenario.as_of.isoformat()})")
    for column in ("firm", "priced as", "implied", "reported", "gap (pp)", "reported row"):
        table.add_column(column, justify="right" if column in ("implied", "reported", "gap (pp)") else "left")
    gaps = []
    for (firm, owner), value in zip(firms.items(), implied):
        row = reported[firm]
        gaps.append(100 * (value - row.value))
        table.add_row(firm, owner, f"{value:.1%}", f"{row.value:.1%}", f"{gaps[-1]:+.1f}",
                      f"{row.period} {row.margin_type}, published {row.published}")
    line = f"margins: max_abs_gap_pp={max(abs(g) for g in gaps):.1f} firms={','.join(firms)}"
    return table, line


def base_demand(base):
    """The base period's demand as `rc_logit` arguments (delta, products, tastes), every product re-priceable."""
    utility = base.quality + base.quality_adjustment
    market = type_market(utility, base.effective_price, base.extras, np.ones(utility.shape, dtype=bool), base.alpha,
                         base.types.weights, base.types.price_sensitivity, np.arange(utility.shape[1]))
    return market.delta, market.products, market.tastes


def _blp(as_of, prefix: str) -> tuple[float, str] | None:
    rows = load_table("elasticities", as_of).rows
    row = rows[rows["quantity"].astype(str).str.startswith(prefix)]
    if row.empty:
        return None
    spread = re.search(r"p10 (-?[0-9]+(?:\.[0-9]+)?),? p90 (-?[0-9]+(?:\.[0-9]+)?)", str(row["note"].iloc[0]))
    return float(row["value"].iloc[0]), (f", p10-p90 {float(spread[1]):.2f}..{float(spread[2]):.2f}" if spread else "")


def blp_figures(as_of) -> str:
    """BLP (1995) own-price elasticity and diversion to no purchase as elasticities.csv states them."""
    parts = []
    for prefix, label in (("own-price elasticity of new-car demand", "own-price elasticity"),
                          ("diversion ratio to the outside option", "diversion to no purchase")):
        found = _blp(as_of, prefix)
        if found:
            parts.append(f"{label} median {found[0]:.2f}{found[1]}")
    return ("BLP (1995) US cars: " + "; ".join(parts) + " (elasticities.csv)") if parts else "not in elasticities.csv"


def blp_margins(as_of) -> str:
    """BLP (1995) margins as elasticities.csv states them (median, and p10-p90 where its note gives them)."""
    found = _blp(as_of, "implied price-cost margin")
    if found is None:
        return "no BLP margin in elasticities.csv"
    return f"BLP (1995) US cars: median {found[0]:.2f}{found[1]} (elasticities.csv)"


def supply_tables(model, parameters, base, diversion: np.ndarray, top: int) -> list[Table]:
    """Substitution to rivals, marginal costs and margins under the consumer types."""
    lineup = model.lineup
    everything = np.arange(len(lineup.names))
    fringe = fringe_priced(model.market)
    supply = recover_costs(lineup, base, model.policy, round(model.base_mid_month), parameters.finance.vat_rate,
                           fringe=fringe)
    named = [j for j in everything if lineup.names[j] not in OTHER_PRODUCTS]
    others = [j for j in everything if lineup.names[j] in OTHER_PRODUCTS]
    order = sorted(named, key=lambda j: -base.shares[0, j])[:top]
    demand = Table(title="whom each model's buyers would turn to (diversion ratios under the consumer types)")
    for column in ("model", "to no purchase", "to 'other' aggregates", "1st named substitute", "2nd named substitute"):
        demand.add_column(column, justify="right" if column in ("to no purchase", "to 'other' aggregates") else "left")
    costs = Table(title="marginal costs from the Bertrand FOCs at the base period (firm = group; the 'other' "
                        + ("products are price setters with the markup of many small firms)" if fringe else
                           "aggregates are a fringe at fixed prices)"))
    for column in ("model", "group", "price (CNY)", "marginal cost (CNY)", "margin (p-c)/p"):
        costs.add_column(column, justify="left" if column in ("model", "group") else "right")
    position = {j: k for k, j in enumerate(supply.index)}
    for j in order:
        rivals = sorted((k for k in named if k != j), key=lambda k: -diversion[j, k])[:2]
        demand.add_row(lineup.names[j], f"{diversion[j, j]:.3f}", f"{diversion[j, others].sum():.3f}",
                       *[f"{lineup.names[r]} {diversion[j, r]:.3f}" for r in rivals])
        k = position[j]
        costs.add_row(lineup.names[j], lineup.groups[j], f"{supply.base_price[0, k]:,.0f}",
                      f"{supply.cost[0, k]:,.0f}", f"{supply.margin[0, k]:.2f}")
    for j in (others if fringe else []):
        k = position[j]
        costs.add_row(lineup.names[j], "fringe", f"{supply.base_price[0, k]:,.0f}", f"{supply.cost[0, k]:,.0f}",
                      f"{supply.margin[0, k]:.2f}")
    named_columns = [position[j] for j in named]
    margins = supply.margin[0, named_columns]
    weights = supply.base_shares[0, named_columns] / supply.base_shares[0, named_columns].sum()
    summary = Table(title="margins the model implies, for judging them")
    summary.add_column("quantity")
    summary.add_column("value", justify="right")
    summary.add_row("sales-weighted mean margin, named models", f"{(weights * margins).sum():.2f}")
    summary.add_row("median margin, named models", f"{np.median(margins):.2f}")
    summary.add_row("comparison", blp_margins(model.scenario.as_of))
    summary.add_row("max |FOC residual| at base prices with these costs", f"{supply.foc_residual[0]:.1e}")
    implausible = [lineup.names[j] for j, c in zip(supply.index, supply.cost[0]) if c <= 0]
    summary.add_row("models with a marginal cost <= 0 (inputs' medians)",
                    ", ".join(implausible) if implausible else "none")
    sampled = sampled_costs(model)
    summary.add_row(f"... in {SAMPLED_DRAWS} sampled draws (share of draws)",
                    ", ".join(f"{lineup.names[j]} {share:.1%}" for j, share in zip(supply.index, sampled) if share > 0)
                    or "none")
    summary.add_row("note", "with one price coefficient per consumer type every model gets about the same absolute "
                            "markup, so cheap models get high margins; income dispersion (market.tastes) lets the "
                            "buyers of cheap models be more price sensitive")
    return [demand, costs, summary]


SAMPLED_DRAWS = 500


def sampled_costs(model) -> np.ndarray:
    """Share of sampled draws (the run's sampler, default seed) in which each re-priced model's recovered
    marginal cost is <= 0."""
    parameters = model.parameters(sample_draws(model, DEFAULT_SEED, 0, SAMPLED_DRAWS))
    base = calibrate_market(model.market, parameters)
    supply = recover_costs(model.lineup, base, model.policy, round(model.base_mid_month),
                           parameters.finance.vat_rate, fringe=fringe_priced(model.market))
    return (supply.cost <= 0).mean(axis=0)
