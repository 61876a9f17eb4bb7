"""The dashboard's JSON API under /api: scenarios and their levers, starting and following run jobs, stored
runs and comparisons. Bodies are `application/json` only (RequestGuard refuses others with 415; starting a
run requires the header even for an empty body). Like every state-changing request, a POST must name the
dashboard's origin in an `Origin` header (scripts: e.g. `-H "Origin: http://127.0.0.1:8000"`), else 403.
Errors are `{"detail": ...}`; invalid levers are 422 with CLI-style lines and the lines by field."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from evlaunch.api.run import DEFAULT_SEED
from evlaunch.web.forms import DEFAULT_BROWSER_DRAWS, MAX_BROWSER_DRAWS, FormError, build_request, lever_views
from evlaunch.web.jobs import TooBusy
from evlaunch.web.middleware import JSON_MEDIA_TYPE
from evlaunch.web.state import DashboardDep, job_json
from evlaunch.web.views import compare_rows, input_differences, jsonable

RUN_KEYS = frozenset({"levers", "paths", "draws", "seed"})
RUN_LIST_KEYS = ("run_id", "created_at", "finished_at", "scenario_name", "seed", "draws", "status")

router = APIRouter(prefix="/api")


def _invalid(lines: list[str], fields: dict[str, list[str]] | None = None, detail: str = "invalid request"
             ) -> JSONResponse:
    body: dict[str, Any] = {"detail": detail, "errors": lines}
    if fields is not None:
        body["fields"] = fields
    return JSONResponse(body, 422)


async def _json_body(request: Request) -> Any:
    """The request's JSON document ({} for an empty body); 415 unless sent as application/json, 400 if
    it is not JSON."""
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != JSON_MEDIA_TYPE:
        raise HTTPException(415, f"the API accepts only {JSON_MEDIA_TYPE} bodies; got {media_type or 'none'}")
    try:
        return json.loads(await request.body() or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        raise HTTPException(400, "the body must be a JSON object") from None


def _payload_problem(payload: Any) -> str | None:
    """What is wrong with the shape of a start-run body (None if nothing)."""
    if not isinstance(payload, dict) or set(payload) - RUN_KEYS:
        extra = sorted(set(payload) - RUN_KEYS) if isinstance(payload, dict) else []
        return f"expected a JSON object with keys {sorted(RUN_KEYS)}" + (f"; unknown: {extra}" if extra else "")
    paths = payload.get("paths")
    if not isinstance(payload.get("levers") or {}, dict) or not (paths is None or (
            isinstance(paths, list) and all(isinstance(p, str) for p in paths))):
        return "levers must be an object {key: value}; paths a list of path names"
    return None


@router.get("/scenarios")
def api_scenarios(dashboard: DashboardDep):
    return {"scenarios_dir": str(dashboard.scenarios_dir), "scenarios": dashboard.scenario_listing()}


@router.get("/scenarios/{name}")
def api_scenario(name: str, dashboard: DashboardDep):
    entry = dashboard.scenario_entry(name)
    if entry.scenario is None or entry.text is None:
        return JSONResponse({"name": name, "valid": False, "errors": (entry.error or "").splitlines()}, 200)
    levers, paths = lever_views(entry.text)
    return {"name": name, "valid": True, "levers": [lever.__dict__ for lever in levers],
            "paths": [path.__dict__ for path in paths], "max_draws": MAX_BROWSER_DRAWS,
            "default_draws": DEFAULT_BROWSER_DRAWS, "default_seed": DEFAULT_SEED}


@router.post("/scenarios/{name}/runs", status_code=202)
async def api_start_run(request: Request, name: str, dashboard: DashboardDep):
    entry, text = dashboard.valid_scenario(name)
    payload = await _json_body(request)
    if problem := _payload_problem(payload):
        return _invalid([problem])
    try:
        run = await run_in_threadpool(build_request, text, entry.source, payload.get("levers") or {},
                                      payload.get("paths"), payload.get("draws", DEFAULT_BROWSER_DRAWS),
                                      payload.get("seed"), DEFAULT_SEED)
    except FormError as error:
        return _invalid(error.lines, error.by_field, "invalid scenario")
    try:
        job = dashboard.jobs.submit(name, entry.path, run.scenario_text, run.draws, run.seed, run.changes)
    except TooBusy as error:
        raise HTTPException(429, str(error)) from None
    return JSONResponse(job_json(job), 202)


@router.get("/jobs/{job_id}")
def api_job(job_id: str, dashboard: DashboardDep):
    return JSONResponse(job_json(dashboard.job_or_404(job_id)), headers={"Cache-Control": "no-store"})


@router.post("/jobs/{job_id}/cancel")
def api_cancel(job_id: str, dashboard: DashboardDep):
    job = dashboard.job_or_404(job_id)
    dashboard.jobs.cancel(job.id)
    return job_json(job)


@router.get("/runs")
def api_runs(dashboard: DashboardDep, limit: int = 50):
    runs, error = dashboard.list_runs(max(1, min(limit, 1000)))
    if error:
        raise HTTPException(503, error)
    return [{key: run[key] for key in RUN_LIST_KEYS}
            | {"recommended_path": ((run.get("summary") or {}).get("recommended_path") or {}).get("name")}
            for run in runs]


@router.get("/runs/{run_id}")
def api_run(run_id: str, dashboard: DashboardDep):
    return JSONResponse(jsonable(dashboard.run_record(run_id)))


@router.get("/compare")
def api_compare(a: str, b: str, dashboard: DashboardDep):
    first, second = dashboard.run_record(a), dashboard.run_record(b)
    if not first.get("summary") or not second.get("summary"):
        raise HTTPException(409, "both runs must be finished")
    return JSONResponse(jsonable({"a": a, "b": b, "rows": compare_rows(first["summary"], second["summary"]),
                                  "inputs": input_differences(first, second)}))
