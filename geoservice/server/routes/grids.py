"""``/v1/grids/propose``: grid design for GIS staff (``geoservice grids propose`` over HTTP),
computed in the analysis lane."""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from shapely.geometry.base import BaseGeometry

from geoservice import grid_design
from geoservice.coverage import Weight
from geoservice.errors import InvalidInput
from geoservice.server import handlers
from geoservice.server.deps import ask, requires
from geoservice.server.documents import GridProposal
from geoservice.server.media import GeoJSONResponse
from geoservice.server.models import Strict, errors
from geoservice.server.params import geojson_geometry

router = APIRouter(prefix="/v1/grids", tags=["grids"], dependencies=[requires("gis")])

Codes = Annotated[list[Annotated[str, Field(max_length=64)]], Field(max_length=3000)]


RiverKind = Literal["LineString", "MultiLineString", "Polygon", "MultiPolygon"]
RIVER_KINDS: tuple[str, ...] = get_args(RiverKind)


class RiverGeometry(BaseModel):
    """A GeoJSON line or area, WGS84 longitude and latitude."""

    type: RiverKind
    coordinates: list[Any]


class RiverFeature(BaseModel):
    """A GeoJSON feature; its ``id``, ``properties`` and other members are ignored."""

    model_config = ConfigDict(extra="allow")

    type: Literal["Feature"]
    geometry: RiverGeometry | None


class Rivers(BaseModel):
    """A GeoJSON FeatureCollection of lines and areas, WGS84 (as ``ogr2ogr -f GeoJSON
    -t_srs EPSG:4326`` writes it; the demo's is ``/map/rivers.geojson``)."""

    model_config = ConfigDict(extra="allow")

    type: Literal["FeatureCollection"]
    features: list[RiverFeature] = Field(max_length=20_000)

    def geometries(self) -> list[BaseGeometry]:
        """The features' geometries as shapely objects; a feature without one is skipped.

        Raises ``InvalidGeometry`` naming the feature whose coordinates are not a line or
        an area of longitudes and latitudes."""
        geometries = (
            geojson_geometry(
                feature.geometry.model_dump(), RIVER_KINDS, f"rivers.features[{index}]", empty=True
            )
            for index, feature in enumerate(self.features)
            if feature.geometry is not None
        )
        return [geometry for geometry in geometries if not geometry.is_empty]


class ProposeRequest(Strict):
    """Which large grids, and the band (as ``geoservice grids propose``)."""

    large_grids: Codes = Field(default_factory=list)
    units: Codes = Field(default_factory=list)
    towns: Codes = Field(default_factory=list)
    all: bool = False
    households: str | None = Field(None, max_length=32, examples=["300-500"])
    residents: str | None = Field(None, max_length=32, examples=["800-1500"])
    weight: Literal["events"] | None = None
    keep_fitting: bool = True
    rivers: Rivers | None = Field(
        None,
        description="Lines or areas that cut blocks besides the roads (the database holds "
        "no water layer), as ``--rivers FILE`` of the command.",
    )
    version: int | None = Field(None, ge=1, le=2**31 - 1)


@router.post(
    "/propose",
    operation_id="grids_propose",
    response_model=GridProposal,
    response_class=GeoJSONResponse,
    responses={
        200: {
            "description": "``report`` (as report.json) and ``proposal``: the grids of the "
            "large grids in scope as a GeoJSON FeatureCollection.",
        },
        **errors(401, 403, 404, 415, 422, 429, 503),
    },
)
async def propose(request: Request, body: ProposeRequest) -> Response:
    """Propose base grids whose size lies in the band, nested in their large grids, with
    the grids already in the band kept (``keep_fitting``). Writes nothing: `geoservice
    grids propose --out DIR` writes the same as a bundle to load as a draft."""
    if body.households is not None and body.residents is not None:
        msg = "give households or residents, not both"
        raise InvalidInput(msg)
    band = (
        grid_design.Band.parse("residents", body.residents)
        if body.residents is not None
        else grid_design.Band.parse("households", body.households or "300-500")
    )
    scope = grid_design.Scope(
        tuple(body.large_grids), tuple(body.units), tuple(body.towns), body.all
    )
    rivers = body.rivers.geometries() if body.rivers is not None else []
    return await ask(
        request,
        handlers.grids_propose,
        body.version,
        scope,
        band,
        body.keep_fitting,
        None if body.weight is None else Weight(body.weight),
        rivers,
    )
