"""The typed documents of ``/ogc``, the TileJSONs and ``/ready``, for the OpenAPI schema.

``geoservice.ogc`` and ``geoservice.tiles`` write these documents as plain JSON (the OGC
API – Features and Tiles standards and TileJSON 3.0.0 name their members); the models here
say what they hold, so that the schema is the contract the tests check every answer
against (``tests/test_contract.py``). The tile matrix set is morecantile's own model.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from geoservice.server.models import Geometry

HTML = {"text/html": {"schema": {"type": "string"}}}
"""The ``f=html`` alternative of an OGC document (a 200's extra media type)."""
BINARY = {"schema": {"type": "string", "format": "binary"}}
"""A media type whose body is bytes (tiles, GeoPackages, bulletins)."""
TEXT = {"schema": {"type": "string"}}


class Document(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Link(Document):
    href: str
    rel: str
    type: str
    title: str | None = None


class Landing(Document):
    """The landing page of the OGC API (or of a draft's, with its ``dataset_version``)."""

    title: str
    description: str
    links: list[Link]
    dataset_version: int | None = Field(None, description="A draft's: its version.")


class Conformance(Document):
    conformsTo: list[str]


class Spatial(Document):
    bbox: list[list[float]] = Field(description="One [minlon, minlat, maxlon, maxlat], or none.")
    crs: str


class Extent(Document):
    spatial: Spatial


class CollectionInfo(Document):
    id: str
    title: str
    itemType: Literal["feature"]
    crs: list[str]
    storageCrs: str
    extent: Extent
    links: list[Link]


class CollectionList(Document):
    collections: list[CollectionInfo]
    links: list[Link]


class Feature(Document):
    """A GeoJSON Feature of a collection (a road edge's ``id`` is its number as text)."""

    type: Literal["Feature"]
    id: str
    geometry: Geometry | None
    properties: dict[str, Any]


class Item(Feature):
    dataset_version: int


class FeaturePage(Document):
    """A page of features in key order; the ``next`` link has the rest."""

    type: Literal["FeatureCollection"]
    features: list[Feature]
    numberReturned: int
    timeStamp: str
    links: list[Link]
    dataset_version: int


class TileMatrixSetRef(Document):
    id: str
    uri: str
    links: list[Link]


class TileMatrixSets(Document):
    tileMatrixSets: list[TileMatrixSetRef]


class TilesetSummary(Document):
    title: str
    dataType: Literal["vector"]
    crs: str
    tileMatrixSetURI: str
    links: list[Link]


class Tilesets(Document):
    tilesets: list[TilesetSummary]


class TilesetLayer(Document):
    id: str
    dataType: Literal["vector"]
    geometryType: str
    minTileMatrix: str


class Tileset(TilesetSummary):
    tileMatrixSetLimits: list[dict[str, Any]]
    layers: list[TilesetLayer]


class VectorLayer(Document):
    id: str
    minzoom: int
    maxzoom: int
    fields: dict[str, str]


class TileJSON(Document):
    """TileJSON 3.0.0."""

    tilejson: Literal["3.0.0"]
    name: str
    scheme: Literal["xyz"]
    tiles: list[str]
    minzoom: int
    maxzoom: int
    bounds: list[float] = Field(min_length=4, max_length=4)
    center: list[float] = Field(min_length=3, max_length=3)
    vector_layers: list[VectorLayer]


class Ready(Document):
    status: Literal["ready"]
    dataset_version: int


class DiffProperties(Document):
    layer: str
    code: str
    change: str
    state: Literal["after", "before"]
    name: str | None


class DiffFeature(Document):
    type: Literal["Feature"]
    id: str
    geometry: Geometry | None
    properties: DiffProperties


class DiffFeatures(Document):
    """``f=geojson``: the changed features, after and before."""

    type: Literal["FeatureCollection"]
    features: list[DiffFeature]
    a: int
    b: int


def alternatives(*models: tuple[str, type[BaseModel]]) -> dict[str, Any]:
    """A 200's extra media types, each with its model: ``(media type, model)``."""
    content = {
        media: {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}
        for media, model in models
    }
    return {"content": content}


class Band(Document):
    measure: Literal["households", "residents"]
    low: float
    high: float


class Sizes(Document):
    min: float | None
    median: float | None
    max: float | None


class GridReport(BaseModel):
    """``report.json`` of a grid proposal (per large grid: its plan)."""

    dataset_version: int
    band: Band
    keep_fitting: bool
    weight: str | None
    large_grids: int
    grids_before: int
    grids_after: int
    kept: int
    in_band: int
    sizes_after: Sizes
    per_large_grid: list[dict[str, Any]]


class ProposedFeature(Document):
    type: Literal["Feature"]
    id: str
    geometry: Geometry
    properties: dict[str, Any] = Field(
        description="code, name, parent_code, the band's measure, kept, in_band."
    )


class ProposedGrids(Document):
    type: Literal["FeatureCollection"]
    features: list[ProposedFeature]
    dataset_version: int


class GridProposal(Document):
    """A grid proposal: its report and the grids of the large grids in scope."""

    report: GridReport
    proposal: ProposedGrids


class FeatureIn(BaseModel):
    """A draft feature to create or replace: a GeoJSON Feature of the layer, its
    ``properties`` holding ``code``, ``name`` and ``parent_code`` (and the layer's others)."""

    type: Literal["Feature"]
    geometry: Geometry
    properties: dict[str, Any]


class FeaturePatch(BaseModel):
    """A JSON Merge Patch (RFC 7396) of a draft feature's GeoJSON."""

    geometry: Geometry | None = None
    properties: dict[str, Any] | None = None


def body(model: type[BaseModel], *media_types: str) -> dict[str, Any]:
    """``openapi_extra`` documenting a body a route reads itself, in ``media_types``."""
    schema = {"$ref": f"#/components/schemas/{model.__name__}"}
    content = {media: {"schema": schema} for media in media_types}
    return {"requestBody": {"required": True, "content": content}}
