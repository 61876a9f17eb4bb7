"""Assemble report.html: a self-contained page (plotly.js embedded once, no CDN) of sections.

Each section is a function `(context) -> Section | None` in a module of its own topic; a new section
goes into `SECTIONS` without touching the page layout. Sections build on `report.html` (Section, tables,
number formats) and `report.context` (ReportContext); this module only imports them, so nothing here
is circular.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path
from typing import Any

from evlaunch._version import __version__
from evlaunch.atomic import write_text_atomic
from evlaunch.config.scenario import Scenario
from evlaunch.report.competition import diversion_section, price_response_section
from evlaunch.report.context import CHART_DRAWS, ReportContext
from evlaunch.report.draws import ReportDraws
from evlaunch.report.dynamics import nev_path_section, policy_section, regions_section
from evlaunch.report.guidance import guidance_section
from evlaunch.report.html import Section, table_html
from evlaunch.report.margins import margins_and_budget_section
from evlaunch.report.overview import (
    assumptions_section,
    data_section,
    deliveries_section,
    launch_section,
    market_section,
    money_section,
    overview,
)
from evlaunch.report.paths import paths_in_depth
from evlaunch.report.reference_class import reference_class_section
from evlaunch.report.rivals import rivals_section, surplus_section
from evlaunch.report.sensitivity import what_matters
from evlaunch.simulation.simulate import Model

# Section, table_html and ReportContext moved to report.html and report.context; kept importable from
# here for one release.
__all__ = ["CHART_DRAWS", "SECTIONS", "ReportContext", "Section", "render", "table_html", "write_report"]

SECTIONS: list[Callable[[ReportContext], Section | None]] = [
    overview, paths_in_depth, launch_section, deliveries_section, reference_class_section, guidance_section,
    money_section,
    margins_and_budget_section,
    market_section, nev_path_section, policy_section, regions_section, price_response_section,
    diversion_section, rivals_section, surplus_section, what_matters, assumptions_section, data_section,
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
    order: summary.json is written with sorted keys). The prepared model's scenario is the one shown: its
    quantities are resolved from the data (an estimated NEV trend)."""
    scenario = model.scenario if model.scenario.name == scenario.name else scenario
    paths = summary["paths"]
    summary = {**summary, "paths": {name: paths[name] for name in scenario.paths if name in paths}}
    context = ReportContext(scenario, model, ReportDraws(table, CHART_DRAWS), summary)
    write_text_atomic(Path(path), render(context))
    return Path(path)
