"""Isochrone polygons: nesting, reached parts inside, unreached roads outside, holes,
the raster against the exact GEOS union, and GET /v1/isochrones."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import shapely
import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.ndimage import distance_transform_edt

from geoservice.bands import Bands
from geoservice.crs import from_metric
from geoservice.errors import InvalidInput
from geoservice.isochrones import band_polygons, isochrones, near_distance
from tests.cli import run_cli

# the city centre, a point by the Dongjiang between bridges, a town, a village road
ORIGINS = [(114.41, 23.11), (114.36, 23.128), (114.35, 23.05), (114.52, 23.02)]


def _contains(polygon, xy_metric: np.ndarray) -> np.ndarray:
    lon, lat = from_metric(xy_metric[:, 0], xy_metric[:, 1])
    return shapely.contains_xy(polygon, lon, lat)


@pytest.mark.parametrize(("lon", "lat"), ORIGINS)
def test_bands_nest_and_contain_every_reached_part(demo_network, lon, lat) -> None:
    net = demo_network
    result = isochrones(net, lon, lat, Bands((1, 3, 5)))
    bands = result.bands
    assert [b.minutes for b in bands] == [1, 3, 5]
    for small, big in itertools.pairwise(bands):
        assert big.polygon.contains(small.polygon)
        assert big.area_km2 >= small.area_km2
    for band in bands:
        assert band.polygon.is_valid and not band.polygon.is_empty
        pieces = result.reach.pieces(band.minutes * 60)
        points = net.points_on(pieces, step=7.0)
        assert _contains(band.polygon, points).all()


@pytest.mark.parametrize(("lon", "lat"), ORIGINS)
def test_unreached_roads_beyond_the_buffer_are_outside(demo_network, lon, lat) -> None:
    """Points on roads not reached in time, farther than buffer + tolerance from every
    reached part (e.g. across the river), lie outside the band."""
    net = demo_network
    result = isochrones(net, lon, lat, Bands((1, 3)))
    for band in result.bands:
        reached = shapely.STRtree(result.reach.lines(band.minutes * 60))
        x0, y0, x1, y1 = shapely.total_bounds(reached.geometries)
        nearby = net.tree.query(shapely.box(x0 - 300, y0 - 300, x1 + 300, y1 + 300))
        lines = net.lines_metric[nearby]
        candidates = shapely.get_coordinates(
            shapely.line_interpolate_point(lines, np.linspace(0, 1, 7)[:, None], normalized=True)
        )
        pairs, distance = reached.query_nearest(
            shapely.points(candidates), return_distance=True, all_matches=False
        )
        far = candidates[pairs[0][distance > result.buffer_m + band.tolerance_m]]
        assert len(far) > 50
        assert not _contains(band.polygon, far).any()


def test_city_bands_keep_holes_and_the_raster_follows_the_exact_union(demo_network) -> None:
    net = demo_network
    raster = isochrones(net, 114.41, 23.11, Bands((1, 3)))
    exact = band_polygons(raster.reach, Bands((1, 3)), raster.buffer_m, method="exact")
    for r, e in zip(raster.bands, exact, strict=True):
        assert r.area_km2 == pytest.approx(e.area_km2, rel=0.03)
        # the exact polygon shrunk by the tolerance is inside the raster one
        shrunk = shapely.buffer(e.polygon, -r.tolerance_m / 111_000 / 2)
        assert shapely.area(shapely.difference(shrunk, r.polygon)) < 1e-12
    city = raster.bands[-1].polygon
    holes = [h for p in shapely.get_parts(city) for h in p.interiors]
    assert len(holes) >= 5  # city blocks larger than the buffer stay open


def test_reached_edges_are_the_exact_answer(demo_network) -> None:
    result = isochrones(demo_network, 114.41, 23.11, Bands((1, 3)))
    frame = result.reached_edges(1)
    assert {"edge_id", "start_fraction", "end_fraction", "length_m", "geometry"} <= set(frame)
    assert ((frame.end_fraction - frame.start_fraction) > 0).all()
    partial = frame[(frame.start_fraction > 0) | (frame.end_fraction < 1)]
    assert len(partial) > 10  # bands end mid-edge
    assert len(result.reached_edges(3)) > len(frame)


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("0", "out of range"),
        ("-1", "out of range"),
        ("61", "out of range"),
        ("abc", "not a number"),
        ("1,2,3,4,5,6,7", "at most 6"),
        ("", "not a number"),
    ],
)
def test_bad_minutes(value, fragment) -> None:
    with pytest.raises(InvalidInput, match=fragment):
        Bands.parse(value)


def test_minutes_are_sorted_and_distinct() -> None:
    assert Bands.parse("5,1,3,3") == (1.0, 3.0, 5.0)
    assert Bands.parse("60") == (60.0,)
    assert Bands((5, 1, 3, 3)) == (1.0, 3.0, 5.0)


# --- HTTP ---------------------------------------------------------------------------------


def test_get_isochrones_per_contract(client, demo_network) -> None:
    response = client.get(
        "/v1/isochrones", params={"lon": 114.41, "lat": 23.11, "minutes": "1,3,5"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["type"] == "FeatureCollection"
    assert [f["properties"]["minutes"] for f in body["features"]] == [1, 3, 5]
    assert body["dataset_version"] == demo_network.version
    assert set(body["origin"]) == {"lon", "lat"}
    origin = shapely.Point(body["origin"]["lon"], body["origin"]["lat"])
    polygons = [shapely.geometry.shape(f["geometry"]) for f in body["features"]]
    assert polygons[0].contains(origin)
    for small, big in itertools.pairwise(polygons):
        assert big.contains(small)
    areas = [f["properties"]["area_km2"] for f in body["features"]]
    assert 0 < areas[0] < areas[1] < areas[2]
    python = isochrones(demo_network, 114.41, 23.11, Bands((1, 3, 5)))
    assert areas == [round(b.area_km2, 6) for b in python.bands]


def test_origin_is_the_snapped_point_and_gcj02_is_understood(client) -> None:
    from geoservice.crs import wgs84_to_gcj02

    plain = client.get("/v1/isochrones", params={"lon": 114.41, "lat": 23.11, "minutes": 1}).json()
    x, y = wgs84_to_gcj02(114.41, 23.11)
    shifted = client.get(
        "/v1/isochrones", params={"lon": float(x), "lat": float(y), "minutes": 1, "crs": "gcj02"}
    ).json()
    assert plain["origin"] == shifted["origin"]
    assert plain["origin"] != {"lon": 114.41, "lat": 23.11}


def test_foot_profile_is_smaller(client) -> None:
    params = {"lon": 114.41, "lat": 23.11, "minutes": 3}
    car = client.get("/v1/isochrones", params=params).json()
    foot = client.get("/v1/isochrones", params={**params, "profile": "foot"}).json()
    assert foot["profile"] == "foot"
    assert (
        foot["features"][0]["properties"]["area_km2"]
        < car["features"][0]["properties"]["area_km2"] / 5
    )


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"minutes": "0"}, "minutes '0'"),
        ({"minutes": "90"}, "minutes '90'"),
        ({"minutes": "x"}, "minutes 'x'"),
        ({"minutes": "1,2,3,4,5,6,7"}, "at most 6"),
        ({"profile": "bike"}, "unknown profile 'bike'"),
        ({"profile": "/etc/passwd.json"}, "unknown profile"),
        ({"buffer_m": "0"}, "buffer_m 0.0 is out of range"),
        ({"lon": "114.0", "lat": "23.3"}, "more than 500 m from any road"),
        ({"lon": "abc"}, "lon 'abc'"),
        ({"lon": "23.11", "lat": "114.41"}, "lat, lon"),
        ({"crs": "EPSG:999999"}, "EPSG:999999"),
    ],
)
def test_bad_requests_are_422_naming_the_value(client, params, fragment) -> None:
    query = {"lon": 114.41, "lat": 23.11, **params}
    response = client.get("/v1/isochrones", params=query)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert fragment in response.json()["detail"]


def test_cli_prints_the_same_bands(demo_readonly, client) -> None:
    result = run_cli("isochrones", "114.41", "23.11", "--minutes", "1,3", settings=demo_readonly)
    assert result.returncode == 0, result.stderr
    cli = json.loads(result.stdout)
    http = client.get("/v1/isochrones", params={"lon": 114.41, "lat": 23.11, "minutes": "1,3"})
    assert cli == http.json()
    bad = run_cli("isochrones", "114.41", "23.11", "--minutes", "0", settings=demo_readonly)
    assert bad.returncode == 2 and "minutes '0'" in bad.stderr and "Traceback" not in bad.stderr


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 40),
    st.integers(1, 40),
    st.floats(0.0, 0.2),
    st.integers(1, 8),
    st.integers(0, 2**32 - 1),
)
def test_near_distance_is_the_exact_euclidean_distance(ny, nx, density, reach, seed) -> None:
    rng = np.random.default_rng(seed)
    hit = rng.random((ny, nx)) < density
    hit[rng.integers(ny), rng.integers(nx)] = True
    exact = distance_transform_edt(~hit)
    ours = near_distance(hit, reach)
    near = exact <= reach
    assert np.array_equal(ours[near], exact[near])
    assert (ours[~near] >= reach).all()


def test_network_follows_versions_and_is_kept_when_roads_do_not_change(
    demo_settings, demo_engine
) -> None:
    from geoservice.datasets import Source, publish
    from geoservice.state import StateCache

    cache = StateCache(demo_engine, full=True)
    first = cache.make_current(1)
    before = first.network()

    def same_officers(conn, snapshot_id: int) -> int:
        for table, columns in (
            ("officer", "code, name, rank, phone, station_code"),
            ("officer_unit", "officer_code, unit_code"),
        ):
            conn.execute(
                sa.text(
                    f"INSERT INTO geoservice.{table} (snapshot_id, {columns}) "
                    f"SELECT :s, {columns} FROM geoservice.current_{table}"
                ),
                {"s": snapshot_id},
            )
        return 570

    version = publish(
        demo_engine, {"officers": same_officers}, sources=[Source("officers", "t", "-")]
    )
    second = cache.make_current(version)
    after = second.network()
    assert after.version == version == before.version + 1
    assert after.matrix is before.matrix  # the roads did not change: nothing rebuilt
    assert second.coverage().network is after
    assert first.network() is before  # the earlier state is untouched
    assert cache.get(1) is first  # and kept


def test_long_bands_on_a_coarse_lattice_still_contain_every_reached_road(demo_network) -> None:
    result = isochrones(demo_network, 114.41, 23.11, Bands((10, 60)))
    for band in result.bands:
        points = demo_network.points_on(result.reach.pieces(band.minutes * 60), step=50.0)
        assert _contains(band.polygon, points).all()
    assert result.bands[-1].tolerance_m > result.buffer_m  # the lattice had to be coarse
