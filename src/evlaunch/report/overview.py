"""Report sections on the run's outcomes and inputs: the paths compared, launch month, deliveries, money,
the market, the assumptions varied and the base-period data with sources.

Each section is `(context) -> Section | None`; `report.build` lists them in page order.
"""

from __future__ import annotations

import html
import math

import numpy as np

from evlaunch.analysis.decision import budget_at_tolerance, recommendation_mark
from evlaunch.config.columns import (
    BUDGET_NEEDED,
    DELIVERIES_MONTH,
    LAUNCH_MONTH_INDEX,
    NEV_SHARE_MONTH,
    NPV,
    PEAK_CASH_NEED,
    monthly,
    path_column,
)
from evlaunch.config.distributions import is_uncertain
from evlaunch.config.scenario import month_label
from evlaunch.report import charts
from evlaunch.report.context import ReportContext
from evlaunch.report.formatting import units
from evlaunch.report.html import Section, money, table_html
from evlaunch.report.rivals import quantity_text


def overview(context: ReportContext) -> Section:
    summary, scenario = context.summary, context.scenario
    recommended = summary["recommended_path"]
    passes = recommended.get("passes", True)
    chosen_mark = recommendation_mark(passes, recommended.get("beats_not_entering"))
    rows = []
    for name, path in summary["paths"].items():
        launch = path["launch_month"]
        mark = f" {chosen_mark}" if name == recommended["name"] else ""
        first_full_year = str(min(scenario.years) + 2)
        deliveries = path["deliveries"].get(first_full_year, {}).get("mean")
        ahead = path.get("p_ahead_of_pledge_schedule")
        rows.append([f"<b>{html.escape(name)}</b>{mark}<br><small>{html.escape(scenario.paths[name].label)}</small>",
                     " / ".join(launch[k] or "never" for k in ("p10", "p50", "p90")),
                     f"{path['p_launch_by_target']:.0%}", units(deliveries),
                     money(path["npv"]["mean"]), f"{money(path['npv']['p10'])} … {money(path['npv']['p90'])}",
                     money(path["peak_cash_need"]["p90"]), f"{path['p_budget_exceeded']:.1%}",
                     "–" if ahead is None else f"{ahead:.1%}"])
    header = ["path", "launch month p10 / p50 / p90", f"P(launch by {scenario.target_launch})",
              f"deliveries {min(scenario.years) + 2} (mean)", "NPV mean (CNY)", "NPV p10 … p90",
              "peak cash need p90", "P(budget exceeded)", "P(cash needed faster than the pledge is paid in)"]
    name, criterion = (html.escape(recommended.get(k, "")) for k in ("name", "criterion"))
    note = html.escape(recommended.get("note", ""))
    if chosen_mark == "★":
        decision = f"Recommended path: <b>{name}</b> ★ — criterion: {criterion}."
    elif chosen_mark == "○":
        decision = (f"Recommendation: <b>stay out</b>. {note} ○ marks <b>{name}</b>, the best path if entering "
                    f"anyway (criterion: {criterion}). Read it with the NPV's scope (section Money): the whole car "
                    f"programme's R&amp;D and overheads are charged to this one model to the horizon, later models "
                    f"earn nothing, so the sign says more about that scope than about demand; the paths' "
                    f"differences are the firmer answer.")
    else:
        decision = (f"<b>{note}</b> ☆ marks that fallback; it is not a recommendation within the budget. "
                    f"Criterion: {criterion}.")
    body = (f"<p>As of <b>{scenario.as_of}</b>, {summary['draws']:,} draws, seed {summary['seed']}. {decision} "
            f"{budget_verdict(context)}</p>" + table_html(header, rows, "compare")
            + "<p>P(budget exceeded): share of draws whose peak cumulative cash need is above the budget available "
              "(the pledge's total less what was spent before the start). The last column is pacing, not the "
              "budget test: share of draws in which, in some month, the cash needed so far is above what the "
              "pledge schedule has paid in by then.</p>")
    return Section("Paths compared", body, "paths")


def budget_to_pass_usd(context: ReportContext, path: str, tolerance: float) -> float:
    """The pledge (US$) at which `path`'s P(budget exceeded) reaches `tolerance`: the (1 - tolerance) quantile
    over the draws of budget needed / exchange rate (a draw exceeds a pledge B US$ exactly when
    B x its rate < its budget needed). NaN for runs without the budget-needed column."""
    column = path_column(path, BUDGET_NEEDED)
    data = context.table.to_numpy([c for c in (column, "finance.usd_cny") if c in context.table.columns])
    if column not in data:
        return math.nan
    rate = data.get("finance.usd_cny", np.array([_central(context.scenario.finance.usd_cny)]))
    return budget_at_tolerance(np.asarray(data[column], dtype=float) / np.asarray(rate, dtype=float), tolerance)


def _central(value) -> float:
    return float(getattr(value, "centre", value))


def budget_verdict(context: ReportContext) -> str:
    """Whether the budget criterion binds and what would make it bind (when it does not) or what budget the
    chosen path would need to pass (when it does), in words (HTML)."""
    scenario, recommended = context.scenario, context.summary["recommended_path"]
    if "passes" not in recommended:  # a summary written before the rule reported this
        return ""
    tolerance = scenario.recommendation.max_p_budget_exceeded
    chosen = html.escape(recommended["name"])
    pledge = f"US${scenario.finance.budget_usd / 1e9:,.1f} bn"
    needed = budget_to_pass_usd(context, recommended["name"], tolerance)
    figure = "–" if not math.isfinite(needed) else f"US${needed / 1e9:,.1f} bn"
    if not recommended["passes"]:
        return (f"The pledge is {pledge}; {chosen} would meet the tolerance with a pledge of at least {figure} "
                f"(the {1 - tolerance:.0%} quantile of its peak cash need plus what was spent before the start).")
    if recommended.get("budget_binds"):
        return (f"The budget criterion binds: the best path on the objective alone breaks the {tolerance:.0%} "
                f"tolerance, so the recommendation is the best path that keeps to it.")
    return (f"The budget criterion does not bind: {chosen}, the best path on the objective alone, keeps "
            f"P(budget exceeded) within {tolerance:.0%}, so the choice is by the objective alone. It would bind "
            f"on {chosen} if the pledge ({pledge}) fell below {figure}: the {1 - tolerance:.0%} quantile of its "
            f"peak cash need plus what was spent before the start.")


def launch_section(context: ReportContext) -> Section:
    scenario = context.scenario
    columns = [path_column(p, LAUNCH_MONTH_INDEX) for p in scenario.paths]
    data = context.arrays(columns)
    shares, never = {}, {}
    for path in scenario.paths:
        index = data[path_column(path, LAUNCH_MONTH_INDEX)]
        inside = index[np.isfinite(index) & (index < scenario.horizon_months)]
        months, counts = np.unique(inside.astype(int), return_counts=True)  # int() of each, as labelled before
        shares[path] = ([month_label(scenario.start_month + int(i)) for i in months], counts / max(len(inside), 1))
        never[path] = 1.0 - len(inside) / max(len(index), 1)
    figure = charts.launch_histogram(shares, never, "When does the first car reach customers?")
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
    return Section("Money", _npv_scope(context) + _npv_table(context, data) + context.figure(figure)
                   + context.figure(figure_peak), "money")


def _npv_scope(context: ReportContext) -> str:
    """What the NPV covers, in words: one model's cash flows to the horizon, with the programme's fixed costs."""
    scenario, finance = context.scenario, context.scenario.finance
    return (f"<p>NPV is the value at {month_label(scenario.start_month)} of <b>one car model's</b> monthly cash "
            f"flows to {month_label(scenario.start_month + scenario.horizon_months - 1)}, discounted at "
            f"{quantity_text(finance.discount_rate)} a year. The whole car programme's R&amp;D "
            f"({quantity_text(finance.rnd_per_month, money=True)} CNY/month) and overheads "
            f"({quantity_text(finance.opex_per_month, money=True)} CNY/month) are charged to it, while later "
            f"models' revenue is not counted; the terminal value is {quantity_text(finance.terminal_value_multiple)} "
            f"years of the last twelve months' operating cash flow, never negative. It is the value of this model "
            f"to the horizon, not of the car business.</p>")


def _npv_table(context: ReportContext, npv: dict[str, np.ndarray]) -> str:
    """Per path: P(NPV > 0); the mean NPV in the draws in which the path launches and in those in which it never
    does (a path can rank high because its failures are cheap: money stops early); and how often the
    recommended path's NPV beats this path's in the same draw (the paths share each draw's market, costs and
    approvals, so the comparison is paired)."""
    chosen = context.summary["recommended_path"]["name"]
    best = npv[path_column(chosen, NPV)].astype(float)
    launch = context.arrays([path_column(p, LAUNCH_MONTH_INDEX) for p in context.scenario.paths])
    rows = []
    for name in context.scenario.paths:
        values = npv[path_column(name, NPV)].astype(float)
        launched = np.isfinite(launch.get(path_column(name, LAUNCH_MONTH_INDEX), np.zeros(len(values))).astype(float))
        paired = "–" if name == chosen else f"{np.mean(best > values):.0%}"
        gap = "–" if name == chosen else money(float(np.mean(best - values)))
        rows.append([html.escape(name), f"{np.mean(values > 0):.0%}",
                     money(float(values[launched].mean())) if launched.any() else "–",
                     f"{money(float(values[~launched].mean()))} ({np.mean(~launched):.0%})" if (~launched).any()
                     else "– (0%)", paired, gap])
    return ("<p>A path whose approvals can fail without a fallback loses less in the draws in which it never "
            "launches (spending stops early), so compare the paths' NPV in the draws in which they launch too."
            "</p>" + table_html(["path", "P(NPV > 0)", "NPV mean if it launches", "NPV mean if it never launches "
                                 "(share of draws)", f"P({chosen}'s NPV higher, same draw)",
                                 f"mean NPV gap, {chosen} minus path"], rows))


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
    for path, value in context.quantities.items():
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
