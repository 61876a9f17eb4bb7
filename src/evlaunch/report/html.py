"""HTML pieces every report section uses: the `Section` a section function returns, tables, number formats.

Sections import this module and `report.context`; `report.build` imports the sections. Nothing here
imports a section, so the report's modules form no cycle.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

from evlaunch.report.formatting import bn_cny


@dataclass(frozen=True)
class Section:
    """One titled part of the page; `anchor` is its id in the page's navigation."""

    title: str
    body: str          # HTML
    anchor: str = ""


def table_html(header: list[str], rows: list[list[str]], classes: str = "") -> str:
    """A table; header cells are escaped, body cells are HTML already (callers escape what they insert)."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f'<table class="{classes}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def money(value: float | None) -> str:
    """CNY as billions with one decimal ("12.3 bn"); "–" when missing or not finite."""
    return bn_cny(value, suffix=" bn")


