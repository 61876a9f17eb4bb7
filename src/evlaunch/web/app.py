"""The dashboard: a FastAPI app of server-rendered pages plus a small JSON API.

Pages (`pages`, `run_routes`, `data_routes`): scenarios and stored runs (home), a lever form per
scenario, a live progress page per run job, a run's results (key figures and its interactive report),
two runs side by side, and the bundled data tables with their sources. The JSON API (`api`) offers the
same under /api. Runs go through `evlaunch.runs.runner.run_scenario` and the same run store as the CLI
(`jobs`). The routes share one `Dashboard` (`state`): store, scenarios directory, jobs and templates.

Safety: scenarios are referred to by name and looked up in the listing of the scenarios directory;
runs by id in the store (their files by fixed names inside the out_dir the store records); data
tables by catalogue name. Nothing from a request becomes a file path. Request bodies are capped (413),
state-changing requests must come from the dashboard's own origin (403), the API reads JSON bodies only
(415), and the report of a run is served in a sandbox (its scripts run in an opaque origin) so that it
cannot act on the dashboard (`middleware`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware

from evlaunch._version import __version__
from evlaunch.config.locations import default_scenarios_dir
from evlaunch.runs.store import RunStore
from evlaunch.web import api, data_routes, pages, run_routes
from evlaunch.web.jobs import JobManager
from evlaunch.web.middleware import API_PREFIX, MAX_BODY_BYTES, BodyLimit, RequestGuard, SecurityHeaders
from evlaunch.web.state import WEB_DIR, Dashboard, page_templates


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """On shutdown, cancel the running jobs and wait for their threads."""
    yield
    await run_in_threadpool(app.state.dashboard.jobs.shutdown)


async def http_error(request: Request, error: HTTPException) -> Response:
    """HTTP errors as `{"detail": ...}` on the API and as the error page elsewhere."""
    if request.url.path.startswith(API_PREFIX):
        return JSONResponse({"detail": error.detail}, error.status_code, headers=error.headers)
    dashboard: Dashboard = request.app.state.dashboard
    return dashboard.render(request, "error.html", {"status": error.status_code, "message": error.detail},
                            error.status_code)


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
    scenarios = (Path(scenarios_dir) if scenarios_dir is not None else default_scenarios_dir()).resolve()
    out_root = (Path(runs_dir) if runs_dir is not None else Path("runs") / "web").resolve()
    jobs = JobManager(store, out_root, max_parallel=max_parallel_runs)

    app = FastAPI(title="evlaunch dashboard", version=__version__, lifespan=lifespan, docs_url="/api/docs",
                  redoc_url=None, openapi_url="/api/openapi.json")
    app.state.dashboard = Dashboard(store, scenarios, out_root, jobs, page_templates())
    app.state.store, app.state.jobs, app.state.scenarios_dir, app.state.runs_dir = store, jobs, scenarios, out_root

    # the last added is the outermost: hosts, then headers on every answer, then origin and type, then size
    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)
    app.add_middleware(RequestGuard)
    app.add_middleware(SecurityHeaders)
    if allowed_hosts:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts)
    app.add_exception_handler(HTTPException, http_error)  # type: ignore[arg-type]

    app.include_router(pages.router)
    app.include_router(run_routes.router)
    app.include_router(data_routes.router)
    app.mount("/static", StaticFiles(directory=str(WEB_DIR / "static")), name="static")
    app.include_router(api.router)
    return app
