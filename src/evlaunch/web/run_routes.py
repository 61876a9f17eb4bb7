"""Starting and cancelling runs from the pages' forms (the JSON API has its own routes in `api`).

A submitted lever form is validated as the CLI validates a scenario file; with problems, the form comes
back (422) with each message next to its field; otherwise the run is queued and the browser goes to the
job's progress page.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse

from evlaunch.api.run import DEFAULT_SEED
from evlaunch.web.forms import LEVER_KEYS, MAX_FIELD_CHARS, FormError, build_request
from evlaunch.web.jobs import TooBusy
from evlaunch.web.middleware import MAX_BODY_BYTES
from evlaunch.web.pages import render_form
from evlaunch.web.state import DashboardDep

MAX_FORM_FIELDS = 200

router = APIRouter()


def _too_long(values: dict[str, str]) -> FormError | None:
    """The fields longer than a lever may be, as a form error (None if there are none)."""
    too_long = [key for key, value in values.items() if len(value) > MAX_FIELD_CHARS]
    if not too_long:
        return None
    return FormError([f"{key[:60]}: got {len(values[key]):,} characters; expected at most {MAX_FIELD_CHARS:,}"
                      for key in too_long], {key: [] for key in too_long})


@router.post("/scenarios/{name}/run")
async def run_from_form(request: Request, name: str, dashboard: DashboardDep):
    entry, text = dashboard.valid_scenario(name)
    # (a malformed multipart body becomes a 400 in starlette; the body size is capped by BodyLimit)
    form = await request.form(max_files=0, max_fields=MAX_FORM_FIELDS, max_part_size=MAX_BODY_BYTES)
    values = {key: value for key, value in form.multi_items() if isinstance(value, str) and key != "path"}
    checked = [value for value in form.getlist("path") if isinstance(value, str)]
    levers = {key: values.get(key, "") for key in LEVER_KEYS}
    too_long = _too_long(values)
    try:
        if too_long:
            raise too_long
        run = await run_in_threadpool(build_request, text, entry.source, levers, checked,
                                      values.get("draws", ""), values.get("seed", ""), DEFAULT_SEED)
    except FormError as error:
        safe = {key: value for key, value in values.items() if not too_long or key not in too_long.by_field}
        return await run_in_threadpool(render_form, dashboard, request, entry, safe, checked, error, 422)
    try:
        job = dashboard.jobs.submit(name, entry.path, run.scenario_text, run.draws, run.seed, run.changes)
    except TooBusy as error:
        return await run_in_threadpool(render_form, dashboard, request, entry, values, checked, None, 429, str(error))
    return RedirectResponse(f"/jobs/{job.id}", status_code=303)


@router.post("/jobs/{job_id}/cancel")
def cancel_job_form(job_id: str, dashboard: DashboardDep):
    dashboard.jobs.cancel(dashboard.job_or_404(job_id).id)
    return RedirectResponse(f"/jobs/{job_id}", status_code=303)
