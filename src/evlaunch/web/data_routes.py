"""The data pages: the bundled sourced tables (by catalogue name only) and a table's rows with their
sources, searchable and paged."""

from __future__ import annotations

import functools
from typing import Any

import pandas as pd
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from starlette.exceptions import HTTPException

from evlaunch.data.catalogue import CATALOGUE
from evlaunch.data.loader import load_table
from evlaunch.errors import EvlaunchError
from evlaunch.web.state import DashboardDep

TABLE_PAGE_ROWS = 100
MAX_QUERY_CHARS = 200
BOOKKEEPING = ("source", "note", "published", "gap")

router = APIRouter()


@functools.lru_cache(maxsize=1)
def data_tables() -> list[dict[str, Any]]:
    """Every bundled table with its description, basis, row count, gaps and figure columns (or its error)."""
    listing = []
    for name, info in CATALOGUE.items():
        try:
            table = load_table(name)
            rows, gaps = len(table.rows), int(table.rows["gap"].sum())
            columns = [c for c in table.rows.columns if c not in BOOKKEEPING]
            error = None
        except EvlaunchError as problem:
            rows, gaps, columns, error = 0, 0, [], str(problem)
        listing.append({"name": name, "description": info.description, "basis": info.basis, "rows": rows,
                        "gaps": gaps, "columns": columns, "error": error})
    return listing


def table_columns(table: str, rows: pd.DataFrame) -> list[str]:
    """The row's identity, then where it comes from, then its figures, then the note."""
    keys = [c for c in CATALOGUE[table].keys if c in rows.columns]
    return [*keys, "source", *[c for c in rows.columns if c not in (*keys, *BOOKKEEPING)], "note"]


def matching_rows(rows: pd.DataFrame, query: str) -> pd.DataFrame:
    """The rows with `query` in any cell (case-insensitive, as plain text)."""
    if not query:
        return rows
    mask = rows.astype(str).apply(lambda column: column.str.contains(query, case=False, regex=False)).any(axis=1)
    return rows[mask]


@router.get("/data", response_class=HTMLResponse)
def data_page(request: Request, dashboard: DashboardDep):
    return dashboard.render(request, "data.html", {"tables": data_tables()})


@router.get("/data/{table}", response_class=HTMLResponse)
def table_page(request: Request, table: str, dashboard: DashboardDep, q: str = "", offset: int = 0):
    if table not in CATALOGUE:
        raise HTTPException(404, f"no table {table[:60]!r}; the data page lists them")
    q = q[:MAX_QUERY_CHARS]
    loaded = load_table(table)
    rows = matching_rows(loaded.rows, q)
    offset = max(0, min(offset, max(0, len(rows) - 1)))
    columns = table_columns(table, rows)
    page = rows.iloc[offset:offset + TABLE_PAGE_ROWS]
    cells = [{"values": ["" if row[c] != row[c] else str(row[c]) for c in columns], "gap": bool(row["gap"])}
             for _, row in page.iterrows()]
    return dashboard.render(request, "table.html", {
        "name": table, "info": CATALOGUE[table], "columns": columns, "rows": cells, "total": len(rows),
        "all_rows": len(loaded.rows), "q": q, "offset": offset, "page": TABLE_PAGE_ROWS})
