"""Every operation of the OpenAPI schema contract-tested with schemathesis.

Schemathesis generates requests from the app's own schema — valid ones and, in its negative
mode, ones the schema refuses — and each is sent with an admin key to the real app (its
worker process, a private copy of the demo database). Every answer must be below 500, have a
status the operation declares, the media type declared for that status, and a body valid
against the declared schema (422s and the other errors included: problem+json).

The schema is read at import (it needs no database) so that each operation is a test of its
own; the app itself is started once per module, and the requests go through its TestClient.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from geoservice.collections import COLLECTIONS, LAYERS
from geoservice.drafts import EDITABLE
from tests.conftest import auth

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
"""What every answer is checked for: no 5xx, and a declared status, media type and body."""
MAX_EXAMPLES = 15
"""Generated requests per operation and phase: the whole file stays within a few minutes."""


def _schema() -> dict[str, Any]:
    """The app's OpenAPI schema, built without a database."""
    from geoservice.server.app import create_app
    from geoservice.settings import Settings

    return create_app(Settings()).app.openapi()


schema = schemathesis.openapi.from_dict(_schema())


class Site:
    """The app's client and the ids valid requests name."""

    def __init__(self, client: Any, draft: int, codes: dict[str, str]) -> None:
        self.client = client
        self.draft = draft
        self.codes = codes
        """The first feature's id of each collection."""

    def aim(self, case: Any) -> None:
        """Point the case at what exists, so that answers past the 404 are checked too: the
        collection or layer the path names (chosen by the generated text), every other
        feature id one that exists, and the draft."""
        path = case.path_parameters
        if path is None:
            return
        drafts = case.path.startswith("/ogc/drafts/")
        for name, known in (
            ("collection_id", EDITABLE if drafts else tuple(COLLECTIONS)),
            ("layer", LAYERS),
        ):
            if name in path and path[name] not in known:
                path[name] = known[_pick(path[name], len(known))]
        if "feature_id" in path and "collection_id" in path and _pick(path["feature_id"], 2):
            path["feature_id"] = self.codes[path["collection_id"]]
        if drafts and "n" in path:
            path["n"] = self.draft

    def send(self, case: Any) -> Any:
        """``case`` sent through the app's TestClient, as its transport would send it, with
        the admin key (whatever key the case carries)."""
        kwargs = case.as_transport_kwargs(base_url="http://testserver")
        headers = {k: v for k, v in kwargs["headers"].items() if k.lower() != "x-api-key"}
        headers.update(auth("admin"))
        body: dict[str, Any] = {}
        if "json" in kwargs:
            body["json"] = kwargs["json"]
        elif isinstance(kwargs.get("data"), dict):
            body["data"] = kwargs["data"]
        elif kwargs.get("data") is not None:
            body["content"] = kwargs["data"]
        return self.client.request(
            kwargs["method"],
            kwargs["url"],
            params=kwargs.get("params"),
            headers=headers,
            cookies=kwargs.get("cookies") or None,
            files=kwargs.get("files"),
            **body,
        )


def _pick(generated: Any, n: int) -> int:
    """An index below ``n`` chosen by a generated value (the same value, the same one)."""
    return zlib.crc32(str(generated).encode()) % n


@pytest.fixture(scope="module")
def site(demo_template, make_database) -> Iterator[Site]:
    from fastapi.testclient import TestClient

    from geoservice.server.app import create_app

    settings = make_database(template=demo_template)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        deadline = time.monotonic() + 120
        while client.get("/ready").status_code != 200:  # the first state is built
            assert time.monotonic() < deadline, "the app was not ready within 2 minutes"
            time.sleep(0.2)
        opened = client.post("/v1/datasets/drafts", params={"note": "contract"}, headers=auth())
        codes = {
            name: client.get(
                f"/ogc/collections/{name}/items", params={"limit": 1}, headers=auth()
            ).json()["features"][0]["id"]
            for name in COLLECTIONS
        }
        yield Site(client, opened.json()["draft"], codes)


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_contract(case: Any, site: Site) -> None:
    """No 5xx; status, media type and body as the schema declares them."""
    site.aim(case)
    response = site.send(case)
    case.validate_response(response, checks=CHECKS, headers=auth("admin"))
