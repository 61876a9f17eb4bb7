"""The dashboard: a FastAPI app of server-rendered pages plus a small JSON API.

Pages: scenarios and stored runs (home), a lever form per scenario, a live progress page per run
job, a run's results (key figures and its interactive report), two runs side by side, and the
bundled data tables with their sources. Runs go through `evlaunch.runs.runner.run_scenario` and the same
run store as the CLI.

Safety: scenarios are referred to by name and looked up in the listing of the scenarios directory;
runs by id in the store (their files by fixed names inside the out_dir the store records); data
tables by catalogue name. Nothing from a request becomes a file path. Request bodies are capped,
cross-origin form posts are refused, and the report of a run is served in a sandbox (its scripts run
in an opaque origin) so that it cannot act on the dashboard.
"""

from __future__ import annotations

import functools
import json
import math
import re
import tomllib
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
)
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from markupsafe import Markup, escape
from starlette.exceptions import HTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware

from evlaunch._version import __version__
from evlaunch.config.locations import default_scenarios_dir
from evlaunch.config.scenario import MAX_SCENARIO_BYTES, Scenario, parse_scenario, quantities
from evlaunch.errors import EvlaunchError, RunError, ScenarioError
from evlaunch.runs.runner import DEFAULT_SEED
from evlaunch.runs.store import RunStore
from evlaunch.web.forms import (
    DEFAULT_BROWSER_DRAWS,
    LEVER_KEYS,
    MAX_BROWSER_DRAWS,
    MAX_FIELD_CHARS,
    FormError,
    build_request,
    dashboard_changes,
    describe_value,
    lever_views,
)
from evlaunch.web.jobs import JobManager, TooBusy

WEB_DIR = Path(__file__).resolve().parent
SCENARIO_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")
RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
MAX_BODY_BYTES = 64 * 1024
TABLE_PAGE_ROWS = 100
DOWNLOADS = {
    "summary.json": "application/json",
    "draws.parquet": "application/vnd.apache.parquet",
    "report.html": "text/html; charset=utf-8",
}
PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
            "frame-src 'self'; frame-ancestors 'self'; form-action 'self'; base-uri 'none'; object-src 'none'")
# The report is self-contained (plotly.js inline) and runs sandboxed: scripts yes, same origin no.
REPORT_CSP = ("default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; "
              "img-src data: blob:; font-src data:; frame-ancestors 'self'; sandbox allow-scripts allow-downloads")


def _plotly_js() -> Path:
    import plotly

    return Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"


# -- scenarios ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScenarioEntry:
    name: str
    path: Path
    source: str
    text: str | None
    scenario: Scenario | None
    error: str | None


def scenario_files(directory: Path) -> dict[str, Path]:
    """The scenarios on offer: regular `*.toml` files directly in `directory`, by file stem."""
    if not directory.is_dir():
        return {}
    return {path.stem: path for path in sorted(directory.glob("*.toml"))
            if SCENARIO_NAME.match(path.stem) and path.is_file()}


@functools.lru_cache(maxsize=32)
def _parse_file(path: str, mtime_ns: int, size: int, source: str) -> tuple[str | None, Scenario | None, str | None]:
    if size > MAX_SCENARIO_BYTES:
        return None, None, f"{source}: file is larger than {MAX_SCENARIO_BYTES // 1000} kB"
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        return None, None, f"{source}: cannot read ({error})"
    try:
        return text, parse_scenario(text, source), None
    except ScenarioError as error:
        return text, None, str(error)


# -- formatting --------------------------------------------------------------------------------------


_URL = re.compile(r"https?://[^\s;,<>\"']+")


def linkify(text: str) -> Markup:
    """Escaped text with its http(s) URLs as links (sources often list several)."""
    parts, last = [], 0
    for match in _URL.finditer(text):
        parts.append(escape(text[last:match.start()]))
        parts.append(Markup('<a href="{0}" rel="noopener noreferrer" target="_blank">{0}</a>').format(match.group(0)))
        last = match.end()
    parts.append(escape(text[last:]))
    return Markup("").join(parts)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def fmt_bn(value: Any) -> str:
    return f"{value / 1e9:,.1f}" if _finite(value) else "–"


def fmt_units(value: Any) -> str:
    return f"{value:,.0f}" if _finite(value) else "–"


def fmt_pct(value: Any, digits: int = 0) -> str:
    return f"{value:.{digits}%}" if _finite(value) else "–"


def _months_between(first: str | None, second: str | None) -> int | None:
    if not first or not second:
        return None
    return (int(second[:4]) * 12 + int(second[5:7])) - (int(first[:4]) * 12 + int(first[5:7]))


# -- key figures and comparison --------------------------------------------------------------------------


def path_labels(scenario_text: str) -> dict[str, str]:
    """Path name -> label, in the scenario's order (summaries come back from the store sorted by name)."""
    try:
        paths = tomllib.loads(scenario_text).get("paths", {})
    except tomllib.TOMLDecodeError:
        return {}
    return {name: str(spec.get("label", name)) for name, spec in paths.items() if isinstance(spec, dict)}


def key_figures(summary: dict[str, Any], order: list[str] | None = None) -> dict[str, Any]:
    """The figures the results and compare pages show, per path, from a summary.json document."""
    paths = summary.get("paths") or {}
    if order:
        paths = {name: paths[name] for name in [*order, *sorted(paths)] if name in paths}
    years = sorted({year for path in paths.values() for year in path.get("deliveries", {})})
    last = years[-1] if years else None
    figures = {}
    for name, path in paths.items():
        deliveries = {year: (path.get("deliveries", {}).get(year) or {}).get("mean") for year in years}
        launch = path.get("launch_month") or {}
        figures[name] = {
            "launch_p10": launch.get("p10"), "launch_p50": launch.get("p50"), "launch_p90": launch.get("p90"),
            "p_launch_by_target": path.get("p_launch_by_target"),
            "deliveries_by_year": deliveries,
            "deliveries_last": deliveries.get(last) if last else None,
            "deliveries_total": sum(v for v in deliveries.values() if _finite(v)),
            "npv_mean": (path.get("npv") or {}).get("mean"),
            "npv_p10": (path.get("npv") or {}).get("p10"),
            "npv_p90": (path.get("npv") or {}).get("p90"),
            "peak_cash_mean": (path.get("peak_cash_need") or {}).get("mean"),
            "p_budget_exceeded": path.get("p_budget_exceeded"),
        }
    recommended = summary.get("recommended_path") or {}
    return {"paths": figures, "years": years, "last_year": last, "recommended": recommended.get("name"),
            "criterion": recommended.get("criterion", "")}


# (key, label, format, which direction is better)
COMPARE_METRICS = (
    ("launch_p50", "launch month p50", "month", "lower"),
    ("p_launch_by_target", "P(launch by target)", "pct", "higher"),
    ("deliveries_last", "deliveries in {last}, mean", "units", "higher"),
    ("deliveries_total", "deliveries, all years, mean", "units", "higher"),
    ("npv_mean", "NPV mean, bn CNY", "bn", "higher"),
    ("npv_p10", "NPV p10, bn CNY", "bn", "higher"),
    ("peak_cash_mean", "peak cash need mean, bn CNY", "bn", "lower"),
    ("p_budget_exceeded", "P(budget exceeded)", "pct1", "lower"),
)


def _format(kind: str, value: Any) -> str:
    if kind == "month":
        return value or "never"
    if kind == "pct":
        return fmt_pct(value)
    if kind == "pct1":
        return fmt_pct(value, 1)
    if kind == "bn":
        return fmt_bn(value)
    return fmt_units(value)


def _difference(kind: str, a: Any, b: Any) -> tuple[str, float | None]:
    """(text of b - a, signed number or None) for a metric."""
    if kind == "month":
        months = _months_between(a, b)
        if months is None:
            return ("" if a == b else "changed"), None
        return (f"{months:+d} months" if months else ""), float(months)
    if not (_finite(a) and _finite(b)):
        return "", None
    delta = b - a
    if delta == 0:
        return "", 0.0
    if kind in ("pct", "pct1"):
        return f"{delta * 100:+.1f} pts", delta
    if kind == "bn":
        return f"{delta / 1e9:+,.1f}", delta
    relative = f" ({delta / abs(a):+.0%})" if a else ""
    return f"{delta:+,.0f}{relative}", delta


def compare_rows(first: dict[str, Any], second: dict[str, Any], order: list[str] | None = None
                 ) -> list[dict[str, Any]]:
    """Side-by-side rows of key figures per path, with the difference and whether it is better or worse."""
    a, b = key_figures(first, order), key_figures(second, order)
    names = list(a["paths"]) + [name for name in b["paths"] if name not in a["paths"]]
    rows = [{"path": "", "span": 1, "label": "recommended path", "a": a["recommended"] or "–",
             "b": b["recommended"] or "–", "delta": "" if a["recommended"] == b["recommended"] else "changed",
             "changed": a["recommended"] != b["recommended"], "verdict": ""}]
    for name in names:
        pa, pb = a["paths"].get(name, {}), b["paths"].get(name, {})
        for index, (key, label, kind, better) in enumerate(COMPARE_METRICS):
            va, vb = pa.get(key), pb.get(key)
            delta_text, delta = _difference(kind, va, vb)
            verdict = ""
            if delta:
                good = delta < 0 if better == "lower" else delta > 0
                verdict = "better" if good else "worse"
            rows.append({"path": name, "span": len(COMPARE_METRICS) if index == 0 else 0,
                         "label": label.format(last=a["last_year"] or b["last_year"]),
                         "a": _format(kind, va) if name in a["paths"] else "–",
                         "b": _format(kind, vb) if name in b["paths"] else "–",
                         "a_value": va, "b_value": vb, "key": key,
                         "delta": delta_text, "changed": _format(kind, va) != _format(kind, vb) or bool(delta),
                         "verdict": verdict})
    return rows


def _inputs(record: dict[str, Any]) -> dict[str, str]:
    """A run's inputs as text by dotted key (numbers and distributions, plus month and path choices)."""
    try:
        scenario = parse_scenario(record["scenario_text"], f"run {record['run_id']}")
    except ScenarioError:
        return {}
    values = {key: describe_value(value.model_dump() if hasattr(value, "model_dump") else value)
              for key, value in quantities(scenario).items()}
    values["target_launch"] = scenario.target_launch
    values["paths"] = ", ".join(scenario.paths)
    values["draws"] = f"{record['draws']:,}"
    values["seed"] = str(record["seed"])
    return values


def input_differences(first: dict[str, Any], second: dict[str, Any], limit: int = 60) -> list[tuple[str, str, str]]:
    a, b = _inputs(first), _inputs(second)
    keys = list(a) + [key for key in b if key not in a]
    return [(key, a.get(key, "–"), b.get(key, "–")) for key in keys if a.get(key) != b.get(key)][:limit]


def _jsonable(value: Any) -> Any:
    """Plain JSON values: non-finite floats become null, other odd types their text."""
    if isinstance(value, dict):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (str, int, bool)):
        return value
    return str(value)


# -- data tables -----------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def data_tables() -> list[dict[str, Any]]:
    from evlaunch.data.catalogue import CATALOGUE
    from evlaunch.data.loader import load_table

    listing = []
    for name, info in CATALOGUE.items():
        try:
            table = load_table(name)
            rows, gaps = len(table.rows), int(table.rows["gap"].sum())
            columns = [c for c in table.rows.columns if c not in ("source", "note", "published", "gap")]
            error = None
        except EvlaunchError as problem:
            rows, gaps, columns, error = 0, 0, [], str(problem)
        listing.append({"name": name, "description": info.description, "basis": info.basis, "rows": rows,
                        "gaps": gaps, "columns": columns, "error": error})
    return listing


# -- middleware ------------------------------------------------------------------------------------------


class _TooLarge(Exception):
    pass


class BodyLimit:
    """Refuses request bodies above `limit` bytes with 413, whether or not Content-Length is given."""

    def __init__(self, app: Any, limit: int = MAX_BODY_BYTES):
        self.app = app
        self.limit = limit

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            await PlainTextResponse(f"request body larger than {self.limit:,} bytes", 413)(scope, receive, send)
            return
        received = 0
        started = False

        async def limited_receive() -> dict:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise _TooLarge
            return message

        async def tracking_send(message: dict) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await PlainTextResponse(f"request body larger than {self.limit:,} bytes", 413)(scope, receive, send)


# -- the app ---------------------------------------------------------------------------------------------


def create_app(store_path: str | Path | None = None, scenarios_dir: str | Path | None = None,
               runs_dir: str | Path | None = None, *, allowed_hosts: list[str] | None = None,
               max_parallel_runs: int = 1) -> FastAPI:
    """The dashboard app.

    `store_path`: the run store (default: as the CLI, `$EVLAUNCH_STORE` or the user data directory);
    `scenarios_dir`: the scenarios on offer (default `./scenarios`); `runs_dir`: where dashboard runs
    write their results (default `./runs/web`); `allowed_hosts`: Host header values accepted (None: any;
    `evlaunch serve` passes the loopback names when bound to localhost, against DNS rebinding).
    """
    store = RunStore(store_path)
    scenarios = Path(scenarios_dir) if scenarios_dir is not None else default_scenarios_dir()
    scenarios = scenarios.resolve()
    out_root = (Path(runs_dir) if runs_dir is not None else Path("runs") / "web").resolve()
    jobs = JobManager(store, out_root, max_parallel=max_parallel_runs)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        await run_in_threadpool(jobs.shutdown)

    app = FastAPI(title="evlaunch dashboard", version=__version__, lifespan=lifespan, docs_url="/api/docs",
                  redoc_url=None, openapi_url="/api/openapi.json")
    app.state.store = store
    app.state.jobs = jobs
    app.state.scenarios_dir = scenarios
    app.state.runs_dir = out_root

    templates = Jinja2Templates(directory=str(WEB_DIR / "templates"))
    templates.env.filters.update(bn=fmt_bn, units=fmt_units, pct=fmt_pct, linkify=linkify)
    templates.env.globals.update(version=__version__, max_draws=MAX_BROWSER_DRAWS, max_field=MAX_FIELD_CHARS)

    # -- middleware --------------------------------------------------------------------------------

    @app.middleware("http")
    async def guard(request: Request, call_next):
        if request.method not in ("GET", "HEAD", "OPTIONS"):
            origin = request.headers.get("origin")
            if origin is not None and urlsplit(origin).netloc != request.headers.get("host", ""):
                return PlainTextResponse("cross-origin request refused", 403)
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", PAGE_CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response

    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)
    if allowed_hosts:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException):
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": error.detail}, error.status_code, headers=error.headers)
        return templates.TemplateResponse(request, "error.html", {"status": error.status_code,
                                                                  "message": error.detail},
                                          status_code=error.status_code)

    # -- lookups (names and ids only; never paths from the request) ---------------------------------

    def scenario_entry(name: str) -> ScenarioEntry:
        files = scenario_files(scenarios)
        if not SCENARIO_NAME.match(name) or name not in files:
            raise HTTPException(404, f"no scenario {name[:100]!r} in {scenarios.name}/")
        path = files[name]
        source = f"{scenarios.name}/{path.name}"
        stat = path.stat()
        text, scenario, error = _parse_file(str(path), stat.st_mtime_ns, stat.st_size, source)
        return ScenarioEntry(name, path, source, text, scenario, error)

    def run_record(run_id: str) -> dict[str, Any]:
        if not RUN_ID.match(run_id):
            raise HTTPException(404, "no such run")
        try:
            record = store.get_run(run_id)
        except RunError as error:
            if "no run" in str(error) or "ambiguous" in str(error):
                raise HTTPException(404, f"no run {run_id!r} in the store") from None
            raise HTTPException(503, str(error)) from None
        if record["run_id"] != run_id:  # the store also accepts prefixes; the dashboard wants exact ids
            raise HTTPException(404, f"no run {run_id!r} in the store")
        return record

    def run_file(record: dict[str, Any], filename: str) -> Path:
        if filename not in DOWNLOADS or not record.get("out_dir"):
            raise HTTPException(404, "no such file")
        path = Path(record["out_dir"]) / filename
        if not path.is_file():
            raise HTTPException(404, f"run {record['run_id']} has no {filename} (yet)")
        return path

    def job_or_404(job_id: str):
        job = jobs.get(job_id) if RUN_ID.match(job_id) else None
        if job is None:
            raise HTTPException(404, "no such job (jobs are kept while the dashboard runs)")
        return job

    def list_runs(limit: int = 100) -> tuple[list[dict[str, Any]], str | None]:
        try:
            return store.list_runs(limit=limit), None
        except RunError as error:
            return [], str(error)

    def job_json(job) -> dict[str, Any]:
        data = job.snapshot()
        data["page_url"] = f"/jobs/{job.id}"
        data["results_url"] = f"/runs/{data['run_id']}" if data["status"] == "finished" and data["run_id"] else None
        return data

    def scenario_listing() -> list[dict[str, Any]]:
        listing = []
        for name in scenario_files(scenarios):
            entry = scenario_entry(name)
            scenario = entry.scenario
            listing.append({"name": name, "file": entry.source, "valid": scenario is not None, "error": entry.error,
                            "description": scenario.description if scenario else "",
                            "as_of": str(scenario.as_of) if scenario else None,
                            "paths": list(scenario.paths) if scenario else [],
                            "target_launch": scenario.target_launch if scenario else None})
        return listing

    # -- pages -------------------------------------------------------------------------------------

    @app.get("/", response_class=HTMLResponse)
    def home(request: Request):
        runs, store_error = list_runs()
        finished = [run for run in runs if run["status"] == "finished"]
        return templates.TemplateResponse(request, "home.html", {
            "scenarios": scenario_listing(), "scenarios_dir": scenarios, "runs": runs, "store_error": store_error,
            "store_path": store.path, "jobs": [job_json(job) for job in jobs.jobs()
                                               if job.status in ("queued", "running")],
            "default_a": finished[1]["run_id"] if len(finished) > 1 else None,
            "default_b": finished[0]["run_id"] if finished else None})

    def render_form(request: Request, entry: ScenarioEntry, values: dict[str, str] | None = None,
                    checked: list[str] | None = None, errors: FormError | None = None, status: int = 200,
                    message: str | None = None):
        levers, paths = lever_views(entry.text) if entry.scenario is not None else ([], [])
        return templates.TemplateResponse(request, "scenario.html", {
            "entry": entry, "levers": levers, "paths": paths, "values": values or {},
            "checked": checked if checked is not None else [p.name for p in paths],
            "errors": errors.lines if errors else [], "field_errors": errors.by_field if errors else {},
            "draws": (values or {}).get("draws", str(DEFAULT_BROWSER_DRAWS)),
            "seed": (values or {}).get("seed", str(DEFAULT_SEED)), "message": message,
            "runs": [run for run in list_runs(20)[0] if run["scenario_name"] == (
                entry.scenario.name if entry.scenario else None)]}, status_code=status)

    @app.get("/scenarios/{name}", response_class=HTMLResponse)
    def scenario_page(request: Request, name: str):
        return render_form(request, scenario_entry(name))

    @app.get("/scenarios/{name}/file", response_class=PlainTextResponse)
    def scenario_file(name: str):
        entry = scenario_entry(name)
        if entry.text is None:
            raise HTTPException(404, entry.error or "unreadable")
        return PlainTextResponse(entry.text, media_type="text/plain; charset=utf-8")

    @app.post("/scenarios/{name}/run")
    async def run_from_form(request: Request, name: str):
        entry = scenario_entry(name)
        if entry.scenario is None:
            raise HTTPException(409, f"the scenario file is not valid: {entry.error}")
        # (a malformed multipart body becomes a 400 in starlette; the body size is capped by BodyLimit)
        form = await request.form(max_files=0, max_fields=200, max_part_size=MAX_BODY_BYTES)
        values = {key: value for key, value in form.multi_items() if isinstance(value, str) and key != "path"}
        checked = [value for value in form.getlist("path") if isinstance(value, str)]
        too_long = [key for key, value in values.items() if len(value) > MAX_FIELD_CHARS]
        levers = {key: values.get(key, "") for key in LEVER_KEYS}
        try:
            if too_long:
                raise FormError([f"{key[:60]}: got {len(values[key]):,} characters; expected at most "
                                 f"{MAX_FIELD_CHARS:,}" for key in too_long], {key: [] for key in too_long})
            run = await run_in_threadpool(build_request, entry.text, entry.source, levers, checked,
                                          values.get("draws", ""), values.get("seed", ""), DEFAULT_SEED)
        except FormError as error:
            safe = {key: value for key, value in values.items() if key not in too_long}
            return await run_in_threadpool(render_form, request, entry, safe, checked, error, 422)
        try:
            job = jobs.submit(name, entry.path, run.scenario_text, run.draws, run.seed, run.changes)
        except TooBusy as error:
            return await run_in_threadpool(render_form, request, entry, values, checked, None, 429, str(error))
        return RedirectResponse(f"/jobs/{job.id}", status_code=303)

    @app.get("/jobs/{job_id}", response_class=HTMLResponse)
    def job_page(request: Request, job_id: str):
        job = job_or_404(job_id)
        data = job_json(job)
        if data["results_url"]:
            return RedirectResponse(data["results_url"], status_code=303)
        return templates.TemplateResponse(request, "job.html", {"job": data})

    @app.post("/jobs/{job_id}/cancel")
    def cancel_job_form(job_id: str):
        jobs.cancel(job_or_404(job_id).id)
        return RedirectResponse(f"/jobs/{job_id}", status_code=303)

    @app.get("/runs/{run_id}", response_class=HTMLResponse)
    def run_page(request: Request, run_id: str):
        record = run_record(run_id)
        summary = record.get("summary")
        figures = key_figures(summary, list(path_labels(record["scenario_text"]))) if summary else None
        files = [name for name in DOWNLOADS
                 if record.get("out_dir") and (Path(record["out_dir"]) / name).is_file()]
        labels = path_labels(record["scenario_text"])
        job = jobs.job_for_run(run_id)
        return templates.TemplateResponse(request, "run.html", {
            "run": record, "summary": summary, "figures": figures, "files": files, "labels": labels,
            "changes": dashboard_changes(record["scenario_text"]), "job": job_json(job) if job else None,
            "timings": record.get("timings") or {}})

    @app.get("/runs/{run_id}/report")
    def run_report(run_id: str):
        path = run_file(run_record(run_id), "report.html")
        return FileResponse(path, media_type=DOWNLOADS["report.html"],
                            headers={"Content-Security-Policy": REPORT_CSP, "Cache-Control": "no-cache"})

    @app.get("/runs/{run_id}/files/{filename}")
    def run_download(run_id: str, filename: str):
        record = run_record(run_id)
        path = run_file(record, filename)
        headers = {"Content-Security-Policy": REPORT_CSP} if filename.endswith(".html") else {}
        return FileResponse(path, media_type=DOWNLOADS[filename], filename=f"{record['run_id']}-{filename}",
                            headers=headers)

    @app.get("/compare", response_class=HTMLResponse)
    def compare_page(request: Request, a: str | None = None, b: str | None = None):
        runs, store_error = list_runs(200)
        finished = [run for run in runs if run["status"] == "finished"]
        context: dict[str, Any] = {"runs": finished, "a": a, "b": b, "store_error": store_error, "rows": None}
        if a and b:
            first, second = run_record(a), run_record(b)
            for record in (first, second):
                if not record.get("summary"):
                    raise HTTPException(409, f"run {record['run_id']} is {record['status']}; it has no results")
            order = list(path_labels(first["scenario_text"]))
            rows = compare_rows(first["summary"], second["summary"], order)
            fa, fb = key_figures(first["summary"], order), key_figures(second["summary"], order)
            chart = {"paths": list(dict.fromkeys([*fa["paths"], *fb["paths"]])), "last_year": fa["last_year"],
                     "a": {"id": first["run_id"], **{k: {p: f[k] for p, f in fa["paths"].items()}
                                                       for k in ("deliveries_last", "npv_mean")}},
                     "b": {"id": second["run_id"], **{k: {p: f[k] for p, f in fb["paths"].items()}
                                                        for k in ("deliveries_last", "npv_mean")}}}
            context.update(first=first, second=second, rows=rows, inputs=input_differences(first, second),
                           changes_a=dashboard_changes(first["scenario_text"]),
                           changes_b=dashboard_changes(second["scenario_text"]),
                           chart_json=json.dumps(_jsonable(chart), allow_nan=False))
        return templates.TemplateResponse(request, "compare.html", context)

    @app.get("/data", response_class=HTMLResponse)
    def data_page(request: Request):
        tables = data_tables()
        return templates.TemplateResponse(request, "data.html", {"tables": tables})

    @app.get("/data/{table}", response_class=HTMLResponse)
    def table_page(request: Request, table: str, q: str = "", offset: int = 0):
        from evlaunch.data.catalogue import CATALOGUE
        from evlaunch.data.loader import load_table

        if table not in CATALOGUE:
            raise HTTPException(404, f"no table {table[:60]!r}; the data page lists them")
        q = q[:200]
        loaded = load_table(table)
        rows = loaded.rows
        if q:
            mask = rows.astype(str).apply(lambda column: column.str.contains(q, case=False, regex=False)).any(axis=1)
            rows = rows[mask]
        offset = max(0, min(offset, max(0, len(rows) - 1)))
        keys = [c for c in CATALOGUE[table].keys if c in rows.columns]
        # the row's identity, then where it comes from, then its figures, then the note
        columns = [*keys, "source", *[c for c in rows.columns if c not in (*keys, "source", "note", "published", "gap")],
                   "note"]
        page = rows.iloc[offset:offset + TABLE_PAGE_ROWS]
        cells = [{"values": ["" if row[c] != row[c] else str(row[c]) for c in columns], "gap": bool(row["gap"])}
                 for _, row in page.iterrows()]
        return templates.TemplateResponse(request, "table.html", {
            "name": table, "info": CATALOGUE[table], "columns": columns, "rows": cells, "total": len(rows),
            "all_rows": len(loaded.rows), "q": q, "offset": offset, "page": TABLE_PAGE_ROWS})

    @app.get("/vendor/plotly.min.js")
    def plotly_js():
        return FileResponse(_plotly_js(), media_type="text/javascript",
                            headers={"Cache-Control": "public, max-age=86400"})

    app.mount("/static", StaticFiles(directory=str(WEB_DIR / "static")), name="static")

    # -- JSON API ----------------------------------------------------------------------------------

    @app.get("/api/scenarios")
    def api_scenarios():
        return {"scenarios_dir": str(scenarios), "scenarios": scenario_listing()}

    @app.get("/api/scenarios/{name}")
    def api_scenario(name: str):
        entry = scenario_entry(name)
        if entry.scenario is None:
            return JSONResponse({"name": name, "valid": False, "errors": (entry.error or "").splitlines()}, 200)
        levers, paths = lever_views(entry.text)
        return {"name": name, "valid": True, "levers": [lever.__dict__ for lever in levers],
                "paths": [path.__dict__ for path in paths], "max_draws": MAX_BROWSER_DRAWS,
                "default_draws": DEFAULT_BROWSER_DRAWS, "default_seed": DEFAULT_SEED}

    @app.post("/api/scenarios/{name}/runs", status_code=202)
    async def api_start_run(request: Request, name: str):
        entry = scenario_entry(name)
        if entry.scenario is None:
            raise HTTPException(409, f"the scenario file is not valid: {entry.error}")
        try:
            payload = json.loads(await request.body() or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            raise HTTPException(400, "the body must be a JSON object") from None
        allowed = {"levers", "paths", "draws", "seed"}
        if not isinstance(payload, dict) or set(payload) - allowed:
            extra = sorted(set(payload) - allowed) if isinstance(payload, dict) else []
            return JSONResponse({"detail": "invalid request", "errors": [
                f"expected a JSON object with keys {sorted(allowed)}" + (f"; unknown: {extra}" if extra else "")]},
                422)
        levers = payload.get("levers") or {}
        paths = payload.get("paths")
        if not isinstance(levers, dict) or not (paths is None or (
                isinstance(paths, list) and all(isinstance(p, str) for p in paths))):
            return JSONResponse({"detail": "invalid request", "errors": [
                "levers must be an object {key: value}; paths a list of path names"]}, 422)
        try:
            run = await run_in_threadpool(build_request, entry.text, entry.source, levers, paths,
                                          payload.get("draws", DEFAULT_BROWSER_DRAWS), payload.get("seed"),
                                          DEFAULT_SEED)
        except FormError as error:
            return JSONResponse({"detail": "invalid scenario", "errors": error.lines, "fields": error.by_field}, 422)
        try:
            job = jobs.submit(name, entry.path, run.scenario_text, run.draws, run.seed, run.changes)
        except TooBusy as error:
            raise HTTPException(429, str(error)) from None
        return JSONResponse(job_json(job), 202)

    @app.get("/api/jobs/{job_id}")
    def api_job(job_id: str):
        return JSONResponse(job_json(job_or_404(job_id)), headers={"Cache-Control": "no-store"})

    @app.post("/api/jobs/{job_id}/cancel")
    def api_cancel(job_id: str):
        return job_json(jobs.cancel(job_or_404(job_id).id))

    @app.get("/api/runs")
    def api_runs(limit: int = 50):
        runs, error = list_runs(max(1, min(limit, 1000)))
        if error:
            raise HTTPException(503, error)
        return [{key: run[key] for key in ("run_id", "created_at", "finished_at", "scenario_name", "seed", "draws",
                                            "status")} | {"recommended_path": ((run.get("summary") or {}).get(
                                                "recommended_path") or {}).get("name")} for run in runs]

    @app.get("/api/runs/{run_id}")
    def api_run(run_id: str):
        return JSONResponse(_jsonable(run_record(run_id)))

    @app.get("/api/compare")
    def api_compare(a: str, b: str):
        first, second = run_record(a), run_record(b)
        if not first.get("summary") or not second.get("summary"):
            raise HTTPException(409, "both runs must be finished")
        return JSONResponse(_jsonable({"a": a, "b": b, "rows": compare_rows(first["summary"], second["summary"]),
                                       "inputs": input_differences(first, second)}))

    @app.get("/healthz", response_class=PlainTextResponse)
    def health():
        return "ok"

    return app
