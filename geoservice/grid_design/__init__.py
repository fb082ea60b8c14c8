"""Grid design: base grids of the right size that nest in their large grids, keep the
grids that already fit, and follow roads and rivers (the method: ``design``).

``propose(conn, version, scope, band)`` gives a ``Proposal`` (``report()``, ``geojson()``);
``write_bundle`` writes it as a bundle folder to load as a draft. Modules: ``scope`` (the
band, the scope and its rows read at one version), ``blocks`` (cutting by roads and rivers,
slivers), ``partition`` (grouping blocks), ``pieces`` (chord splits and merges),
``naming`` (codes and names), ``measure`` (metres, sizes, roads followed), ``rivers``,
``proposal`` (the answer and its bundle).
"""

from geoservice.grid_design.design import propose
from geoservice.grid_design.proposal import Grid, Proposal, write_bundle
from geoservice.grid_design.rivers import read_rivers
from geoservice.grid_design.scope import Band, Scope

__all__ = [
    "Band",
    "Grid",
    "Proposal",
    "Scope",
    "propose",
    "read_rivers",
    "write_bundle",
]
