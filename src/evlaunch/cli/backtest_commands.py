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
from evlaunch.cli.app import app, console, fail
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


LABELS = {"market.total_sales": "sales", "market.nev_share": "NEV share", "market.phev_share": "PHEV of NEV"}


def _error(value: float | None) -> str:
    return "–" if value is None else f"{value:+.1%}"


@app.command()
def backtest(
    scenario: Annotated[Path | None, typer.Argument(help="scenario TOML file (dated in the past)")] = None,
    actuals: Annotated[Path | None, typer.Option("--actuals", help="CSV of what happened: quantity, period, "
                                                                   "value, source, note (optional basis)")] = None,
    ramps: Annotated[bool, typer.Option("--ramps", help="instead: the leave-one-brand-out backtest of the "
                                                        "new-brand ramp reference class")] = False,
    all_origins: Annotated[bool, typer.Option("--all", help="instead: the rolling-origin market backtest (every "
                                                            "origin 2019-12-31 .. 2022-12-31, next one and two "
                                                            "years)")] = False,
    draws: Annotated[int, typer.Option(help="number of Monte Carlo draws", min=1)] = 1000,
    seed: Annotated[int, typer.Option(help="random seed", min=0)] = DEFAULT_SEED,
    workers: Annotated[int | None, typer.Option(help="start a local dask cluster with N workers", min=1)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of tables")] = False,
) -> None:
    """Score a scenario's forecasts against actuals (SCENARIO --actuals CSV): p10/p50/p90, 80% coverage, median
    error, CRPS, naive baselines; with --ramps, each new brand's first 12 months forecast from the others; with
    --all, the market forecast from every origin 2019-12-31 .. 2022-12-31 beside naive and published forecasts."""
    if ramps:
        if scenario is not None or actuals is not None:
            fail("evlaunch backtest --ramps takes no SCENARIO or --actuals (it backtests the bundled ramp tables)")
        _ramps(as_json)
    elif all_origins:
        if scenario is not None:
            fail("evlaunch backtest --all takes no SCENARIO (it builds the market forecast at each origin)")
        _rolling_market_backtest(draws, actuals, as_json)
    elif scenario is None or actuals is None:
        fail("evlaunch backtest needs SCENARIO and --actuals CSV (or --ramps, or --all)")
    else:
        _scenario_backtest(scenario, actuals, draws, seed, workers, as_json)


def _scenario_backtest(scenario: Path, actuals: Path, draws: int, seed: int, workers: int | None,
                       as_json: bool) -> None:
    """`evlaunch backtest SCENARIO --actuals CSV`: the forecast table, the naive baselines and the verdict."""
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
    _print_scores(result)


def _print_scores(result) -> None:
    """The backtest's 80% coverage, mean errors of the medians, verdict and notes."""
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


def _ramps(as_json: bool) -> None:
    """`evlaunch backtest --ramps`: the per-brand table, the summary line and the class's outlook."""
    from evlaunch.studies.ramp_backtest import run_ramp_backtest

    result = run_ramp_backtest()
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
        return
    console.print("[bold]leave-one-brand-out backtest of the new-brand ramp reference class[/]: first-12-month "
                  "deliveries of each brand forecast from the other brands only, rescaled to the NEV market public "
                  "at its launch (method chosen on the other brands only)", highlight=False)
    for title, forecasts in (("all other brands (tables as bundled)", result.forecasts),
                             ("as of launch: only rows published before the brand's launch month",
                              result.as_of_launch)):
        if not forecasts:
            continue
        table = Table(title=title + " (err = p50 / actual - 1)", box=box.SIMPLE_HEAD, padding=(0, 1),
                      pad_edge=False, highlight=False, collapse_padding=True)
        for column in ("brand", "launch", "class", "actual", "p10", "p50", "p90", "in80", "err", "CRPS", "PIT",
                       "widen", "baseline", "err ", "prev err", "imputed"):
            table.add_column(column, justify="left" if column == "brand" else "right", no_wrap=True)
        for f in forecasts:
            table.add_row(f.ramp, f.launch, str(f.class_size), f"{f.actual:,.0f}", f"{f.p10:,.0f}", f"{f.p50:,.0f}",
                          f"{f.p90:,.0f}", "yes" if f.inside_80 else "[bold red]no[/]", f"{f.median_error:+.1%}",
                          f"{f.crps:,.0f}", f"{f.pit:.2f}", f"{f.widening:.2f}", f"{f.baseline:,.0f}",
                          f"{f.baseline_error:+.1%}",
                          "–" if f.unscaled_error is None else f"{f.unscaled_error:+.1%}", str(f.imputed_months))
        console.print(table)
    methods = sorted({f.method for f in result.forecasts + result.as_of_launch})
    console.print(f"method chosen (per brand, by the median |error| of forecasting the other brands from the rest): "
                  f"{', '.join(methods)}; 'prev err' is the class of logistic curves without the market rescaling "
                  f"(median |error| {result.unscaled_median_abs_error:.3f})", highlight=False)
    for ramp, reason in result.excluded.items():
        console.print(f"not scored: {ramp}: {reason}", highlight=False, style="dim")
    for ramp, reason in result.as_of_launch_skipped.items():
        console.print(f"as of launch, not scored: {ramp}: {reason}", highlight=False, style="dim")
    outlook = result.outlook
    if outlook is not None:
        market = "" if outlook.market is None else f" into a NEV market of {outlook.market / 1e6:.2f}m/yr"
        console.print(f"as of 2023-10-31, the whole class ({outlook.class_size} brands, {outlook.method}, spread widened "
                      f"x{outlook.widening:.2f}) for a newcomer's first 12 months{market}: p10 {outlook.p10:,.0f} / "
                      f"p50 {outlook.p50:,.0f} / p90 "
                      f"{outlook.p90:,.0f}"
                      + ("" if outlook.plan is None else
                         f"; {outlook.plan_note} sits at the class's p{100 * outlook.plan_quantile:.0f}"),
                      highlight=False)
    if result.as_of_launch:
        console.print("as of launch: " + result.to_dict()["as_of_launch"]["summary"], highlight=False)
    console.print("the model's mechanism (each brand's own plateau x the other brands' ramp shape, widened, as the "
                  "model draws it; conditional on the plateau):", highlight=False)
    typer.echo(result.shapes_line())
    verdict = ("beats" if result.median_abs_error < result.baseline_median_abs_error else "does NOT beat")
    console.print(f"the model's median {verdict} the baseline (median of the other brands' first 12 months)",
                  highlight=False)
    typer.echo(result.summary_line())


def _rolling_market_backtest(draws: int, actuals: Path | None, as_json: bool) -> None:
    """`evlaunch backtest --all`: one table of every origin's market forecasts and the summary line."""
    from evlaunch.studies.backtest import ROLLING_ACTUALS, run_rolling_backtest

    result = run_rolling_backtest(draws=draws, actuals_path=actuals or ROLLING_ACTUALS)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
        return
    table = Table(title="rolling-origin market backtest (estimated diffusion; err = p50 / actual - 1)",
                  box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False, highlight=False, collapse_padding=True)
    for column in ("origin", "quantity", "year", "h", "actual", "p10", "p50", "p90", "in80", "err", "CRPS",
                   "frozen err", "trend err", "industry err (n)"):
        table.add_column(column, justify="left" if column in ("origin", "quantity") else "right", no_wrap=True)
    for s in result.scores + result.phev_scores:
        industry = "–" if s.industry_error is None else f"{s.industry_error:+.1%} ({s.industry_count})"
        table.add_row(s.origin, LABELS.get(s.quantity, s.quantity), str(s.year), str(s.horizon),
                      *(_fmt(s.quantity, v) for v in (s.actual, s.p10, s.p50, s.p90)),
                      "yes" if s.inside_80 else "[bold red]no[/]", _error(s.error), _fmt(s.quantity, s.crps),
                      _error(s.frozen_error), _error(s.trend_error), industry)
    console.print(table)
    data = result.to_dict()
    console.print(f"mean |error| of the median: model {data['model_mae']:.1%}, frozen {data['frozen_mae']:.1%}, "
                  f"log-odds/log trend {data['trend_mae']:.1%}; forecasts of the time {data['industry_mae']:.1%} vs "
                  f"the model's {data['model_mae_on_industry_rows']:.1%} on the same rows", highlight=False)
    typer.echo(result.phev_line())
    typer.echo(result.summary_line())
