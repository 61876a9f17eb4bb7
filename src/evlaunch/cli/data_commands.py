"""`evlaunch data`: the bundled sourced tables, their rows, and where each number came from."""

from __future__ import annotations

from datetime import date
from typing import Annotated

import pandas as pd
import typer
from rich.table import Table

from evlaunch.cli.app import app, console, fail
from evlaunch.data.catalogue import CATALOGUE
from evlaunch.data.loader import load_table


@app.command()
def data(
    table: Annotated[str | None, typer.Argument(help="table name; omit to list the tables")] = None,
    where: Annotated[list[str] | None, typer.Option(
        "--where", help="filter rows: COLUMN=TEXT (case-insensitive substring); repeatable")] = None,
    as_of: Annotated[str | None, typer.Option(help="show only rows public by this date (YYYY-MM-DD)")] = None,
    columns: Annotated[str | None, typer.Option(help="comma-separated columns to show (source always shown)")] = None,
    limit: Annotated[int, typer.Option(min=1, help="most rows to print")] = 200,
) -> None:
    """List the sourced tables, or print a table's rows with their sources."""
    cutoff = _cutoff(as_of)
    if table is None:
        _list_tables(cutoff)
        return
    if table not in CATALOGUE:
        fail(f"unknown table {table!r}; known tables: {', '.join(CATALOGUE)}")
    loaded = load_table(table, cutoff)
    rows = _filtered(loaded.rows, where or [])
    wanted = _shown_columns(rows, columns)
    output = Table(title=f"{table}: {len(rows)} rows" + (f" public by {cutoff}" if cutoff else "")
                   + (f" ({loaded.withheld} withheld as published later)" if loaded.withheld else ""))
    for column in wanted:
        output.add_column(column, overflow="fold")
    for _, row in rows.head(limit).iterrows():
        output.add_row(*["" if row[c] != row[c] else str(row[c]) for c in wanted])
    console.print(output)
    if len(rows) > limit:
        console.print(f"... {len(rows) - limit} more rows (use --limit or --where)")


def _cutoff(as_of: str | None) -> date | None:
    """The --as-of date, or None."""
    if as_of is None:
        return None
    try:
        return date.fromisoformat(as_of)
    except ValueError:
        fail(f"--as-of: got {as_of!r}; expected a date as YYYY-MM-DD")


def _list_tables(cutoff: date | None) -> None:
    """Print every bundled table: its rows (public by cutoff), columns, description and basis."""
    listing = Table(title="bundled sourced tables (every row carries its source)")
    for column in ("table", "rows", "columns", "what", "basis"):
        listing.add_column(column, overflow="fold")
    for name, info in CATALOGUE.items():
        loaded = load_table(name, cutoff)
        shown = [c for c in loaded.rows.columns if c not in ("source", "note", "published", "gap")]
        listing.add_row(name, str(len(loaded.rows)), ", ".join(shown), info.description, info.basis)
    console.print(listing)


def _filtered(rows: pd.DataFrame, where: list[str]) -> pd.DataFrame:
    """The rows matching every --where COLUMN=TEXT (case-insensitive substring)."""
    for condition in where:
        column, _, text = condition.partition("=")
        if not _ or column not in rows.columns:
            fail(f"--where {condition!r}: expected COLUMN=TEXT with COLUMN one of {', '.join(rows.columns)}")
        rows = rows[rows[column].astype(str).str.contains(text, case=False, regex=False, na=False)]
    return rows


def _shown_columns(rows: pd.DataFrame, columns: str | None) -> list[str]:
    """The --columns to print (default all but published/gap/note), source always last if not named."""
    wanted = [c.strip() for c in columns.split(",")] if columns else [
        c for c in rows.columns if c not in ("published", "gap", "note")]
    unknown = [c for c in wanted if c not in rows.columns]
    if unknown:
        fail(f"--columns: unknown {', '.join(unknown)}; columns are {', '.join(rows.columns)}")
    if "source" not in wanted:
        wanted.append("source")
    return wanted
