"""What a load is validated against: the current dataset, plus layers staged before it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import geopandas as gpd
import shapely
import sqlalchemy as sa
from shapely.geometry import MultiPolygon
from sqlalchemy.engine import Engine

from geoservice.synthetic import real_district

if TYPE_CHECKING:
    from etl.load import LayerLoad


@dataclass
class Context:
    """Reads current layers from PostGIS once; staged loads (a bundle such as the demo) win."""

    engine: Engine
    staged: dict[str, LayerLoad] = field(default_factory=dict)
    _cache: dict[tuple[str, ...], gpd.GeoDataFrame | None] = field(default_factory=dict)

    def boundary(self, layer: str) -> gpd.GeoDataFrame | None:
        """code, name, parent_code, kind, population, geometry of a boundary layer, or None."""
        if layer in self.staged:
            return self.staged[layer].frame
        return self.current(
            f"current_{layer}", ["code", "name", "parent_code", "kind", "population"]
        )

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

    def codes(self, layer: str) -> set[str]:
        frame = self.boundary(layer)
        return set() if frame is None else set(frame["code"])

    def district(self) -> MultiPolygon:
        """The published district, or the real boundary shipped with geoservice."""
        frame = self.boundary("district")
        if frame is None or frame.empty:
            return real_district()
        return shapely.union_all(frame.geometry.values)

    def station_codes(self) -> set[str] | None:
        if "stations" in self.staged:
            return set(self.staged["stations"].frame["code"])
        frame = self.current("current_station", ["code"])
        return None if frame is None else set(frame["code"])
