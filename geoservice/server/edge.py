"""The outermost ASGI layer: request ids, keys, rate limits, the access log, metrics, and the
lean path for ``GET /v1/locate``.

Every request but health, readiness, docs and static files must carry a key
(``Authorization: Bearer KEY`` or ``X-API-Key: KEY``): none, an unknown or a revoked one is
a 401 with ``WWW-Authenticate: Bearer``; over the key's rate, a 429 with ``Retry-After``.
The identity goes to the routes in ``scope["state"]["identity"]``, where each router
requires a role (403 below it).

Dispatch systems call ``GET /v1/locate`` thousands of times a second; FastAPI's routing,
parameter parsing and response classes cost more than the lookup. Well-formed requests
are answered here, from the server's current state; everything else — bad input
included — goes to the FastAPI route, which gives the same answers and the errors.

A request with a body (POST, PUT, PATCH) must say it is JSON: ``Content-Type:
application/json`` (under ``/ogc/`` also ``application/geo+json`` and
``application/merge-patch+json``, the types of OGC API – Features Part 4); anything else, or
none, is a 415 before the body is read.

One JSON line per request goes to stderr: time, request id, key name, method, route,
status, milliseconds.
"""

from __future__ import annotations

import itertools
import math
import os
import re
import secrets
import time
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi import FastAPI
from starlette.types import Message, Receive, Scope, Send

from geoservice.errors import GeoserviceError
from geoservice.keys import ANONYMOUS, Identity
from geoservice.metrics import LATENCY, REQUESTS
from geoservice.points import parse_point

PUBLIC_PATHS = frozenset(
    {"/health", "/ready", "/docs", "/openapi.json", "/map", "/map/rivers.geojson"}
)
PUBLIC_PREFIXES = ("/static/",)
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
JSON_HEADERS = [(b"content-type", b"application/json")]
PROBLEM_HEADERS = [(b"content-type", b"application/problem+json")]
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
JSON_TYPES = ("application/json",)
OGC_JSON_TYPES = ("application/json", "application/geo+json", "application/merge-patch+json")


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


class Edge:
    """ASGI app around the FastAPI ``app`` (see the module docstring)."""

    def __init__(self, app: FastAPI, *, auth: bool) -> None:
        self.app = app
        self.auth = auth
        self._counters: dict[tuple[str, str, int], Any] = {}
        self._latencies: dict[str, Any] = {}
        self._clock = _Clock()
        self._ids = _RequestIds()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = self._ids.of(scope["headers"])
        path = scope["path"]
        identity: Identity | None = ANONYMOUS if not self.auth else None
        status = 500
        route = "unmatched"

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), (b"x-request-id", request_id)]
            await send(message)

        try:
            if identity is None and not is_public(path):
                identity, refusal = self._authenticate(scope["headers"])
                if refusal is not None:
                    route = "refused"
                    await self._refuse(send_with_id, *refusal, _has_body(scope["headers"]))
                    return
            scope.setdefault("state", {})["identity"] = identity
            if scope["method"] in BODY_METHODS and _has_body(scope["headers"]):
                unsupported = _unsupported_type(path, scope["headers"])
                if unsupported is not None:
                    route = "refused"
                    await self._refuse(send_with_id, 415, unsupported, [], True)
                    return
            lean = identity is not None and identity.may("dispatch")  # trackers: a 403
            if path == "/v1/locate" and scope["method"] == "GET" and lean:
                body = self._locate(scope["query_string"])
                if body is not None:
                    route = path
                    headers = [*JSON_HEADERS, (b"content-length", str(len(body)).encode())]
                    await send_with_id(
                        {"type": "http.response.start", "status": 200, "headers": headers}
                    )
                    await send_with_id({"type": "http.response.body", "body": body})
                    return
            await self.app(scope, receive, send_with_id)
            matched = scope.get("route")
            route = getattr(matched, "path", "unmatched")
        finally:
            self._account(started, request_id, identity, scope["method"], route, path, status)

    def _authenticate(
        self, headers: list[tuple[bytes, bytes]]
    ) -> tuple[Identity | None, tuple[int, str, list[tuple[bytes, bytes]]] | None]:
        presented = None
        for name, value in headers:
            if name == b"authorization" and value[:7].lower() == b"bearer ":
                presented = value[7:].strip().decode("latin-1")
            elif name == b"x-api-key":
                presented = value.strip().decode("latin-1")
        challenge = [(b"www-authenticate", b'Bearer realm="geoservice"')]
        if not presented:
            detail = "a key is needed: send Authorization: Bearer KEY or X-API-Key: KEY"
            return None, (401, detail, challenge)
        service = getattr(self.app.state, "service", None)
        identity = service.keys.check(presented) if service is not None else None
        if service is None or identity is None:
            return None, (401, "the key is unknown or revoked", challenge)
        wait_s = service.keys.allow(identity)
        if wait_s is not None:
            retry = str(max(1, math.ceil(wait_s))).encode()
            detail = (
                f"the key {identity.name!r} is over its rate of {identity.rate_per_s:g} "
                f"requests per second (burst {identity.burst}); retry after {retry.decode()} s"
            )
            return identity, (429, detail, [(b"retry-after", retry)])
        return identity, None

    async def _refuse(
        self, send: Send, status: int, detail: str, headers: list, has_body: bool
    ) -> None:
        """A 401 or 429; with a body on its way, the connection ends here (it is not read)."""
        titles = {401: "Unauthorized", 415: "Unsupported Media Type", 429: "Too Many Requests"}
        body = orjson.dumps(
            {"type": "about:blank", "title": titles[status], "status": status, "detail": detail}
        )
        if has_body:
            headers = [*headers, (b"connection", b"close")]
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [*PROBLEM_HEADERS, *headers, (b"content-length", b"%d" % len(body))],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def _locate(self, query_string: bytes) -> bytes | None:
        params = _query(query_string)
        if params is None:
            return None
        service = getattr(self.app.state, "service", None)
        state = service.current if service is not None else None
        if state is None:
            return None  # FastAPI's route waits for the first build, or says why not
        try:
            x, y = parse_point(params.get("lon"), params.get("lat"), params.get("crs"))
        except GeoserviceError:
            return None  # FastAPI's route answers with the problem+json error
        return orjson.dumps(state.index.locate(x, y))

    def _account(
        self,
        started: float,
        request_id: bytes,
        identity: Identity | None,
        method: str,
        route: str,
        path: str,
        status: int,
    ) -> None:
        """The access-log line and the metrics of one request."""
        elapsed = time.perf_counter() - started
        key = (route, method, status)
        counter = self._counters.get(key)
        if counter is None:
            counter = self._counters[key] = REQUESTS.labels(route, method, str(status))
        counter.inc()
        latency = self._latencies.get(route)
        if latency is None:
            latency = self._latencies[route] = LATENCY.labels(route)
        latency.observe(elapsed)
        line = {
            "time": self._clock.now(),
            "request_id": request_id.decode(),
            "key": identity.name if identity is not None else None,
            "method": method,
            "route": route if route not in ("unmatched", "refused") else path,
            "status": status,
            "ms": round(elapsed * 1e3, 3),
        }
        os.write(2, orjson.dumps(line) + b"\n")


def _unsupported_type(path: str, headers: list[tuple[bytes, bytes]]) -> str | None:
    """Why a request body's ``Content-Type`` is refused, or None when it is a JSON type the
    path takes."""
    allowed = OGC_JSON_TYPES if path.startswith("/ogc/") else JSON_TYPES
    given = next(
        (value.decode("latin-1") for name, value in headers if name == b"content-type"), ""
    )
    media_type = given.split(";", 1)[0].strip().lower()
    if media_type in allowed:
        return None
    shown = f"Content-Type {given!r}" if given else "no Content-Type"
    return f"a request body with {shown}; expected {' or '.join(allowed)}"


def _has_body(headers: list[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if (name == b"content-length" and value.strip() != b"0") or name == b"transfer-encoding":
            return True
    return False


class _RequestIds:
    """The caller's ``X-Request-ID`` when it is sane, else a new one: a random prefix per
    process and a counter (unique without a system call per request)."""

    def __init__(self) -> None:
        self._prefix = secrets.token_hex(8)
        self._count = itertools.count(1)

    def of(self, headers: list[tuple[bytes, bytes]]) -> bytes:
        for name, value in headers:
            if name == b"x-request-id" and REQUEST_ID.fullmatch(value.decode("latin-1")):
                return value
        return b"%s%08x" % (self._prefix.encode(), next(self._count))


class _Clock:
    """ISO 8601 UTC time to the millisecond, the seconds formatted once a second."""

    def __init__(self) -> None:
        self._second = -1
        self._text = ""

    def now(self) -> str:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._text = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        return f"{self._text}.{int((now - second) * 1000):03d}Z"


def _query(query_string: bytes) -> dict[str, str] | None:
    """``lon``, ``lat`` and ``crs`` of a plain query string; None when it holds anything
    else (repeated or other parameters, escapes): FastAPI's route takes those."""
    params: dict[str, str] = {}
    for part in query_string.decode("latin-1").split("&"):
        name, sep, value = part.partition("=")
        if name not in ("lon", "lat", "crs") or name in params or not sep:
            return None
        if "%" in value or "+" in value:
            return None
        params[name] = value
    return params
