"""The dashboard's request guards, as plain ASGI middleware (no task groups around the app).

- `BodyLimit`: request bodies above the limit get 413, whether or not Content-Length is given (a chunked
  body is counted as it arrives).
- `RequestGuard`: a state-changing request (any method but GET, HEAD, OPTIONS) must come from the
  dashboard's own pages: a same-origin `Origin` header, or, if a client sends none, a same-origin `Referer`;
  otherwise 403. Requests to the JSON API with a body must be `application/json` (else 415), so a
  cross-site HTML form (urlencoded, multipart or text/plain) cannot drive it.
- `SecurityHeaders`: the pages' Content-Security-Policy and related headers, unless a route set its own.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

from starlette.responses import JSONResponse, PlainTextResponse, Response

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_BODY_BYTES = 64 * 1024
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
JSON_MEDIA_TYPE = "application/json"
API_PREFIX = "/api/"
PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
            "frame-src 'self'; frame-ancestors 'self'; form-action 'self'; base-uri 'none'; object-src 'none'")


def _headers(scope: Scope) -> dict[bytes, bytes]:
    return {name.lower(): value for name, value in scope.get("headers") or []}


def _refusal(scope: Scope, status: int, message: str) -> Response:
    """An error response: JSON `{"detail": ...}` on the API, plain text on pages."""
    if str(scope.get("path", "")).startswith(API_PREFIX):
        return JSONResponse({"detail": message}, status)
    return PlainTextResponse(message, status)


class _TooLarge(Exception):
    """Raised from `receive` when the body passes the limit; turned into a 413 by BodyLimit."""


def _is_too_large(error: BaseException) -> bool:
    """The body-limit signal, possibly wrapped in exception groups by task groups in between."""
    if isinstance(error, _TooLarge):
        return True
    if isinstance(error, BaseExceptionGroup):
        return all(_is_too_large(inner) for inner in error.exceptions)
    return False


class BodyLimit:
    """Refuses request bodies above `limit` bytes with 413, whether or not Content-Length is given."""

    def __init__(self, app: ASGIApp, limit: int):
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = PlainTextResponse(f"request body larger than {self.limit:,} bytes", 413)
        length = _headers(scope).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            await too_large(scope, receive, send)
            return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BaseException as error:
            if not _is_too_large(error) or started:
                raise
            await too_large(scope, receive, send)


def same_origin(url: str, host: str) -> bool:
    """True if `url` (an Origin or Referer value) is an http(s) URL on exactly `host` (the Host header)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return bool(host) and parts.scheme in ("http", "https") and parts.netloc.lower() == host.lower()


def cross_origin_problem(method: str, headers: dict[bytes, bytes]) -> str | None:
    """Why a request may not change state here (None if it may): it must name this origin."""
    if method in SAFE_METHODS:
        return None
    host = headers.get(b"host", b"").decode("latin-1")
    origin = headers.get(b"origin")
    if origin is not None:
        shown = origin.decode("latin-1")
        if same_origin(shown, host):
            return None
        return f"cross-origin request refused: Origin {shown[:100]!r} is not this dashboard ({host[:100]})"
    referer = headers.get(b"referer")
    if referer is None:
        return ("request refused: a request that changes state must carry an Origin (or Referer) header "
                "naming this dashboard")
    if same_origin(referer.decode("latin-1"), host):
        return None
    return f"cross-origin request refused: Referer is not a page of this dashboard ({host[:100]})"


def content_type_problem(path: str, method: str, headers: dict[bytes, bytes]) -> str | None:
    """Why an API request's body is refused (None if it is accepted): the API reads JSON only."""
    if method in SAFE_METHODS or not path.startswith(API_PREFIX):
        return None
    content_type = headers.get(b"content-type", b"").decode("latin-1")
    media_type = content_type.split(";", 1)[0].strip().lower()
    length = headers.get(b"content-length")
    has_body = b"transfer-encoding" in headers or (length is not None and length.strip() not in (b"", b"0"))
    if (content_type or has_body) and media_type != JSON_MEDIA_TYPE:
        return f"the API accepts only {JSON_MEDIA_TYPE} bodies; got {json.dumps(content_type[:100] or 'none')}"
    return None


class RequestGuard:
    """403 for state-changing requests not from this origin; 415 for API bodies that are not JSON."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = _headers(scope)
            method = str(scope.get("method", "GET")).upper()
            if problem := cross_origin_problem(method, headers):
                await _refusal(scope, 403, problem)(scope, receive, send)
                return
            if problem := content_type_problem(str(scope.get("path", "")), method, headers):
                await _refusal(scope, 415, problem)(scope, receive, send)
                return
        await self.app(scope, receive, send)


class SecurityHeaders:
    """Adds the pages' CSP, nosniff and a same-origin referrer policy to responses that lack them."""

    DEFAULTS = ((b"content-security-policy", PAGE_CSP.encode()), (b"x-content-type-options", b"nosniff"),
                (b"referrer-policy", b"same-origin"))

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers") or [])
                present = {name.lower() for name, _ in headers}
                headers.extend((name, value) for name, value in self.DEFAULTS if name not in present)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
