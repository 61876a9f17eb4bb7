"""`evlaunch backtest`: run a scenario as of a past date and score it against what happened."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.table import Table

from evlaunch.api.run import DEFAULT_SEED
from evlaunch.cli.app import app, console
from evlaunch.report.formatting import MISSING, bn_cny, percent


def _fmt(quantity: str, value: float | None) -> str:
    """Shares as percentages, volumes in millions above a million, money in bn CNY."""
    if value is None or math.isnan(value):
        return MISSING
    if quantity.endswith("share"):
        return percent(value, 1)
    if quantity.endswith("revenue"):
        return bn_cny(value, 2, suffix="bn")
    return f"{value / 1e6:,.2f}m" if quantity == "market.total_sales" else f"{value:,.0f}"


LABELS = {"market.total_sales": "sales", "market.nev_share": "NEV share"}


def _error(value: float | None) -> str:
    return "–" if value is None else f"{value:+.1%}"


@app.command()
def backtest(
    scenario: Annotated[Path, typer.Argument(help="scenario TOML file (dated in the past)")],
    actuals: Annotated[Path, typer.Option("--actuals", help="CSV of what happened: quantity, period, value, "
                                                            "source, note (optional basis)")],
    draws: Annotated[int, typer.Option(help="number of Monte Carlo draws", min=1)] = 1000,
    seed: Annotated[int, typer.Option(help="random seed", min=0)] = DEFAULT_SEED,
    workers: Annotated[int | None, typer.Option(help="start a local dask cluster with N workers", min=1)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of tables")] = False,
) -> None:
    """Score a scenario's forecasts against actuals: p10/p50/p90, 80% coverage, median error, CRPS, naive baselines."""
    from evlaunch.studies.backtest import run_backtest

    result = run_backtest(scenario, actuals, draws=draws, seed=seed, workers=workers)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
        return
    console.print(f"[bold]backtest of {result.scenario}[/] (as of {result.as_of}, {result.draws:,} draws, seed "
                  f"{result.seed}) against {result.actuals_file}", highlight=False)
    forecast = Table(title="forecast vs actual (err = p50 / actual - 1)", box=box.SIMPLE_HEAD, padding=(0, 1),
                     pad_edge=False, highlight=False, collapse_padding=True)
    for column in ("quantity", "period", "actual", "p10", "p50", "p90", "in80", "err", "CRPS"):
        forecast.add_column(column, justify="left" if column == "quantity" else "right", no_wrap=True,
                            min_width=13 if column == "quantity" else None)
    baselines = Table(title="naive baselines from the same as-of date (value, err)", box=box.SIMPLE_HEAD,
                      padding=(0, 1), pad_edge=False, highlight=False, collapse_padding=True)
    for column in ("quantity", "period", "model err", "frozen", "err", "trend", "err "):
        baselines.add_column(column, justify="left" if column == "quantity" else "right", no_wrap=True,
                             min_width=13 if column == "quantity" else None)
    bases: list[str] = []
    for score in result.scores:
        if score.basis and score.basis not in bases:
            bases.append(score.basis)
        label = LABELS.get(score.quantity, score.quantity)
        reference = f" \\[{bases.index(score.basis) + 1}]" if score.basis else ""
        forecast.add_row(label + reference, score.period, _fmt(score.quantity, score.actual),
                         *(_fmt(score.quantity, v) for v in (score.p10, score.p50, score.p90)),
                         "yes" if score.inside_80 else "[bold red]no[/]", _error(score.median_error),
                         _fmt(score.quantity, score.crps))
        if score.baselines:
            cells = []
            for name in ("frozen", "trend"):
                entry = score.baselines.get(name) or {}
                cells += [_fmt(score.quantity, entry.get("value")), _error(entry.get("error"))]
            baselines.add_row(label + reference, score.period, _error(score.median_error), *cells)
    console.print(forecast)
    if baselines.row_count:
        console.print(baselines)
    for number, basis in enumerate(bases, start=1):
        console.print(f"[{number}] basis: {basis}", highlight=False, markup=False)
    errors = result.mean_abs_error
    console.print(f"80%-interval coverage: [bold]{result.coverage_80:.0%}[/] "
                  f"({sum(s.inside_80 for s in result.scores)} of {len(result.scores)} actuals inside p10..p90; "
                  + ", ".join(f"{LABELS.get(q, q)} {sum(s.inside_80 for s in result.scores if s.quantity == q)}/"
                              f"{sum(s.quantity == q for s in result.scores)}"
                              for q in dict.fromkeys(s.quantity for s in result.scores)) + ")",
                  highlight=False)
    if errors["model"] is not None:
        console.print(f"mean |error| of the median: model {errors['model']:.1%}, frozen {errors['frozen']:.1%}, "
                      f"trend {errors['trend']:.1%}", highlight=False)
    for line in result.verdict:
        console.print(("[bold red]" if "LOSES" in line else "[bold]") + line + "[/]", highlight=False)
    for note in result.notes:
        console.print(f"note: {note}", highlight=False, style="dim")
