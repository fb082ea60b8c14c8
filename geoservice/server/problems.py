"""Every error as ``application/problem+json`` (RFC 9457), with the statuses of
``statuses``."""

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
from geoservice.server.media import PROBLEM_JSON
from geoservice.server.statuses import database_problem, status_of

log = logging.getLogger(__name__)


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
            parts.append(f"{location} {errors.shown(value)} is not a number")
        elif kind in ("literal_error", "enum"):
            expected = error.get("ctx", {}).get("expected", "")
            parts.append(f"{location} {errors.shown(value)} is unknown; expected {expected}")
        elif kind == "value_error" and "error" in error.get("ctx", {}):
            parts.append(f"{location} {errors.shown(value)}: {error['ctx']['error']}")
        else:
            shown = "" if isinstance(value, dict | list) else f" (got {errors.shown(value)})"
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
