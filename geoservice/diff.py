"""What changed between two dataset versions, per layer: codes added, removed, with changed
geometry, with changed attributes; as JSON or as a GeoPackage for QGIS: per changed layer,
one layer of the features as they are after (removed ones as they were), with a
``change`` field (added, removed, geometry, attributes), and a ``<layer>_before`` layer of
the changed and removed features as they were before.

Layers whose snapshot is the same in both versions did not change and are not read.
Officers are compared without their personal columns; roads by their counts only (a road
load renumbers its edges).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import orjson
import pandas as pd
import pyogrio
import shapely
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from geoservice.datasets import resolve_version
from geoservice.missing import none_if_missing
from geoservice.models import BOUNDARY_LAYERS
from geoservice.store import VersionReader

FEATURE_LAYERS: dict[str, tuple[str, list[str]]] = {
    **{
        layer: (layer, ["code", "name", "parent_code", "kind", "population"])
        for layer in BOUNDARY_LAYERS
    },
    "stations": ("station", ["code", "name", "kind", "area_code"]),
    "patrols": ("patrol_segment", ["code", "name", "level", "team", "team_size"]),
    "population": ("population", ["code", "residents", "households"]),
}
"""Each layer's placeholder in a ``VersionReader`` template and its compared columns."""
OFFICERS_SQL = """
SELECT o.code, o.name, o.rank, o.station_code,
       string_agg(u.unit_code, ';' ORDER BY u.unit_code) AS unit_codes
FROM {officer} o LEFT JOIN {officer_unit} u ON u.officer_code = o.code
GROUP BY o.code, o.name, o.rank, o.station_code
"""


@dataclass
class LayerDiff:
    layer: str
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    geometry: list[str] = field(default_factory=list)
    attributes: list[str] = field(default_factory=list)
    features: pd.DataFrame | None = None  # one row per changed code, with ``change``
    before: gpd.GeoDataFrame | None = None  # the changed and removed features as they were
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.geometry or self.attributes or self.summary)

    def to_json(self) -> dict[str, Any]:
        return {
            "added": self.added,
            "removed": self.removed,
            "geometry": self.geometry,
            "attributes": self.attributes,
            **self.summary,
        }


@dataclass
class Diff:
    a: int
    b: int
    layers: dict[str, LayerDiff]

    def to_json(self) -> dict[str, Any]:
        return {
            "a": self.a,
            "b": self.b,
            "layers": {name: layer.to_json() for name, layer in self.layers.items()},
        }

    def to_geojson(self) -> dict[str, Any]:
        """The changed features of every layer with a geometry, each with ``layer`` and
        ``change``."""
        features = []
        for name, layer in self.layers.items():
            if not isinstance(layer.features, gpd.GeoDataFrame) or layer.features.empty:
                continue
            for state, frame in (("after", layer.features), ("before", layer.before)):
                if frame is None:
                    continue
                for row in frame.itertuples(index=False):
                    if state == "before" and row.change == "removed":
                        continue  # already there, as it was
                    features.append(
                        {
                            "type": "Feature",
                            "id": f"{name}/{row.code}/{state}",
                            "geometry": orjson.Fragment(shapely.to_geojson(row.geometry)),
                            "properties": {
                                "layer": name,
                                "code": row.code,
                                "change": row.change,
                                "state": state,
                                "name": getattr(row, "name", None),
                            },
                        }
                    )
        return {"type": "FeatureCollection", "features": features, "a": self.a, "b": self.b}

    def write_gpkg(self, path: Path) -> list[str]:
        """One layer per changed layer (officers: a table), each row with ``change``, and
        beside each with geometry a ``<layer>_before`` layer."""
        path.unlink(missing_ok=True)
        written = []
        for name, layer in self.layers.items():
            if layer.features is None or layer.features.empty:
                continue
            options = {"dataset_options": {"VERSION": "1.2"}}
            if isinstance(layer.features, gpd.GeoDataFrame):
                pyogrio.write_dataframe(
                    layer.features,
                    path,
                    layer=name,
                    driver="GPKG",
                    promote_to_multi=True,
                    **options,
                )
            else:
                pyogrio.write_dataframe(layer.features, path, layer=name, driver="GPKG", **options)
            written.append(name)
            if layer.before is not None and not layer.before.empty:
                pyogrio.write_dataframe(
                    layer.before,
                    path,
                    layer=f"{name}_before",
                    driver="GPKG",
                    promote_to_multi=True,
                    **options,
                )
                written.append(f"{name}_before")
        return written


def diff_versions(engine: Engine, a: int, b: int) -> Diff:
    """Every layer's changes from version ``a`` to version ``b``."""
    with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
        a, b = resolve_version(conn, a), resolve_version(conn, b)
        snapshots = {version: VersionReader(conn, version).snapshots() for version in (a, b)}
        layers: dict[str, LayerDiff] = {}
        for layer in [*FEATURE_LAYERS, "officers", "roads"]:
            if snapshots[a].get(layer) == snapshots[b].get(layer):
                continue
            if layer == "roads":
                layers[layer] = _roads(conn, a, b)
            elif layer == "officers":
                old, new = (officers_at(conn, v) for v in (a, b))
                layers[layer] = _compare(layer, old, new, geometry=False)
            else:
                old, new = (features_at(conn, layer, v) for v in (a, b))
                layers[layer] = _compare(layer, old, new, geometry=True)
    return Diff(a, b, {name: diff for name, diff in layers.items() if not diff.empty})


def features_at(conn: sa.Connection, layer: str, version: int) -> gpd.GeoDataFrame:
    """The features of ``layer`` in ``version``, in code order (WGS84)."""
    placeholder, columns = FEATURE_LAYERS[layer]
    rows = VersionReader(conn, version).all(
        f"SELECT {', '.join(columns)}, ST_AsBinary(geom) FROM {{{placeholder}}} t ORDER BY code"
    )
    return gpd.GeoDataFrame(
        [row[:-1] for row in rows],
        columns=columns,
        geometry=shapely.from_wkb([bytes(row[-1]) for row in rows]),
        crs="EPSG:4326",
    )


def officers_at(conn: sa.Connection, version: int) -> pd.DataFrame:
    """The officers of ``version`` without personal columns, their units joined by ';'."""
    result = VersionReader(conn, version).execute(OFFICERS_SQL + " ORDER BY o.code")
    return pd.DataFrame(result.all(), columns=list(result.keys()))


def _roads(conn: sa.Connection, a: int, b: int) -> LayerDiff:
    counts = [VersionReader(conn, v).scalar("SELECT count(*) FROM {road_edge} e") for v in (a, b)]
    return LayerDiff("roads", summary={"edges_a": counts[0], "edges_b": counts[1]})


def _compare(layer: str, old: pd.DataFrame, new: pd.DataFrame, *, geometry: bool) -> LayerDiff:
    old_by, new_by = old.set_index("code"), new.set_index("code")
    added = sorted(set(new_by.index) - set(old_by.index))
    removed = sorted(set(old_by.index) - set(new_by.index))
    common = sorted(set(new_by.index) & set(old_by.index))
    before, after = old_by.loc[common], new_by.loc[common]
    columns = [c for c in new_by.columns if c != "geometry"]
    changed_fields = {
        code: [c for c in columns if none_if_missing(x[c]) != none_if_missing(y[c])]
        for code, (_, x), (_, y) in zip(common, before.iterrows(), after.iterrows(), strict=True)
    }
    moved: list[str] = []
    if geometry and common:
        same = shapely.equals_exact(before.geometry.values, after.geometry.values, 0.0)
        moved = [code for code, s in zip(common, same, strict=True) if not s]
    attributes = sorted(code for code, fields in changed_fields.items() if fields)
    rows = []
    for code, change, frame in (
        *((c, "added", new_by) for c in added),
        *((c, "removed", old_by) for c in removed),
        *(
            (c, "geometry" if c in moved else "attributes", new_by)
            for c in sorted(set(moved) | set(attributes))
        ),
    ):
        row = frame.loc[code]
        rows.append(
            {
                "code": code,
                "change": change,
                "changed_fields": ",".join(changed_fields.get(code, [])),
                **{c: none_if_missing(row[c]) for c in columns},
                **({"geometry": row["geometry"]} if geometry else {}),
            }
        )
    names = ["code", "change", "changed_fields", *columns]
    features: pd.DataFrame = pd.DataFrame(rows, columns=names)
    if geometry:
        features = gpd.GeoDataFrame(
            pd.DataFrame(rows, columns=[*names, "geometry"]), geometry="geometry", crs=4326
        )
        changes = {row["code"]: row["change"] for row in rows}
        was = sorted(set(moved) | set(attributes) | set(removed))
        before = gpd.GeoDataFrame(
            pd.DataFrame(
                [
                    {
                        "code": code,
                        "change": changes[code],
                        **{c: none_if_missing(old_by.loc[code, c]) for c in columns},
                        "geometry": old_by.loc[code, "geometry"],
                    }
                    for code in was
                ],
                columns=["code", "change", *columns, "geometry"],
            ),
            geometry="geometry",
            crs=4326,
        )
        return LayerDiff(layer, added, removed, moved, attributes, features, before)
    return LayerDiff(layer, added, removed, moved, attributes, features)
