"""`evlaunch run`, `validate`, `runs` and `report`: running scenarios and finding earlier runs."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from evlaunch.analysis.decision import recommendation_mark
from evlaunch.api.run import Run, RunNotFinished
from evlaunch.api.scenario import Scenario
from evlaunch.cli.app import app, console, errors, fail, is_terminal
from evlaunch.config.scenario import load_scenario, uncertain_parameters
from evlaunch.report.build import write_report
from evlaunch.report.formatting import bn_cny
from evlaunch.runs.cost import (
    MAX_MEMORY_BYTES_WITHOUT_CONFIRMATION,
    MAX_SECONDS_WITHOUT_CONFIRMATION,
    estimate,
    format_seconds,
)
from evlaunch.runs.execution import RunCancelled
from evlaunch.runs.runner import (
    DEFAULT_CHUNK,
    DEFAULT_SEED,
    RunOptions,
    check_options,
    load_model,
    run_scenario,
)
from evlaunch.runs.store import RunStore

DEFAULT_DRAWS = 2000
VALIDATION_DRAWS = 64
VALIDATION_BUDGET_S = 60.0  # longest sample simulation `validate` runs without --yes

StoreOption = Annotated[Path | None, typer.Option(
    "--store", help="run store file (default: $EVLAUNCH_STORE or the user data directory)")]


def open_store(path: Path | None) -> RunStore:
    return RunStore(path)


def print_summary(summary: dict) -> None:
    """The run's answer as a table: per path launch, deliveries, NPV, cash risk; the recommendation."""
    table = Table(title=f"{summary['scenario']} — as of {summary['as_of']}, {summary['draws']:,} draws")
    for column in ("path", "launch p10/p50/p90", "P(by target)", "deliveries (mean/yr, last yr)",
                   "NPV mean (bn CNY)", "NPV p10..p90", "P(budget exceeded)"):
        table.add_column(column, justify="left" if column == "path" else "right")
    block = summary["recommended_path"]
    recommended, passes = block["name"], block.get("passes", True)
    mark = recommendation_mark(passes, block.get("beats_not_entering"))
    for name, path in summary["paths"].items():
        launch = " / ".join(path["launch_month"][k] or "never" for k in ("p10", "p50", "p90"))
        last_year = max(path["deliveries"])
        npv = path["npv"]
        table.add_row((f"{mark} " if name == recommended else "") + name, launch, f"{path['p_launch_by_target']:.0%}",
                      f"{path['deliveries'][last_year]['mean']:,.0f}", bn_cny(npv["mean"]),
                      f"{bn_cny(npv['p10'])} .. {bn_cny(npv['p90'])}", f"{path['p_budget_exceeded']:.1%}")
    console.print(table)
    if mark == "★":
        console.print(f"Recommended path: [bold]{recommended}[/] ({block['criterion']})")
        if block.get("note"):
            console.print(f"  note: {block['note']}", highlight=False)
    elif mark == "○":
        console.print(f"Recommendation: [bold]stay out[/] — {block['note']} ○ {recommended} is the best path if "
                      f"entering anyway ({block['criterion']}). The NPV charges the whole programme's R&D and "
                      "overheads to this one model to the horizon (the report's Money section): the paths' "
                      "differences are the firmer answer.", highlight=False)
    else:
        console.print(f"☆ {block['note']}", highlight=False)


@app.command()
def run(
    scenario: Annotated[Path, typer.Argument(help="scenario TOML file")],
    draws: Annotated[int, typer.Option(help="number of Monte Carlo draws", min=1)] = DEFAULT_DRAWS,
    seed: Annotated[int, typer.Option(help="random seed (same scenario + seed + version = same numbers)",
                                      min=0)] = DEFAULT_SEED,
    out: Annotated[str | None, typer.Option(help="output directory (default: runs/<scenario name>)")] = None,
    workers: Annotated[int | None, typer.Option(help="start a local dask cluster with N workers", min=1)] = None,
    scheduler: Annotated[str | None, typer.Option(help="address of an existing dask scheduler")] = None,
    resume: Annotated[bool, typer.Option(help="complete an interrupted run in --out from its finished chunks")] = False,
    chunk_size: Annotated[int, typer.Option(help="draws per chunk", min=1)] = DEFAULT_CHUNK,
    store: StoreOption = None,
    no_store: Annotated[bool, typer.Option("--no-store", help="do not record the run in the store")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="run even if the estimate is over 10 minutes or 8 GiB")] = False,
) -> None:
    """Run a scenario: writes summary.json, draws.parquet and report.html, and records the run.

    Before simulating it prints the estimated time and memory; above 10 minutes or 8 GiB it stops
    (exit 2) unless --yes is given."""
    if workers is not None and scheduler is not None:
        fail("give either --workers (start a local cluster) or --scheduler (use an existing one), not both")
    if out is not None and not out.strip():
        fail("--out is empty; give a directory for the run's files (e.g. runs/my-scenario)")
    options = RunOptions(draws=draws, seed=seed, chunk_size=chunk_size, workers=workers, scheduler=scheduler,
                         resume=resume)
    check_options(options)
    parsed = load_scenario(scenario)
    out_dir = Path(out) if out is not None else Path("runs") / parsed.name
    cost = estimate(load_model(scenario), draws, chunk_size, workers)
    errors.print(f"{scenario}: {cost.describe()}", highlight=False, soft_wrap=True)
    if cost.needs_confirmation and not yes:
        fail(f"this run is {cost.describe()}: above the {format_seconds(MAX_SECONDS_WITHOUT_CONFIRMATION)} or "
             f"{MAX_MEMORY_BYTES_WITHOUT_CONFIRMATION / 2**30:.0f} GiB that start without confirmation. Add --yes to "
             "run it anyway, or use fewer --draws, a smaller --chunk-size (less memory) or --workers N (less time)")
    run_store = None if no_store else open_store(store)
    cancel = threading.Event()
    show = is_terminal()
    progress = Progress(TextColumn("[bold]simulating"), BarColumn(), MofNCompleteColumn(), TextColumn("draws"),
                        TimeElapsedColumn(), TimeRemainingColumn(), console=console, disable=not show, transient=True)
    with progress:
        task = progress.add_task("draws", total=draws)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        try:
            result = run_scenario(scenario, out_dir, options, run_store, advance, cancel, write_report=write_report)
        except (RunCancelled, KeyboardInterrupt):
            progress.stop()
            where = (" --no-store" if no_store else f" --store {store}" if store else "") + (
                f" --workers {workers}" if workers else "") + (f" --scheduler {scheduler}" if scheduler else "")
            fail(f"interrupted; finished chunks are kept in {out_dir}. Resume with:\n"
                 f"  evlaunch run {scenario} --draws {draws} --seed {seed} --out {out_dir} "
                 f"--chunk-size {chunk_size}{where}{' --yes' if yes else ''} --resume", code=130)
    print_summary(result.summary)
    console.print(f"Wrote {result.summary_path}, {result.draws_path}, {result.report_path}"
                  + (f" (run {result.run_id})" if result.run_id else ""), highlight=False)
    simulated = result.draws_simulated if result.draws_simulated is not None else draws
    console.print(f"Took {result.timings['total_s']:.1f} s ({simulated / max(result.timings['simulate_s'], 1e-9):,.0f} "
                  f"draws/s simulating{f'; {draws - simulated:,} draws reused from finished chunks' if simulated < draws else ''})",
                  highlight=False)


@app.command()
def validate(
    scenario: Annotated[Path, typer.Argument(help="scenario TOML file")],
    yes: Annotated[bool, typer.Option("--yes", help="simulate the sample of draws even if it is estimated to "
                                                     "take long")] = False,
) -> None:
    """Check a scenario file: exit 0 if valid, else exit 2 naming the file, field, value and expectation.

    Beyond the schema it prepares the data the scenario needs, prints the estimated cost of a default
    run, and simulates a small sample of draws (VALIDATION_DRAWS), so problems only a run would meet
    (e.g. sampled PHEV sales above the market's) are reported here too. A sample estimated to take
    more than VALIDATION_BUDGET_S seconds is skipped (and said so) unless --yes is given."""
    parsed = load_scenario(scenario)
    model = load_model(scenario)
    console.print(f"{scenario}: a default run is {estimate(model, DEFAULT_DRAWS, DEFAULT_CHUNK).describe()}",
                  highlight=False)
    sample = estimate(model, VALIDATION_DRAWS, VALIDATION_DRAWS)
    if sample.seconds > VALIDATION_BUDGET_S and not yes:
        checked = (f"sample simulation skipped: estimated ~{format_seconds(sample.seconds)} for {VALIDATION_DRAWS} "
                   "draws; add --yes to simulate them")
    else:
        Scenario.load(scenario).check(VALIDATION_DRAWS)
        checked = f"{VALIDATION_DRAWS} sampled draws simulated"
    console.print(f"{scenario}: valid — scenario {parsed.name!r}, as of {parsed.as_of}, {len(parsed.paths)} paths, "
                  f"{len(uncertain_parameters(parsed))} uncertain parameters ({checked})", highlight=False)


@app.command()
def runs(
    scenario: Annotated[str | None, typer.Option(help="only runs of this scenario name")] = None,
    status: Annotated[str | None, typer.Option(help="running, finished, failed or cancelled")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10000)] = 50,
    store: StoreOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of a table")] = False,
) -> None:
    """List stored runs, newest first."""
    where = store if store is not None else True
    records = Run.stored_records(where, scenario=scenario, status=status, limit=limit)
    if as_json:
        console.print_json(json.dumps(records, default=str))
        return
    table = Table(title=f"runs in {Run.store_path(where)}")
    for column in ("run id", "created", "scenario", "draws", "seed", "status", "recommended", "out dir"):
        table.add_column(column)
    for record in records:
        summary = record.get("summary") or {}
        recommended = (summary.get("recommended_path") or {}).get("name", "")
        table.add_row(record["run_id"], str(record["created_at"])[:19], record["scenario_name"], str(record["draws"]),
                      str(record["seed"]), record["status"], recommended, str(record.get("out_dir") or ""))
    console.print(table)


@app.command()
def report(
    run_id: Annotated[str, typer.Argument(help="run id (or a unique prefix) from `evlaunch runs`")],
    out: Annotated[Path | None, typer.Option(help="where to write the report (default: the run's directory)")] = None,
    store: StoreOption = None,
) -> None:
    """Rebuild a stored run's report.html from its draws."""
    try:
        opened = Run.open(run_id, store if store is not None else True)
    except RunNotFinished as error:
        fail(f"run {error.run_id} is {error.status}; only finished runs have a report")
    console.print(f"Wrote {opened.report(out)}", highlight=False)
