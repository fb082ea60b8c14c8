"""The planners' figures (geoservice.plots) on a toy district: a Figure with the expected
classes and legend entries, a scale bar and a north arrow, drawn without a warning (a
missing glyph would be one). No database: the helpers take the objects the model makes."""

from __future__ import annotations

import io
import warnings

import geopandas as gpd
import numpy as np
import pytest
import shapely
from matplotlib_scalebar.scalebar import ScaleBar

from geoservice import plots
from geoservice.coverage import Coverage, Grids
from geoservice.crs import from_metric, to_metric
from geoservice.isochrones import isochrones
from geoservice.network import Network

X0, Y0 = (float(v) for v in to_metric(114.41, 23.11))
SIDE = 1000.0


def _wgs84(geom: shapely.Geometry) -> shapely.Geometry:
    return shapely.transform(geom, lambda xy: np.column_stack(from_metric(xy[:, 0], xy[:, 1])))


def _square(i: int, j: int) -> shapely.Geometry:
    x, y = X0 + i * SIDE, Y0 + j * SIDE
    return _wgs84(shapely.box(x, y, x + SIDE, y + SIDE))


SQUARES = [_square(0, 0), _square(1, 0), _square(0, 1), _square(1, 1)]
CODES = np.array(["G1", "G2", "G3", "G4"])


def _coverage(minutes_to_reach, nearest, extra=None) -> Coverage:
    grids = Grids(
        codes=CODES,
        names=np.array(["一", "二", "三", "四"], dtype=object),
        towns=np.array(["T1", "T2", "T1", "T2"], dtype=object),
        population=np.array([100.0, 200.0, 300.0, 400.0]),
        area_km2=np.ones(4),
        polygons=np.array(SQUARES, dtype=object),
    )
    return Coverage(
        (1.0, 3.0, 5.0),
        "all",
        grids,
        np.array(minutes_to_reach, float),
        nearest,
        7,
        extra=extra or {},
    )


def _point(i: float, j: float) -> shapely.Geometry:
    return _wgs84(shapely.Point(X0 + i * SIDE, Y0 + j * SIDE))


@pytest.fixture(scope="module")
def basemap() -> plots.Basemap:
    def frame(data, geometry):
        return gpd.GeoDataFrame(data, geometry=geometry, crs=4326).to_crs(plots.METRIC_CRS)

    left = shapely.union(SQUARES[0], SQUARES[2])
    right = shapely.union(SQUARES[1], SQUARES[3])
    line = _wgs84(shapely.LineString([(X0 - 500, Y0 + 1000), (X0 + 2500, Y0 + 1000)]))
    return plots.Basemap(
        district=frame({"code": ["D"], "name": ["惠城区"]}, [shapely.union(left, right)]),
        towns=frame({"code": ["T1", "T2"], "name": ["桥西街道", "桥东街道"]}, [left, right]),
        stations=frame(
            {
                "code": ["S1", "P1", "P2"],
                "name": ["派出所", "警务室一", "警务室二"],
                "kind": ["station", "post", "post"],
            },
            [_point(0.5, 0.5), _point(1.5, 0.5), _point(1.5, 1.5)],
        ),
        patrols=frame(
            {"code": ["XD01"], "name": ["一级巡段01"]},
            [_wgs84(shapely.LineString([(X0 + 200, Y0 + 1800), (X0 + 1800, Y0 + 1800)]))],
        ),
        roads=frame(
            {"highway": ["primary"]},
            [_wgs84(shapely.LineString([(X0, Y0), (X0 + 2000, Y0 + 2000)]))],
        ),
        rivers=gpd.GeoDataFrame({"name": ["东江"]}, geometry=[line], crs=4326)
        .to_crs(plots.METRIC_CRS)
        .clip(frame({}, [shapely.union(left, right)])),
        dataset_version=7,
    )


def _drawn(fig) -> list[str]:
    """Render to PNG with every warning recorded (missing glyphs among them); the legend's
    texts."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig.savefig(io.BytesIO(), format="png", dpi=60)
    assert [str(w.message) for w in caught] == []
    (ax,) = [a for a in fig.axes if a.get_legend() is not None]
    assert any(isinstance(a, ScaleBar) for a in ax.artists)
    assert "北" in [t.get_text() for t in ax.texts]
    return [t.get_text() for t in ax.get_legend().get_texts()]


def test_classes_are_the_bulletins() -> None:
    from geoservice.reports import figures
    from geoservice.reports.data import COVERAGE_CLASSES

    minutes = [0.5, 1.0, 1.01, 3.0, 5.0, 5.01, np.inf, np.nan]
    assert plots.minute_classes(minutes).tolist() == [0, 0, 1, 1, 2, 3, 3, 3]
    assert plots.class_names() == COVERAGE_CLASSES == ("1分钟内", "1—3分钟", "3—5分钟", "超过5分钟")
    assert plots.class_names((2, 10)) == ("2分钟内", "2—10分钟", "超过10分钟")
    assert plots.class_colours(4) == figures.COVERAGE_COLOURS
    assert len(set(plots.class_colours(3))) == 3


def test_coverage_map_legend_classes_and_the_origins_that_drive_coverage(basemap) -> None:
    coverage = _coverage([0.5, 2.0, 4.0, np.inf], ["S1", "P1", "XD01", None])
    fig = coverage.plot(basemap)
    legend = _drawn(fig)
    assert legend == [
        "1分钟内（1 个网格）",
        "1—3分钟（1 个网格）",
        "3—5分钟（1 个网格）",
        "超过5分钟（1 个网格）",
        "派出所（1 个，最先到达网格）",
        "警务室（1 个，最先到达网格）",
        "派出所/警务室（1 个，未最先到达任何网格）",
        "一级巡段（1 条）",
        "河流",
        "镇街界",
        "主要道路",
    ]
    ax = fig.axes[0]
    assert ax.get_title() == "1/3/5 分钟响应覆盖（派出所、警务室与巡段出发，按居民）\n数据版本 7"
    # a planning area: the grids meeting it only, the axes on it
    area = shapely.box(*SQUARES[0].bounds).buffer(-1e-4)
    legend = _drawn(plots.coverage_map(coverage, basemap, area=area, title="中心城区"))
    assert legend[:4] == [
        "1分钟内（1 个网格）",
        "1—3分钟（0 个网格）",
        "3—5分钟（0 个网格）",
        "超过5分钟（0 个网格）",
    ]


def test_scenario_map_counts_gained_and_lost(basemap) -> None:
    # grid 1 newly reached, grid 3 lost beyond 5 minutes, grid 2 slower but still within 5
    changed = [
        {"code": "G1", "before": None, "after": 0.5},
        {"code": "G2", "before": 1.5, "after": 4.0},
        {"code": "G3", "before": 4.0, "after": None},
    ]
    after = _coverage([0.5, 4.0, np.inf, 2.0], ["S1", "P1", None, "P1"], {"changed_grids": changed})
    assert plots.before_minutes(after).tolist() == [np.inf, 1.5, 4.0, 2.0]
    legend = _drawn(after.plot(basemap))
    assert legend[:4] == [
        "新进入5分钟覆盖（1 个网格）",
        "失去5分钟覆盖（1 个网格）",
        "5分钟内，不变（2 个）",
        "5分钟外，不变（0 个）",
    ]
    legend = _drawn(plots.scenario_map(after, basemap, minutes=3))
    assert legend[:2] == ["新进入3分钟覆盖（1 个网格）", "失去3分钟覆盖（1 个网格）"]
    with pytest.raises(ValueError, match="minutes 4 is not one of the scenario's bands"):
        plots.scenario_map(after, basemap, minutes=4)
    with pytest.raises(ValueError, match=r"needs CoverageModel\.scenario"):
        plots.scenario_map(_coverage([1, 1, 1, 1], [None] * 4), basemap)


def _lattice(n: int = 6, step_m: float = 400.0, edge_s: float = 30.0) -> Network:
    """An n x n street grid over the toy district, ``edge_s`` seconds a block both ways."""
    node = np.arange(n * n).reshape(n, n)
    pairs = [(node[i, j], node[i, j + 1]) for i in range(n) for j in range(n - 1)]
    pairs += [(node[i, j], node[i + 1, j]) for i in range(n - 1) for j in range(n)]
    x, y = X0 - 500 + step_m * (node % n), Y0 - 500 + step_m * (node // n)
    lines = [
        shapely.LineString(np.column_stack(from_metric(x.flat[[u, v]], y.flat[[u, v]])))
        for u, v in pairs
    ]
    return Network(
        version=7,
        profile="car",
        edge_ids=np.arange(len(pairs), dtype=np.int64),
        source=np.array([u for u, _ in pairs], dtype=np.int64),
        target=np.array([v for _, v in pairs], dtype=np.int64),
        forward_s=np.full(len(pairs), edge_s),
        backward_s=np.full(len(pairs), edge_s),
        lines=np.array(lines, dtype=object),
    )


def test_isochrone_map_has_a_band_legend(basemap) -> None:
    lon, lat = (float(v[0]) for v in from_metric([X0 + 1100], [Y0 + 1100]))
    bands = isochrones(_lattice(), lon, lat, (1, 3))
    fig = bands.plot(basemap)
    legend = _drawn(fig)
    areas = [f"{b.area_km2:.1f}" for b in bands.bands]
    assert legend[:4] == [
        f"1分钟可达（{areas[0]} 平方公里）",
        f"3分钟可达（{areas[1]} 平方公里）",
        "3分钟内可达道路",
        "出发点",
    ]
    assert fig.axes[0].get_title() == "1/3 分钟等时圈（警车，沿道路）\n数据版本 7"
