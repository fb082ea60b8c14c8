"""One exception tree for geoservice (``server/statuses.py`` maps it to HTTP statuses), and
``shown``, how a message quotes a value it was given."""

from __future__ import annotations

import reprlib
from typing import Any

_SHORT = reprlib.Repr()
_SHORT.maxlevel, _SHORT.maxlist, _SHORT.maxdict = 3, 4, 4
_SHORT.maxstring = _SHORT.maxother = 60


def shown(value: Any) -> str:
    """``repr(value)`` cut short: a few items of a list or an object, three levels deep,
    60 characters of a text — so that a message can quote anything a client sent (a JSON
    body nested a thousand deep, a 3 MB text) without failing or flooding the answer."""
    return _SHORT.repr(value)


class GeoserviceError(Exception):
    """Base of every error geoservice raises on purpose."""

    title = "geoservice error"


class ConfigurationError(GeoserviceError):
    """Settings or environment are unusable."""

    title = "Configuration error"


class DatabaseUnavailable(GeoserviceError):
    """PostGIS cannot be reached."""

    title = "Database unavailable"


class InvalidInput(GeoserviceError):
    """A request or command argument is not acceptable; the message names the value."""

    title = "Invalid input"


class InvalidCoordinates(InvalidInput):
    title = "Invalid coordinates"


class UnknownCRS(InvalidInput):
    title = "Unknown CRS"


class InvalidGeometry(InvalidInput):
    title = "Invalid geometry"


class PayloadTooLarge(InvalidInput):
    title = "Payload too large"


class UnsupportedMediaType(InvalidInput):
    """A body's ``Content-Type`` is not one the route reads."""

    title = "Unsupported media type"


class Forbidden(GeoserviceError):
    """The key's role may not do this."""

    title = "Forbidden"


class NotFound(GeoserviceError):
    title = "Not found"


class Conflict(GeoserviceError):
    """The request contradicts what is stored (a code that exists, a version that is not a
    draft)."""

    title = "Conflict"


class PreconditionFailed(GeoserviceError):
    """An ``If-Match`` names a state that is no longer the stored one."""

    title = "Precondition failed"


class NoDataset(NotFound):
    """No dataset version has been published yet."""

    title = "No dataset"


class ValidationFailed(GeoserviceError):
    """An ETL input failed validation; ``problems`` lists every finding."""

    title = "Validation failed"

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []
