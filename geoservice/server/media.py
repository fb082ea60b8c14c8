"""The media types the server sends and takes, and its one JSON response (orjson bytes).

The types the OGC documents' links name are the core's (``geoservice.ogc``); the server
takes them from there.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi.responses import JSONResponse

from geoservice.ogc import GEOJSON, HTML, JSON, MVT

PROBLEM_JSON = "application/problem+json"
MERGE_PATCH_JSON = "application/merge-patch+json"

__all__ = [
    "GEOJSON",
    "HTML",
    "JSON",
    "MERGE_PATCH_JSON",
    "MVT",
    "PROBLEM_JSON",
    "GeoJSONResponse",
    "OrjsonResponse",
]


class OrjsonResponse(JSONResponse):
    """``content`` as ``orjson.dumps`` writes it (``application/json`` unless told; a
    ``JSONResponse``, so a route's ``response_class`` shows its model in the schema)."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class GeoJSONResponse(OrjsonResponse):
    """A GeoJSON answer (RFC 7946): what the schema says ``application/geo+json`` routes send."""

    media_type = GEOJSON
