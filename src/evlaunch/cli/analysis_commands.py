"""`evlaunch compare`, `sensitivity`, `discover` and `calibrate`: what decides the answer."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from evlaunch.analysis.decision import MARK_LEGEND, recommendation_mark
from evlaunch.api.run import DEFAULT_SEED, Run, RunNotFinished, run
from evlaunch.api.run import discover as discover_scenario
from evlaunch.api.run import sensitivity as sensitivity_of
from evlaunch.api.scenario import Scenario
from evlaunch.cli.app import app, console, fail
from evlaunch.errors import RunError
from evlaunch.report.formatting import bn_cny
from evlaunch.report.sensitivity import input_label

StoreOption = Annotated[Path | None, typer.Option("--store", help="run store file")]


def load_run(reference: str, store: Path | None, draws: int, seed: int, out_root: Path | None = None,
             keep: bool = True) -> tuple[str, Run]:
    """(label, run) for a scenario file (run now), a run directory or a stored run id.

    A scenario file is run into `out_root`/<name>-compare and recorded in the store when `keep`;
    otherwise into a temporary directory that lives as long as the process, without a store record."""
    path = Path(reference)
    if path.suffix == ".toml" and path.is_file():
        scenario = Scenario.load(path)
        if keep:
            out = (out_root or Path("runs")) / f"{scenario.name}-compare"
            return scenario.name, run(scenario, draws=draws, seed=seed, out=out,
                                      store=store if store is not None else True)
        return scenario.name, run(scenario, draws=draws, seed=seed)
    if path.is_dir() and (path / "scenario.toml").is_file():
        return path.name, Run.open(path)
    try:
        opened = Run.open(reference, store if store is not None else True)
    except RunNotFinished as error:
        raise RunError(f"run {error.run_id} is {error.status}; compare needs finished runs") from None
    return opened.label, opened


def _short(firm: str) -> str:
    """A firm's name without its parenthesised long form ("BAIC (Beijing Automotive Group)" -> "BAIC")."""
    return firm.split(" (")[0]


def _objective(criterion: str) -> str:
    """The objective of a decision criterion in words: "maximise expected NPV subject to ..." -> "expected NPV"."""
    return criterion.removeprefix("maximise ").split(" subject to")[0]


@app.command()
def compare(
    runs: Annotated[list[str], typer.Argument(help="scenario files, run directories or stored run ids")],
    draws: Annotated[int, typer.Option(min=1, help="draws when a scenario file is given")] = 2000,
    seed: Annotated[int, typer.Option(min=0)] = DEFAULT_SEED,
    store: StoreOption = None,
    out: Annotated[Path | None, typer.Option(help="where runs of scenario files go (default ./runs)")] = None,
    keep: Annotated[bool, typer.Option("--keep/--no-keep", help="keep runs of scenario files (in --out and the "
                                       "store) or run them into a temporary directory")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Compare paths within a run and across runs: launch, deliveries, NPV, CVaR, budget risk, dominance."""
    labelled = [load_run(reference, store, draws, seed, out, keep) for reference in runs]
    first, *others = [opened for _, opened in labelled]
    comparison = first.compare(*others, labels=[label for label, _ in labelled])
    document = comparison.to_dict()
    if as_json:
        console.print_json(json.dumps(document, default=lambda v: None if isinstance(v, float) else str(v)))
        return
    rows, recommendations, dominance = document["paths"], comparison.recommendations, comparison.dominance
    table = Table(title="paths compared (launch months as months after each scenario's start; the mean over the "
                        "draws that launch within the horizon)")
    for column in ("path", "licence / plant", "launch mean / p10 / p50 / p90", "P(never)", "P(by target)", "deliveries (horizon, mean)",
                   "NPV mean", "NPV p10 / p50 / p90", "CVaR10 NPV", "P(budget exceeded)",
                   "P(cash needed faster than pledge paid in)"):
        table.add_column(column, justify="left" if column == "path" else "right",
                         overflow="fold", min_width=12 if column == "path" else None)

    def month(value):
        return "never" if value is None or not math.isfinite(value) else f"{value:.0f}"

    marks = {label: recommendation_mark(chosen.passes, chosen.beats_not_entering)
             for label, chosen in recommendations.items()}
    for row, run_label in zip(rows, comparison.table["run"]):
        mark = f"{marks[run_label]} " if row["recommended"] else ""
        ahead = row["p_ahead_of_pledge_schedule"]
        table.add_row(mark + row["path"],
                      f"{_short(row['licence'])} / {row['plant']} plant",
                      " / ".join(month(row[k]) for k in ("launch_month_mean", "launch_month_p10", "launch_month_p50",
                                                         "launch_month_p90")),
                      f"{row['p_never']:.0%}", f"{row['p_launch_by_target']:.0%}", f"{row['deliveries_total_mean']:,.0f}",
                      bn_cny(row["npv_mean"]), " / ".join(bn_cny(row[k]) for k in ("npv_p10", "npv_p50", "npv_p90")),
                      bn_cny(row["npv_cvar10"]), f"{row['p_budget_exceeded']:.1%}",
                      "–" if ahead is None else f"{ahead:.1%}")
    console.print(table)
    console.print(f"NPV in bn CNY. Within each run: {MARK_LEGEND}. P(budget exceeded) = P(peak cash need > "
                  "budget available: the pledge less what was spent before the start); the last column is pacing, "
                  "not part of the rule.", highlight=False)
    for key, title in (("licence", "By licence"), ("plant", "By plant")):
        console.print(f"{title} (ranked by NPV mean): " + "; ".join(
            f"{_short(group)}: {', '.join(paths)}" for group, paths in document["groups"][key].items()), highlight=False)
    for label, chosen in recommendations.items():
        if chosen.passes and chosen.beats_not_entering is False:
            console.print(f"[bold]{label}[/]: stay out — no path beats staying out; the best path if entering "
                          f"anyway is [bold]{chosen.path}[/] — {chosen.criterion}", highlight=False)
        elif chosen.passes:
            console.print(f"[bold]{label}[/]: recommended [bold]{chosen.path}[/] — {chosen.criterion}; the budget "
                          + ("criterion binds: the best path on the objective alone breaks it" if chosen.binds else
                             "criterion does not bind: the best path on the objective alone meets it"),
                          highlight=False)
        else:
            console.print(f"[bold]{label}[/]: No path meets the budget tolerance; best {_objective(chosen.criterion)} among all "
                          f"paths is [bold]{chosen.path}[/]; least-violating is [bold]{chosen.least_violating}[/] "
                          f"— {chosen.criterion}", highlight=False)
        for other, why in chosen.why_others_lost.items():
            console.print(f"  {other}: {why}", highlight=False)
        if chosen.note:
            console.print(f"  note: {chosen.note}", highlight=False)
    console.print("First-order stochastic dominance: " + ("; ".join(dominance) if dominance
                                                          else "none holds between these paths"), highlight=False)


@app.command()
def sensitivity(
    scenario: Annotated[Path, typer.Argument(help="scenario TOML file")],
    method: Annotated[str, typer.Option(help="sobol (indices with confidence intervals) or morris (screening)")] = "sobol",
    output: Annotated[list[str] | None, typer.Option(
        help="per-draw output(s), e.g. own.npv (default: the recommended path's NPV and launch month)")] = None,
    samples: Annotated[int, typer.Option(min=8, max=8192, help="base samples (Sobol N / Morris trajectories)")] = 128,
    seed: Annotated[int, typer.Option(min=0)] = 1,
    top: Annotated[int, typer.Option(min=1, help="rows to print per output")] = 12,
    out: Annotated[Path | None, typer.Option(help="write sensitivity.json and sensitivity.html here")] = None,
) -> None:
    """Sobol or Morris sensitivity (SALib) of outputs, and the assumptions that decide the path choice."""
    if method not in ("sobol", "morris"):
        fail(f"--method: got {method!r}; expected sobol or morris")
    parsed = Scenario.load(scenario)
    with console.status(f"running the {method} design"):
        study = sensitivity_of(parsed, method, output, samples, seed)
    for label, frame in study.tables.items():
        result = study.results[label]
        shown = Table(title=f"{label} ({method}, {result.design.n_rows:,} model runs)")
        for column in frame.columns:
            shown.add_column(str(column), justify="right" if column != "parameter" else "left")
        for _, row in frame.head(top).iterrows():
            cells = [input_label(v) if column == "parameter" else v for column, v in row.items()]
            shown.add_row(*[f"{v:.3f}" if isinstance(v, float) else str(v) for v in cells])
        console.print(shown)
    for label, result in study.results.items():
        if result.n_nonfinite_replaced:
            console.print(f"{label}: {result.n_nonfinite_replaced:,} of {result.design.n_rows:,} model runs gave a "
                          "non-finite value (e.g. never launched) and were replaced by the largest finite one before "
                          "the indices were computed", highlight=False)
    if study.runner_up:
        console.print(f"The last table ranks the assumptions that decide {study.recommended} over {study.runner_up} "
                      "(sensitivity of their NPV difference).", highlight=False)
    if out is not None:
        json_path, html_path = study.write(out)
        console.print(f"Wrote {json_path} and {html_path}", highlight=False)


@app.command()
def discover(
    source: Annotated[str, typer.Argument(help="scenario file, run directory or stored run id")],
    when: Annotated[str, typer.Option("--when", help="condition on per-draw outputs, e.g. \"npv < 0\"")],
    draws: Annotated[int, typer.Option(min=100, help="draws when a scenario file is given")] = 4000,
    seed: Annotated[int, typer.Option(min=0)] = DEFAULT_SEED,
    min_coverage: Annotated[float, typer.Option(min=0.0, max=1.0, help="least share of the cases a box must cover")] = 0.3,
    inputs_kept: Annotated[int, typer.Option("--inputs", min=1, help="inputs PRIM may restrict, "
                                             "screened by KS distance")] = 8,
    store: StoreOption = None,
) -> None:
    """Scenario discovery (PRIM): the ranges of assumptions under which a condition mostly holds."""
    path = Path(source)
    if path.suffix == ".toml" and path.is_file():
        found = discover_scenario(path, when, draws=draws, seed=seed, min_coverage=min_coverage, inputs=inputs_kept)
    else:
        _, opened = load_run(source, store, draws, seed)
        found = opened.discover(when, min_coverage=min_coverage, inputs=inputs_kept)
    console.print(f"{when!r} holds in {found.share:.1%} of {found.n_draws:,} draws"
                  + (f" (bare names refer to the recommended path {found.path})" if any(
                      name != column for name, column in found.columns.items()) else ""), highlight=False)
    box = found.box
    trajectory = Table(title="PRIM peeling trajectory (coverage/density trade-off)")
    for column in ("step", "coverage", "density", "mass", "restricted inputs"):
        trajectory.add_column(column, justify="right")
    step = max(len(box.trajectory) // 15, 1)
    for index, row in box.trajectory.iterrows():
        if index % step and index != box.chosen and index != len(box.trajectory) - 1:
            continue
        trajectory.add_row(("→ " if index == box.chosen else "") + str(index), f"{row['coverage']:.2f}",
                           f"{row['density']:.2f}", f"{row['mass']:.2f}", str(int(row["n_restricted"])))
    console.print(trajectory)
    console.print(box.sentence, highlight=False)
    console.print("(the box's figures are for the limits that survive the quasi-p test, so they can differ from "
                  "the marked trajectory row)", highlight=False)
    if found.warning:
        console.print(f"[yellow]weak box:[/] {found.warning}", highlight=False)
    for name, words in found.events.items():
        console.print(f"  {name}: {words}", highlight=False)


@app.command()
def calibrate(scenario: Annotated[Path, typer.Argument(help="scenario TOML file")],
              top: Annotated[int, typer.Option(min=1)] = 12) -> None:
    """Show the calibrated base period: shares, prices, implied own-price elasticities and diversion."""
    from evlaunch.studies.calibration_report import calibration_report

    parsed = Scenario.load(scenario).config
    tables, margins = calibration_report(parsed, scenario.resolve().parent, top)
    for table in tables:
        console.print(table)
    if margins is not None:
        console.print(margins, highlight=False, soft_wrap=True)
