"""Report section: the entrant's prices and gross margins beside comparable firms' reported margins, and the
budget as a constraint (peak cash need against the budget available, working capital included; pacing against
the parent's pledge schedule beside it).

Margins: per path and year, the median and 10-90% band over the draws of (revenue - cost of goods) /
revenue (`simulation.outputs`), beside the reported gross margins of carmakers public by the scenario's
date (`firm_margins.csv`); the verdict compares the medians with the range of the Chinese carmakers' margins
(rows for a firm's global business, marked "(global)" in the firm's name, are shown but left out of the range:
the entrant sells in China only). Budget: P(budget exceeded) per path (peak cash need above the budget
available), the budget at which it would reach the scenario's tolerance — the (1 - tolerance) quantile of each
draw's budget needed — and, beside it, pacing against the pledge schedule.
"""

from __future__ import annotations

import html

import numpy as np

from evlaunch.analysis.decision import budget_at_tolerance
from evlaunch.config.columns import BUDGET_NEEDED, ENTRANT_PRICE, GROSS_MARGIN, path_column, yearly
from evlaunch.data import load_table
from evlaunch.report.formatting import bn_cny
from evlaunch.report.html import Section, table_html


def _band(values: np.ndarray, percent: bool) -> str:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return "–"
    low, mid, high = np.percentile(finite, [10, 50, 90])
    if percent:
        return f"{mid:.0%} ({low:.0%}–{high:.0%})"
    return f"{mid:,.0f} ({low:,.0f}–{high:,.0f})"


GLOBAL_SCOPE = "(global)"  # firm_margins.csv marks a firm reported for its global business so in its name


def reported_margins(as_of, path: str | None = None) -> tuple[list[list[str]], float, float]:
    """(rows: firm, margins reported with their periods; lowest; highest of the Chinese carmakers, i.e. the
    firms not marked "(global)") of firm_margins.csv rows public by `as_of`."""
    rows = load_table("firm_margins", as_of, path).rows
    rows = rows[~rows["gap"]] if "gap" in rows else rows
    chinese = ~rows["firm"].astype(str).str.contains(GLOBAL_SCOPE, regex=False)
    values = rows.loc[chinese, "value"].astype(float) if chinese.any() else rows["value"].astype(float)
    out = []
    for firm, group in rows.groupby("firm", sort=False):
        periods = ", ".join(f"{period}: {float(value):.1%}" for period, value in zip(group["period"], group["value"]))
        out.append([html.escape(str(firm)), html.escape(periods)])
    return out, float(values.min()), float(values.max())


def margins_and_budget_section(context) -> Section:
    scenario = context.scenario
    years = [str(year) for year in scenario.years]
    columns = [yearly(p, key, y) for p in scenario.paths for key in (GROSS_MARGIN, ENTRANT_PRICE) for y in years]
    columns += [path_column(p, BUDGET_NEEDED) for p in scenario.paths]
    data = context.table.to_numpy([c for c in columns if c in context.table.columns])
    firms, low, high = reported_margins(scenario.as_of, context.model.tables.get("firm_margins"))
    margin_rows, price_rows, outside = [], [], []
    for name in scenario.paths:
        margins = [data.get(yearly(name, GROSS_MARGIN, y), np.array([np.nan])).astype(float) for y in years]
        margin_rows.append([html.escape(name)] + [_band(m, True) for m in margins])
        price_rows.append([html.escape(name)] + [_band(data.get(yearly(name, ENTRANT_PRICE, y), np.array([np.nan]))
                                                       .astype(float), False) for y in years])
        medians = [float(np.nanmedian(m)) if np.isfinite(m).any() else np.nan for m in margins]
        beyond = [y for y, m in zip(years, medians) if np.isfinite(m) and not low <= m <= high]
        if beyond:
            outside.append(f"{html.escape(name)} ({', '.join(beyond)})")
    policy = scenario.finance.price_policy
    verdict = (f"The median margin leaves the Chinese carmakers' reported range ({low:.0%} to {high:.0%}) on: "
               f"{'; '.join(outside)}." if outside else
               f"The median margin stays within the Chinese carmakers' reported range ({low:.0%} to {high:.0%}) "
               f"in every year on every path.")
    body = (f"<p>Price policy: <b>{html.escape(policy)}</b>"
            + (" — the guide price in its first month on sale; held both ways while the backlog exceeds the "
               "tolerated months of the month's output (new brands held list prices while orders waited), plus a "
               "capacity shadow price only while the plant runs at its installed capacity (not while it ramps) "
               f"with a backlog above the tolerated months of that capacity, at most {_premium(scenario)} of the "
               "price; within the tolerated wait its own Bertrand best response to the incumbents' prices at last "
               "month's demand and costs, cuts included, approached by at most "
               f"{_share(scenario.finance.price_step_cap)} of the price a month." if policy == "best_response" else
               " — the guide price throughout.")
            + " Learning lowers the non-battery cost only, counting doublings of the entrant's output beyond an "
              f"experience base of {_quantity(scenario.product.learning_base)} vehicles (the industry experience "
              "its suppliers and partners bring); the pack follows the battery-cost path.</p>"
            + "<p>The entrant's gross margin, (revenue − cost of goods) / revenue net of VAT, median (p10–p90):</p>"
            + table_html(["path", *years], margin_rows)
            + "<p>Its delivery-weighted price incl. VAT, CNY, median (p10–p90):</p>" + table_html(["path", *years], price_rows)
            + f"<p>{verdict} Reported gross margins public by {scenario.as_of} (firm_margins.csv; vehicle margin "
              f"where reported, else company gross margin; a firm marked \"(global)\" reports its worldwide business and "
              f"is left out of the range):</p>" + table_html(["firm", "reported"], firms)
            + budget_paragraph(context, data))
    return Section("Prices, margins and the budget", body, "margins-budget")


def _premium(scenario) -> str:
    """The stated cap on the capacity shadow price as text: a share, or its range when it is uncertain."""
    cap = scenario.finance.capacity_premium_cap
    if isinstance(cap, (int, float)):
        return f"{cap:.0%}"
    low, high = getattr(cap, "low", None), getattr(cap, "high", None)
    return f"{low:.0%}–{high:.0%}" if low is not None and high is not None else "a stated share"


def _share(value) -> str:
    """A scenario share as a percentage, or its low–high range when it is uncertain."""
    if isinstance(value, (int, float)):
        return f"{value:.1%}"
    low, high = getattr(value, "low", None), getattr(value, "high", None)
    return f"{low:.1%}–{high:.1%}" if low is not None and high is not None else "a stated share"


def _quantity(value) -> str:
    """A scenario quantity as text: the number, or its low–high range when it is uncertain."""
    if isinstance(value, (int, float)):
        return f"{value:,.0f}"
    low, high = getattr(value, "low", None), getattr(value, "high", None)
    return f"{low:,.0f}–{high:,.0f}" if low is not None and high is not None else "a stated number of"


def budget_paragraph(context, data: dict[str, np.ndarray]) -> str:
    """Per path: P(budget exceeded) (peak cash need above the budget available), pacing beside it, and the
    budget at which P(exceeded) reaches the tolerance; whether the criterion binds."""
    scenario, summary = context.scenario, context.summary
    finance, tolerance = scenario.finance, scenario.recommendation.max_p_budget_exceeded
    schedule = (f"pledged evenly over {finance.pledge_years:g} years from {finance.pledge_start}"
                if finance.pledge_start else "all available from the start")
    rows, over = [], []
    for name in scenario.paths:
        needed = data.get(path_column(name, BUDGET_NEEDED), np.array([np.nan])).astype(float)
        at_tolerance = budget_at_tolerance(needed, tolerance) if np.isfinite(needed).all() else np.nan
        result = summary["paths"][name]
        if result["p_budget_exceeded"] > tolerance:
            over.append(name)
        ahead = result.get("p_ahead_of_pledge_schedule")
        rows.append([html.escape(name), f"{result['p_budget_exceeded']:.1%}", bn_cny(at_tolerance, suffix=" bn CNY"),
                     "–" if ahead is None else f"{ahead:.1%}"])
    budget = f"US${finance.budget_usd / 1e9:g}bn"
    binds = summary["recommended_path"].get("budget_binds", bool(over))
    above = f" (above on {', '.join(html.escape(n) for n in over)})" if over else " on every path"
    verdict = (f"The budget criterion binds: the best path on the objective alone has P(budget exceeded) above "
               f"{tolerance:.0%}{above}." if binds else
               f"The budget criterion does not bind: the best path on the objective alone keeps P(budget exceeded) "
               f"within {tolerance:.0%}{above if over else ''}, so the choice is by the objective alone. It would "
               f"bind on a path if the budget fell below the figure in the third column.")
    return (f"<p>The budget ({budget}, {schedule}) against the peak cumulative cash need: upfront and running "
            f"costs, working capital (stock and receivables) and sunk costs of failed paths. A draw exceeds the "
            f"budget when its peak cash need is above the budget available — the pledge's total less what was "
            f"spent before the start. {verdict} Pacing is shown beside it and is not part of the rule: the share "
            f"of draws in which, in some month, the cash needed so far is above what the pledge schedule has paid "
            f"in by then (cash needed faster than the pledge is paid in).</p>"
            + table_html(["path", "P(budget exceeded)", f"total budget at which P(exceeded) = {tolerance:.0%}",
                          "P(cash needed faster than the pledge is paid in)"], rows))
