"""`evlaunch compare`, `sensitivity`, `discover` and `calibrate`: what decides the answer."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.table import Table

from evlaunch.atomic import write_json_atomic
from evlaunch.cli.app import app, console, fail
from evlaunch.config.columns import DELIVERIES, LAUNCH_MONTH_INDEX, NPV, path_column, yearly
from evlaunch.config.scenario import Scenario, load_scenario, parse_scenario
from evlaunch.errors import RunError
from evlaunch.report.formatting import bn_cny
from evlaunch.runs.runner import DEFAULT_SEED, RunOptions, run_scenario
from evlaunch.runs.store import RunStore

StoreOption = Annotated[Path | None, typer.Option("--store", help="run store file")]


def load_run(reference: str, store: Path | None, draws: int, seed: int, out_root: Path | None = None,
             keep: bool = True):
    """(label, scenario, draws table) for a scenario file (run now), a run directory or a stored run id.

    A scenario file is run into `out_root`/<name> and recorded in the store when `keep`; otherwise into a
    temporary directory that lives as long as the process, without a store record."""
    from evlaunch.runs.draw_table import DrawTable

    path = Path(reference)
    if path.suffix == ".toml" and path.is_file():
        scenario = load_scenario(path)
        if keep:
            out = (out_root or Path("runs")) / f"{scenario.name}-compare"
            result = run_scenario(path, out, RunOptions(draws=draws, seed=seed, report=False), RunStore(store))
        else:
            out = Path(_scratch_dir()) / scenario.name
            result = run_scenario(path, out, RunOptions(draws=draws, seed=seed, report=False))
        return scenario.name, scenario, DrawTable.open(result.out_dir)
    if path.is_dir() and (path / "scenario.toml").is_file():
        scenario = load_scenario(path / "scenario.toml")
        return path.name, scenario, DrawTable.open(path)
    record = RunStore(store).get_run(reference)
    if record["status"] != "finished":
        raise RunError(f"run {record['run_id']} is {record['status']}; compare needs finished runs")
    return (record["run_id"], parse_scenario(record["scenario_text"], f"run {record['run_id']}"),
            DrawTable.open(record["out_dir"]))


def _scratch_dir() -> str:
    import atexit
    import shutil
    import tempfile

    directory = tempfile.mkdtemp(prefix="evlaunch-compare-")
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    return directory


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
    from evlaunch.runs.summary import path_statistics, recommendation
    from evlaunch.studies.scenario_analysis import dominance_table

    rows, npv, launch, recommendations = [], {}, {}, {}
    for reference in runs:
        label, scenario, table = load_run(reference, store, draws, seed, out, keep)
        statistics = path_statistics(table, scenario)
        chosen = recommendation(statistics, scenario)
        recommendations[label] = chosen
        for path, stats in statistics.items():
            key = f"{label}:{path}" if len(runs) > 1 else path
            arrays = table.to_numpy([path_column(path, NPV), path_column(path, LAUNCH_MONTH_INDEX)] + [
                yearly(path, DELIVERIES, year) for year in scenario.years])
            npv[key], launch[key] = arrays[path_column(path, NPV)], arrays[path_column(path, LAUNCH_MONTH_INDEX)]
            deliveries = sum(arrays[yearly(path, DELIVERIES, year)] for year in scenario.years)
            launch_stats = stats.launch_month
            months = arrays[path_column(path, LAUNCH_MONTH_INDEX)]
            launched = np.isfinite(months)
            rows.append({
                "path": key, "recommended": path == chosen.path,
                "launch_month_mean": float(np.mean(months[launched])) if launched.any() else None,
                "p_never": float(1.0 - launched.mean()),
                "launch_month_p10": launch_stats.p10, "launch_month_p50": launch_stats.p50,
                "launch_month_p90": launch_stats.p90,
                "p_launch_by_target": stats.p_launch_by_target,
                "deliveries_total_mean": float(np.mean(deliveries)),
                "npv_mean": stats.npv.mean, "npv_p10": stats.npv.p10, "npv_p50": stats.npv.p50,
                "npv_p90": stats.npv.p90, "npv_cvar10": stats.npv_cvar, "p_budget_exceeded": stats.p_budget_exceeded,
            })
    dominance = dominance_table(npv, launch)
    if as_json:
        document = {"paths": rows, "dominance": [d[2] for d in dominance],
                    "recommended": {label: {"path": r.path, "criterion": r.criterion,
                                            "why_others_lost": r.why_others_lost, "note": r.note}
                                    for label, r in recommendations.items()}}
        console.print_json(json.dumps(document, default=lambda v: None if isinstance(v, float) else str(v)))
        return
    table = Table(title="paths compared (launch months as months after each scenario's start; the mean over the "
                        "draws that launch within the horizon)")
    for column in ("path", "launch mean / p10 / p50 / p90", "P(never)", "P(by target)", "deliveries (horizon, mean)",
                   "NPV mean", "NPV p10 / p50 / p90", "CVaR10 NPV", "P(budget exceeded)"):
        table.add_column(column, justify="left" if column == "path" else "right",
                         overflow="fold", min_width=12 if column == "path" else None)

    def month(value):
        return "never" if value is None or not math.isfinite(value) else f"{value:.0f}"

    for row in rows:
        table.add_row(("★ " if row["recommended"] else "") + row["path"],
                      " / ".join(month(row[k]) for k in ("launch_month_mean", "launch_month_p10", "launch_month_p50",
                                                         "launch_month_p90")),
                      f"{row['p_never']:.0%}", f"{row['p_launch_by_target']:.0%}", f"{row['deliveries_total_mean']:,.0f}",
                      bn_cny(row["npv_mean"]), " / ".join(bn_cny(row[k]) for k in ("npv_p10", "npv_p50", "npv_p90")),
                      bn_cny(row["npv_cvar10"]), f"{row['p_budget_exceeded']:.1%}")
    console.print(table)
    console.print("NPV in bn CNY. ★ = recommended within its run.")
    for label, chosen in recommendations.items():
        console.print(f"[bold]{label}[/]: recommended [bold]{chosen.path}[/] — {chosen.criterion}", highlight=False)
        for other, why in chosen.why_others_lost.items():
            console.print(f"  {other}: {why}", highlight=False)
        if chosen.note:
            console.print(f"  note: {chosen.note}", highlight=False)
    console.print("First-order stochastic dominance: " + ("; ".join(d[2] for d in dominance) if dominance
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
    from evlaunch.report.sensitivity import write_sensitivity_report
    from evlaunch.simulation.simulate import prepare
    from evlaunch.studies.scenario_analysis import sensitivity_study

    if method not in ("sobol", "morris"):
        fail(f"--method: got {method!r}; expected sobol or morris")
    parsed = load_scenario(scenario)
    model = prepare(parsed, scenario.resolve().parent, str(scenario))
    with console.status(f"running the {method} design"):
        study = sensitivity_study(model, method, output, samples, seed)
    document = {"scenario": parsed.name, "method": method, "recommended_path": study.recommended,
                "runner_up": study.runner_up, "outputs": {}}
    for label, result in study.results.items():
        frame = result.table().reset_index()
        document["outputs"][label] = {"design": {"method": result.design.method, "seed": result.design.seed,
                                                 "rows": result.design.n_rows},
                                      "indices": json.loads(frame.to_json(orient="records")),
                                      "non_finite_replaced": result.n_nonfinite_replaced}
        shown = Table(title=f"{label} ({method}, {result.design.n_rows:,} model runs)")
        for column in frame.columns:
            shown.add_column(str(column), justify="right" if column != "parameter" else "left")
        for _, row in frame.head(top).iterrows():
            shown.add_row(*[f"{v:.3f}" if isinstance(v, float) else str(v) for v in row.values])
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
        out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(out / "sensitivity.json", document)
        write_sensitivity_report(out / "sensitivity.html", parsed.name, study)
        console.print(f"Wrote {out / 'sensitivity.json'} and {out / 'sensitivity.html'}", highlight=False)


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
    from evlaunch.analysis.conditions import evaluate, names_in, parse_condition
    from evlaunch.analysis.discovery import DiscoveryConfig, weak_box_message
    from evlaunch.analysis.discovery import discover as find_boxes
    from evlaunch.config.scenario import uncertain_parameters
    from evlaunch.runs.summary import path_statistics, recommendation
    from evlaunch.simulation.simulate import prepare
    from evlaunch.studies.scenario_analysis import discovery_frame, sample_table, screen_inputs

    condition = parse_condition(when)
    path = Path(source)
    if path.suffix == ".toml" and path.is_file():
        scenario: Scenario = load_scenario(path)
        model = prepare(scenario, path.resolve().parent, str(path))
        table = sample_table(model, draws, seed)
        events = list(model.event_names)
    else:
        _, scenario, table = load_run(source, store, draws, seed)
        events = [c for c in table.columns if c.endswith("_event")]
    chosen = recommendation(path_statistics(table, scenario), scenario).path
    names = names_in(condition)
    data = {}
    for name in names:
        column = name if name in table.columns else f"{chosen}.{name}"
        if column not in table.columns:
            fail(f"--when: {name!r} is neither a per-draw column nor an output of the recommended path {chosen!r}; "
                 f"e.g. npv, launch_month_index, peak_cash_need, deliveries.2026, or {chosen}.npv")
        data[name] = table.to_numpy([column])[column]
    mask = evaluate(condition, data)
    inputs = screen_inputs(discovery_frame(table, sorted(uncertain_parameters(scenario)) + events), mask,
                           inputs_kept)
    result = find_boxes(inputs, mask, when, DiscoveryConfig(min_coverage=min_coverage))
    console.print(f"{when!r} holds in {mask.mean():.1%} of {len(mask):,} draws"
                  + (f" (bare names refer to the recommended path {chosen})" if any(
                      n not in table.columns for n in names) else ""), highlight=False)
    box = result.box
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
    warning = weak_box_message(box.density, float(mask.mean()), when)
    if warning:
        console.print(f"[yellow]weak box:[/] {warning}", highlight=False)
    for name in box.limits:
        if name.endswith("_event"):
            console.print(f"  {name}: {describe_event(name)}", highlight=False)


def describe_event(name: str) -> str:
    """Plain words for a chance draw's column (uniform on [0, 1], one per draw)."""
    parts = name.split(".")
    if name.endswith(".failure_event") and parts[0] == "paths":
        return (f"the chance draw that decides whether stage {int(parts[3]) + 1} of path {parts[1]} fails "
                f"(it fails when the draw is below the stage's failure probability)")
    if name.endswith(".occurrence_event"):
        return f"the chance draw that decides whether supply shock {parts[1]} happens (below its probability)"
    if "awareness_shape_event" in name:
        return ("the chance draw that picks the entrant's awareness ramp from the new-brand reference class "
                "(low = fast ramp)")
    return "a chance draw of the Monte Carlo"


@app.command()
def calibrate(scenario: Annotated[Path, typer.Argument(help="scenario TOML file")],
              top: Annotated[int, typer.Option(min=1)] = 12) -> None:
    """Show the calibrated base period: shares, prices, implied own-price elasticities and diversion."""
    from evlaunch.studies.calibration_report import calibration_tables

    parsed = load_scenario(scenario)
    for table in calibration_tables(parsed, scenario.resolve().parent, top):
        console.print(table)
