"""Report sections on market dynamics: the NEV-share path the run assumed beside the historical points,
the policy steps applied (with their sources), and results by region.

Each section is `(context) -> Section | None` (`report.build` lists them).
"""

from __future__ import annotations

import html

import numpy as np
import plotly.graph_objects as go

from evlaunch.config.columns import (
    DELIVERIES_REGION,
    MARKET_REGION,
    NEV_SHARE_MONTH,
    NEV_SHARE_REGION,
    monthly,
    regional,
)
from evlaunch.config.distributions import is_uncertain
from evlaunch.market.calibration import base_months
from evlaunch.market.policy import CONTINUATION_NOTE, load_policy, month_label
from evlaunch.report import charts
from evlaunch.report.html import Section, table_html


def history_points(history) -> dict[str, dict[int, float]]:
    """Annual NEV shares public at the as-of date: on the model's registrations basis (BEV registrations x
    (1 + PHEV/BEV ratio) / all registrations, full years only) and CAAM's passenger basis."""
    totals: dict[int, list[float]] = {}
    bev: dict[int, list[float]] = {}
    for series, target in ((history.monthly_total, totals), (history.monthly_bev, bev)):
        for month, units in series.items():
            target.setdefault(int(month[:4]), []).append(float(units))
    registrations = {year: sum(bev[year]) * (1.0 + history.phev_to_bev_by_year[year]) / sum(values)
                     for year, values in totals.items()
                     if len(values) == 12 and len(bev.get(year, [])) == 12 and year in history.phev_to_bev_by_year}
    return {"registrations basis (model)": registrations, "CAAM passenger (wholesale)": dict(history.nev_share_by_year)}


def nev_path_section(context):
    scenario, model = context.scenario, context.model
    chosen = context.summary["recommended_path"]["name"]
    months = scenario.months
    data = context.arrays([monthly(chosen, NEV_SHARE_MONTH, m) for m in months])
    if len(data) < len(months):
        return None
    series = {"forecast NEV share": np.stack([data[monthly(chosen, NEV_SHARE_MONTH, m)] for m in months],
                                             axis=1).astype(float)}
    figure = charts.fan_chart(months, series, "NEV share the run assumed, and the history public at the as-of date",
                              "NEV share of new-car sales", scale=1.0)
    for index, (basis, points) in enumerate(history_points(model.history).items()):
        if points:
            years = sorted(points)
            figure.add_trace(go.Scatter(x=[f"{year}-07" for year in years], y=[points[y] for y in years],
                                        mode="markers", name=f"history: {basis}",
                                        marker={"size": 9, "symbol": ("circle", "diamond")[index % 2],
                                                "color": charts.PALETTE[(index + 2) % len(charts.PALETTE)]}))
    figure.update_yaxes(tickformat=".0%")
    market = scenario.market
    body = (f"<p>Monthly NEV share of new-car sales on path <b>{html.escape(chosen)}</b> (median and 10-90% band), "
            f"with the annual NEV shares public on {scenario.as_of} (the model is calibrated to registrations in "
            f"{market.base_period[0]}..{market.base_period[1]}). What moves it: the NEV drift "
            f"(<code>market.nev_trend_per_year</code>), charging points by region (<code>market.charging_*</code>, "
            f"<code>regions.*.charging_*</code>), the purchase subsidy and tax by date (below), plate privileges and "
            f"rural campaigns by region, battery-cost pass-through, range progress and model ageing "
            f"(<code>dynamics.*</code>), competitor launches and the entrant.</p>")
    return Section("NEV share: assumed path and history", body + context.figure(figure), "nev-path")


def policy_section(context):
    scenario, model = context.scenario, context.model
    policy = getattr(model, "policy", None) or load_policy(scenario.as_of)
    first = base_months(scenario)[0]
    last = scenario.start_month + scenario.horizon_months - 1
    rows = []
    for step in policy.steps(first, last):
        flag = " <b>(assumed to continue)</b>" if step["assumed_to_continue"] else ""
        source = html.escape(step["source"])
        if len(source) > 400:
            source = source[:397] + "…"
        rows.append([step["month"], html.escape(step["instrument"]), step["powertrain"],
                     html.escape(step["value"]) + flag, html.escape(step["effective"]), step["announced"],
                     f"<small>{source}</small>"])
    continued = policy.continued_months(first, last)
    body = (f"<p>Rules applied from the base period ({month_label(first)}) to the horizon ({month_label(last)}), as "
            f"known on {scenario.as_of} (<code>policy_schedule.csv</code>, derived from "
            f"<code>policy_timeline.csv</code>; each rule cites its timeline rows). {html.escape(CONTINUATION_NOTE)}"
            + (f" Here that applies from {continued[0]} on." if continued else "")
            + " The subsidy lowers the buyer's effective price (by range band, within the price cap); the purchase "
              "tax is 10% of the price net of VAT less the NEV relief. What plate privileges and rural campaigns "
              "are worth is a scenario assumption by region.</p>")
    header = ["from", "instrument", "powertrain", "value", "rule in force", "announced", "source"]
    extra = scenario.policy
    amount = context.quantities.get("policy.extra_nev_subsidy", 0.0)
    if is_uncertain(amount) or amount:
        low, mid, high = (amount.ppf(np.array([0.1, 0.5, 0.9])) if is_uncertain(amount)
                          else np.array([amount] * 3, dtype=float))
        cap = (f", guide price up to CNY {extra.extra_subsidy_price_cap:,.0f}"
               if extra.extra_subsidy_price_cap is not None else "")
        body += (f"<p><b>Assumed extra subsidy</b> (<code>[policy]</code> in the scenario, not a sourced rule): "
                 f"CNY {mid:,.0f} per {' and '.join(extra.extra_subsidy_powertrains)} (p10 {low:,.0f}, p90 {high:,.0f}) "
                 f"from {extra.extra_subsidy_from or scenario.start} to {extra.extra_subsidy_to or 'the horizon'}"
                 f"{cap}, on top of the rules below.</p>")
    return Section("Policy applied", body + table_html(header, rows, "small"), "policy")


def _fixed(values: dict, path: str) -> float | None:
    value = values.get(path)
    if value is None:
        return None
    return float(value.centre) if is_uncertain(value) else float(value)


def regions_section(context):
    scenario = context.scenario
    chosen = context.summary["recommended_path"]["name"]
    years = [str(year) for year in scenario.years]
    regions = list(scenario.regions)
    columns = [f"{chosen}.{key}.{region}.{year}" for key in ("market_region", "nev_share_region", "deliveries_region")
               for region in regions for year in years]
    present = [c for c in columns if c in context.table.columns]
    if len(present) < len(columns):
        return None
    stats = context.table.stats(present)
    inputs = []
    for region, spec in scenario.regions.items():
        cells = [f"<b>{html.escape(region)}</b><br><small>{html.escape(spec.label)}</small>"]
        for field in ("weight", "price_sensitivity", "charging_share", "charging_growth_extra", "plate_utility",
                      "campaign_utility"):
            value = _fixed(context.quantities, f"regions.{region}.{field}")
            cells.append("–" if value is None else f"{value:,.3g}")
        inputs.append(cells)
    inputs_table = table_html(["region", "weight (buyers)", "price sensitivity", "charging share",
                               "extra charging growth/yr", "plate utility", "campaign utility"], inputs, "small")
    rows = []
    for year in years:
        for region in regions:
            market = stats[regional(chosen, MARKET_REGION, region, year)]["mean"]
            share = stats[regional(chosen, NEV_SHARE_REGION, region, year)]
            deliveries = stats[regional(chosen, DELIVERIES_REGION, region, year)]
            rows.append([year, html.escape(region), f"{market:,.0f}",
                         f"{share['mean']:.1%} ({share['p10']:.1%} … {share['p90']:.1%})",
                         f"{deliveries['mean']:,.0f} ({deliveries['p10']:,.0f} … {deliveries['p90']:,.0f})"])
    body = ("<p>Region inputs at their medians (weights and charging shares are normalised to sum to 1, price "
            "sensitivity to a buyer-weighted mean of 1; all are assumptions: the bundled data hold no regional "
            "split). The calibration reproduces the national base-period shares exactly.</p>" + inputs_table
            + f"<p>Results by region on path <b>{html.escape(chosen)}</b> (mean, 10-90% in brackets). Entrant "
              "deliveries are split by the regions' orders in each month.</p>"
            + table_html(["year", "region", "new-car sales", "NEV share", "entrant deliveries"], rows, "small"))
    return Section("Results by region", body, "regions")


