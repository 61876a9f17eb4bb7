"""`evlaunch calibrate`: the calibrated base period at the scenario's central values, for an analyst to judge.

Shows each base-period product's share, price, implied own-price elasticity and diversion to the
outside option, the price coefficient, and the history's NEV log-odds trend the scenario's drift
assumption should be compared with.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rich.table import Table

from evlaunch.market.logit import own_price_elasticities
from evlaunch.market.policy import purchase_tax
from evlaunch.scenario import Scenario
from evlaunch.simulate import calibrate, parameter_getter, prepare


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
    return [products, drivers]
