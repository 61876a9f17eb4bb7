"""Fixtures for the dashboard tests: an app on a temporary store and runs directory, a live server
(uvicorn in a thread on 127.0.0.1, a free port) and Debian's chromium driven by Playwright."""

from __future__ import annotations

import socket
import threading
import time
import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "scenarios"
ARTIFACTS = ROOT / "test-artifacts"
ORIGIN = "http://testserver"  # the TestClient's base URL
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def web_paths(tmp_path_factory) -> SimpleNamespace:
    base = tmp_path_factory.mktemp("web")
    return SimpleNamespace(store=base / "runs.duckdb", runs=base / "runs", scenarios=SCENARIOS)


@pytest.fixture(scope="module")
def client(web_paths):
    """A TestClient on a fresh app (lifespan on, so jobs are cancelled at the end), sending the dashboard's
    own Origin as a browser does (state-changing requests without one are refused)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # starlette's deprecation note on httpx vs httpx2, raised at import
        from fastapi.testclient import TestClient
    from evlaunch.web.app import create_app

    app = create_app(store_path=web_paths.store, scenarios_dir=web_paths.scenarios, runs_dir=web_paths.runs)
    with TestClient(app, headers={"origin": ORIGIN}) as test_client:
        yield test_client


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def live_server(tmp_path_factory):
    """The dashboard served by uvicorn in a thread, as `evlaunch serve` would on 127.0.0.1."""
    import uvicorn

    from evlaunch.cli.serve_commands import LOOPBACK_NAMES
    from evlaunch.web.app import create_app

    base = tmp_path_factory.mktemp("live")
    app = create_app(store_path=base / "runs.duckdb", scenarios_dir=SCENARIOS, runs_dir=base / "runs",
                     allowed_hosts=LOOPBACK_NAMES)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name="evlaunch-live-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the dashboard did not start")
        time.sleep(0.05)
    yield SimpleNamespace(url=f"http://127.0.0.1:{port}", app=app, store=app.state.store)
    server.should_exit = True
    thread.join(15)


@pytest.fixture(scope="session")
def chromium():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install -y chromium); browser tests need Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(chromium):
    """A fresh page; fails the test on console errors and uncaught exceptions (CSP violations included)."""
    context = chromium.new_context(viewport={"width": 1360, "height": 900}, accept_downloads=True)
    browser_page = context.new_page()
    browser_page.set_default_timeout(60_000)
    problems: list[str] = []
    browser_page.on("console", lambda message: problems.append(f"console {message.type}: {message.text}")
                    if message.type == "error" else None)
    browser_page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    browser_page.console_problems = problems
    yield browser_page
    context.close()
    assert not problems, "\n".join(problems)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
