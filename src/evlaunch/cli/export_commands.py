"""`evlaunch export`: a finished run's results as a spreadsheet, for people who live in spreadsheets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from evlaunch.api.run import Run
from evlaunch.cli.app import app, console


@app.command()
def export(
    run: Annotated[str, typer.Argument(help="run directory, or run id (or a unique prefix) from `evlaunch runs`")],
    xlsx: Annotated[Path, typer.Option("--xlsx", help="the .xlsx workbook to write")],
    store: Annotated[Path | None, typer.Option(
        "--store", help="run store file (default: $EVLAUNCH_STORE or the user data directory)")] = None,
) -> None:
    """Write a run's results to an Excel workbook: key figures per path, per path and year, the market,
    and the scenario's assumptions with their ranges and reasons."""
    path = Run.open(run, store if store is not None else True).to_excel(xlsx)
    console.print(f"Wrote {path}", highlight=False)
