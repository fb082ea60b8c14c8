"""OGC API – Features (Part 1: Core, GeoJSON, HTML) and Tiles documents, free of HTTP.

Built from ``geoservice.collections``; links are absolute, made from the request's base
URL. The items of a collection come in pages in key order: the ``next`` link carries the
last key of the page (``after=``), so each page is one index range scan.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from sqlalchemy.engine import Engine

from geoservice.collections import COLLECTIONS, BBox, Collection, extent, read_page
from geoservice.tiles import MIN_ZOOM, TMS

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-common-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tileset",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/tilesets-list",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/geodata-tilesets",
    "http://www.opengis.net/spec/ogcapi-tiles-1/1.0/conf/mvt",
]
EDITING = [
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/create-replace-delete",
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/update",
    "http://www.opengis.net/spec/ogcapi-features-4/1.0/conf/features",
]
DRAFT_CONFORMANCE = [c for c in CONFORMANCE if "tiles" not in c] + EDITING
"""A draft's API: Features Part 1 and Part 4 (create, replace, update, delete)."""
DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000
JSON = "application/json"
GEOJSON = "application/geo+json"
HTML = "text/html"
MVT = "application/vnd.mapbox-vector-tile"
"""The media types the documents' links name (the server sends them too)."""


def link(href: str, rel: str, kind: str, title: str = "") -> dict[str, str]:
    out = {"href": href, "rel": rel, "type": kind}
    if title:
        out["title"] = title
    return out


def landing(base: str) -> dict[str, Any]:
    return {
        "title": "geoservice — Huicheng District grids and police",
        "description": "Grids, police units, towns, stations, patrol segments and roads of "
        "Huicheng District (惠城区), as OGC API – Features and vector tiles.",
        "links": [
            link(f"{base}/ogc", "self", JSON, "this document"),
            link(f"{base}/ogc?f=html", "alternate", HTML, "this document as HTML"),
            link(
                f"{base}/openapi.json",
                "service-desc",
                "application/vnd.oai.openapi+json;version=3.0",
                "the API definition",
            ),
            link(f"{base}/docs", "service-doc", HTML, "the API documentation"),
            link(f"{base}/ogc/conformance", "conformance", JSON, "conformance"),
            link(f"{base}/ogc/collections", "data", JSON, "the collections"),
            link(
                f"{base}/ogc/tileMatrixSets",
                "http://www.opengis.net/def/rel/ogc/1.0/tiling-schemes",
                JSON,
                "tile matrix sets",
            ),
        ],
    }


def draft_landing(base: str, version: int) -> dict[str, Any]:
    """The landing page of draft ``version``'s API (``/ogc/drafts/N``)."""
    root = f"{base}/ogc/drafts/{version}"
    return {
        "title": f"geoservice — draft {version}, open for editing",
        "description": f"The boundary layers of draft dataset version {version}: GIS keys "
        "create, replace, update and delete features (OGC API – Features Part 4); "
        f"`geoservice promote {version}` checks the whole draft and makes it current.",
        "links": [
            link(root, "self", JSON, "this document"),
            link(f"{root}?f=html", "alternate", HTML, "this document as HTML"),
            link(
                f"{base}/openapi.json",
                "service-desc",
                "application/vnd.oai.openapi+json;version=3.0",
                "the API definition",
            ),
            link(f"{root}/conformance", "conformance", JSON, "conformance"),
            link(f"{root}/collections", "data", JSON, "the collections"),
        ],
        "dataset_version": version,
    }


def describe(
    base: str, source: Collection, bbox: list[float] | None, *, root: str | None = None
) -> dict[str, Any]:
    """One collection's description (with its extent at the version read); ``root`` is
    the API's root (``{base}/ogc``, or a draft's ``/ogc/drafts/N``, without tiles)."""
    href = f"{root or base + '/ogc'}/collections/{source.id}"
    tiles = [
        link(
            f"{href}/tiles",
            "http://www.opengis.net/def/rel/ogc/1.0/tilesets-vector",
            JSON,
            "vector tiles",
        )
    ]
    return {
        "id": source.id,
        "title": source.title,
        "itemType": "feature",
        "crs": [CRS84],
        "storageCrs": CRS84,
        "extent": {"spatial": {"bbox": [bbox] if bbox else [], "crs": CRS84}},
        "links": [
            link(href, "self", JSON),
            link(f"{href}/items", "items", GEOJSON, "the features"),
            link(f"{href}/items?f=html", "items", HTML, "the features as HTML"),
            *(tiles if root is None else []),
        ],
    }


def collections(engine: Engine, base: str, version: int) -> dict[str, Any]:
    with engine.connect() as conn:
        described = [describe(base, s, extent(conn, s, version)) for s in COLLECTIONS.values()]
    return {
        "collections": described,
        "links": [link(f"{base}/ogc/collections", "self", JSON)],
    }


def items(
    engine: Engine,
    base: str,
    source: Collection,
    version: int,
    *,
    bbox: BBox | None,
    limit: int,
    after: str | None,
    search: str | None,
    query: dict[str, str],
    root: str | None = None,
    decimals: int = 8,
) -> dict[str, Any]:
    """One page of a collection's items as a GeoJSON FeatureCollection with its links
    (``root``: as in ``describe``; ``decimals``: as in ``read_page``)."""
    with engine.connect() as conn:
        page = read_page(
            conn,
            source,
            version,
            bbox=bbox,
            after=after,
            limit=limit,
            search=search,
            decimals=decimals,
        )
    root = root or f"{base}/ogc"
    href = f"{root}/collections/{source.id}/items"
    keep = urlencode([(k, v) for k, v in query.items() if k not in ("after", "f")])
    links = [
        link(f"{href}?{keep}" if keep else href, "self", GEOJSON),
        link(f"{root}/collections/{source.id}", "collection", JSON),
    ]
    if page.next_key is not None:
        separator = "&" if keep else ""
        after_key = urlencode({"after": page.next_key})
        links.append(link(f"{href}?{keep}{separator}{after_key}", "next", GEOJSON))
    return {
        "type": "FeatureCollection",
        "features": page.features,
        "numberReturned": len(page.features),
        "timeStamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "links": links,
        "dataset_version": version,
    }


def tilesets(base: str, source: Collection) -> dict[str, Any]:
    href = f"{base}/ogc/collections/{source.id}/tiles/WebMercatorQuad"
    return {
        "tilesets": [
            {
                "title": f"{source.title}, vector tiles",
                "dataType": "vector",
                "crs": "http://www.opengis.net/def/crs/EPSG/0/3857",
                "tileMatrixSetURI": TMS.uri,
                "links": [
                    link(href, "self", JSON),
                    link(
                        f"{base}/ogc/tileMatrixSets/WebMercatorQuad",
                        "http://www.opengis.net/def/rel/ogc/1.0/tiling-scheme",
                        JSON,
                    ),
                    link(f"{href}/tilejson.json", "describedby", JSON, "TileJSON"),
                ],
            }
        ]
    }


def tileset(base: str, source: Collection) -> dict[str, Any]:
    href = f"{base}/ogc/collections/{source.id}/tiles/WebMercatorQuad"
    return {
        "title": f"{source.title}, vector tiles",
        "dataType": "vector",
        "crs": "http://www.opengis.net/def/crs/EPSG/0/3857",
        "tileMatrixSetURI": TMS.uri,
        "tileMatrixSetLimits": [],
        "layers": [
            {
                "id": source.id,
                "dataType": "vector",
                "geometryType": source.geometry_type.lower(),
                "minTileMatrix": str(MIN_ZOOM[source.id]),
            }
        ],
        "links": [
            link(href, "self", JSON),
            link(f"{href}/{{tileMatrix}}/{{tileRow}}/{{tileCol}}", "item", MVT, "a tile"),
            link(f"{href}/tilejson.json", "describedby", JSON, "TileJSON"),
        ],
    }


def page_html(title: str, body: str) -> str:
    """A plain HTML page (no script, nothing from outside)."""
    return (
        "<!doctype html><html lang=zh><head><meta charset=utf-8>"
        f"<title>{html.escape(title)}</title><style>body{{font-family:sans-serif;margin:2em}}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 6px}</style>"
        f"</head><body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )


def links_html(links: list[dict[str, str]]) -> str:
    items = "".join(
        f'<li><a href="{html.escape(x["href"])}">{html.escape(x.get("title") or x["rel"])}</a>'
        f" ({html.escape(x['type'])})</li>"
        for x in links
    )
    return f"<ul>{items}</ul>"


def items_html(document: dict[str, Any], title: str) -> str:
    features = document["features"]
    names = list(features[0]["properties"]) if features else []
    head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
    rows = "".join(
        "<tr>" + "".join(f"<td>{_cell(f['properties'][n])}</td>" for n in names) + "</tr>"
        for f in features
    )
    count = document["numberReturned"]
    summary = f"<p>{count} features (dataset version {document['dataset_version']})</p>"
    table = f"<table><tr>{head}</tr>{rows}</table>"
    return page_html(title, summary + table + links_html(document["links"]))


def _cell(value: Any) -> str:
    return "" if value is None else html.escape(str(value))
