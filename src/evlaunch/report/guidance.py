"""Report section: the firm's own plan beside the forecast, what buyers knew, and the order book.

The firm's guidance (`[product.guidance]`, summary.json `guidance`) is shown, never fitted: where it falls in
each path's forecast of its year. The demand prior (`entry.launch_prior`) lists the comparable launches'
order events and the brand's reach the run drew on. The order book of the recommended path shows median
orders, deliveries and backlog by month and how often the expansion rule ordered the next phase.
"""

from __future__ import annotations

import html

import numpy as np
import plotly.graph_objects as go

from evlaunch.config.columns import (
    BACKLOG_END,
    BACKLOG_MONTH,
    CANCELLATIONS,
    DELIVERIES,
    DELIVERIES_MONTH,
    LAUNCH_MONTH_INDEX,
    ORDER_SHARE,
    ORDERS,
    ORDERS_MONTH,
    SHARE,
    monthly,
    path_column,
    yearly,
)
from evlaunch.report import charts
from evlaunch.report.formatting import percent, units
from evlaunch.report.html import Section, table_html


def _guidance_rows(summary: dict) -> list[list[str]]:
    guidance = summary["guidance"]
    year = str(guidance["year"])
    rows = []
    for name, path in summary["paths"].items():
        block = path["deliveries"].get(year, {})
        first = path.get("first_12_months_deliveries", {})
        share = guidance["percentile_in_forecast"].get(name)
        rows.append([html.escape(name), *(units(block.get(k)) for k in ("p10", "p50", "p90")),
                     percent(share) if share is not None else "–",
                     *(units(first.get(k)) for k in ("p10", "p50", "p90")), percent(path.get("p_expansion"))])
    return rows


def ordinal_percentile(share: float) -> str:
    """A share of draws (0..1) as an ordinal percentile: 0.933 -> '93rd', 0.71 -> '71st', 0.12 -> '12th'."""
    n = round(100 * float(share))
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def guidance_percentile_text(summary: dict) -> str:
    """Where the firm's guidance falls in the forecast, in words: its percentile in the recommended path's
    forecast of the guidance year (the share of draws delivering fewer cars), and the range over paths."""
    guidance = summary["guidance"]
    shares = {name: share for name, share in guidance["percentile_in_forecast"].items() if share is not None}
    if not shares:
        return ""
    year, chosen = guidance["year"], summary["recommended_path"]["name"]
    text = ""
    if chosen in shares:
        share = shares[chosen]
        reading = ("above the forecast's 80% interval: on these inputs the model finds the plan unlikely"
                   if share > 0.9 else "below the forecast's 80% interval: the model expects more than the plan"
                   if share < 0.1 else "inside the forecast's 80% interval")
        text += (f"The guidance sits at the <b>{ordinal_percentile(share)} percentile</b> of the recommended path's "
                 f"({html.escape(chosen)}) forecast of {year} deliveries ({reading}). ")
    # ties by name, so the words do not depend on the order the summary lists the paths in
    low = min(shares, key=lambda name: (shares[name], name))
    high = min(shares, key=lambda name: (-shares[name], name))
    if low != high:
        text += (f"Across the paths it sits between the {ordinal_percentile(shares[low])} ({html.escape(low)}) and "
                 f"the {ordinal_percentile(shares[high])} percentile ({html.escape(high)}).")
    return text.strip()


RAMP_BOUND_GAP = 0.1  # a draw's year is held by the delivery ramp when its orders exceed deliveries by 10% or more


def guidance_gap(orders: np.ndarray, deliveries: np.ndarray, launch_index: np.ndarray, year_end: int,
                 guidance: float) -> dict[str, float]:
    """What sets the forecast of the guidance year against the plan, per draw [N] (vehicles in the year; launch
    month index from the scenario start, inf for never; `year_end` the index of the year's last month):
    share of draws not on sale that year, share of those on sale held by the delivery ramp (orders at least
    RAMP_BOUND_GAP above deliveries), median months on sale in the year, and the shares of draws whose orders
    and whose deliveries reach the guidance. NaN where no draw is on sale."""
    orders, deliveries = np.asarray(orders, float), np.asarray(deliveries, float)
    launch = np.asarray(launch_index, float)
    on_sale = launch <= year_end
    sold = on_sale & (orders > 0)
    return {"not_on_sale": float(np.mean(~on_sale)),
            "ramp_bound": float(np.mean(orders[sold] >= (1 + RAMP_BOUND_GAP) * deliveries[sold])) if sold.any()
            else float("nan"),
            "months_on_sale": float(np.median(np.minimum(year_end - launch[on_sale] + 1, 12))) if on_sale.any()
            else float("nan"),
            "orders_reach": float(np.mean(orders >= guidance)),
            "deliveries_reach": float(np.mean(deliveries >= guidance))}


def guidance_gap_text(context, chosen: str) -> str:
    """The recommended path's guidance year in words: what holds it against the plan (`guidance_gap`)."""
    guidance, scenario = context.summary["guidance"], context.scenario
    year = int(guidance["year"])
    names = [yearly(chosen, ORDERS, year), yearly(chosen, DELIVERIES, year), path_column(chosen, LAUNCH_MONTH_INDEX)]
    data = context.arrays(names)
    if year not in scenario.years or not all(name in data for name in names):
        return ""
    year_end = scenario.months.index(f"{year}-12") if f"{year}-12" in scenario.months else len(scenario.months) - 1
    gap = guidance_gap(data[names[0]], data[names[1]], data[names[2]], year_end, float(guidance["deliveries"]))
    return (f"<p>What sets {year} on the recommended path ({html.escape(chosen)}): {percent(gap['not_on_sale'])} of "
            f"the draws are not on sale in {year} (a stage failed or ran late); those on sale sell a median "
            f"{gap['months_on_sale']:.0f} months of it, and in {percent(gap['ramp_bound'])} of them the buyers order "
            f"at least {RAMP_BOUND_GAP:.0%} more than the plant delivers (the delivery ramp binds, not demand). "
            f"Orders reach the guidance in {percent(gap['orders_reach'])} of the draws, deliveries in "
            f"{percent(gap['deliveries_reach'])}.</p>")


def _prior_text(context) -> str:
    model, product = context.model, context.scenario.product
    parts = []
    if model.reach is not None:
        parts.append(f"Buyers who consider the car from its launch: the brand's reach ({html.escape(model.reach[1])}) "
                     "plus a stated share of everyone else (<code>product.awareness_outside_reach</code>, varied "
                     "by the Monte Carlo); constant from the launch, since the ramp is the plant's and buyers' joint "
                     "delivery ramp and is not counted again on the buyers' side.")
    if model.launch_orders is not None and product.launch_order_multiple is not None:
        prior = model.launch_orders
        parts.append(f"Orders waiting at the launch: a comparable launch's orders (log-normal over the "
                     f"{len(prior.events)} launches below, median {prior.median:,.0f}) times "
                     "<code>product.launch_order_multiple</code>.")
        rows = [[html.escape(str(r.brand)), html.escape(str(r.model)), html.escape(str(r.event)),
                 f"{r.value:,.0f}", html.escape(str(r.date))] for r in prior.events.itertuples()]
        return "<p>" + " ".join(parts) + "</p>" + table_html(["brand", "model", "event", "orders", "date"], rows,
                                                             "small")
    return "<p>" + " ".join(parts) + "</p>" if parts else ""


def _order_book_figure(context, chosen: str) -> go.Figure:
    months = context.scenario.months
    names = {key: [monthly(chosen, key, m) for m in months] for key in (ORDERS_MONTH, DELIVERIES_MONTH, BACKLOG_MONTH)}
    data = context.arrays([column for columns in names.values() for column in columns])
    figure = charts.new_figure()
    labels = {ORDERS_MONTH: "orders", DELIVERIES_MONTH: "deliveries", BACKLOG_MONTH: "backlog (month end)"}
    for key, columns in names.items():
        if all(column in data for column in columns):
            values = np.stack([data[column] for column in columns], axis=1).astype(float)
            figure.add_trace(go.Scatter(x=list(months), y=np.median(values, axis=0), name=f"median {labels[key]}"))
    figure.update_layout(title=f"Order book of the recommended path ({chosen}), median by month",
                         yaxis_title="vehicles", height=380)
    return figure


def _order_book_table(context, chosen: str) -> str:
    """Per year, medians over the draws of the recommended path's orders, deliveries, cancellations, backlog at
    the year's end, and its share of the market by orders and by deliveries (the two differ while orders wait)."""
    keys = (ORDERS, DELIVERIES, CANCELLATIONS, BACKLOG_END, ORDER_SHARE, SHARE)
    data = context.arrays([yearly(chosen, key, year) for year in context.scenario.years for key in keys])
    rows = []
    for year in context.scenario.years:
        medians = {key: float(np.nanmedian(data[yearly(chosen, key, year)])) if yearly(chosen, key, year) in data
                   and np.isfinite(data[yearly(chosen, key, year)]).any() else None for key in keys}
        rows.append([str(year), *(units(medians[k]) for k in keys[:4]),
                     *(percent(medians[k], 2) for k in keys[4:])])
    return table_html(["year", "orders", "deliveries", "cancellations", "backlog at year end",
                       "share of the market by orders", "by deliveries"], rows, "small")


def guidance_section(context) -> Section | None:
    """The firm's guidance beside the forecast, the demand prior and the order book."""
    summary = context.summary
    if "guidance" not in summary:
        return None
    body = ""
    guidance = summary["guidance"]
    if guidance is not None:
        year = guidance["year"]
        body += (f"<p><b>The firm's guidance</b>: {guidance['deliveries']:,.0f} deliveries in {year} "
                 f"({html.escape(guidance['source'])}). It is shown, never used to fit; the column "
                 f"'guidance percentile' is the share of draws that deliver fewer cars in {year}. "
                 f"{guidance_percentile_text(summary)}</p>")
        body += table_html(["path", f"{year} p10", f"{year} p50", f"{year} p90", "guidance percentile",
                            "first 12 months p10", "p50", "p90", "P(expansion ordered)"], _guidance_rows(summary))
        body += guidance_gap_text(context, summary["recommended_path"]["name"])
    body += _prior_text(context)
    chosen = summary["recommended_path"]["name"]
    body += (f"<p>The order book of the recommended path ({html.escape(chosen)}), medians over the draws (each "
             f"column's own median, so they need not add up):</p>" + _order_book_table(context, chosen))
    body += context.figure(_order_book_figure(context, chosen))
    return Section("The firm's guidance, what buyers knew, and the order book", body, "guidance")
