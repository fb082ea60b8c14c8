"""``/ogc``: OGC API – Features and Tiles for QGIS, GDAL and web maps (planner role), and
``/v1/basemap``: the map page's tiles of the current version (dispatch role)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import HTMLResponse
from morecantile.models import TileMatrixSet
from starlette.concurrency import run_in_threadpool

from geoservice import ogc
from geoservice.collections import COLLECTIONS, collection, extent
from geoservice.errors import InvalidInput
from geoservice.server import documents, handlers
from geoservice.server.deps import (
    Version,
    ask,
    identity_of,
    public_base,
    requires,
    service_of,
)
from geoservice.server.documents import BINARY, HTML
from geoservice.server.media import JSON, MVT, GeoJSONResponse, OrjsonResponse
from geoservice.server.models import errors
from geoservice.server.params import OptionalText, Text, parse_bbox
from geoservice.tiles import BASEMAP, TMS, TileId, render, tilejson

router = APIRouter(prefix="/ogc", tags=["ogc"], dependencies=[requires("planner")])
basemap = APIRouter(prefix="/v1/basemap", tags=["map"], dependencies=[requires("dispatch")])

Format = Annotated[Literal["json", "html"] | None, Query(description="json (default) or html.")]


def _base(request: Request) -> str:
    """The base of absolute links: ``GEOSERVICE_PUBLIC_URL`` (never the Host header)."""
    return public_base(request)


def _wants_html(request: Request, f: str | None) -> bool:
    if f is not None:
        return f == "html"
    accept = request.headers.get("accept", "")
    return "text/html" in accept and "json" not in accept


def _whole(text: str) -> bool:
    """``text`` is a whole number a PostgreSQL ``bigint`` holds."""
    return text.isascii() and text.isdigit() and int(text) < 2**63


@router.get(
    "",
    operation_id="ogc_landing",
    response_model=documents.Landing,
    responses={200: {"content": HTML}, **errors(401, 403, 429)},
)
def landing(request: Request, f: Format = None) -> Response:
    """The landing page of the OGC API."""
    document = ogc.landing(_base(request))
    if _wants_html(request, f):
        return HTMLResponse(ogc.page_html(document["title"], ogc.links_html(document["links"])))
    return OrjsonResponse(document)


@router.get(
    "/conformance",
    operation_id="ogc_conformance",
    response_model=documents.Conformance,
    responses={200: {"content": HTML}, **errors(401, 403, 429)},
)
def conformance(request: Request, f: Format = None) -> Response:
    """The conformance classes this API implements."""
    if _wants_html(request, f):
        items = "".join(f"<li>{c}</li>" for c in ogc.CONFORMANCE)
        return HTMLResponse(ogc.page_html("Conformance", f"<ul>{items}</ul>"))
    return OrjsonResponse({"conformsTo": ogc.CONFORMANCE})


@router.get(
    "/collections",
    operation_id="ogc_collections",
    response_model=documents.CollectionList,
    responses={200: {"content": HTML}, **errors(401, 403, 429, 503)},
)
async def collections(request: Request, version: Version, f: Format = None) -> Response:
    """The collections, with their extents (CRS84) at the version read."""
    base = _base(request)
    document = await run_in_threadpool(ogc.collections, service_of(request).engine, base, version)
    if _wants_html(request, f):
        body = "".join(
            f"<h2>{c['title']}</h2>" + ogc.links_html(c["links"]) for c in document["collections"]
        )
        return HTMLResponse(ogc.page_html("Collections", body))
    return OrjsonResponse(document)


@router.get(
    "/collections/{collection_id}",
    operation_id="ogc_collection",
    response_model=documents.CollectionInfo,
    responses={200: {"content": HTML}, **errors(401, 403, 404, 429, 503)},
)
async def one_collection(
    request: Request, collection_id: str, version: Version, f: Format = None
) -> Response:
    """One collection."""
    source = collection(collection_id)

    def read() -> list[float] | None:
        with service_of(request).engine.connect() as conn:
            return extent(conn, source, version)

    document = ogc.describe(_base(request), source, await run_in_threadpool(read))
    if _wants_html(request, f):
        return HTMLResponse(ogc.page_html(source.title, ogc.links_html(document["links"])))
    return OrjsonResponse(document)


@router.get(
    "/collections/{collection_id}/items",
    operation_id="ogc_items",
    response_model=documents.FeaturePage,
    response_class=GeoJSONResponse,
    responses={200: {"content": HTML}, **errors(401, 403, 404, 422, 429, 503)},
)
async def items(
    request: Request,
    collection_id: str,
    version: Version,
    bbox: Annotated[str | None, Query(description="minlon,minlat,maxlon,maxlat (CRS84)")] = None,
    limit: Annotated[int, Query(ge=1, le=ogc.MAX_LIMIT)] = ogc.DEFAULT_LIMIT,
    after: Annotated[
        OptionalText, Query(description="Continue after this key (the `next` link sets it).")
    ] = None,
    q: Annotated[OptionalText, Query(description="Code or name containing this text.")] = None,
    f: Format = None,
) -> Response:
    """A page of features, in key order; the ``next`` link has the rest."""
    source = collection(collection_id)
    if after is not None and source.key == "id" and not _whole(after):
        msg = f"after {after!r}: {source.id} features are keyed by whole numbers"
        raise InvalidInput(msg)
    query = dict(request.query_params)
    html = _wants_html(request, f)
    box = parse_bbox(bbox)
    base = _base(request)
    return await ask(
        request, handlers.ogc_items, base, source.id, version, box, limit, after, q, query, html
    )


@router.get(
    "/collections/{collection_id}/items/{feature_id}",
    operation_id="ogc_item",
    response_model=documents.Item,
    response_class=GeoJSONResponse,
    responses=errors(401, 403, 404, 429, 503),
)
async def item(
    request: Request, collection_id: str, feature_id: Annotated[Text, Path()], version: Version
) -> Response:
    """One feature by its code (a road edge by its id)."""
    source = collection(collection_id)
    return await ask(request, handlers.ogc_item, source.id, version, feature_id)


@router.get(
    "/tileMatrixSets",
    operation_id="ogc_tile_matrix_sets",
    response_model=documents.TileMatrixSets,
    responses=errors(401, 403),
)
def tile_matrix_sets(request: Request) -> Response:
    href = f"{_base(request)}/ogc/tileMatrixSets/WebMercatorQuad"
    return OrjsonResponse(
        {
            "tileMatrixSets": [
                {"id": TMS.id, "uri": TMS.uri, "links": [ogc.link(href, "self", JSON)]}
            ]
        }
    )


@router.get(
    "/tileMatrixSets/WebMercatorQuad",
    operation_id="ogc_tile_matrix_set",
    response_model=TileMatrixSet,
    responses=errors(401, 403),
)
def tile_matrix_set() -> Response:
    """WebMercatorQuad, as ``morecantile`` describes it (OGC Two Dimensional Tile Matrix Set)."""
    return OrjsonResponse(TMS.model_dump(mode="json", exclude_none=True))


@router.get(
    "/collections/{collection_id}/tiles",
    operation_id="ogc_tilesets",
    response_model=documents.Tilesets,
    responses=errors(401, 403, 404),
)
def collection_tilesets(request: Request, collection_id: str) -> Response:
    return OrjsonResponse(ogc.tilesets(_base(request), collection(collection_id)))


@router.get(
    "/collections/{collection_id}/tiles/WebMercatorQuad",
    operation_id="ogc_tileset",
    response_model=documents.Tileset,
    responses=errors(401, 403, 404),
)
def collection_tileset(request: Request, collection_id: str) -> Response:
    return OrjsonResponse(ogc.tileset(_base(request), collection(collection_id)))


@router.get(
    "/collections/{collection_id}/tiles/WebMercatorQuad/tilejson.json",
    operation_id="ogc_tilejson",
    response_model=documents.TileJSON,
    responses=errors(401, 403, 404, 429, 503),
)
async def collection_tilejson(request: Request, collection_id: str, version: Version) -> Response:
    """TileJSON 3.0.0 of a collection at the version read (its tile URLs name it)."""
    source = collection(collection_id)
    url = (
        f"{_base(request)}/ogc/collections/{source.id}/tiles/WebMercatorQuad/"
        f"{{z}}/{{y}}/{{x}}?version={version}"
    )
    return OrjsonResponse(await _tilejson(request, source.id, [source.id], url, version))


@router.get(
    "/collections/{collection_id}/tiles/WebMercatorQuad/{z}/{y}/{x}",
    operation_id="ogc_tile",
    responses={
        200: {"content": {MVT: BINARY}, "description": "A Mapbox vector tile."},
        304: {"description": "Not modified (ETag)."},
        **errors(401, 403, 404, 422, 429, 503),
    },
    response_class=Response,
)
async def collection_tile(
    request: Request,
    collection_id: str,
    version: Version,
    z: Annotated[int, Path(description="Zoom (tile matrix).")],
    y: Annotated[int, Path(description="Row.")],
    x: Annotated[int, Path(description="Column.")],
) -> Response:
    """One vector tile of a collection (cached per version; ETag)."""
    source = collection(collection_id)
    return await _tile(request, f"ogc-{source.id}", [source.id], version, TileId.checked(z, x, y))


@basemap.get(
    "/tilejson.json",
    operation_id="basemap_tilejson",
    response_model=documents.TileJSON,
    responses=errors(401, 403, 429),
)
async def basemap_tilejson(request: Request, version: Version) -> Response:
    """TileJSON of the map page's basemap: every collection's layer, current version. Its
    tile URLs are ones the asking key may fetch: pinned to the version (``version=``) for
    planner keys and above, the current version's (with an ETag) for dispatch keys."""
    url = f"{_base(request)}/v1/basemap/{{z}}/{{x}}/{{y}}"
    if identity_of(request).may("planner"):
        url += f"?version={version}"
    return OrjsonResponse(
        await _tilejson(request, "geoservice basemap", list(BASEMAP), url, version)
    )


@basemap.get(
    "/{z}/{x}/{y}",
    operation_id="basemap_tile",
    responses={200: {"content": {MVT: BINARY}}, **errors(401, 403, 422, 429, 503)},
    response_class=Response,
)
async def basemap_tile(request: Request, version: Version, z: int, x: int, y: int) -> Response:
    """One basemap tile: boundaries, roads by class, patrol segments, stations and posts."""
    return await _tile(request, "basemap", list(BASEMAP), version, TileId.checked(z, x, y))


async def _tilejson(request: Request, name: str, layers: list[str], url: str, version: int):
    def bounds() -> list[float]:
        with service_of(request).engine.connect() as conn:
            return extent(conn, COLLECTIONS["district"], version) or [-180.0, -85.0, 180.0, 85.0]

    return tilejson(name, layers, url, await run_in_threadpool(bounds))


async def _tile(
    request: Request, name: str, layers: list[str], version: int, tile: TileId
) -> Response:
    etag = f'"{name}-v{version}-{tile.z}-{tile.x}-{tile.y}"'
    pinned = "version" in request.query_params or "at" in request.query_params
    headers = {
        "etag": etag,
        "cache-control": "private, max-age=86400, immutable" if pinned else "private, no-cache",
    }
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    service = service_of(request)
    key = (name, version, tile.z, tile.x, tile.y)
    body = service.tiles.get(key)
    if body is None:

        def make() -> bytes:
            with service.engine.connect() as conn:
                return render(conn, layers, version, tile)

        body = await run_in_threadpool(make)
        service.tiles.put(key, body)
    return Response(body, media_type=MVT, headers=headers)
