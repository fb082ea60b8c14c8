"""Odd inputs at every route of the OpenAPI schema: never a 5xx, always problem+json.

Every operation the schema lists is called on the real app (its worker process, a private
copy of the demo database) with each query, path and header parameter replaced in turn by
odd values (empty, NaN, infinities, huge numbers, NUL bytes, SQL, 5,000 characters,
Chinese text, the parameter twice), and every body route with odd bodies (empty, null,
scalars, JSON nested 10,000 deep, NaN and 1e400 literals) and with each field of its
request model given values of the wrong type (arrays and objects 1,000 deep among them).
Every answer must be below 500, and every 4xx a problem+json whose ``detail`` is a
non-empty text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import auth

CHINA = ZoneInfo("Asia/Shanghai")
LON, LAT = "114.41", "23.11"

ODD_VALUES = (
    "",
    "NaN",
    "inf",
    "-inf",
    "1e309",
    "-1",
    "0",
    "1.5",
    "99999999999",
    "-99999999999999999999",
    "\x00",
    "%00",
    "a\x00b",
    "' OR 1=1--",
    "x" * 5000,
    "惠城",
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "1,2,3,4",
)
"""Values every query and path parameter is given, one parameter at a time."""
HEADER_VALUES = ("", "x", '"x"', "*", "W/" + '"' + "x" * 5000 + '"', "' OR 1=1--")
"""Values a header parameter is given (headers carry no NUL and no non-Latin text)."""
BASELINE_QUERY = {"lon": LON, "lat": LAT}
"""Query parameters set while another one is odd (so a route reaches its later checks)."""


class Raw(str):
    """A JSON token written as is (``NaN``, ``1e400``): no encoder writes them."""


ODD_FIELD_VALUES: tuple[Any, ...] = (
    None,
    True,
    0,
    -1,
    10**30,
    Raw("1e400"),
    Raw("NaN"),
    Raw("-Infinity"),
    "",
    "1",
    "a\x00b",
    "惠城" * 3000,
    [],
    [[1, 2, 3]],
    ["x", "y"],
    {"a": 1},
    Raw("[" * 1_000 + "]" * 1_000),  # under orjson's limit of 1,024: it reaches the route
    Raw('{"a":' * 1_000 + "1" + "}" * 1_000),
)
"""Values each field of a request body is given (the wrong type for most fields)."""


def _deep(depth: int, open_: str, close: str) -> bytes:
    return (open_ * depth + close * depth).encode()


ODD_BODIES: tuple[bytes, ...] = (
    b"",
    b" ",
    b"null",
    b"[]",
    b"{}",
    b'"x"',
    b"0",
    b"1e400",
    b"NaN",
    b"true",
    b"[1, 2]",
    b"{",
    b"\xff\xfe",
    b'{"a": 1}',
    _deep(10_000, "[", "]"),
    _deep(1_000, "[", "]"),
    ('{"a":' * 10_000 + "1" + "}" * 10_000).encode(),
    ('{"points":' + "[" * 5_000 + "]" * 5_000 + "}").encode(),
)
"""Whole bodies every body route is sent (as ``application/json``)."""


def dumps(value: Any) -> bytes:
    """JSON with ``Raw`` tokens written as they are."""
    tokens: dict[str, str] = {}

    def mark(item: Any) -> Any:
        if isinstance(item, Raw):
            key = f"@@raw{len(tokens)}@@"
            tokens[key] = str(item)
            return key
        if isinstance(item, dict):
            return {k: mark(v) for k, v in item.items()}
        if isinstance(item, list):
            return [mark(v) for v in item]
        return item

    text = json.dumps(mark(value), ensure_ascii=False)
    for key, token in tokens.items():
        text = text.replace(f'"{key}"', token)
    return text.encode()


# --- the app on a private demo copy ------------------------------------------------------------


class Site:
    """The client and the values a valid request to each route holds."""

    def __init__(self, client: Any, draft: int, version: int, grid: dict[str, Any]) -> None:
        self.client = client
        self.draft = draft
        self.version = version
        self.grid = grid
        self.schema: dict[str, Any] = client.get("/openapi.json").json()

    def path_value(self, name: str, path: str) -> str:
        """A valid value of path parameter ``name``."""
        return {
            "layer": "grid",
            "collection_id": "grid",
            "feature_id": self.grid["properties"]["code"] if "drafts" in path else "NOPE",
            "n": str(self.draft if "drafts" in path else self.version),
            "a": str(self.version),
            "b": str(self.version),
            "z": "12",
            "x": "3345",
            "y": "1783",
            "period": "daily",
        }[name]

    def bodies(self, path: str, method: str) -> tuple[dict[str, Any], str] | None:
        """A valid body of the route and its media type; None when it takes none."""
        now = datetime.now(CHINA).replace(microsecond=0)
        if path == "/v1/locate" and method == "post":
            return {"crs": "wgs84", "points": [[114.41, 23.11], [114.42, 23.12]]}, "json"
        if path == "/v1/patrols/positions":
            position = {"unit": "XD01-1", "lon": 114.41, "lat": 23.11, "time": now.isoformat()}
            return {"crs": "wgs84", "positions": [position]}, "json"
        if path == "/v1/coverage/scenario":
            return {
                "minutes": [1, 3],
                "origins": "all",
                "crs": "wgs84",
                "add_points": [[114.43, 23.09]],
                "remove_origins": [],
                "close_edges": [],
                "close_roads": [],
                "speeds_kmh": {"primary": 30},
                "weight": "residents",
            }, "json"
        if path == "/v1/events":
            event = {
                "id": "odd-1",
                "time": (now - timedelta(days=1)).isoformat(),
                "category": "city",
                "status": "closed",
                "lon": 114.41,
                "lat": 23.11,
                "closed_at": now.isoformat(),
                "description": "odd inputs",
            }
            return {"crs": "wgs84", "events": [event]}, "json"
        if path.startswith("/ogc/drafts/") and method in ("post", "put"):
            return dict(self.grid), "geo+json"
        if path.startswith("/ogc/drafts/") and method == "patch":
            return {"properties": {"name": "odd"}}, "merge-patch+json"
        return None


@pytest.fixture(scope="module")
def site(demo_template, make_database) -> Iterator[Site]:
    from fastapi.testclient import TestClient

    from geoservice.server.app import create_app

    settings = make_database(template=demo_template)
    app = create_app(settings)
    with TestClient(app, headers=auth("admin"), raise_server_exceptions=False) as client:
        draft = client.post("/v1/datasets/drafts", params={"note": "odd inputs"}).json()["draft"]
        version = client.get("/health").json()["dataset_version"]
        page = client.get(f"/ogc/drafts/{draft}/collections/grid/items", params={"limit": 1})
        grid = page.json()["features"][0]
        yield Site(client, draft, version, grid)


def operations(site_schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in site_schema["paths"].items()
        for method, operation in item.items()
        if method in ("get", "post", "put", "patch", "delete", "options")
    ]


def _schema_operations() -> list[tuple[str, str]]:
    """(path, method) of every operation, read without a database (for parametrising)."""
    from geoservice.server.app import create_app
    from geoservice.settings import Settings

    app = create_app(Settings()).app
    return [(path, method) for path, method, _ in operations(app.openapi())]


OPERATIONS = _schema_operations()


# --- checking answers --------------------------------------------------------------------------


def problem_of(response: Any) -> str | None:
    """What is wrong with ``response`` (None when nothing is)."""
    status = response.status_code
    if status >= 500:
        return f"{status}: {response.text[:300]}"
    if status < 400:
        return None
    media = response.headers.get("content-type", "")
    if not media.startswith("application/problem+json"):
        return f"{status} as {media!r}: {response.text[:200]}"
    try:
        body = response.json()
    except ValueError:
        return f"{status}: problem+json that is not JSON: {response.text[:200]}"
    detail = body.get("detail") if isinstance(body, dict) else None
    if not isinstance(detail, str) or not detail.strip():
        return f"{status}: detail {detail!r} is not a non-empty text"
    if body.get("status") != status:
        return f"{status}: the body says status {body.get('status')!r}"
    if "Traceback" in detail:
        return f"{status}: a traceback in detail: {detail[:200]}"
    return None


class Calls:
    """Sends requests, keeps what went wrong."""

    def __init__(self, site: Site, path: str, method: str, operation: dict[str, Any]) -> None:
        self.site = site
        self.path = path
        self.method = method
        self.params = operation.get("parameters", [])
        self.failures: list[str] = []

    def url(self, path_values: dict[str, str], query: list[tuple[str, str]]) -> str:
        url = self.path
        for name, value in path_values.items():
            url = url.replace("{" + name + "}", quote(value, safe=""))
        if query:
            url += "?" + "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in query)
        return url

    def baseline(self) -> tuple[dict[str, str], list[tuple[str, str]]]:
        path_values = {
            p["name"]: self.site.path_value(p["name"], self.path)
            for p in self.params
            if p["in"] == "path"
        }
        names = {p["name"] for p in self.params if p["in"] == "query"}
        query = [(k, v) for k, v in BASELINE_QUERY.items() if k in names]
        return path_values, query

    def send(
        self,
        label: str,
        url: str,
        body: bytes | None = None,
        media: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        sent = dict(headers or {})
        if body is not None:
            sent["content-type"] = media
        response = self.site.client.request(self.method.upper(), url, content=body, headers=sent)
        wrong = problem_of(response)
        if wrong is not None:
            self.failures.append(f"{self.method.upper()} {url[:160]!r} {label}: {wrong}")

    def body_for_baseline(self) -> tuple[bytes | None, str]:
        found = self.site.bodies(self.path, self.method)
        if found is None:
            return None, "application/json"
        body, kind = found
        return dumps(body), f"application/{kind}"


def test_every_route_is_in_the_table() -> None:
    """The table of valid path values covers every path parameter the schema has."""
    from geoservice.server.app import create_app
    from geoservice.settings import Settings

    schema = create_app(Settings()).app.openapi()
    names = {
        p["name"]
        for _, _, operation in operations(schema)
        for p in operation.get("parameters", [])
        if p["in"] == "path"
    }
    assert names <= {"layer", "collection_id", "feature_id", "n", "a", "b", "z", "x", "y", "period"}
    assert len(OPERATIONS) >= 50


@pytest.mark.parametrize(("path", "method"), OPERATIONS, ids=[f"{m} {p}" for p, m in OPERATIONS])
def test_odd_parameters(site: Site, path: str, method: str) -> None:
    """Each parameter of the route given each odd value (the others valid), and twice."""
    operation = site.schema["paths"][path][method]
    calls = Calls(site, path, method, operation)
    path_values, query = calls.baseline()
    body, media = calls.body_for_baseline()
    for param in calls.params:
        name, where = param["name"], param["in"]
        if where == "header":
            for value in HEADER_VALUES:
                calls.send(
                    f"{name}: {value[:20]!r}",
                    calls.url(path_values, query),
                    body,
                    media,
                    {name: value},
                )
            continue
        for value in ODD_VALUES:
            if where == "path":
                url = calls.url({**path_values, name: value}, query)
            else:
                url = calls.url(path_values, [*(q for q in query if q[0] != name), (name, value)])
            calls.send(f"{name}={value[:20]!r}", url, body, media)
        if where == "query":
            rest = [q for q in query if q[0] != name]
            first = dict(query).get(name, str(site.version) if name == "version" else "1")
            twice = [*rest, (name, first), (name, first if name == "version" else "2")]
            calls.send(f"{name} twice", calls.url(path_values, twice))
    assert not calls.failures, "\n".join(calls.failures)


BODY_OPERATIONS = [
    (path, method)
    for path, method in OPERATIONS
    if method in ("post", "put", "patch") and path != "/v1/datasets/drafts"
]


@pytest.mark.parametrize(
    ("path", "method"), BODY_OPERATIONS, ids=[f"{m} {p}" for p, m in BODY_OPERATIONS]
)
def test_odd_bodies(site: Site, path: str, method: str) -> None:
    """Odd whole bodies, then each field of a valid body given each odd value."""
    operation = site.schema["paths"][path][method]
    calls = Calls(site, path, method, operation)
    url = calls.url(*calls.baseline())
    valid, kind = site.bodies(path, method) or ({}, "json")
    media = f"application/{kind}"
    for body in ODD_BODIES:
        calls.send(f"body {body[:30]!r}", url, body, media)
        if kind != "json":
            calls.send(f"body {body[:30]!r} as json", url, body, "application/json")
    if not valid:  # a route the table does not know yet: whole bodies only
        assert not calls.failures, "\n".join(calls.failures)
        return
    calls.send("no content-type", url, dumps(valid), "")
    calls.send("text/plain", url, dumps(valid), "text/plain")
    calls.send("the valid body", url, dumps(valid), media)
    for variant, label in field_variants(valid):
        calls.send(label, url, dumps(variant), media)
    assert not calls.failures, "\n".join(calls.failures)


def field_variants(valid: dict[str, Any]) -> Iterator[tuple[Any, str]]:
    """``valid`` with one field (at the top, or of its lists' first item, or of an object
    member) replaced by each odd value, then without it; and as numbers written as text."""
    for key, value in valid.items():
        for odd in ODD_FIELD_VALUES:
            yield {**valid, key: odd}, f"{key}={str(odd)[:20]!r}"
        yield {k: v for k, v in valid.items() if k != key}, f"without {key}"
        inner: list[tuple[str, dict[str, Any], Any]] = []
        if isinstance(value, list) and value and isinstance(value[0], dict):
            inner = [(f"{key}[0]", value[0], lambda item, v=value: [item, *v[1:]])]
        elif isinstance(value, dict):
            inner = [(key, value, lambda item: item)]
        elif isinstance(value, list) and value and isinstance(value[0], list):
            for odd in ODD_FIELD_VALUES:
                yield {**valid, key: [odd]}, f"{key}=[{str(odd)[:20]!r}]"
                yield {**valid, key: [[odd, odd]]}, f"{key}=[[{str(odd)[:20]!r}]*2]"
            yield {**valid, key: [[str(x) for x in value[0]]]}, f"{key} as text"
            yield {**valid, key: value * 2_000}, f"{key} 2,000 times"
        for where, item, rebuild in inner:
            for field, current in item.items():
                for odd in ODD_FIELD_VALUES:
                    changed = rebuild({**item, field: odd})
                    yield {**valid, key: changed}, f"{where}.{field}={str(odd)[:20]!r}"
                if isinstance(current, int | float) and not isinstance(current, bool):
                    changed = rebuild({**item, field: str(current)})
                    yield {**valid, key: changed}, f"{where}.{field} as text"
                changed = rebuild({k: v for k, v in item.items() if k != field})
                yield {**valid, key: changed}, f"{where} without {field}"
            extra = rebuild({**item, "unexpected": 1})
            yield {**valid, key: extra}, f"{where} with an unknown member"


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    derandomize=True,
)
@given(
    st.sampled_from(["/v1/locate", "/v1/dispatch", "/v1/isochrones", "/v1/layers/grid"]),
    st.dictionaries(
        st.sampled_from(["lon", "lat", "crs", "k", "minutes", "bbox", "version", "at", "profile"]),
        st.one_of(
            st.text(max_size=30),
            st.floats(allow_nan=True, allow_infinity=True).map(repr),
            st.integers(min_value=-(10**40), max_value=10**40).map(str),
        ),
        max_size=4,
    ),
)
def test_generated_queries(site: Site, path: str, query: dict[str, str]) -> None:
    """Generated query strings on the dispatch lookups: never a 5xx, errors problem+json."""
    url = path + "?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in query.items())
    response = site.client.get(url)
    wrong = problem_of(response)
    assert wrong is None, f"{url!r}: {wrong}"


def test_a_database_error_names_no_host(site: Site) -> None:
    """A bad request never answers 'database unavailable', nor shows where the database is."""
    response = site.client.get("/v1/datasets/1/diff/99999999999")
    assert response.status_code in (404, 422), response.text
    assert re.search(r"host|port|database unavailable", response.text, re.I) is None


def test_the_schema_declares_every_error_as_a_problem() -> None:
    """Every 4xx/5xx the schema declares is problem+json (no ``HTTPValidationError``), and
    the coordinates the lookups need are required numbers, not optional or nullable."""
    from geoservice.server.app import create_app
    from geoservice.settings import Settings

    schema = create_app(Settings()).app.openapi()
    wrong = [
        f"{method.upper()} {path} {status}: {sorted(response.get('content', {}))}"
        for path, method, operation in operations(schema)
        for status, response in operation["responses"].items()
        if status.isdigit()
        and int(status) >= 400
        and response.get("content")
        != {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    ]
    assert not wrong, "\n".join(wrong)
    assert "HTTPValidationError" not in json.dumps(schema)
    declared = {
        (path, method)
        for path, method, operation in operations(schema)
        if "422" in operation["responses"]
    }
    takes_input = {
        (path, method)
        for path, method, operation in operations(schema)
        if operation.get("parameters") or operation.get("requestBody")
    }
    assert takes_input - declared == set()
    for path in ("/v1/locate", "/v1/dispatch", "/v1/isochrones"):
        parameters = {p["name"]: p for p in schema["paths"][path]["get"]["parameters"]}
        for name in ("lon", "lat"):
            assert parameters[name]["required"] is True, (path, name)
            assert parameters[name]["schema"]["type"] == "number", (path, parameters[name])


@pytest.mark.parametrize(
    "collection",
    ["district", "town", "unit", "large_grid", "grid", "station", "patrol_segment", "road"],
)
def test_every_collection_takes_odd_keys(site: Site, collection: str) -> None:
    """``after=``, ``q=`` and the feature id of every OGC collection (roads are keyed by
    integer ids, the others by codes) given each odd value."""
    failures = []
    base = f"/ogc/collections/{collection}/items"
    for value in ODD_VALUES:
        encoded = quote(value, safe="")
        for url in (f"{base}?after={encoded}", f"{base}?q={encoded}", f"{base}/{encoded}"):
            wrong = problem_of(site.client.get(url))
            if wrong is not None:
                failures.append(f"{url[:120]!r}: {wrong}")
    assert not failures, "\n".join(failures)


def test_a_body_that_is_not_utf8_is_a_422(client) -> None:
    """FastAPI answers 400 "error parsing the body" to bytes that are not UTF-8; we say 422."""
    response = client.post(
        "/v1/grids/propose",
        content=b":j\xff\x06w\xfe\xfd",
        headers={**auth("admin"), "content-type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert "UTF-8" in response.json()["detail"]
