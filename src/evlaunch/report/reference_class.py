"""Report section: the reference class of new EV brands' ramp-ups beside the entrant's forecast.

The ramps are the reconciled panel the model's class is fitted to (`entry.ramp_panel`, rows public at the
scenario's as-of date; a scenario's own ramp tables replace the bundled ones), imputed months left out.
"""

from __future__ import annotations

import functools
import html
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import plotly.graph_objects as go

from evlaunch.config.columns import DELIVERIES_MONTH, LAUNCH_MONTH_INDEX, monthly, path_column
from evlaunch.entry.ramp_panel import load_ramp_panel
from evlaunch.entry.reference_class import ramp_fraction
from evlaunch.report import charts
from evlaunch.report.html import Section, table_html

MONTHS_SHOWN = 24


def aligned_at_launch(deliveries: np.ndarray, launch_index: np.ndarray, months: int = MONTHS_SHOWN) -> np.ndarray:
    """[N, months] deliveries by month since launch (month 1 = launch month); NaN where not launched."""
    draws, horizon = deliveries.shape
    aligned = np.full((draws, months), np.nan)
    for offset in range(months):
        column = launch_index + offset
        inside = np.isfinite(column) & (column < horizon)
        aligned[inside, offset] = deliveries[inside, column[inside].astype(int)]
    return aligned


def _bound_note(at_bound: tuple[str, ...]) -> str:
    notes = {"midpoint": "midpoint held at its last month (still rising)", "plateau": "plateau at its cap",
             "width": "width at its bound"}
    return "; ".join(notes.get(name, name) for name in at_bound) or "–"


def observed_ramps(as_of, tables: Mapping[str, Any] | None) -> tuple[tuple[str, np.ndarray, np.ndarray], ...]:
    """Each ramp of the reconciled panel (`entry.ramp_panel`, rows public at `as_of`; `tables`: a scenario's own
    files) with its months since launch and deliveries where the tables give a figure (imputed months left
    out), in the panel's order. Assembling the panel costs more than the rest of the report; it depends only
    on these arguments, so a process builds it once per version of the scenario's own files (the arrays are
    read-only)."""
    return _observed_ramps(as_of, tuple(sorted((name, str(path), file_version(path))
                                               for name, path in (tables or {}).items() if path is not None)))


def file_version(path) -> tuple[int, int] | None:
    """(modification time in ns, size) of a file, None if it cannot be read: a cache key that changes when
    the file is rewritten."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


@functools.lru_cache(maxsize=8)
def _observed_ramps(as_of, tables: tuple[tuple[str, str, Any], ...]) -> tuple[tuple[str, np.ndarray, np.ndarray], ...]:
    panel = load_ramp_panel(as_of, paths={name: path for name, path, _ in tables}).months
    observed = panel[panel["how"] != "imputed"]
    ramps = []
    for ramp, rows in observed.groupby("ramp", sort=False):
        months, delivered = rows["month"].to_numpy(copy=True), rows["deliveries"].to_numpy(copy=True)
        months.flags.writeable = delivered.flags.writeable = False
        ramps.append((str(ramp), months, delivered))
    return tuple(ramps)


def reference_class_section(context):
    model, scenario = context.model, context.scenario
    reference = model.reference_class
    chosen = context.summary["recommended_path"]["name"]
    months = scenario.months
    data = context.arrays([monthly(chosen, DELIVERIES_MONTH, m) for m in months]
                          + [path_column(chosen, LAUNCH_MONTH_INDEX)])
    deliveries = np.stack([data[monthly(chosen, DELIVERIES_MONTH, m)] for m in months], axis=1).astype(float)
    aligned = aligned_at_launch(deliveries, data[path_column(chosen, LAUNCH_MONTH_INDEX)])
    figure = charts.new_figure()
    for index, (brand, months_since, delivered) in enumerate(observed_ramps(scenario.as_of, model.tables)):
        colour = charts.PALETTE[(index + 2) % len(charts.PALETTE)]
        figure.add_trace(go.Scatter(x=months_since, y=delivered, mode="markers", name=f"{brand} (actual)",
                                    marker=dict(color=colour, size=6), legendgroup=brand))
        fitted = [b for b in (reference.brands if reference else ()) if b.brand == brand]
        if fitted:
            grid = np.arange(1, MONTHS_SHOWN + 1, dtype=float)
            curve = fitted[0].plateau * ramp_fraction(grid, np.array(fitted[0].midpoint), np.array(fitted[0].width))
            figure.add_trace(go.Scatter(x=grid, y=curve, mode="lines", name=f"{brand} (fit)", legendgroup=brand,
                                        line=dict(color=colour, dash="dot")))
    launched = np.isfinite(aligned).any(axis=1)
    if launched.any():
        p10, p50, p90 = np.nanquantile(aligned[launched], [0.1, 0.5, 0.9], axis=0)
        grid = np.arange(1, MONTHS_SHOWN + 1)
        figure.add_trace(go.Scatter(x=grid, y=p90, line=dict(width=0), showlegend=False, hoverinfo="skip"))
        figure.add_trace(go.Scatter(x=grid, y=p10, fill="tonexty", line=dict(width=0), name="entrant 10-90%",
                                    fillcolor="rgba(31,119,180,0.2)"))
        figure.add_trace(go.Scatter(x=grid, y=p50, line=dict(color=charts.PALETTE[0], width=3),
                                    name=f"entrant median ({html.escape(chosen)})"))
    figure.update_layout(title="Deliveries in the first 24 months: new EV brands and the entrant",
                         xaxis_title="month since first deliveries", yaxis_title="vehicles/month",
                         height=460)
    body = ("<p>Monthly deliveries of new Chinese EV brands in their first 24 months (new_brand_ramps.csv, "
            "more_brand_ramps.csv and brand_ramps_extra.csv reconciled as the ramp backtest reconciles them: company "
            "deliveries first, registrations only where nothing else is known; only figures public by the as-of "
            "date), their fitted logistic ramps, and the entrant's forecast on the recommended path aligned at its "
            "launch. ")
    if reference is not None:
        body += ("These ramps are deliveries, so they hold what limited each brand, its plant as much as its "
                 "buyers: the entrant's plant delivers on a ramp drawn from this class (log-normal spread of "
                 "midpoint and width across brands, widened until its spread of first-year deliveries matches "
                 "the errors the brands make of each other: entry.ramp_spread) times its capacity, and no other "
                 "ramp is stacked on it (buyers' awareness is a prior, constant from the launch).</p>")
        body += ("<p>A brand still rising at the end of its data cannot tell its plateau from a later midpoint; its "
                 "midpoint is held at its last month (the least extrapolation the data allow, noted below: "
                 "read it as 'at least half-way by then'), and no drawn ramp is half-way later than the longest "
                 "window of data.</p>")
        rows = [[html.escape(b.brand), f"{b.plateau:,.0f}", f"{b.midpoint:.1f}", f"{b.width:.1f}", str(b.n_months),
                 f"{b.last_month:.0f}", _bound_note(b.at_bound)] for b in reference.brands]
        rows += [[html.escape(brand), "excluded", "", "", "", "", html.escape(reason)]
                 for brand, reason in reference.excluded.items()]
        body += table_html(["brand", "plateau (vehicles/month)", "midpoint (months)", "width (months)", "months fitted",
                            "last month", "note"], rows)
    else:
        body += "This scenario sets the delivery ramp by assumption instead.</p>"
    return Section("Reference class: new brands' ramp-ups", context.figure(figure) + body, "reference-class")
