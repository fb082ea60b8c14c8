"""Every error as ``application/problem+json`` (RFC 9457); the one status map lives here."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from geoservice import errors
from geoservice.db import one_line
from geoservice.workers import WorkerFailed

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

STATUS_BY_ERROR: dict[type[errors.GeoserviceError], int] = {
    WorkerFailed: 503,
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


def problem(status: int, detail: str, title: str | None = None, **extra: object) -> JSONResponse:
    """A problem+json response."""
    phrase = HTTPStatus(status).phrase
    body = {
        "type": "about:blank",
        "title": title or phrase,
        "status": status,
        "detail": detail,
        **extra,
    }
    # over a size limit the rest of the body is not read: the connection must end here
    headers = {"connection": "close"} if status == 413 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


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


def _describe_validation(exc: RequestValidationError) -> str:
    """FastAPI's findings in the service's own words: the parameter, the value, the need."""
    parts = []
    for error in exc.errors():
        location = ".".join(
            str(item) for item in error.get("loc", ()) if item not in ("body", "query", "path")
        )
        value = error.get("input")
        kind = error.get("type", "")
        if kind == "missing":
            parts.append(f"{location} is missing")
        elif kind in ("float_parsing", "float_type", "int_parsing", "int_type"):
            parts.append(f"{location} {value!r} is not a number")
        elif kind == "literal_error":
            expected = error.get("ctx", {}).get("expected", "")
            parts.append(f"{location} {value!r} is unknown; expected {expected}")
        elif kind == "value_error" and "error" in error.get("ctx", {}):
            parts.append(f"{location} {value!r}: {error['ctx']['error']}")
        else:
            shown = "" if isinstance(value, dict | list) else f" (got {value!r})"
            parts.append(f"{location or 'body'}: {error.get('msg', 'invalid')}{shown}")
    return "; ".join(parts) or "invalid request"


def declare_version_reads(schema: dict[str, Any]) -> None:
    """Every operation reading ``version=`` or ``at=`` may answer 404 (no such version; no
    version current at that time) and 403 (a key below planner)."""
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            names = {p.get("name") for p in operation.get("parameters", [])}
            if names & {"version", "at"}:
                responses = operation.setdefault("responses", {})
                for status, meaning in (
                    ("403", "The key's role may not do this (version= and at= need planner)."),
                    ("404", "No such resource, or no dataset version at that version or time."),
                ):
                    responses.setdefault(status, {"description": meaning})


def declare_problems(schema: dict[str, Any]) -> None:
    """Make ``schema`` say what is sent: every error response of every operation is
    problem+json (FastAPI declares its own ``HTTPValidationError`` for the 422s it adds)."""
    problem_ref = {"$ref": "#/components/schemas/Problem"}
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.get("responses", {}) if isinstance(operation, dict) else {}
            for status, response in responses.items():
                if str(status).isdigit() and int(status) >= 400:
                    response["content"] = {PROBLEM_JSON: {"schema": problem_ref}}
    schemas = schema.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""

    @app.exception_handler(errors.GeoserviceError)
    async def domain_error(request: Request, exc: errors.GeoserviceError) -> JSONResponse:
        problems = getattr(exc, "problems", None)
        extra = {"problems": problems} if problems else {}
        return problem(status_of(exc), str(exc), exc.title, **extra)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return problem(422, _describe_validation(exc), "Invalid input")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no resource at {request.url.path}"
        if exc.status_code == 400 and detail == "There was an error parsing the body":
            # FastAPI's answer to a body that is not UTF-8 text: bad input, like bad JSON
            detail = "the body could not be read as JSON (expected UTF-8 JSON text)"
            return problem(422, detail, "Invalid input")
        return problem(exc.status_code, detail)

    @app.exception_handler(sa.exc.SQLAlchemyError)
    async def database_error(request: Request, exc: sa.exc.SQLAlchemyError) -> JSONResponse:
        log.warning("database error on %s: %s", request.url.path, one_line(exc))
        status, title, detail = database_problem(exc)
        return problem(status, detail, title)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s", request.url.path)
        return problem(500, "internal error; the server log has the details")
