"""Reading JSON request bodies under a size limit (413 over it, 422 when not JSON)."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request

from geoservice.errors import InvalidInput, PayloadTooLarge


async def read_json(request: Request, limit: int, label: str = "request body") -> Any:
    """The parsed body; refused before reading when ``Content-Length`` is over ``limit``."""
    size = request.headers.get("content-length")
    if size is not None and size.isdigit() and int(size) > limit:
        msg = f"{label} of {int(size):,} bytes is over the limit of {limit:,}"
        raise PayloadTooLarge(msg)
    raw = await request.body()
    if len(raw) > limit:
        msg = f"{label} of {len(raw):,} bytes is over the limit of {limit:,}"
        raise PayloadTooLarge(msg)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        msg = f"body is not valid JSON: {exc}"
        raise InvalidInput(msg) from None
