"""API keys and roles: ``tracker`` < ``dispatch`` < ``planner`` < ``gis`` < ``admin``.

A key is ``gs_<key id>_<secret>``: 8 hex characters that say which key it claims to be,
and 32 random bytes. Only the SHA-256 of the whole key is stored; a check looks the key
id up and compares the hashes in constant time (microseconds). Keys are created, listed
and revoked with ``geoservice keys``, through the database functions ``create_api_key``
and ``revoke_api_key`` (the ETL login may not touch ``api_key`` otherwise, migration 0008):
each writes its audit log entry in the same transaction, and ``NOTIFY geoservice_keys``
tells every server to reload its keys at once.

**Device keys.** A key may be bound to patrol units (``--units XD01-1,XD01-2``): a
``tracker`` key (one per patrol car's GPS device) must be, and may only post those units'
positions; a key of any other role posts positions only when it is bound to units, and
then only theirs (``admin`` keys without units, and everyone when keys are off, post for
any unit: operators' tools).

Each key has a token bucket (its own rate, or the server's default) per server process:
over it, requests get a 429 with ``Retry-After``.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from geoservice.audit import Actor
from geoservice.errors import InvalidInput, NotFound
from geoservice.models import api_key

log = logging.getLogger(__name__)

Role = Literal["tracker", "dispatch", "planner", "gis", "admin"]
ROLES: tuple[Role, ...] = ("tracker", "dispatch", "planner", "gis", "admin")
RANK = {role: rank for rank, role in enumerate(ROLES)}
KEYS_CHANNEL = "geoservice_keys"
KEY_PATTERN = re.compile(r"gs_([0-9a-f]{8})_[A-Za-z0-9_-]{43}")
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")
UNIT_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}")
MAX_UNITS = 100


@dataclass(frozen=True)
class Identity:
    """Who a request comes from, and the rate its key may go at."""

    name: str
    role: Role
    rate_per_s: float = float("inf")
    burst: int = 1
    units: frozenset[str] = frozenset()
    """The patrol units whose positions this key may post (empty: bound to none)."""

    def may(self, role: Role) -> bool:
        """Whether this identity's role includes ``role``."""
        return RANK[self.role] >= RANK[role]

    def may_post_for(self, unit: str) -> bool:
        """Whether this key may post ``unit``'s positions: a key bound to units, for
        those; an admin key bound to none, for any."""
        return unit in self.units if self.units else self.role == "admin"


ANONYMOUS = Identity("anonymous", "admin")
"""Who everyone is when keys are off (``GEOSERVICE_AUTH=off``, loopback only)."""


@dataclass(frozen=True)
class KeyInfo:
    name: str
    key_id: str
    role: Role
    created_at: datetime
    created_by: str
    revoked_at: datetime | None
    rate_per_s: float | None
    burst: int | None
    units: list[str] | None


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def check_role(role: str) -> Role:
    if role not in ROLES:
        msg = f"role {role!r} is unknown; expected one of {', '.join(ROLES)}"
        raise InvalidInput(msg)
    return role


def check_units(units: Sequence[str], known: set[str] | None) -> list[str]:
    """Unit codes a key is bound to, each well-formed and, when ``known`` is given (the
    current version's patrol units), one of them; sorted, without repeats."""
    codes = sorted({unit.strip() for unit in units if unit.strip()})
    if not codes:
        msg = "no unit given; expected patrol unit codes such as XD01-1,XD01-2"
        raise InvalidInput(msg)
    if len(codes) > MAX_UNITS:
        msg = f"{len(codes)} units; a key is bound to at most {MAX_UNITS}"
        raise InvalidInput(msg)
    for code in codes:
        if not UNIT_PATTERN.fullmatch(code):
            msg = f"unit {code!r}: letters, digits and _.- only, at most 32 characters"
            raise InvalidInput(msg)
        if known is not None and code not in known:
            msg = (
                f"unit {code!r} is not a patrol unit of the current dataset version; "
                f"expected one of the {len(known)} units such as {min(known, default='none')}"
            )
            raise InvalidInput(msg)
    return codes


def _current_units(engine: Engine) -> set[str] | None:
    """The current version's patrol unit codes (None before any version is published)."""
    from geoservice.patrols import patrol_units

    with engine.connect() as conn:
        version = conn.execute(
            sa.text("SELECT version_id FROM geoservice.current_dataset")
        ).scalar_one_or_none()
    return None if version is None else {u.code for u in patrol_units(engine, version)}


def create_key(
    engine: Engine,
    name: str,
    role: str,
    *,
    actor: Actor,
    rate_per_s: float | None = None,
    burst: int | None = None,
    units: Sequence[str] | None = None,
) -> str:
    """A new key (returned once, never stored) for ``name`` with ``role``, bound to the
    patrol ``units`` when given (a ``tracker`` key must be)."""
    if not NAME_PATTERN.fullmatch(name):
        msg = f"key name {name!r}: letters, digits and _.@- only, at most 64 characters"
        raise InvalidInput(msg)
    check_role(role)
    if role == "tracker" and not units:
        msg = f"a tracker key needs --units (the patrol units {name!r} reports for)"
        raise InvalidInput(msg)
    if rate_per_s is not None and not rate_per_s > 0:
        msg = f"rate {rate_per_s!r} must be > 0 requests per second"
        raise InvalidInput(msg)
    if burst is not None and burst < 1:
        msg = f"burst {burst!r} must be at least 1"
        raise InvalidInput(msg)
    key_id = secrets.token_hex(4)
    key = f"gs_{key_id}_{secrets.token_urlsafe(32)}"
    codes = check_units(units, _current_units(engine)) if units else None
    with engine.begin() as conn:  # the key, its audit entry and the NOTIFY, in the database
        created = conn.execute(
            sa.text(
                "SELECT geoservice.create_api_key(:name, :key_id, :role, :hash, :rate, :burst, "
                "CAST(:units AS text[]), :actor, :via, :os_user)"
            ),
            {
                "name": name,
                "key_id": key_id,
                "role": role,
                "hash": digest(key),
                "rate": rate_per_s,
                "burst": burst,
                "units": codes,
                **_who(actor),
            },
        ).scalar_one()
    if not created:
        msg = f"a key named {name!r} exists already (revoked keys keep their name)"
        raise InvalidInput(msg)
    return key


def _who(actor: Actor) -> dict[str, str | None]:
    return {"actor": actor.name, "via": actor.via, "os_user": actor.os_user}


def revoke_key(engine: Engine, name: str, *, actor: Actor) -> None:
    """Revoke ``name``'s key: refused everywhere within a second (NOTIFY)."""
    with engine.begin() as conn:  # the revocation, its audit entry and the NOTIFY
        found, revoked_before = conn.execute(
            sa.text("SELECT * FROM geoservice.revoke_api_key(:name, :actor, :via, :os_user)"),
            {"name": name, **_who(actor)},
        ).one()
    if not found:
        msg = f"no key named {name!r}"
        raise NotFound(msg)
    if revoked_before is not None:
        msg = f"the key {name!r} was revoked already, at {revoked_before:%Y-%m-%d %H:%M:%S}"
        raise InvalidInput(msg)


def list_keys(conn: Connection) -> list[KeyInfo]:
    rows = conn.execute(sa.select(api_key).order_by(api_key.c.name)).mappings()
    return [KeyInfo(**{k: v for k, v in row.items() if k != "key_hash"}) for row in rows]


class KeyStore:
    """The live keys of a server process, and their token buckets."""

    def __init__(self, engine: Engine, rate_per_s: float, burst: int) -> None:
        self.engine = engine
        self.rate_per_s = rate_per_s
        self.burst = burst
        self._keys: dict[str, tuple[str, Identity]] = {}
        self._buckets: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def reload(self, engine: Engine | None = None) -> None:
        """Read the unrevoked keys (on start, on NOTIFY and periodically), from ``engine``
        when given."""
        with (engine or self.engine).connect() as conn:
            rows = conn.execute(
                sa.select(
                    api_key.c.key_id,
                    api_key.c.key_hash,
                    api_key.c.name,
                    api_key.c.role,
                    api_key.c.rate_per_s,
                    api_key.c.burst,
                    api_key.c.units,
                ).where(api_key.c.revoked_at.is_(None))
            ).all()
        self._keys = {
            key_id: (
                key_hash,
                Identity(
                    name,
                    role,
                    rate or self.rate_per_s,
                    burst or self.burst,
                    frozenset(units or ()),
                ),
            )
            for key_id, key_hash, name, role, rate, burst, units in rows
        }
        log.info("%d keys loaded", len(self._keys))

    def check(self, presented: str) -> Identity | None:
        """The identity of a presented key, or None (unknown, revoked or malformed)."""
        match = KEY_PATTERN.fullmatch(presented)
        if match is None:
            return None
        known = self._keys.get(match[1])
        if known is None or not hmac.compare_digest(known[0], digest(presented)):
            return None
        return known[1]

    def allow(self, identity: Identity) -> float | None:
        """Take a token from the identity's bucket: None, or the seconds to wait for one."""
        rate, burst = identity.rate_per_s, identity.burst
        if rate == float("inf"):
            return None
        now = time.monotonic()
        with self._lock:
            bucket = self._buckets.setdefault(identity.name, [float(burst), now])
            tokens = min(burst, bucket[0] + (now - bucket[1]) * rate)
            bucket[1] = now
            if tokens >= 1.0:
                bucket[0] = tokens - 1.0
                return None
            bucket[0] = tokens
            return (1.0 - tokens) / rate
