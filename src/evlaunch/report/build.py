"""Assemble report.html: a self-contained page (plotly.js embedded once, no CDN) of sections.

Each section is a function `(context) -> Section | None`; later capabilities add sections to
`SECTIONS` without touching the page layout. Figures use the first `CHART_DRAWS` draws (a fixed,
reproducible subset) so that reports of million-draw runs stay small; tables use all draws.
"""

from __future__ import annotations

import html
import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio

from evlaunch._version import __version__
from evlaunch.atomic import write_text_atomic
from evlaunch.config.scenario import Scenario, month_label, quantities
from evlaunch.report import charts
from evlaunch.report.draws import ReportDraws
from evlaunch.simulation.simulate import Model

CHART_DRAWS = 20_000


@dataclass(frozen=True)
class Section:
    title: str
    body: str          # HTML
    anchor: str = ""


@dataclass
class ReportContext:
    """What sections read: the scenario, the prepared model, per-draw data and the summary."""

    scenario: Scenario
    model: Model
    table: Any          # DrawTable-like: columns, to_numpy(columns, limit), stats(columns)
    summary: dict[str, Any]
    figures: int = 0

    def arrays(self, columns: list[str]) -> dict[str, np.ndarray]:
        present = [c for c in columns if c in self.table.columns]
        return self.table.to_numpy(present, limit=CHART_DRAWS)

    def figure(self, figure: go.Figure) -> str:
        """HTML of a figure; the first one carries plotly.js, later ones reuse it. Element ids are numbered
        (not plotly's random ones), so the same run gives the same report file."""
        self.figures += 1
        return pio.to_html(figure, full_html=False, include_plotlyjs=self.figures == 1,
                           config={"displaylogo": False, "responsive": True}, div_id=f"figure-{self.figures}")


def _money(value: float | None) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value / 1e9:,.1f} bn"


def _units(value: float | None) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:,.0f}"


def table_html(header: list[str], rows: list[list[str]], classes: str = "") -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f'<table class="{classes}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


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
                     f"{path['p_launch_by_target']:.0%}", _units(deliveries),
                     _money(path["npv"]["mean"]), f"{_money(path['npv']['p10'])} … {_money(path['npv']['p90'])}",
                     _money(path["peak_cash_need"]["p90"]), f"{path['p_budget_exceeded']:.1%}"])
    header = ["path", "launch month p10 / p50 / p90", f"P(launch by {scenario.target_launch})",
              f"deliveries {min(scenario.years) + 2} (mean)", "NPV mean (CNY)", "NPV p10 … p90",
              "peak cash need p90", "P(budget exceeded)"]
    body = (f"<p>As of <b>{scenario.as_of}</b>, {summary['draws']:,} draws, seed {summary['seed']}. "
            f"Recommended path: <b>{html.escape(recommended['name'])}</b> — criterion: "
            f"{html.escape(recommended['criterion'])}.</p>" + table_html(header, rows, "compare"))
    return Section("Paths compared", body, "paths")


def launch_section(context: ReportContext) -> Section:
    scenario = context.scenario
    columns = [f"{p}.launch_month_index" for p in scenario.paths]
    data = context.arrays(columns)
    labels, never = {}, {}
    for path in scenario.paths:
        index = data[f"{path}.launch_month_index"]
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
        data = context.arrays([f"{path}.deliveries_month.{m}" for m in months])
        series[path] = np.stack([data[f"{path}.deliveries_month.{m}"] for m in months], axis=1).astype(float)
    figure = charts.fan_chart(months, series, "Deliveries per month (median and 10-90% band)", "vehicles/month")
    return Section("Deliveries", context.figure(figure), "deliveries")


def money_section(context: ReportContext) -> Section:
    scenario = context.scenario
    data = context.arrays([f"{p}.npv" for p in scenario.paths])
    figure = charts.distribution_chart({p: data[f"{p}.npv"] for p in scenario.paths},
                                       "NPV at the scenario start", "NPV, bn CNY", scale=1e-9)
    peak = context.arrays([f"{p}.peak_cash_need" for p in scenario.paths])
    budget_usd = scenario.finance.budget_usd
    figure_peak = charts.distribution_chart({p: peak[f"{p}.peak_cash_need"] for p in scenario.paths},
                                            f"Peak cash need (budget US${budget_usd / 1e9:,.0f} bn)",
                                            "peak cash need, bn CNY", scale=1e-9)
    return Section("Money", context.figure(figure) + context.figure(figure_peak), "money")


def market_section(context: ReportContext) -> Section:
    scenario = context.scenario
    chosen = context.summary["recommended_path"]["name"]
    months = scenario.months
    data = context.arrays([f"{chosen}.nev_share_month.{m}" for m in months])
    series = {"NEV share": np.stack([data[f"{chosen}.nev_share_month.{m}"] for m in months], axis=1).astype(float)}
    figure = charts.fan_chart(months, series, f"NEV share of new-car sales (with the entrant on path {chosen})",
                              "share", scale=1.0)
    figure.update_yaxes(tickformat=".0%")
    rows = [[year, _units(block["mean"]), f"{context.summary['market']['nev_share'][year]['mean']:.1%}"]
            for year, block in context.summary["market"]["total_sales"].items()]
    return Section("Market", context.figure(figure) + table_html(["year", "new-car sales (mean)",
                                                                  "NEV share (mean)"], rows), "market")


def assumptions_section(context: ReportContext) -> Section:
    rows = []
    for path, value in quantities(context.scenario).items():
        if hasattr(value, "ppf"):
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
             _units(price) if not math.isnan(price) else "assumed (band)",
             _units(sales) if not math.isnan(sales) else "derived", html.escape(basis), html.escape(source[:90])]
            for name, group, powertrain, price, sales, basis, source in
            zip(lineup.names, lineup.groups, lineup.powertrains, lineup.known_price, lineup.monthly_sales,
                lineup.sales_basis, lineup.sources)]
    body = ("<p>Base-period products (sales per month) and where each figure comes from. "
            "<code>evlaunch data TABLE</code> shows every row with its source.</p>"
            + table_html(["model", "group", "powertrain", "price (CNY)", "sales/month", "basis", "source"], rows,
                         "small"))
    return Section("Data and sources", body, "data")


def _elsewhere(module: str, name: str) -> Callable[[ReportContext], Section | None]:
    """A section defined in another report module, imported when a report is built (those modules import
    this one, so importing them here at load time would be circular)."""
    def build(context: ReportContext) -> Section | None:
        return getattr(importlib.import_module(f"evlaunch.report.{module}"), name)(context)

    build.__name__ = name
    return build


SECTIONS: list[Callable[[ReportContext], Section | None]] = [
    overview, _elsewhere("paths", "paths_in_depth"), launch_section, deliveries_section,
    _elsewhere("reference_class", "reference_class_section"), money_section, market_section,
    _elsewhere("dynamics", "nev_path_section"), _elsewhere("dynamics", "policy_section"),
    _elsewhere("dynamics", "regions_section"),
    _elsewhere("competition", "price_response_section"), _elsewhere("competition", "diversion_section"),
    _elsewhere("sensitivity", "what_matters"),
    assumptions_section, data_section,
]

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#0b3d59;color:#fff;padding:18px 28px}header h1{margin:0;font-size:1.5em}
nav{padding:8px 28px;background:#e8eef2}nav a{margin-right:14px;color:#0b3d59}
main{padding:10px 28px;max-width:1280px}section{background:#fff;border:1px solid #ddd;border-radius:6px;
margin:16px 0;padding:12px 20px}table{border-collapse:collapse;margin:8px 0;font-size:.92em}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}th{background:#f0f3f5}
table.small{font-size:.8em}footer{padding:16px 28px;color:#666;font-size:.85em}
"""


def render(context: ReportContext) -> str:
    """The whole page as one HTML string."""
    sections = [section for build in SECTIONS if (section := build(context)) is not None]
    nav = "".join(f'<a href="#{s.anchor}">{html.escape(s.title)}</a>' for s in sections)
    body = "".join(f'<section id="{s.anchor}"><h2>{html.escape(s.title)}</h2>{s.body}</section>' for s in sections)
    scenario = context.scenario
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>evlaunch — {html.escape(scenario.name)}</title><style>{STYLE}</style></head><body>"
            f"<header><h1>evlaunch report — {html.escape(scenario.name)}</h1>"
            f"<div>{html.escape(scenario.description)}</div></header><nav>{nav}</nav><main>{body}</main>"
            f"<footer>evlaunch {__version__}. Money in CNY, volumes in vehicles. Figures use the first "
            f"{min(CHART_DRAWS, context.summary['draws']):,} draws; tables use all draws.</footer></body></html>")


def write_report(path: str | Path, scenario: Scenario, model: Model, table: Any, summary: dict[str, Any]) -> Path:
    """Render and atomically write report.html (paths in the scenario's order, whatever the summary's key
    order: summary.json is written with sorted keys)."""
    paths = summary["paths"]
    summary = {**summary, "paths": {name: paths[name] for name in scenario.paths if name in paths}}
    context = ReportContext(scenario, model, ReportDraws(table, CHART_DRAWS), summary)
    write_text_atomic(Path(path), render(context))
    return Path(path)
