"""Point -> base grid -> whole hierarchy (``geoservice/locate.py`` as a package)."""

from geoservice.locate.index import *  # noqa: F403
