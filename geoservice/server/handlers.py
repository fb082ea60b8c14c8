"""Every answer a worker process makes, and the lane it waits in: the one registry of
where the heavy routes run (the server's loop answers single lookups itself; database
reads without heavy work run in the server's thread pool).

Each handler is declared with ``@handler(lane)`` and takes the ``VersionState`` of the
request's dataset version — or, declared ``Reads.RESOURCES``, the worker's ``Resources``
(its engines and states) — and checked, typed parameters, and returns the finished HTTP
``Answer`` (JSON bytes): the server process only streams it. Routes call
``deps.ask(request, handlers.NAME, *args, version=version)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any
from urllib.parse import quote

import orjson
from shapely.geometry.base import BaseGeometry

from geoservice import grid_design, ogc
from geoservice.bands import Bands
from geoservice.collections import COLLECTIONS, BBox, read_page
from geoservice.coverage import OriginKind, Origins, Weight, combine, officer_coverage
from geoservice.datasets import resolve_version
from geoservice.diff import diff_versions
from geoservice.errors import InvalidInput, NotFound
from geoservice.events import (
    MAX_EVENTS_PER_REQUEST,
    answer_rows,
    locate_events,
    parse_events,
    store_events,
)
from geoservice.export import MEDIA_TYPE, export_bytes
from geoservice.isochrones import isochrones
from geoservice.layers import read_features
from geoservice.network import NoRoadNearby
from geoservice.patrols import CHINA, Position
from geoservice.reports import MEDIA_TYPES, Format, PeriodKind, bulletin, file_name
from geoservice.responders import fastest, place
from geoservice.server.bodies import batch_points, parse_json
from geoservice.server.media import GEOJSON, HTML, JSON
from geoservice.server.models import ScenarioRequest
from geoservice.server.params import body_crs
from geoservice.server.workers import Answer, Lane, Reads, Resources, handler
from geoservice.state import VersionState


def _json(body: Any, media_type: str = JSON) -> Answer:
    return Answer(media_type, orjson.dumps(body))


@handler(Lane.CONTROL)
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


@handler(Lane.DISPATCH)
def locate_one(state: VersionState, lon: float, lat: float) -> Answer:
    """``GET /v1/locate?version=``: a version other than the server's current one."""
    return _json(state.index.locate(lon, lat))


@handler(Lane.DISPATCH)
def locate_batch(state: VersionState, body: bytes) -> Answer:
    """``POST /v1/locate``: parse, check, locate and write the whole answer."""
    lon, lat = batch_points(parse_json(body))
    return Answer(JSON, state.index.answers.batch_json(state.index.locate_many(lon, lat)))


@handler(Lane.DISPATCH)
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


@handler(Lane.DISPATCH)
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


@handler(Lane.ANALYSIS)
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


@handler(Lane.ANALYSIS)
def coverage_officers(state: VersionState) -> Answer:
    return _json(officer_coverage(state.engine, state.version))


@handler(Lane.ANALYSIS)
def coverage_response(
    state: VersionState, minutes: Bands, origins: OriginKind, weight: Weight
) -> Answer:
    return _json(state.coverage().weighted(weight).response(minutes, origins).to_json())


@handler(Lane.ANALYSIS)
def coverage_grids(
    state: VersionState, minutes: Bands, origins: OriginKind, weight: Weight
) -> Answer:
    return _json(state.coverage().weighted(weight).response(minutes, origins).grid_minutes())


@handler(Lane.ANALYSIS)
def coverage_scenario(state: VersionState, body: bytes) -> Answer:
    """``POST /v1/coverage/scenario``: the body is read here, off the server's loop."""
    request = ScenarioRequest.model_validate(parse_json(body))
    model = state.coverage().weighted(request.weight)
    result = model.scenario(request.scenario(), request.minutes, request.origins)
    return _json(result.to_json())


@handler(Lane.ANALYSIS)
def layer_features(
    state: VersionState, layer: str, bbox: tuple[float, float, float, float] | None
) -> Answer:
    return _json(read_features(state.engine, layer, bbox, state.version), GEOJSON)


@handler(Lane.ANALYSIS, Reads.RESOURCES)
def dataset_diff(resources: Resources, a: int, b: int, geojson: bool) -> Answer:
    """``GET /v1/datasets/{a}/diff/{b}`` (no version state: the database's rows); with
    ``geojson``, the changed features (removed ones as they were) for a map."""
    diff = diff_versions(resources.engine, a, b)
    if geojson:
        return _json(diff.to_geojson(), GEOJSON)
    return _json(diff.to_json())


@handler(Lane.ANALYSIS, Reads.RESOURCES)
def dataset_export(resources: Resources, version: int) -> Answer:
    """``GET /v1/datasets/{n}/export.gpkg``: the version as a GeoPackage bundle."""
    name = f"geoservice-v{version}.gpkg"
    return Answer(
        MEDIA_TYPE,
        export_bytes(resources.engine, version),
        headers={"content-disposition": f'attachment; filename="{name}"'},
    )


@handler(Lane.ANALYSIS, Reads.RESOURCES)
def grids_propose(
    resources: Resources,
    version: int | None,
    scope: grid_design.Scope,
    band: grid_design.Band,
    keep_fitting: bool,
    weight: Weight | None,
    rivers: Sequence[BaseGeometry],
) -> Answer:
    """``POST /v1/grids/propose``: the report and the proposed grids of the scope;
    ``rivers`` (WGS84 lines and areas) cut blocks besides the roads."""
    engine = resources.engine
    with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
        chosen = resolve_version(conn, version)
        proposal = grid_design.propose(
            conn, chosen, scope, band, keep_fitting=keep_fitting, weight=weight, rivers=rivers
        )
    return _json({"report": proposal.report(), "proposal": proposal.geojson()}, GEOJSON)


@handler(Lane.ANALYSIS, Reads.RESOURCES)
def ogc_items(
    resources: Resources,
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
        resources.engine,
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
        return Answer(HTML, page.encode())
    return _json(document, GEOJSON)


@handler(Lane.ANALYSIS, Reads.RESOURCES)
def ogc_item(resources: Resources, collection_id: str, version: int, feature_id: str) -> Answer:
    """``/ogc/collections/{id}/items/{feature}``: one feature (404 when there is none)."""
    source = COLLECTIONS[collection_id]
    if source.key == "id" and not feature_id.isdigit():
        msg = f"no feature {feature_id!r} in {collection_id}: road edges have numeric ids"
        raise NotFound(msg)
    with resources.engine.connect() as conn:
        page = read_page(conn, source, version, codes=[feature_id])
    if not page.features:
        msg = f"no feature {feature_id!r} in {collection_id} (dataset version {version})"
        raise NotFound(msg)
    return _json({**page.features[0], "dataset_version": version}, GEOJSON)


@handler(Lane.ANALYSIS, Reads.RESOURCES)
def record_events(resources: Resources, body: bytes, who: str) -> Answer:
    """``POST /v1/events``: each event checked, located in the dataset version current at
    its time (that version's index, built here if need be), routed by its category, and
    stored all or none by the recorder's login."""
    payload = parse_json(body)
    if not isinstance(payload, dict) or not isinstance(payload.get("events"), list):
        msg = 'body must be an object {"events": [{"id", "time", "category", ...}]}'
        raise InvalidInput(msg)
    items = payload["events"]
    if not 1 <= len(items) <= MAX_EVENTS_PER_REQUEST:
        msg = f"{len(items):,} events; send 1 to {MAX_EVENTS_PER_REQUEST:,}"
        raise InvalidInput(msg)
    if not all(isinstance(item, dict) for item in items):
        msg = "every item of events must be an object"
        raise InvalidInput(msg)
    events = parse_events(items, "events", body_crs(payload))
    frame, _ = locate_events(resources.engine, events, resources.index)
    store_events(resources.recorder, frame, f"api:{who}", replace=False)
    return _json({"recorded": len(frame), "events": answer_rows(frame)})


@handler(Lane.ANALYSIS)
def report(
    state: VersionState, kind: PeriodKind, day: date, town: str | None, fmt: Format
) -> Answer:
    """``GET /v1/reports/{period}``: the bulletin's bytes from this worker's coverage model
    (matplotlib and WeasyPrint take seconds of CPU), named for download."""
    period, data = bulletin(state.engine, state.coverage(), kind, day, town, fmt)
    name = file_name(period, town, fmt)
    return Answer(
        MEDIA_TYPES[fmt],
        data,
        headers={
            "content-disposition": f"attachment; filename=\"{name}\"; filename*=UTF-8''"
            + quote(name)
        },
    )
