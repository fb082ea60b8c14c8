"""What a load is validated against: the current dataset, with the parts of the same bundle
staged on top."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import geopandas as gpd
import pandas as pd
import shapely
import sqlalchemy as sa
from shapely.geometry import MultiPolygon
from shapely.geometry.base import BaseGeometry
from sqlalchemy.engine import Engine

from etl.merge import reverts, three_way
from etl.report import Report
from geoservice.crs import DEFAULT_TOLERANCE_M
from geoservice.datasets import current_version_id
from geoservice.diff import FEATURE_LAYERS, features_at, officers_at
from geoservice.store import VersionReader
from geoservice.synthetic import real_district

if TYPE_CHECKING:
    from etl.load import LayerLoad

BOUNDARY_COLUMNS = ["code", "name", "parent_code", "kind", "population"]


@dataclass
class Context:
    """Reads current layers from PostGIS once; staged loads (earlier parts of the bundle)
    win. ``bundle`` names every layer the bundle will load, staged yet or not."""

    engine: Engine
    bundle: frozenset[str] = frozenset()
    tolerance_m: float = DEFAULT_TOLERANCE_M
    """The load's linear tolerance (``etl.tolerance``)."""
    base: int | None = None
    """The version the bundle was made from (``etl.merge``), when known."""
    force: bool = False
    """Take the bundle's features over conflicts and reverts."""
    staged: dict[str, LayerLoad] = field(default_factory=dict)
    _cache: dict[tuple[str, ...], pd.DataFrame | None] = field(default_factory=dict)

    def boundary(self, layer: str) -> gpd.GeoDataFrame | None:
        """code, name, parent_code, kind, population, geometry of a boundary layer as the
        bundle leaves it (staged, else current), or None."""
        if layer in self.staged:
            return self.staged[layer].frame
        return self.current_boundary(layer)

    def current_boundary(self, layer: str) -> gpd.GeoDataFrame | None:
        """The current version's boundary layer, whatever is staged."""
        return self.current(f"current_{layer}", BOUNDARY_COLUMNS)

    def current(self, view: str, columns: list[str]) -> gpd.GeoDataFrame | None:
        """Rows of a ``geoservice.current_*`` view with a geometry, or None when empty."""
        key = (view, *columns)
        if key not in self._cache:
            query = f"SELECT {', '.join(columns)}, ST_AsBinary(geom) FROM geoservice.{view}"
            with self.engine.connect() as conn:
                rows = conn.execute(sa.text(query)).all()
            self._cache[key] = (
                gpd.GeoDataFrame(
                    [row[:-1] for row in rows],
                    columns=columns,
                    geometry=shapely.from_wkb([bytes(row[-1]) for row in rows]),
                    crs="EPSG:4326",
                )
                if rows
                else None
            )
        return self._cache[key]

    def table(self, sql: str) -> pd.DataFrame:
        """A query's rows (no geometry), read once."""
        key = ("sql", sql)
        if key not in self._cache:
            with self.engine.connect() as conn:
                result = conn.execute(sa.text(sql))
                self._cache[key] = pd.DataFrame(result.all(), columns=list(result.keys()))
        frame = self._cache[key]
        assert frame is not None
        return frame

    def layer_at(self, layer: str, version: int) -> pd.DataFrame:
        """A layer as published in ``version`` (officers: without personal columns)."""
        key = ("version", layer, str(version))
        if key not in self._cache:
            with self.engine.connect() as conn:
                self._cache[key] = (
                    officers_at(conn, version)
                    if layer == "officers"
                    else features_at(conn, layer, version)
                )
        frame = self._cache[key]
        assert frame is not None
        return frame

    def current_version(self) -> int | None:
        with self.engine.connect() as conn:
            return current_version_id(conn)

    def history(self, layer: str, *, limit: int = 3) -> list[tuple[int, pd.DataFrame]]:
        """Up to ``limit`` earlier states of a layer, newest first: the published versions
        older than the current one whose snapshot of the layer differs from it (and from
        each other)."""
        with self.engine.connect() as conn:
            current = current_version_id(conn)
            if current is None:
                return []
            reader = VersionReader(conn, current)
            rows = reader.earlier_snapshots(layer)
            seen = {reader.snapshot_id(layer)}
        out = []
        for version, snapshot_id in rows:
            if snapshot_id in seen:
                continue
            seen.add(snapshot_id)
            out.append((version, self.layer_at(layer, version)))
            if len(out) == limit:
                break
        return out

    def reconcile(
        self, layer: str, frame: pd.DataFrame, columns: tuple[str, ...], noun: str, report: Report
    ) -> pd.DataFrame:
        """The bundle's ``layer`` reconciled with what was published since the bundle's
        base (``etl.merge``): merged three ways when the base is known, else refused
        (on ``report``) when it would undo newer versions."""
        current = self.current_version()
        if current is None:
            return frame
        now = self.layer_at(layer, current)
        if self.base is not None:
            if self.base == current:
                return frame
            return three_way(
                frame,
                self.layer_at(layer, self.base),
                now,
                columns,
                tolerance_m=self.tolerance_m,
                force=self.force,
                noun=noun,
                base_version=self.base,
                report=report,
            )
        if not self.force:
            reverts(
                frame,
                now,
                lambda: self.history(layer),
                columns,
                tolerance_m=self.tolerance_m,
                noun=noun,
                report=report,
            )
        return frame

    def place_of(self, layer: str, code: str | None) -> BaseGeometry | None:
        """Where a feature of ``layer`` is (as the load read it, else as published), or
        the district when the code is unknown or None."""
        if code is not None and layer in self.staged:
            frame = self.staged[layer].frame
            if isinstance(frame, gpd.GeoDataFrame):
                found = frame.geometry.values[(frame["code"] == code).to_numpy()]
                if len(found) and found[0] is not None:
                    return found[0]
        if code is not None and layer in FEATURE_LAYERS:
            version = self.current_version()
            if version is not None:
                frame = self.layer_at(layer, version)
                found = frame.geometry.values[(frame["code"] == code).to_numpy()]
                if len(found):
                    return found[0]
        return self.district()

    def codes(self, layer: str) -> set[str]:
        frame = self.boundary(layer)
        return set() if frame is None else set(frame["code"])

    def district(self) -> MultiPolygon:
        """The published district, or the real boundary shipped with geoservice."""
        frame = self.boundary("district")
        if frame is None or frame.empty:
            return real_district()
        return shapely.union_all(frame.geometry.values)

    def stations(self, *, staged: bool = True) -> pd.DataFrame:
        """code, kind, area_code of the stations and posts (as the bundle leaves them)."""
        if staged and "stations" in self.staged:
            return pd.DataFrame(self.staged["stations"].frame[["code", "kind", "area_code"]])
        return self.table("SELECT code, kind, area_code FROM geoservice.current_station")

    def station_codes(self) -> set[str] | None:
        if "stations" in self.staged:
            return set(self.staged["stations"].frame["code"])
        frame = self.current("current_station", ["code"])
        return None if frame is None else set(frame["code"])

    def assignments(self, *, staged: bool = True) -> pd.DataFrame:
        """officer_code, unit_code: every officer's units (as the bundle leaves them)."""
        if staged and "officers" in self.staged:
            officers = self.staged["officers"].frame
            pairs = [
                (code, unit)
                for code, units in zip(officers["code"], officers["unit_codes"], strict=True)
                for unit in str(units).split(";")
                if unit
            ]
            return pd.DataFrame(pairs, columns=["officer_code", "unit_code"])
        return self.table(
            "SELECT officer_code, unit_code FROM geoservice.current_officer_unit "
            "ORDER BY officer_code, unit_code"
        )

    def officer_stations(self, *, staged: bool = True) -> pd.DataFrame:
        """code, station_code of every officer (as the bundle leaves them)."""
        if staged and "officers" in self.staged:
            return pd.DataFrame(self.staged["officers"].frame[["code", "station_code"]])
        return self.table("SELECT code, station_code FROM geoservice.current_officer")
