"""The dashboard's pages and JSON API through FastAPI's TestClient: listing, the lever form and its
validation, name/id lookups that cannot be turned into file paths, run jobs with progress and cancel,
results, downloads, comparison and the data pages. Plus the pieces behind the form (TOML writer,
comments as help text, path choices) and `evlaunch serve`'s binding rules."""

from __future__ import annotations

import json
import re
import time
import tomllib

import pytest

from evlaunch.analysis.decision import recommendation_mark
from evlaunch.web.forms import FormError, build_request, comments_by_key, dumps

SCENARIO = "xiaomi-2023"
ALL_PATHS = ["own", "BAIC", "Chery", "Brilliance", "BAIC_own", "Chery_own", "Brilliance_own"]


def wait_for_job(client, job_id: str, timeout: float = 120.0) -> tuple[dict, list[dict]]:
    """Poll the progress endpoint until the job ends; return the last state and every state seen."""
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = client.get(f"/api/jobs/{job_id}")
        assert response.status_code == 200
        state = response.json()
        seen.append(state)
        if state["status"] not in ("queued", "running"):
            return state, seen
        time.sleep(0.1)
    pytest.fail(f"job {job_id} did not end within {timeout} s: {seen[-1]}")


def start(client, **payload) -> dict:
    response = client.post(f"/api/scenarios/{SCENARIO}/runs", json=payload)
    assert response.status_code == 202, response.text
    return response.json()


@pytest.fixture(scope="module")
def two_runs(client):
    """Two finished runs of the reference scenario: price fixed at 200,000 and at 320,000 (200 draws)."""
    cheap = start(client, levers={"product.price": 200000}, draws=200)
    dear = start(client, levers={"product.price": "320,000"}, draws=200)
    cheap_state, cheap_seen = wait_for_job(client, cheap["id"])
    dear_state, _ = wait_for_job(client, dear["id"])
    assert cheap_state["status"] == "finished", cheap_state
    assert dear_state["status"] == "finished", dear_state
    return {"cheap": cheap_state, "dear": dear_state, "cheap_seen": cheap_seen}


# -- listing and the form ------------------------------------------------------------------------------


def test_home_lists_scenarios_and_runs(client, two_runs):
    page = client.get("/")
    assert page.status_code == 200
    assert f'href="/scenarios/{SCENARIO}"' in page.text
    assert two_runs["cheap"]["run_id"] in page.text and two_runs["dear"]["run_id"] in page.text
    listing = client.get("/api/scenarios").json()["scenarios"]
    reference = {s["name"]: s for s in listing}[SCENARIO]
    assert reference["valid"] and reference["paths"] == ALL_PATHS and reference["file"] == "scenarios/xiaomi-2023.toml"


def test_scenario_form_has_levers_with_help_from_schema_and_file(client):
    page = client.get(f"/scenarios/{SCENARIO}")
    assert page.status_code == 200
    text = page.text
    for key in ("product.price", "product.battery_kwh", "product.range_km", "target_launch", "finance.budget_usd",
                "competition.price_war_cut", "market.charging_growth_per_year", "draws", "seed"):
        assert f'name="{key}"' in text, key
    for path in ALL_PATHS:
        assert f'name="path" value="{path}" checked' in text
    assert "guide price incl. VAT before subsidies, CNY" in text  # schema description
    assert "assumption: guide price; Lei Jun" in text  # the file's comment on the key
    assert "triangular: low 180,000, mode 230,000, high 300,000" in text  # the file's distribution
    levers = client.get(f"/api/scenarios/{SCENARIO}").json()["levers"]
    assert {lever["key"]: lever["is_distribution"] for lever in levers}["product.price"] is True


@pytest.mark.parametrize("price", ["-5", "abc", "1e99", "{ dist = \"triangular\", low = 1, mode = 2, high = 3 }"])
def test_invalid_price_from_the_form_is_422_naming_the_field(client, price):
    response = client.post(f"/scenarios/{SCENARIO}/run", data={"product.price": price, "draws": "200",
                                                               "path": ALL_PATHS}, follow_redirects=False)
    assert response.status_code == 422
    assert "scenarios/xiaomi-2023.toml: field product.price: got" in response.text
    assert 'aria-invalid="true"' in response.text


@pytest.mark.parametrize("payload, field", [
    ({"levers": {"product.price": -5}}, "product.price"),
    ({"levers": {"product.price": "abc"}}, "product.price"),
    ({"levers": {"product.price": True}}, "product.price"),
    ({"levers": {"target_launch": "2024-13"}}, "target_launch"),
    ({"levers": {"finance.budget_usd": {"dist": "uniform", "low": 1, "high": 2}}}, "finance.budget_usd"),
    ({"levers": {"competition.price_war_cut": 0.95}}, "competition.price_war_cut"),
    ({"levers": {"product.price": "9" * 2000}}, "product.price"),
    ({"draws": 20_001}, "draws"),
    ({"draws": 0}, "draws"),
    ({"seed": -1}, "seed"),
    ({"paths": []}, "paths"),
    ({"paths": ["own", "../../etc"]}, "paths"),
    ({"levers": {"product.name": "x"}}, ""),
])
def test_invalid_levers_from_the_api_are_422_with_the_field(client, payload, field):
    response = client.post(f"/api/scenarios/{SCENARIO}/runs", json=payload)
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["errors"]
    assert field in body["fields"], body
    if field:
        assert any(field in line for line in body["errors"])


def test_request_size_limits(client):
    huge = {"product.price": "1" * 70_000}
    assert client.post(f"/scenarios/{SCENARIO}/run", data=huge).status_code == 413
    assert client.post(f"/api/scenarios/{SCENARIO}/runs", content=b"{" + b" " * 70_000 + b"}",
                       headers={"content-type": "application/json"}).status_code == 413
    response = client.post(f"/scenarios/{SCENARIO}/run", data={"product.price": "1" * 2000, "draws": "10"})
    assert response.status_code == 422 and "at most 1,024" in response.text
    assert client.post(f"/api/scenarios/{SCENARIO}/runs", content=b"[1",
                       headers={"content-type": "application/json"}).status_code == 400


def test_cross_origin_posts_are_refused(client):
    response = client.post(f"/scenarios/{SCENARIO}/run", data={"draws": "10"},
                           headers={"origin": "http://evil.example"})
    assert response.status_code == 403


def test_host_header_is_checked_when_bound_to_localhost(web_paths):
    from fastapi.testclient import TestClient

    from evlaunch.cli.serve_commands import LOOPBACK_NAMES
    from evlaunch.web.app import create_app

    app = create_app(store_path=web_paths.store, scenarios_dir=web_paths.scenarios, runs_dir=web_paths.runs,
                     allowed_hosts=LOOPBACK_NAMES)
    with TestClient(app, base_url="http://127.0.0.1:8000") as local:
        assert local.get("/healthz").status_code == 200
        assert local.get("/healthz", headers={"host": "rebound.example"}).status_code == 400


# -- names and ids never become paths -----------------------------------------------------------------------


def test_path_traversal_attempts_are_refused(client, two_runs):
    run_id = two_runs["cheap"]["run_id"]
    attempts = [
        "/scenarios/..%2F..%2Fpyproject", "/scenarios/..%2Fscenarios%2Fxiaomi-2023", "/scenarios/%2Fetc%2Fpasswd",
        "/scenarios/%2e%2e", "/scenarios/xiaomi-2023.toml", "/scenarios/..%5C..%5Cpyproject",
        "/scenarios/%2e%2e%2f%2e%2e%2fpyproject/file", "/api/scenarios/..%2F..%2Fetc%2Fpasswd",
        f"/runs/{run_id}/files/..%2F..%2F..%2Fpyproject.toml", f"/runs/{run_id}/files/%2Fetc%2Fpasswd",
        f"/runs/{run_id}/files/chunks", f"/runs/{run_id}/files/manifest.json", f"/runs/{run_id}/files/.",
        "/runs/..%2F..%2Fetc%2Fpasswd/report", "/runs/%2Fetc%2Fpasswd", "/runs/%2e%2e/files/summary.json",
        "/data/..%2Ftables%2Ffirms", "/data/%2Fetc%2Fpasswd", "/static/..%2Fapp.py", "/static/%2e%2e/app.py",
        "/static/%2e%2e%2f%2e%2e%2f__init__.py", "/jobs/..%2F..", "/vendor/..%2Fplotly.min.js",
    ]
    for url in attempts:
        response = client.get(url)
        assert response.status_code in (400, 404), (url, response.status_code)
        assert "root:" not in response.text and "[project]" not in response.text and "def create_app" not in response.text
    assert client.post("/scenarios/..%2F..%2Fx/run", data={}).status_code in (400, 404, 405)
    assert client.post("/api/scenarios/%2Fetc%2Fpasswd/runs", json={}).status_code in (400, 404, 405)


def test_unknown_run_and_job_ids_are_404(client, two_runs):
    assert client.get("/runs/20990101-000000-abcdef").status_code == 404
    assert client.get("/runs/nope/report").status_code == 404
    assert client.get("/api/runs/nope").status_code == 404
    assert client.get("/api/runs/nope").json()["detail"]
    prefix = two_runs["cheap"]["run_id"][:10]  # the store accepts prefixes; the dashboard wants exact ids
    assert client.get(f"/runs/{prefix}").status_code == 404
    assert client.get("/jobs/nope").status_code == 404
    assert client.get("/api/jobs/nope").status_code == 404
    assert client.post("/api/jobs/nope/cancel").status_code == 404
    assert client.get("/compare", params={"a": "nope", "b": two_runs["dear"]["run_id"]}).status_code == 404


# -- runs -------------------------------------------------------------------------------------------------


def test_run_progresses_to_finished_and_results_show_the_numbers(client, two_runs, web_paths):
    seen = two_runs["cheap_seen"]
    assert all(state["total"] == 200 for state in seen)
    assert seen[-1]["status"] == "finished" and seen[-1]["done"] == 200 and seen[-1]["fraction"] == 1.0
    run_id = seen[-1]["run_id"]
    assert seen[-1]["results_url"] == f"/runs/{run_id}"
    record = client.get(f"/api/runs/{run_id}").json()
    assert record["status"] == "finished" and record["draws"] == 200
    assert record["out_dir"].startswith(str(web_paths.runs.resolve()))
    assert "product.price = 200000" in record["scenario_text"]
    summary = record["summary"]
    page = client.get(f"/runs/{run_id}")
    assert page.status_code == 200
    recommended = summary["recommended_path"]["name"]
    assert f'data-path="{recommended}"' in page.text
    mark = recommendation_mark(summary["recommended_path"]["passes"], summary["recommended_path"]["beats_not_entering"])
    assert f'data-mark="{mark}"' in page.text and f"<b>{recommended}</b> {mark}" in page.text
    if mark == "○":  # every path's NPV at or below zero: the headline says so
        assert "Recommendation: <b>stay out</b>" in page.text
    last_year = max(summary["paths"][recommended]["deliveries"])
    deliveries = summary["paths"][recommended]["deliveries"][last_year]["mean"]
    assert f"{deliveries:,.0f}" in page.text
    assert f"{summary['paths'][recommended]['npv']['mean'] / 1e9:,.1f}" in page.text
    assert summary["paths"][recommended]["launch_month"]["p50"] in page.text
    assert 'src="/runs/' + run_id + '/report"' in page.text
    # the job page of a finished job goes straight to the results
    job_page = client.get(f"/jobs/{two_runs['cheap']['id']}", follow_redirects=False)
    assert job_page.status_code == 303 and job_page.headers["location"] == f"/runs/{run_id}"


def test_form_post_starts_a_job_and_redirects_to_its_progress_page(client):
    response = client.post(f"/scenarios/{SCENARIO}/run", data={
        "product.price": "", "target_launch": "2024-09", "draws": "100", "seed": "7", "path": ["own", "BAIC"]},
        follow_redirects=False)
    assert response.status_code == 303
    job_id = response.headers["location"].rsplit("/", 1)[-1]
    state, _ = wait_for_job(client, job_id)
    assert state["status"] == "finished", state
    assert any("left out: Chery, Brilliance" in change for change in state["changes"])
    record = client.get(f"/api/runs/{state['run_id']}").json()
    assert sorted(record["summary"]["paths"]) == ["BAIC", "own"]
    assert record["seed"] == 7
    scenario = tomllib.loads(record["scenario_text"])
    assert scenario["target_launch"] == "2024-09" and "fallback" in scenario["paths"]["BAIC"]


def test_cancel_stops_a_run_and_the_store_says_cancelled(client):
    job = start(client, draws=2_000)  # the dashboard's default: several chunks, so Cancel acts between them
    deadline = time.monotonic() + 60
    while True:
        state = client.get(f"/api/jobs/{job['id']}").json()
        if state["status"] == "running" and state["run_id"] or state["status"] not in ("queued", "running"):
            break
        assert time.monotonic() < deadline, state
        time.sleep(0.05)
    cancelled = client.post(f"/api/jobs/{job['id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["cancel_requested"]
    state, _ = wait_for_job(client, job["id"])
    assert state["status"] == "cancelled", state
    assert state["done"] < 2_000
    record = client.get(f"/api/runs/{state['run_id']}").json()
    assert record["status"] == "cancelled"
    page = client.get(f"/runs/{state['run_id']}")
    assert page.status_code == 200 and "has no results" in page.text
    assert client.get(f"/runs/{state['run_id']}/files/summary.json").status_code == 404


def test_downloads_have_the_right_content_types(client, two_runs):
    run_id = two_runs["dear"]["run_id"]
    summary = client.get(f"/runs/{run_id}/files/summary.json")
    assert summary.status_code == 200
    assert summary.headers["content-type"] == "application/json"
    assert "attachment" in summary.headers["content-disposition"]
    assert json.loads(summary.content)["draws"] == 200
    draws = client.get(f"/runs/{run_id}/files/draws.parquet")
    assert draws.headers["content-type"] == "application/vnd.apache.parquet"
    assert draws.content[:4] == b"PAR1" and draws.content[-4:] == b"PAR1"
    report = client.get(f"/runs/{run_id}/files/report.html")
    assert report.headers["content-type"].startswith("text/html")
    inline = client.get(f"/runs/{run_id}/report")
    assert inline.status_code == 200 and "content-disposition" not in inline.headers
    assert "sandbox allow-scripts" in inline.headers["content-security-policy"]
    # plotly.js embedded, not loaded from a CDN (its bundle mentions cdn.plot.ly only as the geo-maps default)
    assert "Plotly" in inline.text and not re.search(r"<script[^>]+src=[\"']?https?:", inline.text)
    assert "default-src 'none'" in inline.headers["content-security-policy"]  # and no network from the report
    plotly_js = client.get("/vendor/plotly.min.js")
    assert plotly_js.status_code == 200 and plotly_js.headers["content-type"].startswith("text/javascript")


def test_compare_two_runs_side_by_side(client, two_runs):
    a, b = two_runs["cheap"]["run_id"], two_runs["dear"]["run_id"]
    page = client.get("/compare", params={"a": a, "b": b})
    assert page.status_code == 200
    assert 'id="comparison"' in page.text and "product.price" in page.text
    assert "/vendor/plotly.min.js" in page.text
    rows = client.get("/api/compare", params={"a": a, "b": b}).json()["rows"]
    totals = [row for row in rows if row.get("key") == "deliveries_total"]
    assert {row["path"] for row in totals} == set(ALL_PATHS)
    # 320,000 instead of 200,000 with the same seed: fewer cars over the horizon on every path
    assert all(row["b_value"] < row["a_value"] and row["verdict"] == "worse" for row in totals), totals
    assert client.get("/compare").status_code == 200  # the picker alone


def test_data_pages_show_tables_with_sources(client):
    page = client.get("/data")
    assert page.status_code == 200 and 'href="/data/lineup_2023"' in page.text
    table = client.get("/data/lineup_2023", params={"q": "Tesla"})
    assert table.status_code == 200
    assert '<th class="col-source">source</th>' in table.text and "Tesla" in table.text
    assert client.get("/data/no_such_table").status_code == 404


# -- the pieces behind the form ----------------------------------------------------------------------------


def test_toml_writer_round_trips_the_reference_scenario(reference_text):
    data = tomllib.loads(reference_text)
    assert tomllib.loads(dumps(data)) == data
    tricky = {"a": 'quote " back \\ slash \n tab \t ctrl \x01 del \x7f 中文', "list": [1, 2.5, "x"],
              "t": {"dist": "uniform", "low": 1e-06, "high": 1e+16}, "nested": {"deep": {"k": True}},
              "arr": [{"x": 1, "y": {"dist": "normal", "mean": 0, "sd": 1}}, {"x": 2}], "key with space": 1}
    assert tomllib.loads(dumps(tricky)) == tricky


def test_comments_in_the_file_become_help_by_key(reference_text):
    comments = comments_by_key(reference_text)
    assert comments["product.price"].startswith("assumption: guide price")
    assert comments["finance.budget_usd"].startswith("fact:")
    assert comments["paths.own.stages.0.months"].startswith("assumption:")
    assert "name" not in comments  # the file's header block is separated by a blank line


def test_leaving_out_a_fallback_path_drops_the_fallback_and_says_so(reference_text):
    run = build_request(reference_text, "x.toml", {}, ["BAIC", "Brilliance"], "10", "", 1)
    assert sorted(run.scenario.paths) == ["BAIC", "Brilliance"]
    assert run.scenario.paths["BAIC"].fallback is None and run.scenario.paths["Brilliance"].fallback is None
    assert any("if BAIC fails, there is no launch" in change for change in run.changes)
    unchanged = build_request(reference_text, "x.toml", {"product.price": ""}, None, 10, None, 1)
    assert unchanged.scenario_text == reference_text and unchanged.changes == []  # same hash as the CLI's run
    with pytest.raises(FormError) as error:
        build_request(reference_text, "x.toml", {"product.price": "abc", "product.range_km": "5"}, None, "x", "", 1)
    assert set(error.value.by_field) == {"product.price", "product.range_km", "draws"}


# -- evlaunch serve ---------------------------------------------------------------------------------------


def test_serve_binds_localhost_by_default_and_warns_otherwise(cli, monkeypatch, tmp_path):
    import uvicorn

    from evlaunch.cli.serve_commands import is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")
    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: calls.append((app, kwargs)))
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    code, out, err = cli("serve", "--store", tmp_path / "s.duckdb", "--scenarios", scenarios, "--port", "8765")
    assert code == 0, err
    assert calls[-1][1] == {"host": "127.0.0.1", "port": 8765, "log_level": "warning"}
    assert "http://127.0.0.1:8765/" in out and "warning" not in err
    code, out, err = cli("serve", "--host", "0.0.0.0", "--store", tmp_path / "s.duckdb", "--scenarios", scenarios)
    assert code == 0 and calls[-1][1]["host"] == "0.0.0.0"
    assert "warning" in err and "no login" in err
    code, out, err = cli("serve", "--scenarios", tmp_path / "missing")
    assert code == 2 and "not a directory" in err


def test_pricing_mode_and_subsidy_levers_change_the_scenario_and_reject_bad_values(reference_text):
    run = build_request(reference_text, "x.toml", {"competition.reprice": "fixed", "policy.extra_nev_subsidy": "8000"},
                        None, "10", "", 1)
    assert run.scenario.competition.reprice == "fixed" and run.scenario.policy.extra_nev_subsidy == 8000
    assert any(change.startswith("competition.reprice = ") for change in run.changes)
    with pytest.raises(FormError) as error:
        build_request(reference_text, "x.toml", {"competition.reprice": "nash"}, None, "10", "", 1)
    assert error.value.by_field["competition.reprice"][0].endswith("expected one of bertrand, fixed")
    # a value with more TOML after a newline is refused, not silently truncated
    with pytest.raises(FormError) as error:
        build_request(reference_text, "x.toml", {"product.price": '200000\n[data]\nlineup = "/etc/passwd"'}, None,
                      "10", "", 1)
    assert error.value.by_field["product.price"][0].endswith("expected one line")
