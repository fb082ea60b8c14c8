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
from sqlalchemy.engine import Engine

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
