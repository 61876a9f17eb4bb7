"""Plotly figures for the report, built from per-draw arrays. Pure: arrays in, figures out.

Built for speed as well as looks (a report holds a dozen figures): the template is attached without
re-validation, and quantile bands come from one sort per series rather than numpy's per-column path.
"""

from __future__ import annotations

import functools

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf")
TEMPLATE = "plotly_white"


@functools.cache
def _template() -> go.layout.Template:
    """The report's template, validated once (as `update_layout(template=...)` would, same key order)."""
    return go.layout.Template(pio.templates[TEMPLATE])


def new_figure() -> go.Figure:
    """An empty figure on the report's template.

    `update_layout(template=...)` re-validates and deep-copies the template's ~7 kB of settings, most of
    the cost of a small figure. The template is validated once here and attached the way plotly attaches
    its own default template, without validating it again: the same figure, the same JSON."""
    figure = go.Figure()
    layout = figure.layout
    layout._validate = False
    try:
        layout.template = _template()
    finally:
        layout._validate = True
    return figure


def quantile_band(values: np.ndarray, probs: list[float]) -> np.ndarray:
    """`np.nanquantile(values, probs, axis=0)` ([len(probs), columns]), the same numbers, faster: numpy
    takes NaN-aware quantiles column by column; columns without NaN are done together here, on sorted rows
    (quantiles do not depend on the order of the draws)."""
    values = np.asarray(values, dtype=float)
    result = np.full((len(probs), values.shape[1]), np.nan)
    missing = np.isnan(values).any(axis=0)
    if values.shape[0] and not missing.all():
        result[:, ~missing] = np.quantile(np.sort(values[:, ~missing].T, axis=1), probs, axis=1)
    for column in np.flatnonzero(missing):
        if not np.isnan(values[:, column]).all():
            result[:, column] = np.nanquantile(values[:, column], probs)
    return result


def _layout(figure: go.Figure, title: str, x_title: str, y_title: str) -> go.Figure:
    figure.update_layout(title=title, xaxis_title=x_title, yaxis_title=y_title, height=420, margin=dict(l=60, r=20, t=60, b=50), legend=dict(orientation="h", y=-0.2))
    return figure


def fan_chart(months: list[str], series: dict[str, np.ndarray], title: str, y_title: str,
              scale: float = 1.0) -> go.Figure:
    """Median line and 10-90% band over months for each named [draws, months] array."""
    figure = new_figure()
    for index, (name, values) in enumerate(series.items()):
        colour = PALETTE[index % len(PALETTE)]
        p10, p50, p90 = quantile_band(values * scale, [0.1, 0.5, 0.9])
        figure.add_trace(go.Scatter(x=months, y=p90, line=dict(width=0), showlegend=False, hoverinfo="skip",
                                    legendgroup=name))
        figure.add_trace(go.Scatter(x=months, y=p10, fill="tonexty", line=dict(width=0), legendgroup=name,
                                    fillcolor=_transparent(colour), name=f"{name} 10-90%", hoverinfo="skip"))
        figure.add_trace(go.Scatter(x=months, y=p50, line=dict(color=colour, width=2), name=f"{name} median",
                                    legendgroup=name))
    return _layout(figure, title, "month", y_title)


def _transparent(colour: str, alpha: float = 0.2) -> str:
    red, green, blue = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({red},{green},{blue},{alpha})"


def launch_histogram(launch_shares: dict[str, tuple[list[str], np.ndarray]], never: dict[str, float],
                     title: str) -> go.Figure:
    """Distribution of the launch month per path: for each path (months, shares), the share of its draws that
    launch within the horizon launching in each month, as overlaid bars ('never' in the legend). The shares
    are counted before plotting (one bar per month, not one point per draw)."""
    figure = new_figure()
    for index, (name, (months, shares)) in enumerate(launch_shares.items()):
        figure.add_trace(go.Bar(x=months, y=shares, name=f"{name} (never: {never[name]:.0%})",
                                marker_color=PALETTE[index % len(PALETTE)], opacity=0.6))
    figure.update_layout(barmode="overlay", bargap=0)
    figure.update_xaxes(type="category", categoryorder="category ascending")
    return _layout(figure, title, "launch month", "share of draws")


def distribution_chart(values: dict[str, np.ndarray], title: str, x_title: str, scale: float = 1.0) -> go.Figure:
    """Overlaid histograms of a per-draw output for each path."""
    figure = new_figure()
    for index, (name, array) in enumerate(values.items()):
        finite = array[np.isfinite(array)] * scale
        figure.add_trace(go.Histogram(x=finite, histnorm="probability", name=name, nbinsx=60, opacity=0.55,
                                      marker_color=PALETTE[index % len(PALETTE)]))
    figure.update_layout(barmode="overlay")
    return _layout(figure, title, x_title, "share of draws")


def bar_chart(labels: list[str], values: list[float], title: str, x_title: str,
              reference: tuple[str, list[float]] | None = None, name: str = "") -> go.Figure:
    """Horizontal bars (e.g. a tornado of sensitivity indices), optionally beside (name, values) of a reference."""
    figure = new_figure()
    figure.add_trace(go.Bar(x=values, y=labels, orientation="h", marker_color=PALETTE[0], name=name or None,
                            showlegend=reference is not None))
    if reference is not None:
        figure.add_trace(go.Bar(x=reference[1], y=labels, orientation="h", marker_color="#9e9e9e",
                                name=reference[0], opacity=0.6))
        figure.update_layout(barmode="group")
    figure.update_yaxes(autorange="reversed")
    return _layout(figure, title, x_title, "")
