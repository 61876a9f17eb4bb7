"""Report sections on competition: how incumbents' prices respond to the entrant, and whose buyers it takes.

Each section is `(context) -> Section | None` (`report.build` lists them). Both read per-draw outputs of
`simulate` (`{path}.incumbent_price_change.{year}`, `{path}.equilibrium_failures`, `{path}.diversion.*`;
`supply.repricing` explains them) and return None for runs made before those outputs existed.
"""

from __future__ import annotations

import html
import weakref
from functools import partial
from typing import Any

import numpy as np

from evlaunch.config.columns import (
    EQUILIBRIUM_FAILURES,
    INCUMBENT_PRICE_CHANGE,
    diversion_prefix,
    fringe_yearly,
    path_column,
    yearly,
)
from evlaunch.market.lineup import OTHER_PRODUCTS, fringe_names
from evlaunch.report import charts
from evlaunch.report.html import Section, table_html
from evlaunch.simulation.outputs import repriced_fringe
from evlaunch.supply.margin_fit import calibrate_market
from evlaunch.supply.repricing import OUTSIDE


def price_response_section(context):
    scenario = context.scenario
    years = [str(year) for year in scenario.years]
    columns = [yearly(p, INCUMBENT_PRICE_CHANGE, y) for p in scenario.paths for y in years]
    data = context.arrays(columns)
    if len(data) < len(columns):
        return None
    series = {path: np.stack([data[yearly(path, INCUMBENT_PRICE_CHANGE, y)] for y in years], axis=1).astype(float)
              for path in scenario.paths}
    figure = charts.fan_chart(years, series, "Incumbents' BEV prices vs a market without the entrant "
                                             "(median and 10-90% band)", "price change", scale=1.0)
    figure.update_xaxes(title="year", type="category")
    figure.update_yaxes(tickformat=".2%")
    competition = scenario.competition
    if competition.reprice == "bertrand":
        failures = context.arrays([path_column(p, EQUILIBRIUM_FAILURES) for p in scenario.paths])
        counted = ", ".join(f"{html.escape(p)} {int(np.sum(failures[path_column(p, EQUILIBRIUM_FAILURES)])):,}"
                            for p in scenario.paths if path_column(p, EQUILIBRIUM_FAILURES) in failures)
        note = ("<p>The run used <b>Bertrand-Nash re-pricing</b> (<code>competition.reprice = \"bertrand\"</code>): "
                "each group prices its named models to maximise its profit given rivals' prices, with marginal "
                "costs recovered from the base period's prices (and moved by battery costs); "
                f"{fringe_words(scenario)}; scheduled launches and the entrant keep their prices. "
                "Prices are re-solved in the "
                "first month, each January, at competitor launches and policy steps, and in the entrant's launch "
                "month, both with the entrant and without it; between re-solves they are held. The chart shows "
                "the named incumbent BEVs' price with the entrant over their price without it, minus 1, averaged "
                "over the year weighted by their units sold. The response grows with the entrant's share and with "
                "how close a substitute it is for each rival (consumer types with tastes for NEVs, body, size, "
                "range, ADAS and income-dependent price sensitivity), so an entrant with well under one percent of "
                "the market moves incumbents' prices little. The 2023 price war is in the base period's prices; "
                "beyond these re-solves no further price war is modelled (<code>competition.price_war_cut</code>, "
                "an exogenous cut after the launch, applies only when incumbents keep fixed prices). A dear product's price can <i>rise</i> on entry in some "
                "draws (mostly the high price bands of the fringe): that is not a bug but the composition effect "
                "of income-dependent price sensitivity. The entrant takes more of such a product's lower-income, "
                "more price-sensitive buyers, so those who stay care less about price and the profit-maximising "
                "markup goes up (\"price-increasing competition\", Chen &amp; Riordan 2008, RAND Journal of "
                "Economics 39(4); brand-name drug prices rising on generic entry, Frank &amp; Salkever 1997). With "
                "<code>market.tastes.income_dispersion = 0</code> no price rises on entry in any draw. Markets whose "
                "equilibrium did not converge keep their "
                f"last prices (counted over the draws shown: {counted or 'none'}).</p>")
    else:
        note = ("<p>The run used <b>fixed prices with an entry cut</b> (<code>competition.reprice = \"fixed\"</code>): "
                "incumbents' BEV prices fall by <code>competition.price_war_cut</code> from the entrant's launch "
                "month and are otherwise fixed (battery pass-through aside), so the chart shows that assumption, "
                "averaged over each year weighted by the named incumbent BEVs' units sold. "
                "<code>competition.reprice = \"bertrand\"</code> derives the response from an equilibrium instead.</p>")
    rows = []
    groups = fringe_names(list(scenario.market.fringe_low_share)) if repriced_fringe(scenario) else []
    fringe = context.arrays([fringe_yearly(p, g, y) for p in scenario.paths for g in groups for y in years])
    for path in scenario.paths:
        values = series[path]
        rows.append([html.escape(path), "named incumbent BEVs"]
                    + [f"{np.nanmean(values[:, i]):.3%}" for i in range(len(years))])
        for group in groups:
            found = [fringe.get(fringe_yearly(path, group, y)) for y in years]
            if all(values is not None for values in found):
                rows.append([html.escape(path), f"{html.escape(group)} (fringe)"]
                            + [f"{np.nanmean(values):.3%}" for values in found])
    table = table_html(["path", "products (mean)"] + years, rows)
    return Section("Incumbents' price response", note + context.figure(figure) + table, "price-response")


def diversion_section(context):
    scenario = context.scenario
    chosen = context.summary["recommended_path"]["name"]
    prefix = diversion_prefix(chosen)
    columns = [c for c in context.table.columns if c.startswith(prefix)]
    if not columns:
        return None
    data = context.arrays(columns)
    launched = np.isfinite(data[columns[0]])
    if not launched.any():
        return None
    means = {c[len(prefix):]: float(np.mean(data[c][launched])) for c in columns}
    order = sorted(means, key=lambda group: -means[group])
    labels = ["no new car (outside option)" if g == OUTSIDE else
              (f"{g} (fringe aggregate)" if g.startswith("other ") else g) for g in order]
    proportional = base_period_shares(context.model, order)
    figure = charts.bar_chart(labels, [means[g] for g in order],
                              f"Where the entrant's buyers come from (path {chosen}, first 12 months on sale)",
                              "share of the entrant's buyers (diversion ratio)",
                              ("in proportion to base-period shares (plain logit)", [proportional[g] for g in order]),
                              "the model (consumer types)")
    figure.update_layout(height=max(420, 36 * len(order) + 160))
    figure.update_xaxes(tickformat=".0%")
    top = [g for g in order if g != OUTSIDE][:3]
    body = (f"<p>Diversion ratios from the entrant on the recommended path <b>{html.escape(chosen)}</b>: of the "
            "buyers a price rise would cost it, the share that goes to each group's models and to buying no new "
            "car — equivalently, where its buyers come from. Per draw they are averaged over the first 12 months "
            "on sale, weighted by its deliveries (a buyer counted once: an order that is cancelled takes no "
            "buyer from anyone); the bars are means over the "
            f"{int(launched.sum()):,} draws that deliver within the horizon (shares sum to 1). Largest sources: "
            f"{', '.join(f'{html.escape(g)} {means[g]:.0%}' for g in top)}; no new car {means.get(OUTSIDE, 0):.0%}. "
            "The grey bars show what plain logit demand would say: buyers in proportion to each group's share "
            "of the base period's potential buyers (outside option included; the potential market is the "
            "households that could buy a new car within a year, <code>market.outside_share</code>). The consumer "
            "types send far fewer of the entrant's buyers to no new car than plain logit would, because its "
            "buyers are the least price-sensitive types, who rarely choose no car. "
            "Buyers are consumer types by region with their own tastes for NEVs, SUVs, size, range, ADAS and the "
            "entrant's brand and a price sensitivity that falls with income (<code>market.tastes</code>), so "
            "diversion leans towards close rivals (NEVs, sedans, the B segment) rather than following sales "
            "alone; how far it leans is set by the assumed taste spreads. The 'other' aggregates stand for many "
            "models each, so they take a large part; their characteristics are the sales-weighted means of the "
            f"named models of their powertrain. The comparables named in the scenario: "
            f"{html.escape(', '.join(scenario.product.comparables))}.</p>")
    return Section("Whose buyers the entrant takes", body + context.figure(figure), "diversion")


def fringe_words(scenario) -> str:
    """How the run priced the 'other' products (market.fringe), for the price-response note."""
    if scenario.market.fringe != "bertrand":
        return "the 'other' aggregates keep their prices (<code>market.fringe = \"fixed\"</code>)"
    return ("the 'other' products (models without sourced sales, by powertrain and price band) re-price too "
            "(<code>market.fringe = \"bertrand\"</code>): each band is one price setter whose marginal cost is "
            "recovered at the base period with the markup of many small single-product firms and moves with the "
            "battery-cost path (the table's fringe rows: each 'other' product by powertrain and price band)")


# the calibrated base period of each prepared model the report has shown (the calibration costs more than the
# rest of the section): id(model) -> (a weak reference to the model, its calibration)
_CALIBRATIONS: dict[int, tuple[weakref.ref, Any]] = {}


def _central_calibration(model) -> Any:
    """`calibrate_market` at the inputs' central values, once per prepared model (a model is not changed
    after `prepare`)."""
    known = _CALIBRATIONS.get(id(model))
    if known is not None and known[0]() is model:
        return known[1]
    base = calibrate_market(model.market, model.parameters())
    key = id(model)
    _CALIBRATIONS[key] = (weakref.ref(model, partial(_forget_calibration, key)), base)
    return base


def _forget_calibration(key: int, _dead: object) -> None:
    """Drop the calibration of a model that no longer exists (a weak reference's callback)."""
    _CALIBRATIONS.pop(key, None)


def base_period_shares(model, groups: list[str]) -> dict[str, float]:
    """Each diversion group's share of the base period's potential buyers (no purchase included) at the
    inputs' central values: where a plain logit entrant's buyers would come from."""
    base = _central_calibration(model)
    lineup = model.lineup
    shares = dict.fromkeys(groups, 0.0)
    for j, name in enumerate(lineup.names):
        group = name if name in OTHER_PRODUCTS else lineup.groups[j]
        if group in shares:
            shares[group] += float(base.shares[0, j])
    if OUTSIDE in shares:
        shares[OUTSIDE] = float(base.outside_share[0])
    total = float(base.shares[0].sum() + base.outside_share[0])
    return {group: share / total for group, share in shares.items()}
