"""Report sections on the run's outcomes and inputs: the paths compared, launch month, deliveries, money,
the market, the assumptions varied and the base-period data with sources.

Each section is `(context) -> Section | None`; `report.build` lists them in page order.
"""

from __future__ import annotations

import html
import math

import numpy as np

from evlaunch.config.columns import (
    DELIVERIES_MONTH,
    LAUNCH_MONTH_INDEX,
    NEV_SHARE_MONTH,
    NPV,
    PEAK_CASH_NEED,
    monthly,
    path_column,
)
from evlaunch.config.distributions import is_uncertain
from evlaunch.config.scenario import month_label, quantities
from evlaunch.report import charts
from evlaunch.report.context import ReportContext
from evlaunch.report.formatting import units
from evlaunch.report.html import Section, money, table_html


def overview(context: ReportContext) -> Section:
    summary, scenario = context.summary, context.scenario
    recommended = summary["recommended_path"]
    rows = []
    for name, path in summary["paths"].items():
        launch = path["launch_month"]
        mark = " ★" if name == recommended["name"] else ""
        first_full_year = str(min(scenario.years) + 2)
        deliveries = path["deliveries"].get(first_full_year, {}).get("mean")
        rows.append([f"<b>{html.escape(name)}</b>{mark}<br><small>{html.escape(scenario.paths[name].label)}</small>",
                     " / ".join(launch[k] or "never" for k in ("p10", "p50", "p90")),
                     f"{path['p_launch_by_target']:.0%}", units(deliveries),
                     money(path["npv"]["mean"]), f"{money(path['npv']['p10'])} … {money(path['npv']['p90'])}",
                     money(path["peak_cash_need"]["p90"]), f"{path['p_budget_exceeded']:.1%}"])
    header = ["path", "launch month p10 / p50 / p90", f"P(launch by {scenario.target_launch})",
              f"deliveries {min(scenario.years) + 2} (mean)", "NPV mean (CNY)", "NPV p10 … p90",
              "peak cash need p90", "P(budget exceeded)"]
    body = (f"<p>As of <b>{scenario.as_of}</b>, {summary['draws']:,} draws, seed {summary['seed']}. "
            f"Recommended path: <b>{html.escape(recommended['name'])}</b> — criterion: "
            f"{html.escape(recommended['criterion'])}.</p>" + table_html(header, rows, "compare"))
    return Section("Paths compared", body, "paths")


def launch_section(context: ReportContext) -> Section:
    scenario = context.scenario
    columns = [path_column(p, LAUNCH_MONTH_INDEX) for p in scenario.paths]
    data = context.arrays(columns)
    labels, never = {}, {}
    for path in scenario.paths:
        index = data[path_column(path, LAUNCH_MONTH_INDEX)]
        inside = index[np.isfinite(index) & (index < scenario.horizon_months)]
        labels[path] = [month_label(scenario.start_month + int(i)) for i in inside]
        never[path] = 1.0 - len(inside) / max(len(index), 1)
    figure = charts.launch_histogram(labels, never, "When does the first car reach customers?")
    return Section("Launch month", context.figure(figure), "launch")


def deliveries_section(context: ReportContext) -> Section:
    scenario = context.scenario
    months = scenario.months
    series = {}
    for path in scenario.paths:
        data = context.arrays([monthly(path, DELIVERIES_MONTH, m) for m in months])
        series[path] = np.stack([data[monthly(path, DELIVERIES_MONTH, m)] for m in months], axis=1).astype(float)
    figure = charts.fan_chart(months, series, "Deliveries per month (median and 10-90% band)", "vehicles/month")
    return Section("Deliveries", context.figure(figure), "deliveries")


def money_section(context: ReportContext) -> Section:
    scenario = context.scenario
    data = context.arrays([path_column(p, NPV) for p in scenario.paths])
    figure = charts.distribution_chart({p: data[path_column(p, NPV)] for p in scenario.paths},
                                       "NPV at the scenario start", "NPV, bn CNY", scale=1e-9)
    peak = context.arrays([path_column(p, PEAK_CASH_NEED) for p in scenario.paths])
    budget_usd = scenario.finance.budget_usd
    figure_peak = charts.distribution_chart({p: peak[path_column(p, PEAK_CASH_NEED)] for p in scenario.paths},
                                            f"Peak cash need (budget US${budget_usd / 1e9:,.0f} bn)",
                                            "peak cash need, bn CNY", scale=1e-9)
    return Section("Money", context.figure(figure) + context.figure(figure_peak), "money")


def market_section(context: ReportContext) -> Section:
    scenario = context.scenario
    chosen = context.summary["recommended_path"]["name"]
    months = scenario.months
    data = context.arrays([monthly(chosen, NEV_SHARE_MONTH, m) for m in months])
    series = {"NEV share": np.stack([data[monthly(chosen, NEV_SHARE_MONTH, m)] for m in months], axis=1).astype(float)}
    figure = charts.fan_chart(months, series, f"NEV share of new-car sales (with the entrant on path {chosen})",
                              "share", scale=1.0)
    figure.update_yaxes(tickformat=".0%")
    rows = [[year, units(block["mean"]), f"{context.summary['market']['nev_share'][year]['mean']:.1%}"]
            for year, block in context.summary["market"]["total_sales"].items()]
    return Section("Market", context.figure(figure) + table_html(["year", "new-car sales (mean)",
                                                                  "NEV share (mean)"], rows), "market")


def assumptions_section(context: ReportContext) -> Section:
    rows = []
    for path, value in quantities(context.scenario).items():
        if is_uncertain(value):
            low, high = value.bounds()
            described = ", ".join(f"{k}={v}" for k, v in value.model_dump().items() if k != "dist")
            rows.append([html.escape(path), f"{value.dist}({html.escape(described)})",
                         f"{value.centre:,.4g}", f"{low:,.4g} … {high:,.4g}"])
    body = ("<p>Inputs the Monte Carlo varies (the scenario file states each one's reason). "
            "Fixed numbers are sourced facts or fixed assumptions, also stated in the file.</p>"
            + table_html(["parameter", "distribution", "median", "0.1% … 99.9%"], rows))
    return Section("Assumptions varied", body, "assumptions")


def data_section(context: ReportContext) -> Section:
    lineup = context.model.lineup
    rows = [[html.escape(name), html.escape(group), powertrain,
             units(price) if not math.isnan(price) else "assumed (band)",
             units(sales) if not math.isnan(sales) else "derived", html.escape(basis), html.escape(source[:90])]
            for name, group, powertrain, price, sales, basis, source in
            zip(lineup.names, lineup.groups, lineup.powertrains, lineup.known_price, lineup.monthly_sales,
                lineup.sales_basis, lineup.sources)]
    body = ("<p>Base-period products (sales per month) and where each figure comes from. "
            "<code>evlaunch data TABLE</code> shows every row with its source.</p>"
            + table_html(["model", "group", "powertrain", "price (CNY)", "sales/month", "basis", "source"], rows,
                         "small"))
    return Section("Data and sources", body, "data")
