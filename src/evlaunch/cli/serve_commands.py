"""`evlaunch serve`: the dashboard (scenarios, levers, live runs, results, comparisons, data)."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated

import typer

from evlaunch.cli.app import app, console, errors, fail
from evlaunch.config.locations import default_scenarios_dir

LOOPBACK_NAMES = ["127.0.0.1", "localhost", "::1", "[::1]"]


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="address to bind; the default serves this machine only")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port", min=1, max=65535)] = 8000,
    store: Annotated[Path | None, typer.Option(
        help="run store file (default: $EVLAUNCH_STORE or the user data directory, as for `evlaunch run`)")] = None,
    scenarios: Annotated[Path | None, typer.Option(
        help="directory of scenario files offered in the dashboard (default: ./scenarios if it exists, else "
             "the reference scenarios bundled with evlaunch)")] = None,
    runs_dir: Annotated[Path | None, typer.Option(
        "--runs-dir", help="where dashboard runs write their results (default: ./runs/web)")] = None,
    parallel: Annotated[int, typer.Option(help="runs simulating at the same time (others wait)", min=1, max=8)] = 1,
) -> None:
    """Start the dashboard: pick a scenario, set levers, run, watch progress, read and compare results."""
    import uvicorn

    from evlaunch.web.app import create_app

    if scenarios is not None and not scenarios.is_dir():
        fail(f"--scenarios {scenarios}: not a directory")
    scenarios_dir = scenarios if scenarios is not None else default_scenarios_dir()
    local = is_loopback(host)
    if not local:
        errors.print(f"[bold yellow]warning:[/] binding to {host}: anyone who can reach this machine on port {port} "
                     "can start runs and read every stored run; the dashboard has no login. Use the default "
                     "127.0.0.1 unless you mean this.", highlight=False)
    web_app = create_app(store_path=store, scenarios_dir=scenarios_dir, runs_dir=runs_dir,
                         allowed_hosts=LOOPBACK_NAMES if local else None, max_parallel_runs=parallel)
    shown = f"[{host}]" if ":" in host else host
    console.print(f"evlaunch dashboard on http://{shown}:{port}/  (Ctrl-C to stop)\n"
                  f"  run store: {web_app.state.store.path}\n  scenarios: {web_app.state.scenarios_dir}\n"
                  f"  results:   {web_app.state.runs_dir}", highlight=False)
    try:
        uvicorn.run(web_app, host=host, port=port, log_level="warning")
    except OSError as error:
        fail(f"cannot serve on {host}:{port}: {error.strerror or error}")
