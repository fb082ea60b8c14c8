"""Every error as ``application/problem+json`` (RFC 9457); the one status map lives here."""

from __future__ import annotations

import logging
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from geoservice import errors

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

STATUS_BY_ERROR: dict[type[errors.GeoserviceError], int] = {
    errors.PayloadTooLarge: 413,
    errors.InvalidInput: 422,
    errors.ValidationFailed: 422,
    errors.NotFound: 404,
    errors.DatabaseUnavailable: 503,
    errors.ConfigurationError: 503,
}


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
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON)


def status_of(exc: errors.GeoserviceError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 500


def _describe_validation(exc: RequestValidationError) -> str:
    parts = []
    for error in exc.errors():
        location = ".".join(str(item) for item in error.get("loc", ()) if item != "body")
        value = error.get("input")
        shown = "" if isinstance(value, dict | list) else f" (got {value!r})"
        parts.append(f"{location or 'body'}: {error.get('msg', 'invalid')}{shown}")
    return "; ".join(parts) or "invalid request"


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""

    @app.exception_handler(errors.GeoserviceError)
    async def domain_error(request: Request, exc: errors.GeoserviceError) -> JSONResponse:
        extra = {"problems": exc.problems} if isinstance(exc, errors.ValidationFailed) else {}
        return problem(status_of(exc), str(exc), exc.title, **extra)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return problem(422, _describe_validation(exc), "Invalid input")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no resource at {request.url.path}"
        return problem(exc.status_code, detail)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s", request.url.path)
        return problem(500, "internal error; the server log has the details")
