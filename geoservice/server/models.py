"""The typed contract of ``/v1``: request and answer models for the OpenAPI schema.

Answers are written as JSON bytes by the engine (the hot paths never build these
objects); the models say what those bytes are, so that integrators can generate clients,
and the tests parse every answer with them, strictly (``extra="forbid"``). A request model
with validators (``ScenarioRequest``, ``PositionsRequest``) also reads its body into the
core's types.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from geoservice.bands import DEFAULT_BANDS, Bands
from geoservice.coverage import OriginKind, Scenario, Weight
from geoservice.crs import InputCRS, parse_crs
from geoservice.errors import InvalidInput, PayloadTooLarge, shown
from geoservice.events import StatsBy
from geoservice.patrols import Position
from geoservice.points import named_items, to_wgs84_points
from geoservice.server.params import body_crs
from geoservice.times import parse_time


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Named(Strict):
    code: str
    name: str


class NamedElsewhere(Strict):
    """A feature kept by code (an event's grid) named from another version than the one it
    was recorded in: its name is null where that version no longer has the code."""

    code: str
    name: str | None


class Unit(Named):
    kind: Literal["village", "community", "scenic_area"]


class LonLat(Strict):
    lon: float
    lat: float


class Nearest(Strict):
    grid_code: str
    distance_m: float = Field(description="Metres to the nearest grid (EPSG:4547).")


class LocateResult(Strict):
    """One point's base grid and its whole hierarchy; ``outside``: nulls and ``nearest``."""

    status: Literal["inside", "boundary", "outside"]
    point: LonLat = Field(description="The point looked up, in WGS84.")
    grid: Named | None
    large_grid: Named | None
    unit: Unit | None
    town: Named | None
    district: Named | None
    officers: list[Named] = Field(description="The unit's officers: code and name only.")
    station: Named | None = Field(description="The town's police station.")
    post: Named | None = Field(description="The unit's police post.")
    nearest: Nearest | None
    dataset_version: int

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "example": {
                "status": "inside",
                "point": {"lon": 114.41, "lat": 23.11},
                "grid": {"code": "4413020020180201", "name": "麦兴社区居委会2-1网格"},
                "large_grid": {"code": "44130200201802", "name": "麦兴社区居委会第2大网格"},
                "unit": {"code": "441302002018", "name": "麦兴社区居委会", "kind": "community"},
                "town": {"code": "441302002", "name": "桥西街道"},
                "district": {"code": "441302", "name": "惠城区"},
                "officers": [{"code": "JY0069", "name": "邓辉"}],
                "station": {"code": "PS441302002", "name": "桥西派出所"},
                "post": {"code": "PP441302002018", "name": "麦兴社区警务室"},
                "nearest": None,
                "dataset_version": 1,
            }
        },
    )


class LineString(Strict):
    """A GeoJSON LineString (WGS84 lon, lat)."""

    type: Literal["LineString"]
    coordinates: list[list[float]]


class Responder(Strict):
    kind: Literal["station", "post", "patrol"]
    code: str
    name: str
    eta_s: float = Field(description="Seconds by road to the incident (0.1 s).")
    distance_m: float = Field(description="Road metres along the fastest way.")
    lon: float = Field(description="Where the responder joins the road (WGS84).")
    lat: float
    route: LineString | None = Field(
        None,
        description="With routes=true: the fastest way by road, from where the responder "
        "joins the road to the incident's point on it (WGS84).",
    )


class Dispatch(LocateResult):
    """The locate answer plus the fastest responders by road."""

    responders: list[Responder] = Field(description="Quickest first; at most k.")
    note: str | None = Field(description="Why there are no responders (no road nearby).")
    patrols_reporting: int = Field(description="Patrol units with a recent position.")

    model_config = ConfigDict(extra="forbid")


class PositionIn(Strict):
    """One position as a device sends it (the schema of ``PositionsRequest.positions``)."""

    unit: str = Field(examples=["XD01-1"])
    lon: float
    lat: float
    time: str = Field(description="ISO 8601; China time without an offset.")


MAX_POSITIONS = 10_000
"""At most this many positions in one body."""
POSITION_FIELDS = frozenset(PositionIn.model_fields)


class PositionsRequest(Strict):
    """A positions body (``POST /v1/patrols/positions``), 1 to 10,000 positions in ``crs``,
    read into ``Position`` values (WGS84, aware times: China time without an offset); a
    bad value anywhere refuses the whole body, naming it. Known units, times not ahead and
    places inside the district are checked next, by ``patrols.check_positions``."""

    crs: InputCRS = Field(
        default_factory=lambda: parse_crs(None),
        description="wgs84, cgcs2000, gcj02, bd09 or EPSG:NNNN.",
        json_schema_extra={"default": "wgs84"},
    )
    positions: tuple[Position, ...]

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    @model_validator(mode="before")
    @classmethod
    def _an_object_of_positions(cls, body: Any) -> Any:
        if isinstance(body, dict):
            body_crs(body)
        if not isinstance(body, dict) or not isinstance(body.get("positions"), list):
            msg = 'body must be an object {"positions": [{"unit", "lon", "lat", "time"}, ...]}'
            raise InvalidInput(msg)
        items = body["positions"]
        if not items:
            msg = f"positions is empty; send 1 to {MAX_POSITIONS:,}"
            raise InvalidInput(msg)
        if len(items) > MAX_POSITIONS:
            msg = f"{len(items):,} positions is more than the limit of {MAX_POSITIONS:,}"
            raise PayloadTooLarge(msg)
        unknown_fields = sorted(set(body) - {"positions", "crs"})
        if unknown_fields:
            msg = f"unknown field(s) {unknown_fields}; expected positions and optionally crs"
            raise InvalidInput(msg)
        return body

    @field_validator("crs", mode="plain", json_schema_input_type=str)
    @classmethod
    def _crs(cls, value: str | None) -> InputCRS:
        return parse_crs(value)

    @field_validator(
        "positions",
        mode="plain",
        json_schema_input_type=Annotated[
            list[PositionIn], Field(min_length=1, max_length=MAX_POSITIONS)
        ],
    )
    @classmethod
    def _positions(cls, items: list[Any], info: ValidationInfo) -> tuple[Position, ...]:
        times = []
        for i, item in enumerate(items):
            if not isinstance(item, dict) or item.keys() != POSITION_FIELDS:
                msg = (
                    f"positions[{i}] is {shown(item)}; expected an object with unit, lon, lat, time"
                )
                raise InvalidInput(msg)
            if not isinstance(item["unit"], str):
                msg = f"positions[{i}].unit {shown(item['unit'])}: expected a patrol unit's code"
                raise InvalidInput(msg)
            times.append(parse_time(item["time"], f"positions[{i}].time"))
        points = [[item["lon"], item["lat"]] for item in items]
        try:
            lon, lat = to_wgs84_points(points, info.data["crs"])
        except InvalidInput as exc:
            raise InvalidInput(named_items(str(exc), "positions")) from None
        return tuple(
            Position(item["unit"], x, y, when)
            for item, x, y, when in zip(items, lon.tolist(), lat.tolist(), times, strict=True)
        )


class PositionsRecorded(Strict):
    recorded: int
    ignored_too_old: int = Field(description="Positions older than the kept age, not stored.")
    max_age_s: float
    refused: list[RefusedPosition] = Field(
        description="Positions not stored: a jump faster than max_speed_kmh from the unit's "
        "last position."
    )
    max_speed_kmh: float
    dataset_version: int = Field(
        description="The version whose patrol units and grids judged them."
    )


class RefusedPosition(Strict):
    unit: str
    time: str
    reason: str


class PatrolPosition(Strict):
    unit: str
    lon: float
    lat: float
    time: str


class EventIn(Strict):
    id: str
    time: str
    category: str = Field(examples=["city"])
    status: Literal["open", "closed"]
    lon: float
    lat: float
    closed_at: str | None = None
    description: str | None = None


class EventsRequest(Strict):
    events: list[EventIn] = Field(min_length=1, max_length=10_000)
    crs: str = "wgs84"


class RoutedEvent(Strict):
    id: str
    grid: Named = Field(description="The grid the event is in, in the version of its time.")
    unit: Named | None
    town: Named | None
    dataset_version: int = Field(description="The version current at the event's time.")
    route: Literal["town", "department", "lead_department"]
    handler: str | None
    helpers: list[str] | None = None
    deadline_days: int


class EventsRecorded(Strict):
    recorded: int
    events: list[RoutedEvent]


class EventGroup(Strict):
    code: str | None = Field(
        description="The town, unit, grid or category code, or the month (YYYY-MM); null "
        "for events without a unit or town."
    )
    name: str | None
    events: int
    closed: int
    open: int
    closure_rate: float
    median_handling_hours: float | None
    overdue: int


class EventStats(Strict):
    by: StatsBy
    from_: str | None = Field(alias="from")
    to: str | None
    events: int
    closed: int
    open: int
    closure_rate: float | None
    overdue: int
    groups: list[EventGroup]
    dataset_version: int | None = Field(
        description="The version the groups' names come from (the current one)."
    )


class OverdueEvent(Strict):
    id: str
    time: str
    category: str
    grid: NamedElsewhere = Field(
        description="Named as in the current version (null if it has gone)."
    )
    unit: NamedElsewhere | None
    town: NamedElsewhere | None
    deadline: str
    days_overdue: float
    route: str
    handler: str | None
    helpers: list[str] | None = None
    deadline_days: int


class OverdueEvents(Strict):
    as_of: str
    overdue: int
    events: list[OverdueEvent]
    dataset_version: int | None = Field(
        description="The version the names come from (the current one)."
    )


class LocateBatchRequest(Strict):
    crs: str = Field("wgs84", description="wgs84, cgcs2000, gcj02, bd09 or EPSG:NNNN.")
    points: list[tuple[float, float] | LonLat] = Field(
        min_length=1,
        max_length=100_000,
        description="[lon, lat] pairs or {lon, lat} objects (x, y in ``crs``); 1 to 100,000.",
        examples=[[[114.41, 23.11], [114.52, 23.16]]],
    )


class LocateBatch(Strict):
    dataset_version: int
    results: list[LocateResult] = Field(description="In input order.")


class BandProperties(Strict):
    minutes: float
    area_km2: float
    tolerance_m: float = Field(description="The polygon's distance from the exact buffer.")


class Geometry(BaseModel):
    """A GeoJSON geometry (RFC 7946), WGS84."""

    type: str
    coordinates: Any


class BandFeature(Strict):
    type: Literal["Feature"]
    geometry: Geometry
    properties: BandProperties


class Isochrones(Strict):
    """Nested bands, smallest first."""

    type: Literal["FeatureCollection"]
    features: list[BandFeature]
    origin: LonLat = Field(description="The point actually routed from (snapped onto a road).")
    profile: str
    buffer_m: float
    dataset_version: int


class TownOfficers(Strict):
    code: str
    name: str
    units: int
    units_covered: int
    officers: int
    residents: int
    residents_per_officer: float | None


class HeavyUnit(Strict):
    code: str
    name: str
    town: Named
    officers: int
    residents: int
    residents_per_officer: float


class Assignment(Strict):
    officer_code: str
    unit_code: str


class OfficerCoverage(Strict):
    ok: bool
    units_total: int
    units_covered: int
    uncovered_units: list[Named]
    officers_total: int
    officers_assigned: int
    unassigned_officers: list[Named]
    unknown_unit_assignments: list[Assignment]
    by_town: list[TownOfficers]
    heaviest_units: list[HeavyUnit]
    dataset_version: int


class CoverageBand(Strict):
    minutes: float
    grids_total: int
    grids_covered: int
    grid_share: float
    area_share: float
    population_share: float


class UncoveredGrid(Strict):
    code: str
    name: str
    minutes_to_reach: float | None = Field(
        description="Rounded up to 0.01 min; null beyond 60 minutes."
    )


class ResponseCoverage(Strict):
    minutes: list[float]
    origins: str
    bands: list[CoverageBand]
    uncovered_grids: list[UncoveredGrid]
    weight: Weight = Field(description="What population_share weighs: residents, or grid events.")
    dataset_version: int


class BandDifference(Strict):
    minutes: float
    grids_covered: float
    grid_share: float
    area_share: float
    population_share: float


class ChangedGrid(Strict):
    code: str
    before: float | None
    after: float | None


class ScenarioCoverage(ResponseCoverage):
    baseline: list[CoverageBand]
    difference: list[BandDifference]
    changed_grids: list[ChangedGrid] = Field(
        description="Grids covered in some band before and not after, or after and not before."
    )


class GridMinutes(Strict):
    minutes: list[float]
    origins: str
    codes: list[str]
    minutes_to_reach: list[float | None] = Field(
        description="Per grid, in the order of ``codes``; rounded up; null beyond 60 minutes."
    )
    weight: Weight
    dataset_version: int


class LiveCoverage(ResponseCoverage):
    patrols: list[PatrolPosition] = Field(description="The positions used (last per unit).")
    grid_minutes: GridMinutes | None = Field(description="With grids=true: every grid's minutes.")


class Identity(Strict):
    name: str
    role: Literal["tracker", "dispatch", "planner", "gis", "admin"]
    units: list[str] = Field(description="The patrol units whose positions the key may post.")


MAX_SCENARIO_ITEMS = 10_000
"""At most this many items in each list of a scenario."""


class ScenarioRequest(Strict):
    """A what-if body (``POST /v1/coverage/scenario``): the question (``minutes``,
    ``origins``, ``weight``) and the changes (points in ``crs``); each value is checked as
    it is read, and a bad one is named."""

    minutes: Bands = Field(
        default_factory=lambda: DEFAULT_BANDS,
        description='Band limits in minutes (a list, or a text such as "1,3,5"), each in '
        "(0, 60], at most 6.",
        json_schema_extra={"default": [1, 3, 5]},
    )
    origins: OriginKind = OriginKind.ALL
    crs: str | None = Field("wgs84", description="wgs84, cgcs2000, gcj02, bd09 or EPSG:NNNN.")
    add_points: list[Any] = Field([], examples=[[[114.43, 23.09]]])
    remove_origins: tuple[str, ...] = ()
    close_edges: tuple[int, ...] = ()
    close_roads: tuple[str, ...] = Field((), examples=[["东江2号桥"]])
    speeds_kmh: dict[str, float] = Field({}, examples=[{"primary": 30}])
    weight: Weight = Weight.RESIDENTS

    @model_validator(mode="before")
    @classmethod
    def _an_object_of_known_fields(cls, body: Any) -> Any:
        if not isinstance(body, dict):
            msg = "scenario body must be a JSON object"
            raise InvalidInput(msg)
        known = sorted(cls.model_fields)
        unknown = sorted(set(body) - set(known))
        if unknown:
            msg = f"unknown scenario field(s) {unknown}; expected some of {known}"
            raise InvalidInput(msg)
        body_crs(body)
        return body

    @field_validator("minutes", mode="plain", json_schema_input_type=list[float] | str)
    @classmethod
    def _bands(cls, value: Any) -> Bands:
        if value is None:
            return DEFAULT_BANDS
        if isinstance(value, str):
            return Bands.parse(value)
        return Bands(value if isinstance(value, list) else [value])

    @field_validator("origins", mode="plain", json_schema_input_type=OriginKind)
    @classmethod
    def _origins(cls, value: Any) -> OriginKind:
        return OriginKind.parse(value, "origins")

    @field_validator("weight", mode="plain", json_schema_input_type=Weight)
    @classmethod
    def _weight(cls, value: Any) -> Weight:
        return Weight.parse(value, "weight")

    @field_validator(
        "add_points", mode="plain", json_schema_input_type=list[tuple[float, float] | LonLat]
    )
    @classmethod
    def _points(cls, value: Any, info: ValidationInfo) -> list[Any]:
        return _items(value, info)  # read with the crs by ``scenario``

    @field_validator("close_edges", mode="plain", json_schema_input_type=list[int])
    @classmethod
    def _edge_ids(cls, value: Any, info: ValidationInfo) -> tuple[int, ...]:
        edges = _items(value, info)
        if not all(isinstance(e, int) and not isinstance(e, bool) for e in edges):
            msg = f"close_edges must be road edge ids (integers), got {shown(edges[:5])}"
            raise InvalidInput(msg)
        return tuple(edges)

    @field_validator(
        "remove_origins", "close_roads", mode="plain", json_schema_input_type=list[str]
    )
    @classmethod
    def _texts(cls, value: Any, info: ValidationInfo) -> tuple[str, ...]:
        texts = _items(value, info)
        if not all(isinstance(v, str) for v in texts):
            msg = f"{info.field_name} must be a list of strings, got {shown(texts[:5])}"
            raise InvalidInput(msg)
        return tuple(texts)

    @field_validator("speeds_kmh", mode="plain", json_schema_input_type=dict[str, float])
    @classmethod
    def _speeds(cls, value: Any) -> dict[str, float]:
        speeds = value or {}
        if not isinstance(speeds, dict):
            msg = 'speeds_kmh must be an object {"primary": 30, ...}'
            raise InvalidInput(msg)
        for highway, speed in speeds.items():
            if (
                not isinstance(speed, int | float)
                or isinstance(speed, bool)
                or not 0 < speed <= 200
            ):
                msg = (
                    f"speeds_kmh[{shown(highway)}] = {shown(speed)}; "
                    "expected a number in (0, 200] km/h"
                )
                raise InvalidInput(msg)
        return {str(k): float(v) for k, v in speeds.items()}

    def scenario(self) -> Scenario:
        """The changes as the core's ``Scenario`` (added points in WGS84)."""
        points: tuple[tuple[float, float], ...] = ()
        if self.add_points:
            lon, lat = to_wgs84_points(self.add_points, parse_crs(self.crs))
            points = tuple(zip(lon.tolist(), lat.tolist(), strict=True))
        return Scenario(
            add_points=points,
            remove_origins=self.remove_origins,
            close_edges=self.close_edges,
            close_roads=self.close_roads,
            speeds_kmh=self.speeds_kmh,
        )


def _items(value: Any, info: ValidationInfo) -> list[Any]:
    """A list field of a body (null: empty), at most ``MAX_SCENARIO_ITEMS`` long."""
    items = value or []
    if not isinstance(items, list):
        msg = f"{info.field_name} must be a list"
        raise InvalidInput(msg)
    if len(items) > MAX_SCENARIO_ITEMS:
        msg = f"{info.field_name} has {len(items):,} items; at most {MAX_SCENARIO_ITEMS:,}"
        raise InvalidInput(msg)
    return items


class LayerProperties(BaseModel):
    code: str
    name: str
    parent_code: str | None


class LayerFeature(Strict):
    type: Literal["Feature"]
    id: str
    geometry: Geometry
    properties: LayerProperties


class Layer(Strict):
    type: Literal["FeatureCollection"]
    features: list[LayerFeature]
    layer: str
    dataset_version: int


class Health(Strict):
    status: Literal["ok", "degraded"]
    database: Literal["up", "down"]
    dataset_version: int | None


class AuditEntry(Strict):
    id: int
    at: datetime
    actor: str
    via: Literal["cli", "api"]
    os_user: str | None
    action: str
    version_id: int | None
    detail: dict[str, Any]
    note: str


class KeyListing(Strict):
    name: str
    key_id: str
    role: Literal["tracker", "dispatch", "planner", "gis", "admin"]
    created_at: datetime
    created_by: str
    revoked_at: datetime | None
    rate_per_s: float | None
    burst: int | None
    units: list[str] | None


class DatasetVersion(Strict):
    id: int
    created_at: datetime
    created_by: str
    note: str
    status: Literal["published", "draft", "archived"]
    parent_id: int | None
    sources: list[dict[str, str]]
    layers: dict[str, int] = Field(description="Layer -> snapshot id.")
    current: bool


class LayerChanges(Strict):
    added: list[str]
    removed: list[str]
    geometry: list[str]
    attributes: list[str]
    edges_a: int | None = None
    edges_b: int | None = None


class DraftOpened(Strict):
    draft: int = Field(description="The new draft dataset version.")
    ogc: str = Field(description="Its OGC API (Features Part 4), for QGIS.")


class DatasetDiff(Strict):
    a: int
    b: int
    layers: dict[str, LayerChanges]


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI error responses (problem+json) for a route."""
    meaning = {
        401: "No key, an unknown key or a revoked key.",
        403: "The key's role may not do this.",
        404: "No such resource (or no dataset published yet).",
        409: "The request contradicts what is stored (a code that exists; not a draft).",
        412: "If-Match names a state that is no longer the stored one: read it again.",
        413: "The request is over a size limit.",
        415: "The body's Content-Type is not one this route reads.",
        422: "Bad input; ``detail`` names the value and what was expected.",
        429: "Over the key's rate limit; see ``Retry-After``.",
        503: "The database or a worker is unavailable; try again.",
    }
    schema = {"$ref": "#/components/schemas/Problem"}
    return {
        status: {
            "description": meaning[status],
            "content": {"application/problem+json": {"schema": schema}},
        }
        for status in statuses
    }


def json_body(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` documenting a JSON body the route reads itself (under a limit)."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}
            },
        }
    }
