"""A lean ASGI path for the hottest endpoint, ``GET /v1/locate``.

Dispatch systems call it thousands of times a second; going through FastAPI's routing,
parameter parsing and response classes costs more than the lookup itself. This wrapper
answers well-formed requests directly, from the server's current state in memory, and
hands everything else — bad input included — to the FastAPI app, whose route gives the
same answers and the problem+json errors.
"""

from __future__ import annotations

from urllib.parse import parse_qs

import orjson
from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from geoservice.errors import GeoserviceError
from geoservice.locate import parse_point

HEADERS = [(b"content-type", b"application/json")]


class LocateFastPath:
    """ASGI app: ``GET /v1/locate`` answered here when valid, all else by ``app``."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/v1/locate" and scope["method"] == "GET":
            body = self._answer(scope["query_string"])
            if body is not None:
                headers = [*HEADERS, (b"content-length", str(len(body)).encode())]
                await send({"type": "http.response.start", "status": 200, "headers": headers})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)

    def _answer(self, query_string: bytes) -> bytes | None:
        params = parse_qs(query_string.decode("latin-1"))
        if set(params) - {"lon", "lat", "crs"} or any(len(v) != 1 for v in params.values()):
            return None
        service = getattr(self.app.state, "service", None)
        state = service.current if service is not None else None
        if state is None:
            return None  # FastAPI's route waits for the first build, or says why not
        try:
            x, y = parse_point(
                params.get("lon", [None])[0],
                params.get("lat", [None])[0],
                params.get("crs", [None])[0],
            )
        except GeoserviceError:
            return None  # FastAPI's route answers with the problem+json error
        return orjson.dumps(state.index.locate(x, y))
