"""The dashboard's state shared by its routes: the run store, the scenarios on offer, the run jobs and the
page templates, with the lookups every route uses (by name or id only; never a path from the request).

`create_app` puts one `Dashboard` on `app.state.dashboard`; routes receive it through the `DashboardDep`
dependency.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException
from starlette.responses import Response

from evlaunch._version import __version__
from evlaunch.errors import RunError
from evlaunch.report.formatting import bn_cny, percent, units
from evlaunch.runs.store import RunStore
from evlaunch.web.forms import MAX_BROWSER_DRAWS, MAX_FIELD_CHARS
from evlaunch.web.jobs import Job, JobManager
from evlaunch.web.scenario_files import ScenarioEntry, load_entry, scenario_files
from evlaunch.web.views import linkify

WEB_DIR = Path(__file__).resolve().parent
RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
DOWNLOADS = {
    "summary.json": "application/json",
    "draws.parquet": "application/vnd.apache.parquet",
    "report.html": "text/html; charset=utf-8",
}


def page_templates() -> Jinja2Templates:
    """The pages' Jinja templates with the number filters (bn CNY, units, percent) and links in sources."""
    templates = Jinja2Templates(directory=str(WEB_DIR / "templates"))
    templates.env.filters.update(bn=bn_cny, units=units, pct=percent, linkify=linkify)
    templates.env.globals.update(version=__version__, max_draws=MAX_BROWSER_DRAWS, max_field=MAX_FIELD_CHARS)
    return templates


def job_json(job: Job) -> dict[str, Any]:
    """A job's state for the progress page and the API, with the URLs of its page and its results."""
    data = job.snapshot()
    data["page_url"] = f"/jobs/{job.id}"
    data["results_url"] = f"/runs/{data['run_id']}" if data["status"] == "finished" and data["run_id"] else None
    return data


@dataclass
class Dashboard:
    """What the routes share. `runs_dir`: where dashboard runs write their results."""

    store: RunStore
    scenarios_dir: Path
    runs_dir: Path
    jobs: JobManager
    templates: Jinja2Templates

    def render(self, request: Request, template: str, context: dict[str, Any], status: int = 200) -> Response:
        return self.templates.TemplateResponse(request, template, context, status_code=status)

    def scenario_entry(self, name: str) -> ScenarioEntry:
        """The offered scenario called `name`, or 404."""
        entry = load_entry(self.scenarios_dir, name)
        if entry is None:
            raise HTTPException(404, f"no scenario {name[:100]!r} in {self.scenarios_dir.name}/")
        return entry

    def valid_scenario(self, name: str) -> tuple[ScenarioEntry, str]:
        """The offered scenario called `name` and its text if its file is valid; 404 if there is none,
        409 if it is not valid."""
        entry = self.scenario_entry(name)
        if entry.scenario is None or entry.text is None:
            raise HTTPException(409, f"the scenario file is not valid: {entry.error}")
        return entry, entry.text

    def scenario_listing(self) -> list[dict[str, Any]]:
        """Every offered scenario with its description, as-of date, paths and target, or its error."""
        listing = []
        for name in scenario_files(self.scenarios_dir):
            entry = self.scenario_entry(name)
            scenario = entry.scenario
            listing.append({"name": name, "file": entry.source, "valid": scenario is not None, "error": entry.error,
                            "description": scenario.description if scenario else "",
                            "as_of": str(scenario.as_of) if scenario else None,
                            "paths": list(scenario.paths) if scenario else [],
                            "target_launch": scenario.target_launch if scenario else None})
        return listing

    def run_record(self, run_id: str) -> dict[str, Any]:
        """The stored run with exactly this id, or 404 (503 if the store cannot be read)."""
        if not _matches_run_id(run_id):
            raise HTTPException(404, "no such run")
        try:
            record = self.store.get_run(run_id)
        except RunError as error:
            if "no run" in str(error) or "ambiguous" in str(error):
                raise HTTPException(404, f"no run {run_id!r} in the store") from None
            raise HTTPException(503, str(error)) from None
        if record["run_id"] != run_id:  # the store also accepts prefixes; the dashboard wants exact ids
            raise HTTPException(404, f"no run {run_id!r} in the store")
        return record

    def list_runs(self, limit: int = 100) -> tuple[list[dict[str, Any]], str | None]:
        """(the latest stored runs, None) or ([], the store's error)."""
        try:
            return self.store.list_runs(limit=limit), None
        except RunError as error:
            return [], str(error)

    def job_or_404(self, job_id: str) -> Job:
        job = self.jobs.get(job_id) if _matches_run_id(job_id) else None
        if job is None:
            raise HTTPException(404, "no such job (jobs are kept while the dashboard runs)")
        return job


def with_results(record: dict[str, Any]) -> dict[str, Any]:
    """A run record that has results (a summary), or 409 naming its status."""
    if not record.get("summary"):
        raise HTTPException(409, f"run {record['run_id']} is {record['status']}; it has no results")
    return record


def run_file(record: dict[str, Any], filename: str) -> Path:
    """One of a run's downloadable files by its fixed name (DOWNLOADS) inside the run's out_dir, or 404."""
    if filename not in DOWNLOADS or not record.get("out_dir"):
        raise HTTPException(404, "no such file")
    path = Path(record["out_dir"]) / filename
    if not path.is_file():
        raise HTTPException(404, f"run {record['run_id']} has no {filename} (yet)")
    return path


def _matches_run_id(text: str) -> bool:
    return RUN_ID.match(text) is not None


def get_dashboard(request: Request) -> Dashboard:
    """The app's Dashboard (a FastAPI dependency)."""
    return request.app.state.dashboard


DashboardDep = Annotated[Dashboard, Depends(get_dashboard)]
