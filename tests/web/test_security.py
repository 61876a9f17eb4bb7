"""The dashboard's guards against hostile requests, through FastAPI's TestClient: oversized bodies (also
chunked, without Content-Length) get 413; state-changing requests must name the dashboard's own origin
(403 otherwise); the JSON API reads only application/json (415); levers take plain decimal numbers and
ASCII months, finite and in range, with errors naming the lever. None of the refused requests starts a run."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette's deprecation note on httpx, raised at import
    from fastapi.testclient import TestClient

SCENARIO = "xiaomi-2023"
FORM_URL = f"/scenarios/{SCENARIO}/run"
API_URL = f"/api/scenarios/{SCENARIO}/runs"
LIMIT = 64 * 1024
ORIGIN = "http://testserver"  # the TestClient's base URL


@pytest.fixture(scope="module")
def bare(client) -> TestClient:
    """A client on the same app that sends no Origin header by default (the lifespan is `client`'s)."""
    return TestClient(client.app)


@pytest.fixture
def no_new_jobs(client) -> Iterator[None]:
    """Fails the test if a run job was started during it."""
    before = len(client.app.state.jobs.jobs())
    yield
    assert len(client.app.state.jobs.jobs()) == before, "a refused request started a run"


def chunks(total: int, size: int = 4096) -> Iterator[bytes]:
    """A body sent with Transfer-Encoding: chunked (no Content-Length), `total` bytes in all."""
    sent = 0
    while sent < total:
        part = min(size, total - sent)
        yield b" " * part
        sent += part


# -- (a) request size -----------------------------------------------------------------------------------


@pytest.mark.parametrize("url, content_type", [(FORM_URL, "application/x-www-form-urlencoded"),
                                               (API_URL, "application/json")])
def test_a_chunked_body_over_the_limit_is_413(client, no_new_jobs, url, content_type):
    response = client.post(url, content=chunks(LIMIT + 10_000), headers={"content-type": content_type})
    assert response.status_code == 413, response.text
    assert "larger than 65,536 bytes" in response.text


def test_a_chunked_body_under_the_limit_is_read(client, no_new_jobs):
    def body() -> Iterator[bytes]:
        yield b'{"draws": '
        yield b"0}"

    response = client.post(API_URL, content=body(), headers={"content-type": "application/json"})
    assert response.status_code == 422 and "draws" in response.json()["fields"]


# -- (b) same origin ------------------------------------------------------------------------------------


@pytest.mark.parametrize("headers", [
    {},                                                                   # neither Origin nor Referer
    {"referer": "http://evil.example/page"},                              # a foreign Referer alone
    {"referer": "http://testserver.evil.example/"},                       # a look-alike host
    {"referer": "http://testserver@evil.example/"},                       # userinfo tricks
    {"origin": "null"},                                                   # sandboxed frames, data: URLs
    {"origin": "http://evil.example"},
    {"origin": "http://testserver:8080"},                                 # same host, another port
    {"origin": "http://evil.example", "referer": f"{ORIGIN}/scenarios/{SCENARIO}"},  # Origin decides
])
@pytest.mark.parametrize("url, body", [(FORM_URL, {"data": {"draws": "10"}}), (API_URL, {"json": {"draws": 10}}),
                                       ("/jobs/nope/cancel", {}), ("/api/jobs/nope/cancel", {})])
def test_b_state_changing_requests_from_elsewhere_are_403(bare, no_new_jobs, headers, url, body):
    response = bare.post(url, headers=headers, **body)
    assert response.status_code == 403, (headers, url, response.status_code, response.text)
    assert "refused" in response.text
    if url.startswith("/api/"):
        assert "refused" in response.json()["detail"]


@pytest.mark.parametrize("headers", [{"origin": ORIGIN}, {"origin": ORIGIN.upper()},
                                     {"referer": f"{ORIGIN}/scenarios/{SCENARIO}"}])
def test_b_same_origin_requests_are_accepted(bare, no_new_jobs, headers):
    # draws 0 is invalid, so an accepted request gets the validation's 422 and starts nothing
    assert bare.post(FORM_URL, data={"draws": "0"}, headers=headers).status_code == 422
    assert bare.post(API_URL, json={"draws": 0}, headers=headers).status_code == 422
    assert bare.post("/api/jobs/nope/cancel", headers=headers).status_code == 404


def test_b_reading_needs_no_origin(bare):
    assert bare.get("/").status_code == 200
    assert bare.get("/api/scenarios").status_code == 200


# -- (c) the API reads JSON only ----------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", ["text/plain", "text/plain; charset=utf-8", "application/x-www-form-urlencoded",
                                          "multipart/form-data; boundary=x", "application/jsonx", None])
def test_c_api_bodies_that_are_not_json_are_415(client, no_new_jobs, content_type):
    headers = {"content-type": content_type} if content_type else {}
    response = client.post(API_URL, content=b'{"draws": 200}', headers=headers)
    assert response.status_code == 415, (content_type, response.text)
    assert "application/json" in response.json()["detail"]


def test_c_a_run_start_without_a_content_type_is_415_even_when_empty(client, no_new_jobs):
    assert client.post(API_URL).status_code == 415
    assert client.post(API_URL, content=b"", headers={"content-type": "text/plain"}).status_code == 415


def test_c_json_with_a_charset_is_accepted(client, no_new_jobs):
    response = client.post(API_URL, content=b'{"draws": 0}', headers={"content-type": "application/json; charset=utf-8"})
    assert response.status_code == 422 and "draws" in response.json()["fields"]


# -- (d) levers -----------------------------------------------------------------------------------------------


BAD_LEVERS = [
    ("product.price", "0x1000"),          # was a price of 4,096
    ("product.price", "0o10000"),
    ("product.price", "0b1000000000000"),
    ("product.price", "inf"),
    ("product.price", "nan"),
    ("product.price", "+inf"),
    ("product.price", "1e999"),           # overflows to infinity
    ("product.price", "٢٠٠٠٠٠"),          # Arabic-Indic digits
    ("product.price", "２００００0"),      # fullwidth digits
    ("product.price", "1e99"),            # finite, out of range
    ("product.price", '{ dist = "triangular", low = 0x10, mode = 200000, high = 300000 }'),
    ("product.price", '{ dist = "triangular", low = 150000, mode = 200000, high = inf }'),
    ("product.price", '{ dist = "triangular", low = 150000, mode = 200000, high = 1e999 }'),
    ("product.price", '{ dist = "uniform", low = 150000, high = 1e99 }'),
    ("finance.budget_usd", "0x10"),
    ("target_launch", "٢٠٢٤-06"),
    ("target_launch", "２０２３-11"),
    ("target_launch", "2024-6"),
    ("competition.price_war_cut", '{ dist = "normal", mean = 1e308, sd = 1, low = 0.3, high = 0.7 }'),
]


@pytest.mark.parametrize("key, value", BAD_LEVERS)
def test_d_bad_lever_text_from_the_api_is_422_naming_the_lever(client, no_new_jobs, key, value):
    response = client.post(API_URL, json={"levers": {key: value}, "draws": 10})
    assert response.status_code == 422, response.text
    body = response.json()
    assert list(body["fields"]) == [key], body
    assert all(f"field {key}" in line for line in body["fields"][key])


@pytest.mark.parametrize("key, value", BAD_LEVERS[:3] + BAD_LEVERS[7:9] + BAD_LEVERS[15:17])
def test_d_bad_lever_text_from_the_form_is_422_next_to_the_lever(client, no_new_jobs, key, value):
    response = client.post(FORM_URL, data={key: value, "draws": "10"}, follow_redirects=False)
    assert response.status_code == 422
    assert f"field {key}: got" in response.text and 'aria-invalid="true"' in response.text


@pytest.mark.parametrize("value", [
    {"dist": "normal", "mean": True, "sd": 1},
    {"dist": "normal", "mean": 200000, "sd": "1"},
    {"dist": "uniform", "low": 150000, "high": [300000]},
    {"dist": "uniform", "low": 150000, "high": {"x": 1}},
    {"dist": 1, "low": 150000, "high": 300000},
    10 ** 400,
    True,
    [200000],
])
def test_d_bad_typed_levers_from_the_api_are_422_naming_the_lever(client, no_new_jobs, value):
    response = client.post(API_URL, json={"levers": {"product.price": value}, "draws": 10})
    assert response.status_code == 422, response.text
    assert list(response.json()["fields"]) == ["product.price"]


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"1e999"])
def test_d_non_finite_json_numbers_are_422_naming_the_lever(client, no_new_jobs, literal):
    for levers in (b'{"product.price": %s}' % literal,
                   b'{"product.price": {"dist": "uniform", "low": 150000, "high": %s}}' % literal):
        response = client.post(API_URL, content=b'{"draws": 10, "levers": %s}' % levers,
                               headers={"content-type": "application/json"})
        assert response.status_code == 422, (levers, response.text)
        assert list(response.json()["fields"]) == ["product.price"]


def test_d_plain_decimal_levers_are_still_accepted(reference_text):
    from evlaunch.web.forms import build_request

    run = build_request(reference_text, "x.toml", {
        "product.price": "200,000", "product.battery_kwh": "101.5", "finance.budget_usd": "1e10",
        "target_launch": "2024-06", "competition.price_war_cut": "-0.0",
        "market.charging_effect": '{ dist = "triangular", low = 0.1, mode = 2.5e-1, high = 4E-1 }'}, None, "10", "", 1)
    assert run.scenario.product.price == 200000 and run.scenario.finance.budget_usd == 1e10
    assert run.scenario.target_launch == "2024-06"
    assert run.scenario.market.charging_effect.mode == 0.25
