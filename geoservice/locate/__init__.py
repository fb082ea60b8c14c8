"""Point -> base grid -> whole hierarchy, from an immutable in-memory index per dataset
version; the same answer in every path (single, batch, HTTP, CLI, Python).

- ``results``: what a lookup finds (``Grid``, ``Found``, ``Batch``, the statuses);
- ``cells``: the cell table that answers most points at once;
- ``index``: ``LocateIndex``, the lookups (cell table, exact tests, nearest grid) and the
  index as two state-directory parts: its grids' tables (shared by every version on the same
  grids) and its version's labels;
- ``load``: ``build_index``, a version's grids and hierarchy read from PostGIS (or
  ``index_labels``, the hierarchy only);
- ``answers``: results as the API answers them (a dict, a batch's JSON bytes).

The index takes WGS84 degrees as floats or arrays; points from the world (query strings,
JSON lists, another CRS) are read by ``geoservice/points.py`` first.
"""

from geoservice.locate.index import LocateIndex
from geoservice.locate.load import build_index, index_labels

__all__ = ["LocateIndex", "build_index", "index_labels"]
