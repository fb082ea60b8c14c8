"""The heavy answers, as functions a worker process runs on one version's state.

Each takes the ``VersionState`` of the request's dataset version and checked parameters,
and returns the finished HTTP ``Answer`` (JSON bytes): the server process only streams it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from shapely.geometry.base import BaseGeometry
from sqlalchemy.engine import Engine

from geoservice import grid_design, ogc
from geoservice.bands import Bands
from geoservice.collections import COLLECTIONS, BBox, read_page
from geoservice.coverage import OriginKind, Origins, Weight, combine, officer_coverage
from geoservice.datasets import resolve_version
from geoservice.diff import diff_versions
from geoservice.errors import InvalidInput, NotFound
from geoservice.export import MEDIA_TYPE, export_bytes
from geoservice.isochrones import isochrones
from geoservice.layers import read_features
from geoservice.network import NoRoadNearby
from geoservice.patrols import CHINA, Position
from geoservice.responders import fastest, place
from geoservice.server.bodies import batch_points
from geoservice.server.models import ScenarioRequest
from geoservice.server.workers import Answer
from geoservice.state import VersionState

JSON = "application/json"
GEOJSON = "application/geo+json"
HTML_PAGE = "text/html"


def _json(body: Any, media_type: str = JSON) -> Answer:
    return Answer(media_type, orjson.dumps(body))


def ready(state: VersionState) -> Answer:
    """Nothing but having built ``state`` (a worker warming up for a new version), with
    what dispatch and live coverage read from the database on first use — the patrol
    units, the stations and posts as origins — so they answer through an outage."""
    if state.roads_snapshot is not None:
        state.patrol_units()
        model = state.coverage()
        model.origins(OriginKind.STATIONS)
        model.origins(OriginKind.POSTS)
    return _json({"dataset_version": state.version, "built_s": state.built_s})


def parse_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        msg = f"body is not valid JSON: {exc}"
        raise InvalidInput(msg) from None


def locate_one(state: VersionState, lon: float, lat: float) -> Answer:
    """``GET /v1/locate?version=``: a version other than the server's current one."""
    return _json(state.index.locate(lon, lat))


def locate_batch(state: VersionState, body: bytes) -> Answer:
    """``POST /v1/locate``: parse, check, locate and write the whole answer."""
    lon, lat = batch_points(parse_json(body))
    return Answer(JSON, state.index.answers.batch_json(state.index.locate_many(lon, lat)))


def isochrone_bands(
    state: VersionState,
    lon: float,
    lat: float,
    minutes: Bands,
    profile: str,
    buffer_m: float,
) -> Answer:
    """``GET /v1/isochrones`` from a WGS84 point."""
    result = isochrones(state.network(profile), lon, lat, minutes, buffer_m=buffer_m)
    return _json(result.to_geojson(), GEOJSON)


def dispatch(
    state: VersionState,
    lon: float,
    lat: float,
    k: int,
    positions: tuple[Position, ...],
    routes: bool = False,
) -> Answer:
    """``GET /v1/dispatch``: the locate answer and the ``k`` fastest responders."""
    reverse, fixed = state.responders()
    units = state.patrol_units()
    known = [p for p in positions if p.unit in units]
    moving = place(
        reverse,
        ["patrol"] * len(known),
        [p.unit for p in known],
        [units[p.unit].name for p in known],
        [p.lon for p in known],
        [p.lat for p in known],
    )
    answer = state.index.locate(lon, lat)
    try:
        answer["responders"] = fastest(reverse, fixed + moving, lon, lat, k, routes=routes)
        answer["note"] = None
    except NoRoadNearby as exc:
        answer["responders"] = []
        answer["note"] = str(exc)
    answer["patrols_reporting"] = len(known)
    return _json(answer)


def coverage_live(
    state: VersionState, minutes: Bands, positions: tuple[Position, ...], grids: bool
) -> Answer:
    """``GET /v1/coverage/live``: response coverage from the stations and posts and from
    the patrol units where they last reported (instead of their segments)."""
    model = state.coverage()
    units = state.patrol_units()
    known = [p for p in positions if p.unit in units]
    snaps = model.network.snap_points([p.lon for p in known], [p.lat for p in known], strict=False)
    patrols = Origins(snaps, [p.unit for p in known], ["patrol"] * len(known))
    origins = combine(
        [model.origins(OriginKind.STATIONS), model.origins(OriginKind.POSTS), patrols]
    )
    coverage = model.evaluate(origins, minutes, label="live")
    answer = coverage.to_json()
    answer["patrols"] = [
        {
            "unit": p.unit,
            "lon": round(p.lon, 7),
            "lat": round(p.lat, 7),
            "time": p.time.astimezone(CHINA).isoformat(),
        }
        for p in known
    ]
    answer["grid_minutes"] = coverage.grid_minutes() if grids else None
    return _json(answer)


def coverage_officers(state: VersionState) -> Answer:
    return _json(officer_coverage(state.engine, state.version))


def coverage_response(
    state: VersionState, minutes: Bands, origins: OriginKind, weight: Weight
) -> Answer:
    return _json(state.coverage().weighted(weight).response(minutes, origins).to_json())


def coverage_grids(
    state: VersionState, minutes: Bands, origins: OriginKind, weight: Weight
) -> Answer:
    return _json(state.coverage().weighted(weight).response(minutes, origins).grid_minutes())


def coverage_scenario(state: VersionState, body: bytes) -> Answer:
    """``POST /v1/coverage/scenario``: the body is read here, off the server's loop."""
    request = ScenarioRequest.model_validate(parse_json(body))
    model = state.coverage().weighted(request.weight)
    result = model.scenario(request.scenario(), request.minutes, request.origins)
    return _json(result.to_json())


def layer_features(
    state: VersionState, layer: str, bbox: tuple[float, float, float, float] | None
) -> Answer:
    return _json(read_features(state.engine, layer, bbox, state.version), GEOJSON)


def dataset_diff(engine: Engine, a: int, b: int, geojson: bool) -> Answer:
    """``GET /v1/datasets/{a}/diff/{b}`` (no version state: the database's rows); with
    ``geojson``, the changed features (removed ones as they were) for a map."""
    diff = diff_versions(engine, a, b)
    if geojson:
        return _json(diff.to_geojson(), GEOJSON)
    return _json(diff.to_json())


def dataset_export(engine: Engine, version: int) -> Answer:
    """``GET /v1/datasets/{n}/export.gpkg``: the version as a GeoPackage bundle."""
    name = f"geoservice-v{version}.gpkg"
    return Answer(
        MEDIA_TYPE,
        export_bytes(engine, version),
        headers={"content-disposition": f'attachment; filename="{name}"'},
    )


def grids_propose(
    engine: Engine,
    version: int | None,
    scope: grid_design.Scope,
    band: grid_design.Band,
    keep_fitting: bool,
    weight: str | None,
    rivers: Sequence[BaseGeometry],
) -> Answer:
    """``POST /v1/grids/propose``: the report and the proposed grids of the scope;
    ``rivers`` (WGS84 lines and areas) cut blocks besides the roads."""
    with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
        chosen = resolve_version(conn, version)
        proposal = grid_design.propose(
            conn, chosen, scope, band, keep_fitting=keep_fitting, weight=weight, rivers=rivers
        )
    return _json({"report": proposal.report(), "proposal": proposal.geojson()}, GEOJSON)


def ogc_items(
    engine: Engine,
    base: str,
    collection_id: str,
    version: int,
    bbox: BBox | None,
    limit: int,
    after: str | None,
    search: str | None,
    query: dict[str, str],
    html: bool = False,
) -> Answer:
    """A page of ``/ogc/collections/{id}/items``: GeoJSON, or with ``html`` its table (the
    page is written here, in the worker, so no server's event loop waits for it)."""
    document = ogc.items(
        engine,
        base,
        COLLECTIONS[collection_id],
        version,
        bbox=bbox,
        limit=limit,
        after=after,
        search=search,
        query=query,
    )
    if html:
        page = ogc.items_html(document, COLLECTIONS[collection_id].title)
        return Answer(HTML_PAGE, page.encode())
    return _json(document, GEOJSON)


def ogc_item(engine: Engine, collection_id: str, version: int, feature_id: str) -> Answer:
    """``/ogc/collections/{id}/items/{feature}``: one feature (404 when there is none)."""
    source = COLLECTIONS[collection_id]
    if source.key == "id" and not feature_id.isdigit():
        msg = f"no feature {feature_id!r} in {collection_id}: road edges have numeric ids"
        raise NotFound(msg)
    with engine.connect() as conn:
        page = read_page(conn, source, version, codes=[feature_id])
    if not page.features:
        msg = f"no feature {feature_id!r} in {collection_id} (dataset version {version})"
        raise NotFound(msg)
    return _json({**page.features[0], "dataset_version": version}, GEOJSON)
