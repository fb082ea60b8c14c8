"""What routes share: the service, the request's dataset version, bodies read under a limit,
and worker answers turned into responses."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterator
from typing import Annotated, Any, BinaryIO

from fastapi import Depends, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from geoservice.datasets import resolve_version, version_at
from geoservice.errors import Forbidden, InvalidInput, PayloadTooLarge
from geoservice.keys import Identity, Role
from geoservice.server.params import MAX_ID, OptionalMoment
from geoservice.server.service import Service
from geoservice.server.workers import Answer, Handler, Reads, Task, open_spill
from geoservice.state import VersionState
from geoservice.times import in_china

CHUNK_BYTES = 1 << 20


def service_of(request: Request) -> Service:
    return request.app.state.service


def public_base(request: Request) -> str:
    """The base of every absolute link an answer holds: ``GEOSERVICE_PUBLIC_URL``, else the
    listen address; never the request's ``Host`` header."""
    return service_of(request).settings.public_base()


def identity_of(request: Request) -> Identity:
    """Who the request comes from (set by the edge after checking the key)."""
    identity = request.scope.get("state", {}).get("identity")
    if identity is None:  # a public path never reaches a route that needs a role
        msg = "no identity on this request"
        raise Forbidden(msg)
    return identity


def requires(role: Role) -> Any:
    """A router dependency: the request's key must have ``role`` (or a higher one)."""

    def check(request: Request) -> Identity:
        identity = identity_of(request)
        if not identity.may(role):
            msg = (
                f"the key {identity.name!r} has the role {identity.role!r}; "
                f"this needs {role!r} or higher"
            )
            raise Forbidden(msg)
        return identity

    return Depends(check)


async def current_state(request: Request) -> VersionState:
    """The state every part of this request uses (built now if the server has none yet)."""
    service = service_of(request)
    state = service.current
    return state if state is not None else await run_in_threadpool(service.state)


async def current_version(request: Request) -> int:
    return (await current_state(request)).version


async def read_version(
    request: Request,
    version: Annotated[
        int | None,
        Query(
            ge=1, le=MAX_ID, description="Answer from this dataset version (planner; drafts too)."
        ),
    ] = None,
    at: Annotated[
        OptionalMoment,
        Query(
            description="Answer from the version that was current at this ISO 8601 time "
            "(planner); without an offset, China Standard Time (+08:00).",
            examples=["2026-11-28T09:30:00+08:00"],
        ),
    ] = None,
) -> int:
    """The dataset version a request reads: the current one, or ``version=``/``at=``."""
    if version is None and at is None:
        return await current_version(request)
    identity = identity_of(request)
    if not identity.may("planner"):
        msg = f"the key {identity.name!r} ({identity.role}) reads the current version only; "
        msg += "version= and at= need 'planner' or higher"
        raise Forbidden(msg)
    if version is not None and at is not None:
        msg = f"give version= ({version}) or at= ({at.isoformat()}), not both"
        raise InvalidInput(msg)

    def resolve() -> int:
        with service_of(request).engine.connect() as conn:
            if version is not None:
                return resolve_version(conn, version)
            assert at is not None
            return version_at(conn, in_china(at))

    return await run_in_threadpool(resolve)


Version = Annotated[int, Depends(read_version)]
"""The dataset version a route answers from (``version=``/``at=`` or the current one)."""


def limited_body(limit: int, label: str) -> Callable[[Request], Coroutine[Any, Any, bytes]]:
    """A dependency reading the body, refused (413) as soon as it passes ``limit`` bytes —
    before reading when ``Content-Length`` says so, while reading when it is chunked."""

    async def read(request: Request) -> bytes:
        size = request.headers.get("content-length")
        if size is not None and size.isdigit() and int(size) > limit:
            msg = f"{label} of {int(size):,} bytes is over the limit of {limit:,}"
            raise PayloadTooLarge(msg)
        parts, total = [], 0
        async for chunk in request.stream():
            total += len(chunk)
            if total > limit:
                msg = f"{label} is over the limit of {limit:,} bytes"
                raise PayloadTooLarge(msg)
            parts.append(chunk)
        return b"".join(parts)

    return read


async def ask(
    request: Request, handler: Handler, *args: Any, version: int | None = None
) -> Response:
    """Run ``handler`` with ``args`` in a worker — on ``version``'s state (default: the
    current version) unless it reads the worker's resources — and answer with what it made.
    It waits in the handler's lane; dispatch work on another version than the current one
    waits in the analysis lane (its state may take seconds to build)."""
    lane = handler.lane
    if handler.reads is Reads.STATE:
        current = await current_version(request)
        version = current if version is None else version
        lane = handler.lane_for(version == current)
    task = Task(handler, version, args)
    return respond(await asyncio.wrap_future(service_of(request).pool.submit(lane, task)))


def body_of(answer: Answer) -> bytes:
    """The whole body of an answer (read from its spill file if it has one)."""
    if answer.spill is None:
        return answer.body
    with open_spill(answer) as handle:
        return handle.read()


def respond(answer: Answer) -> Response:
    """An answer as a response (a spilled body streamed in chunks)."""
    if answer.spill is None:
        return Response(
            answer.body, answer.status, headers=answer.headers, media_type=answer.media_type
        )
    return StreamingResponse(
        _chunks(open_spill(answer)),
        answer.status,
        headers={**answer.headers, "content-length": str(answer.size)},
        media_type=answer.media_type,
    )


def _chunks(handle: BinaryIO) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(CHUNK_BYTES):
            yield chunk
