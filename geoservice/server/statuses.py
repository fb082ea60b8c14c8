"""The one table from errors to HTTP statuses, shared by the app (problem+json) and the
workers (a failure carried back knows its status)."""

from __future__ import annotations

import sqlalchemy as sa

from geoservice import errors
from geoservice.db import one_line

STATUS_BY_ERROR: dict[type[errors.GeoserviceError], int] = {
    errors.PayloadTooLarge: 413,
    errors.UnsupportedMediaType: 415,
    errors.InvalidInput: 422,
    errors.ValidationFailed: 422,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.PreconditionFailed: 412,
    errors.Forbidden: 403,
    errors.DatabaseUnavailable: 503,
    errors.ConfigurationError: 503,
}
CONFLICTS = frozenset({"23505", "23503", "23P01"})
"""SQLSTATEs of a row contradicting stored ones (unique, foreign key, exclusion): 409."""


def status_of(exc: errors.GeoserviceError) -> int:
    """The HTTP status of a domain error (an error carried back from a worker knows it)."""
    status = getattr(exc, "status", None)
    if isinstance(status, int):
        return status
    for cls in type(exc).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 500


def database_problem(exc: sa.exc.SQLAlchemyError) -> tuple[int, str, str]:
    """A database error as (status, title, detail).

    A value the database refuses (a data exception, SQLSTATE class 22: a NUL byte in a
    text, an integer out of range) is the request's fault: 422 with the database's words;
    so is a constraint it breaks (422; 409 for a unique, foreign-key or exclusion one).
    Anything else is the database failing: 503, with a detail that names no host or port
    (the log has the driver's message).
    """
    if isinstance(exc, sa.exc.DataError):
        detail = f"a value of the request is not one the database can take: {one_line(exc)}"
        return 422, "Invalid input", detail
    if isinstance(exc, sa.exc.IntegrityError):
        state = getattr(exc.orig, "sqlstate", None)
        if state in CONFLICTS:
            return 409, errors.Conflict.title, f"this contradicts what is stored: {one_line(exc)}"
        detail = f"a value of the request is not one the database can take: {one_line(exc)}"
        return 422, "Invalid input", detail
    return 503, errors.DatabaseUnavailable.title, "the database did not answer; try again"
