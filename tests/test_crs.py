"""CRS parsing and the GCJ-02 / BD-09 transforms: published values, exact inverses."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from geoservice import crs
from geoservice.errors import UnknownCRS

china_lon = st.floats(73.0, 135.0)
china_lat = st.floats(18.0, 53.0)


def _scalar_gcj02(lng: float, lat: float) -> tuple[float, float]:
    """The published formula written out in scalar math: an independent oracle."""
    a, ee = 6378245.0, 0.00669342162296594323
    x, y = lng - 105.0, lat - 35.0
    dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * math.sqrt(abs(x))
    dlat += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2 / 3
    dlat += (20.0 * math.sin(y * math.pi) + 40.0 * math.sin(y / 3.0 * math.pi)) * 2 / 3
    dlat += (160.0 * math.sin(y / 12.0 * math.pi) + 320 * math.sin(y * math.pi / 30.0)) * 2 / 3
    dlng = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * math.sqrt(abs(x))
    dlng += (20.0 * math.sin(6.0 * x * math.pi) + 20.0 * math.sin(2.0 * x * math.pi)) * 2 / 3
    dlng += (20.0 * math.sin(x * math.pi) + 40.0 * math.sin(x / 3.0 * math.pi)) * 2 / 3
    dlng += (150.0 * math.sin(x / 12.0 * math.pi) + 300.0 * math.sin(x / 30.0 * math.pi)) * 2 / 3
    radlat = lat / 180.0 * math.pi
    magic = 1 - ee * math.sin(radlat) ** 2
    dlat = (dlat * 180.0) / ((a * (1 - ee)) / (magic * math.sqrt(magic)) * math.pi)
    dlng = (dlng * 180.0) / (a / math.sqrt(magic) * math.cos(radlat) * math.pi)
    return lng + dlng, lat + dlat


@given(china_lon, china_lat)
@example(114.41, 23.11)
def test_forward_gcj02_matches_the_published_formula(lon: float, lat: float) -> None:
    got = crs.wgs84_to_gcj02(lon, lat)
    assert (float(got[0]), float(got[1])) == pytest.approx(_scalar_gcj02(lon, lat), abs=1e-12)


def test_the_offset_in_huizhou_is_hundreds_of_metres() -> None:
    lon, lat = crs.wgs84_to_gcj02(114.41, 23.11)
    x0, y0 = crs.to_metric(114.41, 23.11)
    x1, y1 = crs.to_metric(lon, lat)
    assert 300 < math.hypot(x1 - x0, y1 - y0) < 800


def test_bd09_adds_baidus_offset_with_x_pi() -> None:
    lon, lat = crs.gcj02_to_bd09(114.41, 23.11)
    x, y = 114.41, 23.11
    z = math.hypot(x, y) + 0.00002 * math.sin(y * math.pi * 3000 / 180)
    theta = math.atan2(y, x) + 0.000003 * math.cos(x * math.pi * 3000 / 180)
    assert (float(lon), float(lat)) == pytest.approx(
        (z * math.cos(theta) + 0.0065, z * math.sin(theta) + 0.006), abs=1e-12
    )


def test_outside_china_nothing_moves() -> None:
    lon, lat = crs.wgs84_to_gcj02(-122.27, 37.80)
    assert (float(lon), float(lat)) == (-122.27, 37.80)


@given(china_lon, china_lat)
@example(114.41, 23.11)
@example(73.0, 18.0)
def test_gcj02_inverse_is_exact(lon: float, lat: float) -> None:
    back = crs.gcj02_to_wgs84(*crs.wgs84_to_gcj02(lon, lat))
    assert np.allclose(back, (lon, lat), rtol=0, atol=1e-9)  # 1e-9° ≈ 0.1 mm


@given(china_lon, china_lat)
@example(114.41, 23.11)
def test_bd09_inverse_is_exact(lon: float, lat: float) -> None:
    back = crs.bd09_to_wgs84(*crs.wgs84_to_bd09(lon, lat))
    assert np.allclose(back, (lon, lat), rtol=0, atol=1e-9)


def test_vectorised_equals_scalar() -> None:
    lons = np.array([114.41, 114.2, 114.7])
    lats = np.array([23.11, 23.0, 23.3])
    batch = crs.gcj02_to_wgs84(lons, lats)
    for i in range(3):
        single = crs.gcj02_to_wgs84(lons[i], lats[i])
        assert batch[0][i] == pytest.approx(float(single[0]), abs=1e-12)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (None, "wgs84"),
        ("WGS84", "wgs84"),
        ("epsg:4326", "wgs84"),
        ("cgcs2000", "cgcs2000"),
        ("EPSG:4490", "cgcs2000"),
        ("gcj02", "gcj02"),
        ("bd09", "bd09"),
        ("EPSG:4547", "EPSG:4547"),
    ],
)
def test_parse_crs_names(name, expected) -> None:
    assert crs.parse_crs(name).name == expected


@pytest.mark.parametrize("name", ["EPSG:99999", "mercator", "epsg:", "4326"])
def test_unknown_crs_is_named(name) -> None:
    with pytest.raises(UnknownCRS, match=f"unknown CRS '{name}'"):
        crs.parse_crs(name)


def test_epsg_4547_round_trip() -> None:
    target = crs.parse_crs("EPSG:4547")
    x, y = target.from_wgs84(114.41, 23.11)
    assert float(x) == pytest.approx(542_000, abs=1_000)
    lon, lat = target.to_wgs84(x, y)
    assert (float(lon), float(lat)) == pytest.approx((114.41, 23.11), abs=1e-9)
