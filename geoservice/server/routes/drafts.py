"""``/ogc/drafts/{n}``: a draft's boundary layers as an OGC API – Features service that QGIS
edits (Part 4: POST, PUT, PATCH and DELETE on items; ``OPTIONS`` says which a key may use).

Reads (planner) come from the primary, so an edit is seen by the next read; edits (gis)
are parsed here into ``drafts.BoundaryFeature`` and written by ``geoservice.drafts`` with
the writer's login. Every feature answer carries an ``ETag``; ``If-Match`` on an edit that
no longer matches is a 412. A create answers 201 with the new item's ``Location``.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import orjson
import shapely
from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from fastapi.responses import HTMLResponse
from shapely.geometry import MultiPolygon
from sqlalchemy.engine import Connection
from starlette.concurrency import run_in_threadpool

from geoservice import drafts, ogc
from geoservice.audit import Actor
from geoservice.collections import (
    COLLECTIONS,
    Collection,
    collection,
    extent,
    read_page,
)
from geoservice.drafts import EDITABLE, BoundaryFeature
from geoservice.errors import (
    Conflict,
    InvalidGeometry,
    InvalidInput,
    NotFound,
    UnsupportedMediaType,
    shown,
)
from geoservice.models import UNIT_KINDS
from geoservice.server import documents
from geoservice.server.deps import identity_of, limited_body, public_base, requires, service_of
from geoservice.server.documents import HTML
from geoservice.server.media import GEOJSON, JSON, MERGE_PATCH_JSON, GeoJSONResponse, OrjsonResponse
from geoservice.server.models import errors
from geoservice.server.params import OptionalText, Text, geojson_geometry, parse_bbox

T = TypeVar("T")
router = APIRouter(prefix="/ogc/drafts/{n}", tags=["drafts"], dependencies=[requires("planner")])

Draft = Annotated[int, Path(ge=1, le=2**31 - 1, description="The draft dataset version.")]
FeatureId = Annotated[Text, Path(max_length=64, description="The feature's code.")]
IfMatch = Annotated[
    str | None, Header(description="The ETag the edit was made on (412 when it changed).")
]
EXACT = 15
"""Decimals of a draft's coordinates: the stored doubles exactly, so an edit that moves one
vertex sends every other vertex back as it was (8 decimals would move them by 1 mm)."""
MAX_FEATURE_BYTES = 8 << 20
FeatureBody = Annotated[bytes, Depends(limited_body(MAX_FEATURE_BYTES, "feature body"))]
CODE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
PROPERTIES = ("code", "name", "parent_code", "kind", "population")
MAX_NAME = 200
EDITS = "GET, POST, OPTIONS"
ITEM_EDITS = "GET, PUT, PATCH, DELETE, OPTIONS"


def _base(request: Request) -> str:
    return public_base(request)


def _root(request: Request, n: int) -> str:
    return f"{_base(request)}/ogc/drafts/{n}"


def _source(collection_id: str) -> Collection:
    return collection(collection_id, EDITABLE, "editable collection")


async def _read(request: Request, n: int, read: Callable[[Connection], T]) -> T:
    """``read`` of draft ``n`` on the primary (404/409 when ``n`` is not a draft)."""

    def run() -> T:
        with service_of(request).primary.connect() as conn:
            drafts.require_draft(conn, n)
            return read(conn)

    return await run_in_threadpool(run)


@router.get(
    "",
    operation_id="draft_landing",
    response_model=documents.Landing,
    responses={200: {"content": HTML}, **errors(401, 403, 404, 409, 429)},
)
async def landing(request: Request, n: Draft, f: str | None = None) -> Response:
    """The landing page of a draft's OGC API."""
    await _read(request, n, lambda conn: None)
    document = ogc.draft_landing(_base(request), n)
    if f == "html":
        return HTMLResponse(ogc.page_html(document["title"], ogc.links_html(document["links"])))
    return OrjsonResponse(document)


@router.get(
    "/conformance",
    operation_id="draft_conformance",
    response_model=documents.Conformance,
    responses=errors(401, 403),
)
def conformance(n: Draft) -> Response:
    """Features Part 1 (core, GeoJSON) and Part 4 (create, replace, update, delete)."""
    return OrjsonResponse({"conformsTo": ogc.DRAFT_CONFORMANCE})


@router.get(
    "/collections",
    operation_id="draft_collections",
    response_model=documents.CollectionList,
    responses=errors(401, 403, 404, 409, 429),
)
async def collections(request: Request, n: Draft) -> Response:
    """The draft's editable collections, with their extents."""
    root = _root(request, n)

    def read(conn: Connection) -> list[dict[str, Any]]:
        return [
            ogc.describe(_base(request), source, extent(conn, source, n), root=root)
            for source in (COLLECTIONS[layer] for layer in EDITABLE)
        ]

    described = await _read(request, n, read)
    return OrjsonResponse(
        {
            "collections": described,
            "links": [ogc.link(f"{root}/collections", "self", JSON)],
        }
    )


@router.get(
    "/collections/{collection_id}",
    operation_id="draft_collection",
    response_model=documents.CollectionInfo,
    responses=errors(401, 403, 404, 409, 429),
)
async def one_collection(request: Request, n: Draft, collection_id: str) -> Response:
    """One editable collection of the draft."""
    source = _source(collection_id)
    bbox = await _read(request, n, lambda conn: extent(conn, source, n))
    return OrjsonResponse(ogc.describe(_base(request), source, bbox, root=_root(request, n)))


@router.get(
    "/collections/{collection_id}/items",
    operation_id="draft_items",
    response_model=documents.FeaturePage,
    response_class=GeoJSONResponse,
    responses=errors(401, 403, 404, 409, 422, 429),
)
async def items(
    request: Request,
    n: Draft,
    collection_id: str,
    bbox: Annotated[str | None, Query(description="minlon,minlat,maxlon,maxlat (CRS84)")] = None,
    limit: Annotated[int, Query(ge=1, le=ogc.MAX_LIMIT)] = ogc.DEFAULT_LIMIT,
    after: Annotated[OptionalText, Query(description="Continue after this key.")] = None,
    q: Annotated[OptionalText, Query(description="Code or name containing this text.")] = None,
) -> Response:
    """A page of the draft's features, in code order; the ``next`` link has the rest."""
    source = _source(collection_id)
    box = parse_bbox(bbox)
    service = service_of(request)
    await _read(request, n, lambda conn: None)
    document = await run_in_threadpool(
        ogc.items,
        service.primary,
        _base(request),
        source,
        n,
        bbox=box,
        limit=limit,
        after=after,
        search=q,
        query=dict(request.query_params),
        root=_root(request, n),
        decimals=EXACT,
    )
    return OrjsonResponse(document, media_type=GEOJSON)


@router.options(
    "/collections/{collection_id}/items",
    operation_id="draft_items_options",
    status_code=204,
    response_class=Response,
    responses={204: {"description": "``Allow`` names the methods."}, **errors(401, 403, 404)},
)
def items_options(request: Request, n: Draft, collection_id: str) -> Response:
    """What this key may do with the collection (QGIS reads ``Allow``)."""
    _source(collection_id)
    allow = EDITS if identity_of(request).may("gis") else "GET, OPTIONS"
    return Response(status_code=204, headers={"allow": allow})


@router.options(
    "/collections/{collection_id}/items/{feature_id}",
    operation_id="draft_item_options",
    status_code=204,
    response_class=Response,
    responses={204: {"description": "``Allow`` names the methods."}, **errors(401, 403, 404)},
)
def item_options(request: Request, n: Draft, collection_id: str, feature_id: FeatureId) -> Response:
    """What this key may do with one feature (any id: QGIS asks with an unknown one)."""
    _source(collection_id)
    allow = ITEM_EDITS if identity_of(request).may("gis") else "GET, OPTIONS"
    return Response(status_code=204, headers={"allow": allow})


@router.get(
    "/collections/{collection_id}/items/{feature_id}",
    operation_id="draft_item",
    response_model=documents.Item,
    response_class=GeoJSONResponse,
    responses=errors(401, 403, 404, 409, 429),
)
async def item(request: Request, n: Draft, collection_id: str, feature_id: FeatureId) -> Response:
    """One feature of the draft, with its ETag."""
    source = _source(collection_id)

    def read(conn: Connection) -> tuple[list[dict[str, Any]], str | None]:
        page = read_page(conn, source, n, codes=[feature_id], decimals=EXACT)
        return page.features, drafts.feature_etag(conn, n, source.layer, feature_id)

    features, tag = await _read(request, n, read)
    if not features or tag is None:
        msg = f"no {drafts.NOUNS[source.layer]} {feature_id!r} in draft {n}"
        raise NotFound(msg)
    return OrjsonResponse(
        {**features[0], "dataset_version": n}, media_type=GEOJSON, headers={"etag": tag}
    )


@router.post(
    "/collections/{collection_id}/items",
    status_code=201,
    response_class=Response,
    operation_id="draft_create",
    dependencies=[requires("gis")],
    openapi_extra=documents.body(documents.FeatureIn, GEOJSON, JSON),
    responses=errors(401, 403, 404, 409, 413, 415, 422, 429),
)
async def create(request: Request, n: Draft, collection_id: str, body: FeatureBody) -> Response:
    """Add a feature (a GeoJSON Feature whose ``properties.code`` is new in the layer)."""
    source = _source(collection_id)
    _media(request, GEOJSON, JSON)
    feature = parse_feature(source.layer, _object(body), None)

    def change(stored: BoundaryFeature | None) -> BoundaryFeature:
        if stored is not None:
            msg = f"{drafts.NOUNS[source.layer]} {feature.code} is already in draft {n}"
            raise Conflict(msg)
        return feature

    tag = await _edit(request, n, source.layer, feature.code, change, "create", None)
    location = f"{_root(request, n)}/collections/{source.id}/items/{feature.code}"
    return Response(status_code=201, headers={"location": location, "etag": tag or ""})


@router.put(
    "/collections/{collection_id}/items/{feature_id}",
    status_code=204,
    operation_id="draft_replace",
    dependencies=[requires("gis")],
    openapi_extra=documents.body(documents.FeatureIn, GEOJSON, JSON),
    responses=errors(401, 403, 404, 409, 412, 413, 415, 422, 429),
)
async def replace(
    request: Request,
    n: Draft,
    collection_id: str,
    feature_id: FeatureId,
    body: FeatureBody,
    if_match: IfMatch = None,
) -> Response:
    """Replace a feature with a whole GeoJSON Feature."""
    source = _source(collection_id)
    _media(request, GEOJSON, JSON)
    feature = parse_feature(source.layer, _object(body), feature_id)

    def change(stored: BoundaryFeature | None) -> BoundaryFeature:
        _require(stored, source.layer, feature_id, n)
        return feature

    tag = await _edit(request, n, source.layer, feature_id, change, "replace", if_match)
    return Response(status_code=204, headers={"etag": tag or ""})


@router.patch(
    "/collections/{collection_id}/items/{feature_id}",
    status_code=204,
    operation_id="draft_update",
    dependencies=[requires("gis")],
    openapi_extra=documents.body(documents.FeaturePatch, MERGE_PATCH_JSON, JSON),
    responses=errors(401, 403, 404, 409, 412, 413, 415, 422, 429),
)
async def update(
    request: Request,
    n: Draft,
    collection_id: str,
    feature_id: FeatureId,
    body: FeatureBody,
    if_match: IfMatch = None,
) -> Response:
    """Change part of a feature: a JSON Merge Patch (RFC 7396) of its GeoJSON — the
    ``geometry``, or some ``properties``."""
    source = _source(collection_id)
    _media(request, MERGE_PATCH_JSON, JSON)
    changes = parse_patch(source.layer, _object(body), feature_id)

    def change(stored: BoundaryFeature | None) -> BoundaryFeature:
        return dataclasses.replace(_require(stored, source.layer, feature_id, n), **changes)

    tag = await _edit(request, n, source.layer, feature_id, change, "update", if_match)
    return Response(status_code=204, headers={"etag": tag or ""})


@router.delete(
    "/collections/{collection_id}/items/{feature_id}",
    status_code=204,
    operation_id="draft_delete",
    dependencies=[requires("gis")],
    responses=errors(401, 403, 404, 409, 412, 422, 429),
)
async def delete(
    request: Request, n: Draft, collection_id: str, feature_id: FeatureId, if_match: IfMatch = None
) -> Response:
    """Remove a feature (refused while features of the layer below name it)."""
    source = _source(collection_id)

    def change(stored: BoundaryFeature | None) -> None:
        _require(stored, source.layer, feature_id, n)

    await _edit(request, n, source.layer, feature_id, change, "delete", if_match)
    return Response(status_code=204)


async def _edit(
    request: Request,
    n: int,
    layer: str,
    code: str,
    change: drafts.Change,
    action: str,
    if_match: str | None,
) -> str | None:
    identity = identity_of(request)
    actor = Actor(identity.name, "api")
    service = service_of(request)
    return await run_in_threadpool(
        drafts.edit,
        service.editor,
        n,
        layer,
        code,
        change,
        action=action,
        actor=actor,
        if_match=if_match,
    )


def _require(stored: BoundaryFeature | None, layer: str, code: str, n: int) -> BoundaryFeature:
    if stored is None:
        msg = f"no {drafts.NOUNS[layer]} {code!r} in draft {n}"
        raise NotFound(msg)
    return stored


def _media(request: Request, *accepted: str) -> None:
    given = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if given not in accepted:
        msg = f"Content-Type {given or '(none)'!r}: expected {' or '.join(accepted)}"
        raise UnsupportedMediaType(msg)


def _object(body: bytes) -> dict[str, Any]:
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        msg = f"body is not valid JSON: {exc}"
        raise InvalidInput(msg) from None
    if not isinstance(value, dict):
        msg = f"body is a JSON {type(value).__name__}: expected a GeoJSON Feature object"
        raise InvalidInput(msg)
    return value


def parse_feature(layer: str, body: dict[str, Any], code: str | None) -> BoundaryFeature:
    """A whole GeoJSON Feature as a boundary feature of ``layer``; ``code`` is the path's
    (None for a create: ``properties.code``, or the Feature's ``id``)."""
    if body.get("type") != "Feature":
        msg = f"body type {shown(body.get('type'))}: expected a GeoJSON 'Feature'"
        raise InvalidInput(msg)
    properties = body.get("properties") or {}
    if not isinstance(properties, dict):
        msg = "properties: expected an object"
        raise InvalidInput(msg)
    _known(properties)
    given = properties.get("code", body.get("id"))
    if code is None:
        if given is None:
            msg = "properties.code is missing: a new feature needs its code"
            raise InvalidInput(msg)
        code = _code(given)
    elif given is not None and (str(given) if isinstance(given, int | str) else None) != code:
        msg = f"the code in the body ({shown(given)}) is not the one in the path ({code!r})"
        raise InvalidInput(msg)
    fields = _fields(layer, {k: v for k, v in properties.items() if k != "code"})
    if fields.get("name") is None:
        msg = f"{drafts.NOUNS[layer]} {code}: properties.name is missing"
        raise InvalidInput(msg)
    fields.setdefault("parent_code", None)
    fields.setdefault("kind", None)
    fields.setdefault("population", None)
    if layer == "unit" and fields["kind"] is None:
        msg = f"police unit {code}: properties.kind is missing: one of {', '.join(UNIT_KINDS)}"
        raise InvalidInput(msg)
    return BoundaryFeature(code=code, geometry=_geometry(body.get("geometry")), **fields)


def parse_patch(layer: str, body: dict[str, Any], code: str) -> dict[str, Any]:
    """A JSON Merge Patch of a feature as the fields it changes."""
    unknown = sorted(set(body) - {"type", "id", "geometry", "properties"})
    if unknown:
        msg = f"patch members {unknown}: expected geometry and/or properties"
        raise InvalidInput(msg)
    properties = body.get("properties") or {}
    if not isinstance(properties, dict):
        msg = "properties: expected an object"
        raise InvalidInput(msg)
    _known(properties)
    if "code" in properties and properties["code"] != code:
        msg = f"properties.code {shown(properties['code'])}: a feature's code cannot change"
        raise InvalidInput(msg)
    changes = _fields(layer, {k: v for k, v in properties.items() if k != "code"})
    if changes.get("name", "") is None:
        msg = f"{drafts.NOUNS[layer]} {code}: name cannot be removed"
        raise InvalidInput(msg)
    if "geometry" in body:
        changes["geometry"] = _geometry(body["geometry"])
    return changes


def _known(properties: dict[str, Any]) -> None:
    unknown = sorted(set(properties) - set(PROPERTIES))
    if unknown:
        msg = f"properties {unknown}: a boundary feature has {', '.join(PROPERTIES)}"
        raise InvalidInput(msg)


def _code(value: Any) -> str:
    text = str(value) if isinstance(value, str | int) and not isinstance(value, bool) else ""
    if not CODE.fullmatch(text):
        msg = f"code {shown(value)}: expected 1-64 letters, digits, '_', '.' or '-'"
        raise InvalidInput(msg)
    return text


def _fields(layer: str, properties: dict[str, Any]) -> dict[str, Any]:
    """The given properties, checked (a null removes an optional one)."""
    out: dict[str, Any] = {}
    if "name" in properties:
        name = properties["name"]
        if name is not None and (
            not isinstance(name, str) or not 0 < len(name) <= MAX_NAME or "\x00" in name
        ):
            msg = f"name {shown(name)}: expected a text of 1-{MAX_NAME} characters (no NUL)"
            raise InvalidInput(msg)
        out["name"] = name
    if "parent_code" in properties:
        parent = properties["parent_code"]
        out["parent_code"] = None if parent is None else _code(parent)
    if "kind" in properties:
        kind = properties["kind"]
        allowed = UNIT_KINDS if layer == "unit" else ()
        if kind is not None and kind not in allowed:
            expected = ", ".join(allowed) if allowed else f"none for a {drafts.NOUNS[layer]}"
            msg = f"kind {shown(kind)}: expected {expected}"
            raise InvalidInput(msg)
        out["kind"] = kind
    if "population" in properties:
        population = properties["population"]
        if population is not None and (
            isinstance(population, bool)
            or not isinstance(population, int | float)
            or not math.isfinite(population)
            or population < 0
            or population != int(population)
            or population > 2**31 - 1
        ):
            msg = f"population {shown(population)}: expected a whole number of people, 0 or more"
            raise InvalidInput(msg)
        out["population"] = None if population is None else int(population)
    return out


def _geometry(value: Any) -> MultiPolygon:
    """A GeoJSON Polygon or MultiPolygon in CRS84 as a valid 2D MultiPolygon."""
    geometry = geojson_geometry(value, ("Polygon", "MultiPolygon"), "geometry")
    if not geometry.is_valid:
        msg = f"geometry is not valid: {shapely.is_valid_reason(geometry)}"
        raise InvalidGeometry(msg)
    return geometry if isinstance(geometry, MultiPolygon) else MultiPolygon([geometry])
