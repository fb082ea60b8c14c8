"""Engine, migrations and dataset-version notifications."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import URL, Engine

from geoservice.errors import ConfigurationError, DatabaseUnavailable
from geoservice.models import SCHEMA
from geoservice.settings import Role, Settings

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def describe(url: URL) -> str:
    """``host:port/database`` of a URL, without credentials."""
    return f"{url.host or 'localhost'}:{url.port or 5432}/{url.database or ''}"


def create_engine(
    settings: Settings, role: Role = "reader", *, primary: bool = False, **kwargs: object
) -> Engine:
    """An engine on the configured database as ``role`` — ``reader`` (the default: the API,
    reports, notebooks; on the hot standby when ``GEOSERVICE_READ_URL`` names one, unless
    ``primary``), ``writer`` (the ETL) or ``owner`` (migrations) — with short connect and
    statement timeouts."""
    url, session_role = settings.login(role, primary=primary)
    options = f"-c statement_timeout={settings.statement_timeout_ms}"
    if session_role:
        options += f" -c role={session_role}"
    connect_args = {
        "connect_timeout": settings.connect_timeout_s,
        "application_name": f"geoservice-{role}",
        "options": options,
    }
    pool: dict[str, object] = {"pool_pre_ping": True, "pool_size": 5, "max_overflow": 10}
    pool.update(kwargs)
    return sa.create_engine(url, connect_args=connect_args, **pool)


def check_connection(engine: Engine) -> None:
    """Connect once; raise ``DatabaseUnavailable`` with a one-line reason naming host and port."""
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
    except sa.exc.SQLAlchemyError as exc:
        msg = f"cannot connect to PostgreSQL at {describe(engine.url)}: {one_line(exc)}"
        raise DatabaseUnavailable(msg) from None


def one_line(exc: BaseException) -> str:
    """A driver error as one line (libpq messages span several)."""
    text = str(getattr(exc, "orig", None) or exc)
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


def open_engine(settings: Settings, role: Role = "reader") -> Engine:
    """``create_engine`` followed by ``check_connection``: fails fast with a clear message."""
    engine = create_engine(settings, role)
    check_connection(engine)
    return engine


def libpq_conninfo(url: URL) -> str:
    """A libpq connection string for a SQLAlchemy URL (for raw psycopg connections)."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def alembic_config(engine: Engine) -> Config:
    """Alembic configuration running on ``engine``, independent of the working directory."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["engine"] = engine
    return config


AUDIT_GUARD_SQL = MIGRATIONS_DIR / "audit_guard.sql"
AUDIT_GUARD_TRIGGERS = 4
"""The event triggers of ``audit_guard.sql`` (``geoservice_audit_log_*``)."""


def audit_guard_problem(engine: Engine) -> str | None:
    """Why the audit log could be rewritten by ``engine``'s login, or None: that login is a
    superuser, or the superuser's guard (``migrations/audit_guard.sql``) is missing."""
    with engine.connect() as conn:
        superuser, guards = conn.execute(
            sa.text(
                "SELECT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user), "
                "(SELECT count(*) FROM pg_event_trigger e JOIN pg_roles r ON r.oid = e.evtowner "
                "WHERE r.rolsuper AND e.evtenabled <> 'D' "
                "AND e.evtname LIKE 'geoservice\\_audit\\_log\\_%')"
            )
        ).one()
    where = describe(engine.url)
    if superuser:
        return (
            f"{engine.url.username} is a superuser on {where}: it can get past the append-only "
            "audit log; migrate as an owner that is no superuser (docs/OPERATIONS.md)"
        )
    if guards < AUDIT_GUARD_TRIGGERS:
        return (
            f"the audit log's guard is not installed in {where}: its owner could disable the "
            f"append-only trigger; a superuser runs {AUDIT_GUARD_SQL} there once"
        )
    return None


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations up to ``revision``; warn when the audit log is not kept from the
    login that migrates (``audit_guard_problem``)."""
    check_connection(engine)
    command.upgrade(alembic_config(engine), revision)
    problem = audit_guard_problem(engine)
    if problem:
        log.warning("%s", problem)


def require_current_schema(engine: Engine) -> None:
    """Refuse (``ConfigurationError``) a database whose schema is behind (or ahead of) the
    code's migrations: the server never migrates, the deploy step does."""
    from alembic.migration import MigrationContext
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"version_table_schema": SCHEMA})
            current = context.get_current_revision()
    except sa.exc.ProgrammingError as exc:  # no schema yet, or no grants to this role yet
        msg = (
            f"the database {describe(engine.url)} has no readable schema revision "
            f"({one_line(exc)}); the code needs {head}: run `geoservice db upgrade` first"
        )
        raise ConfigurationError(msg) from None
    if current != head:
        msg = (
            f"the database {describe(engine.url)} is at schema revision {current or 'none'}, "
            f"the code needs {head}: run `geoservice db upgrade` first"
        )
        raise ConfigurationError(msg)


def downgrade(engine: Engine, revision: str) -> None:
    """Revert migrations down to ``revision`` (``base`` removes everything)."""
    check_connection(engine)
    command.downgrade(alembic_config(engine), revision)


class Listener:
    """Calls ``channels[name](payload)`` for every notification on those channels.

    Runs ``LISTEN`` on its own connection in a daemon thread and reconnects after a lost
    connection; ``catch_up`` is called after each (re)connection and every ``poll_s``
    seconds, so the caller catches up on what it may have missed.
    """

    def __init__(
        self,
        url: URL,
        channels: dict[str, Callable[[str], object]],
        catch_up: Callable[[], object],
        *,
        retry_s: float = 2.0,
        poll_s: float | None = None,
    ) -> None:
        self._conninfo = libpq_conninfo(url)
        self._channels = channels
        self._catch_up = catch_up
        self._retry_s = retry_s
        self._poll_s = poll_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="geoservice-listen", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=120)  # it may be building a version

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._conninfo, autocommit=True, connect_timeout=3) as conn:
                    for channel in self._channels:
                        conn.execute(f"LISTEN {channel}")
                    self._catch_up()
                    checked = time.monotonic()
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=1.0):
                            self._channels[note.channel](note.payload)
                        if self._poll_s and time.monotonic() - checked > self._poll_s:
                            checked = time.monotonic()
                            self._catch_up()
            except psycopg.Error as exc:
                log.warning("listener: %s; retrying", str(exc).strip().splitlines()[0])
            except Exception:
                log.exception("listener callback failed; retrying")
            self._stop.wait(self._retry_s)
