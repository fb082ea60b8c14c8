"""Baseline for the HTTP benchmark: a FastAPI handler that asks PostGIS on every request.

This is what a hand-rolled PostGIS service does: one ST_Covers query per call through a
connection pool, the hierarchy joined in SQL. Not part of geoservice.
"""

from __future__ import annotations

from fastapi import FastAPI
from psycopg_pool import ConnectionPool

from geoservice.db import libpq_conninfo
from geoservice.settings import Settings

SQL = """
SELECT g.code, g.name, lg.code, lg.name, u.code, u.name, u.kind, t.code, t.name
FROM geoservice.current_grid g
JOIN geoservice.current_large_grid lg ON lg.code = g.parent_code
JOIN geoservice.current_unit u ON u.code = lg.parent_code
JOIN geoservice.current_town t ON t.code = u.parent_code
WHERE ST_Covers(g.geom, ST_SetSRID(ST_MakePoint(%s, %s), 4326))
ORDER BY g.code LIMIT 1
"""

pool = ConnectionPool(
    libpq_conninfo(Settings().sqlalchemy_url()), min_size=4, max_size=8, open=True
)
app = FastAPI()


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/v1/locate")
def locate(lon: float, lat: float) -> dict[str, object]:
    with pool.connection() as conn:
        row = conn.execute(SQL, (lon, lat)).fetchone()
    if row is None:
        return {"status": "outside"}
    return {
        "status": "inside",
        "grid": {"code": row[0], "name": row[1]},
        "large_grid": {"code": row[2], "name": row[3]},
        "unit": {"code": row[4], "name": row[5], "kind": row[6]},
        "town": {"code": row[7], "name": row[8]},
    }
