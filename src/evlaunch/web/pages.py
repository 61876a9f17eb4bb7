"""The dashboard's pages: scenarios and stored runs (home), a lever form per scenario, a run job's live
progress, a run's results with its report and downloads, and two runs side by side."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import plotly
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException

from evlaunch.api.run import DEFAULT_SEED
from evlaunch.web.forms import DEFAULT_BROWSER_DRAWS, FormError, dashboard_changes, lever_views
from evlaunch.web.scenario_files import ScenarioEntry
from evlaunch.web.state import DOWNLOADS, Dashboard, DashboardDep, job_json, run_file, with_results
from evlaunch.web.views import (
    compare_chart,
    compare_rows,
    input_differences,
    jsonable,
    key_figures,
    path_labels,
)

# The report is self-contained (plotly.js inline) and runs sandboxed: scripts yes, same origin no.
REPORT_CSP = ("default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; "
              "img-src data: blob:; font-src data:; frame-ancestors 'self'; sandbox allow-scripts allow-downloads")
PLOTLY_JS = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"

router = APIRouter()


def render_form(dashboard: Dashboard, request: Request, entry: ScenarioEntry, values: dict[str, str] | None = None,
                checked: list[str] | None = None, errors: FormError | None = None, status: int = 200,
                message: str | None = None) -> Response:
    """A scenario's lever form, with what was typed, the problems found (by field) and its recent runs."""
    levers, paths = lever_views(entry.text) if entry.scenario is not None and entry.text else ([], [])
    scenario_name = entry.scenario.name if entry.scenario else None
    return dashboard.render(request, "scenario.html", {
        "entry": entry, "levers": levers, "paths": paths, "values": values or {},
        "checked": checked if checked is not None else [p.name for p in paths],
        "errors": errors.lines if errors else [], "field_errors": errors.by_field if errors else {},
        "draws": (values or {}).get("draws", str(DEFAULT_BROWSER_DRAWS)),
        "seed": (values or {}).get("seed", str(DEFAULT_SEED)), "message": message,
        "runs": [run for run in dashboard.list_runs(20)[0] if run["scenario_name"] == scenario_name]}, status)


@router.get("/", response_class=HTMLResponse)
def home(request: Request, dashboard: DashboardDep):
    runs, store_error = dashboard.list_runs()
    finished = [run for run in runs if run["status"] == "finished"]
    return dashboard.render(request, "home.html", {
        "scenarios": dashboard.scenario_listing(), "scenarios_dir": dashboard.scenarios_dir, "runs": runs,
        "store_error": store_error, "store_path": dashboard.store.path,
        "jobs": [job_json(job) for job in dashboard.jobs.jobs() if job.status in ("queued", "running")],
        "default_a": finished[1]["run_id"] if len(finished) > 1 else None,
        "default_b": finished[0]["run_id"] if finished else None})


@router.get("/scenarios/{name}", response_class=HTMLResponse)
def scenario_page(request: Request, name: str, dashboard: DashboardDep):
    return render_form(dashboard, request, dashboard.scenario_entry(name))


@router.get("/scenarios/{name}/file", response_class=PlainTextResponse)
def scenario_file(name: str, dashboard: DashboardDep):
    entry = dashboard.scenario_entry(name)
    if entry.text is None:
        raise HTTPException(404, entry.error or "unreadable")
    return PlainTextResponse(entry.text, media_type="text/plain; charset=utf-8")


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
def job_page(request: Request, job_id: str, dashboard: DashboardDep):
    data = job_json(dashboard.job_or_404(job_id))
    if data["results_url"]:
        return RedirectResponse(data["results_url"], status_code=303)
    return dashboard.render(request, "job.html", {"job": data})


@router.get("/runs/{run_id}", response_class=HTMLResponse)
def run_page(request: Request, run_id: str, dashboard: DashboardDep):
    record = dashboard.run_record(run_id)
    summary = record.get("summary")
    labels = path_labels(record["scenario_text"])
    figures = key_figures(summary, list(labels)) if summary else None
    files = [name for name in DOWNLOADS if record.get("out_dir") and (Path(record["out_dir"]) / name).is_file()]
    job = dashboard.jobs.job_for_run(run_id)
    return dashboard.render(request, "run.html", {
        "run": record, "summary": summary, "figures": figures, "files": files, "labels": labels,
        "changes": dashboard_changes(record["scenario_text"]), "job": job_json(job) if job else None,
        "timings": record.get("timings") or {}})


@router.get("/runs/{run_id}/report")
def run_report(run_id: str, dashboard: DashboardDep):
    path = run_file(dashboard.run_record(run_id), "report.html")
    return FileResponse(path, media_type=DOWNLOADS["report.html"],
                        headers={"Content-Security-Policy": REPORT_CSP, "Cache-Control": "no-cache"})


@router.get("/runs/{run_id}/files/{filename}")
def run_download(run_id: str, filename: str, dashboard: DashboardDep):
    record = dashboard.run_record(run_id)
    path = run_file(record, filename)
    headers = {"Content-Security-Policy": REPORT_CSP} if filename.endswith(".html") else {}
    return FileResponse(path, media_type=DOWNLOADS[filename], filename=f"{record['run_id']}-{filename}",
                        headers=headers)


@router.get("/compare", response_class=HTMLResponse)
def compare_page(request: Request, dashboard: DashboardDep, a: str | None = None, b: str | None = None):
    runs, store_error = dashboard.list_runs(200)
    finished = [run for run in runs if run["status"] == "finished"]
    context: dict[str, Any] = {"runs": finished, "a": a, "b": b, "store_error": store_error, "rows": None}
    if a and b:
        first, second = dashboard.run_record(a), dashboard.run_record(b)
        with_results(first), with_results(second)
        order = list(path_labels(first["scenario_text"]))
        chart = compare_chart(first, second, order)
        context.update(first=first, second=second, rows=compare_rows(first["summary"], second["summary"], order),
                       inputs=input_differences(first, second),
                       changes_a=dashboard_changes(first["scenario_text"]),
                       changes_b=dashboard_changes(second["scenario_text"]),
                       chart_json=json.dumps(jsonable(chart), allow_nan=False))
    return dashboard.render(request, "compare.html", context)


@router.get("/vendor/plotly.min.js")
def plotly_js():
    return FileResponse(PLOTLY_JS, media_type="text/javascript", headers={"Cache-Control": "public, max-age=86400"})


@router.get("/healthz", response_class=PlainTextResponse)
def health():
    return "ok"
