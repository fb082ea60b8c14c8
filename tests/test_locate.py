"""Locate: exact agreement with GEOS covers, the boundary rule, nearest grid, CRS input."""

from __future__ import annotations

import numpy as np
import orjson
import pyproj
import pytest
import shapely
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from shapely.geometry import MultiPolygon, Polygon

from geoservice.crs import parse_crs, wgs84_to_bd09, wgs84_to_gcj02
from geoservice.errors import InvalidCoordinates, PayloadTooLarge, UnknownCRS
from geoservice.locate import LocateIndex
from geoservice.locate.cells import OUTSIDE_CELL, TILE, CellTable, _tiled
from geoservice.locate.results import Grid
from geoservice.outside import TIE_M
from geoservice.points import parse_point, to_wgs84_points

TO_METRIC = pyproj.Transformer.from_crs(4326, 4547, always_xy=True)


def oracle(index: LocateIndex, lon: float, lat: float) -> tuple[str, str, float | None]:
    """Brute force: GEOS covers against every grid; smallest code on ties; nearest in 4547
    (within ``TIE_M`` of the nearest is a tie, as in the index)."""
    covering = np.flatnonzero(shapely.covers(index.polygons, shapely.Point(lon, lat)))
    if len(covering) == 1:
        return "inside", index.codes[covering[0]], None
    if len(covering) > 1:
        return "boundary", min(index.codes[covering]), None
    point = shapely.Point(*TO_METRIC.transform(lon, lat))
    distance = shapely.distance(_metric(index), point)
    nearest = np.flatnonzero(distance <= distance.min() + TIE_M)
    return "outside", min(index.codes[nearest]), float(distance.min())


_METRIC: dict[int, np.ndarray] = {}


def _metric(index: LocateIndex) -> np.ndarray:
    if id(index) not in _METRIC:
        _METRIC[id(index)] = shapely.transform(
            index.polygons, lambda xy: np.column_stack(TO_METRIC.transform(xy[:, 0], xy[:, 1]))
        )
    return _METRIC[id(index)]


def check(index: LocateIndex, lon: float, lat: float) -> None:
    status, code, distance = oracle(index, lon, lat)
    answer = index.locate(lon, lat)
    assert answer["status"] == status
    if status == "outside":
        assert answer["grid"] is None and answer["unit"] is None
        assert answer["nearest"]["grid_code"] == code
        assert answer["nearest"]["distance_m"] == pytest.approx(distance, abs=0.01)
    else:
        assert answer["grid"]["code"] == code
        assert answer["nearest"] is None


def _shared_vertex(index: LocateIndex) -> tuple[float, float]:
    coords = shapely.get_coordinates(index.polygons[:200])
    values, counts = np.unique(coords, axis=0, return_counts=True)
    return tuple(values[np.argmax(counts)])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.floats(114.10, 114.80), st.floats(22.90, 23.43))
@example(114.41, 23.11)
@example(114.1220782, 22.9175012)  # just outside the district's bounding corner
def test_random_points_agree_with_brute_force_covers(demo_index, lon, lat) -> None:
    check(demo_index, lon, lat)


def test_pinned_points_on_shared_vertices_and_edges(demo_index) -> None:
    vertex = _shared_vertex(demo_index)
    check(demo_index, *vertex)
    assert demo_index.locate(*vertex)["status"] == "boundary"
    # midpoint of an edge two grids share
    a, b = demo_index.polygons[0], None
    neighbours = shapely.STRtree(demo_index.polygons).query(a, predicate="touches")
    b = demo_index.polygons[neighbours[0]]
    shared = shapely.intersection(a.boundary, b.boundary)
    segment = max(shapely.get_parts(shapely.line_merge(shared)), key=lambda g: g.length)
    mid = segment.interpolate(0.5, normalized=True)
    check(demo_index, mid.x, mid.y)
    # exact vertices of the shared edge: boundary, same answer every time
    first = demo_index.locate(*segment.coords[0])
    assert first["status"] == "boundary"
    assert all(demo_index.locate(*segment.coords[0]) == first for _ in range(3))


def test_points_just_outside_the_district(demo_index) -> None:
    district = shapely.coverage_union_all(demo_index.polygons)
    ring = district.geoms[0].exterior if isinstance(district, MultiPolygon) else district.exterior
    for fraction in np.linspace(0, 1, 25):
        on_edge = ring.interpolate(fraction, normalized=True)
        check(demo_index, on_edge.x, on_edge.y)
        outward = shapely.Point(on_edge.x + 1e-5, on_edge.y)
        check(demo_index, outward.x, outward.y)


def test_batch_equals_single(demo_index) -> None:
    rng = np.random.default_rng(4)
    lon = np.concatenate([rng.uniform(114.1, 114.8, 3000), [_shared_vertex(demo_index)[0]]])
    lat = np.concatenate([rng.uniform(22.9, 23.43, 3000), [_shared_vertex(demo_index)[1]]])
    batch = demo_index.locate_many(lon, lat)
    results = demo_index.answers.results(batch)
    assert results == [demo_index.locate(x, y) for x, y in zip(lon, lat, strict=True)]
    assert orjson.loads(demo_index.answers.batch_json(batch))["results"] == results
    assert {r["status"] for r in results} == {"inside", "outside", "boundary"}


def test_hierarchy_is_consistent_and_personal_data_absent(demo_index, demo_files) -> None:
    import pandas as pd

    phones = set(pd.read_csv(demo_files.officers, dtype=str).phone)
    for grid in demo_index.grids:
        h = grid.hierarchy
        assert h["large_grid"]["code"] == grid.code[:14]
        assert h["unit"]["code"] == grid.code[:12]
        assert h["town"]["code"] == grid.code[:9]
        assert h["district"] == {"code": "441302", "name": "惠城区"}
        assert h["station"]["code"] == f"PS{h['town']['code']}"
        assert h["officers"], grid.code
        assert all(set(o) == {"code", "name"} for o in h["officers"])
    text = orjson.dumps([g.hierarchy for g in demo_index.grids]).decode()
    assert "phone" not in text
    assert not any(phone in text for phone in phones)


@pytest.mark.parametrize("crs", ["gcj02", "bd09", "cgcs2000", "EPSG:4547"])
def test_other_crs_land_on_the_same_grid(demo_index, crs) -> None:
    lon, lat = 114.4123, 23.1045
    if crs == "gcj02":
        x, y = wgs84_to_gcj02(lon, lat)
    elif crs == "bd09":
        x, y = wgs84_to_bd09(lon, lat)
    elif crs == "EPSG:4547":
        x, y = TO_METRIC.transform(lon, lat)
    else:
        x, y = lon, lat
    got = parse_point(str(float(x)), str(float(y)), crs)
    assert got == pytest.approx((lon, lat), abs=1e-9)
    assert demo_index.locate(*got)["grid"] == demo_index.locate(lon, lat)["grid"]


@pytest.mark.parametrize(
    ("lon", "lat", "crs", "error", "message"),
    [
        (None, "23.1", None, InvalidCoordinates, "lon is missing; expected a number"),
        ("abc", "23.1", None, InvalidCoordinates, "lon 'abc' is not a number"),
        ("nan", "23.1", None, InvalidCoordinates, "(nan, 23.1) is not a finite coordinate"),
        ("114.4", "inf", None, InvalidCoordinates, "(114.4, inf) is not a finite coordinate"),
        ("200", "23.1", None, InvalidCoordinates, "longitude 200.0 outside [-180, 180]"),
        ("114.4", "-91", None, InvalidCoordinates, "latitude -91.0 outside [-90, 90]"),
        ("23.11", "114.41", None, InvalidCoordinates, "looks like lat, lon for Huicheng"),
        ("114.4", "23.1", "EPSG:99999", UnknownCRS, "unknown CRS 'EPSG:99999'"),
        ("114.41", "23.11", "EPSG:4547", InvalidCoordinates, "looks like degrees; EPSG:4547"),
        ("1e300", "1e300", "EPSG:4547", InvalidCoordinates, "is not a point of EPSG:4547"),
    ],
)
def test_bad_single_points_name_the_value(lon, lat, crs, error, message) -> None:
    with pytest.raises(error) as info:
        parse_point(lon, lat, crs)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("points", "error", "message"),
    [
        ([], InvalidCoordinates, "points is empty"),
        ("114,23", InvalidCoordinates, "points must be a list of [lon, lat] pairs, got str"),
        ([[114.4, 23.1], [114.4]], InvalidCoordinates, "points[1] is [114.4]; expected a"),
        ([[114.4, "x"]], InvalidCoordinates, "points[0] has 'x'; expected numbers"),
        ([[114.4, 23.1], [114.4, None]], InvalidCoordinates, "points[1] has None"),
        ([[114.4, 23.1]] * 100_001, PayloadTooLarge, "100,001 points is more than the limit"),
    ],
)
def test_bad_batches_name_the_value(points, error, message) -> None:
    with pytest.raises(error) as info:
        to_wgs84_points(points, parse_crs(None))
    assert message in str(info.value)


def _square(x0: float, y0: float, size: float, hole: Polygon | None = None) -> MultiPolygon:
    outer = [(x0, y0), (x0 + size, y0), (x0 + size, y0 + size), (x0, y0 + size), (x0, y0)]
    holes = [list(hole.exterior.coords)] if hole is not None else []
    return MultiPolygon([Polygon(outer, holes)])


@pytest.fixture(scope="module")
def tiny_index() -> LocateIndex:
    """A donut grid with an island grid in part of its hole, beside a plain grid."""
    island = _square(114.402, 23.102, 0.002)
    hole = Polygon(_square(114.401, 23.101, 0.004).geoms[0].exterior)
    donut = _square(114.40, 23.10, 0.006, hole=hole)
    side = _square(114.406, 23.10, 0.006)
    polygons = np.array([donut, island, side], dtype=object)
    grids = [Grid(code, {"grid": {"code": code}}) for code in ("G1", "G2", "G3")]
    return LocateIndex(7, grids, polygons, {"code": "D", "name": "d"})


@settings(max_examples=300, deadline=None)
@given(st.floats(114.399, 114.413), st.floats(23.099, 23.107))
@example(114.4015, 23.1015)  # in the hole, off the island
@example(114.406, 23.103)  # on the edge between the donut and the side grid
@example(114.402, 23.102)  # the island's corner, inside the hole
def test_holes_and_islands_against_brute_force(tiny_index, lon, lat) -> None:
    check(tiny_index, lon, lat)


def test_a_point_in_a_hole_is_outside_with_the_nearest_grid(tiny_index) -> None:
    answer = tiny_index.locate(114.4015, 23.1015)
    assert answer["status"] == "outside"
    assert answer["nearest"]["grid_code"] in ("G1", "G2")
    assert answer["dataset_version"] == 7


@settings(max_examples=100, deadline=None)
@given(
    st.integers(1, 3 * TILE + 5),
    st.integers(1, 3 * TILE + 5),
    st.integers(0, 2**32 - 1),
    st.sampled_from([1, 0.01, 0.0]),
)
def test_the_tiled_table_answers_every_cell_as_the_dense_one(ny, nx, seed, change) -> None:
    """The two-level table (a coarse table in front of the tiles that are not all alike)
    gives every cell the dense table's value, single and vectorised, whatever its shape;
    a tile of alike cells is stored as one value."""
    rng = np.random.default_rng(seed)
    dense = np.full((ny, nx), 7, dtype=np.int32)
    changed = rng.random((ny, nx)) < change
    dense[changed] = rng.choice([OUTSIDE_CELL, -3, -4, 0, 12], int(changed.sum()))
    coarse, tiles = _tiled(dense)
    table = CellTable(
        0.0, 0.0, nx, ny, coarse, tiles, np.zeros(0, np.int32), np.zeros(1, np.int32), 0.0
    )
    cy, cx = (a.ravel().astype(np.int32) for a in np.indices((ny, nx)))
    assert (table.values(cx, cy) == dense.ravel()).all()
    assert [table.value(x, y) for x, y in zip(cx[::7].tolist(), cy[::7].tolist(), strict=True)] == (
        dense.ravel()[::7].tolist()
    )
    if change == 0.0:
        assert len(tiles) == 0  # alike everywhere: nothing stored but the coarse table
    assert len(tiles) <= coarse.size


def test_the_demo_table_stores_few_of_its_tiles(demo_index) -> None:
    """Outside the district and inside large grids whole tiles answer alike: they are held
    by the coarse table only."""
    table = demo_index.table
    assert 0 < len(table.tiles) < 0.4 * table.coarse.size
