"""The append-only audit log: who published, promoted or rolled back what, and who
created or revoked which key.

Each entry is written on the connection (the transaction) of what it records, so both
commit or neither does. The table refuses UPDATE, DELETE and TRUNCATE for everyone (a
trigger), and the service's roles are granted neither.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from geoservice.models import audit_log

Via = Literal["cli", "api"]


@dataclass(frozen=True)
class Actor:
    """Who does something: a key's name through the API; ``--by`` or the OS user on the CLI."""

    name: str
    via: Via
    os_user: str | None = None

    @classmethod
    def cli(cls, by: str | None = None) -> Actor:
        user = os_user()
        return cls(by or user, "cli", user)


def os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


@dataclass(frozen=True)
class Entry:
    id: int
    at: datetime
    actor: str
    via: str
    os_user: str | None
    action: str
    version_id: int | None
    detail: dict[str, Any]
    note: str

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "at": self.at.isoformat()}


def record(
    conn: Connection,
    actor: Actor,
    action: str,
    *,
    version_id: int | None = None,
    detail: dict[str, Any] | None = None,
    note: str = "",
) -> None:
    """Append one entry, in ``conn``'s transaction."""
    conn.execute(
        sa.insert(audit_log).values(
            actor=actor.name,
            via=actor.via,
            os_user=actor.os_user,
            action=action,
            version_id=version_id,
            detail=detail or {},
            note=note,
        )
    )


def entries(conn: Connection, *, limit: int = 1000, action: str | None = None) -> list[Entry]:
    """The newest ``limit`` entries, newest first."""
    query = sa.select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
    if action is not None:
        query = query.where(audit_log.c.action == action)
    return [Entry(**row) for row in conn.execute(query).mappings()]
