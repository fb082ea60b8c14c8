"""Settings from the environment (prefix ``GEOSERVICE_``); nothing is built at import."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import URL, make_url

from geoservice.errors import ConfigurationError

PROJECT_ROOT = Path(__file__).resolve().parents[1]


Role = Literal["owner", "writer", "reader", "recorder"]
"""Who connects: migrations (owner), the ETL (writer), the API and reports (reader), the
API's patrol positions and events (recorder: those two tables only)."""

ROLE_GROUPS: dict[str, str] = {
    "writer": "geoservice_writer",
    "reader": "geoservice_reader",
    "recorder": "geoservice_recorder",
}
LOCAL_OWNER: tuple[str, str] = ("geoservice_owner", "OWNER_PASSWORD")
"""The local cluster's owner login and its password's name in ``cluster.env``: no superuser
(``scripts/pgcluster.sh``; the superuser's ``PASSWORD`` there is for DBA work, never used
here)."""
LOCAL_LOGINS: dict[str, tuple[str, str]] = {
    "writer": ("geoservice_etl", "ETL_PASSWORD"),
    "reader": ("geoservice_api", "API_PASSWORD"),
    "recorder": ("geoservice_rec", "RECORDER_PASSWORD"),
}
URL_SETTINGS: dict[str, str] = {
    "reader": "api_database_url",
    "writer": "etl_database_url",
    "recorder": "recorder_database_url",
}


class Settings(BaseSettings):
    """Runtime configuration.

    ``database_url`` wins when set; otherwise the project-local cluster recorded in
    ``<data_dir>/cluster.env`` by ``scripts/pgcluster.sh`` is used. The API reads with the
    reader's login (``api_database_url``, or the local cluster's ``geoservice_api``), the
    ETL writes with the writer's (``etl_database_url``, or ``geoservice_etl``); given only
    ``database_url``, they connect with it and take the role for the session
    (``-c role=geoservice_reader``).
    """

    model_config = SettingsConfigDict(env_prefix="GEOSERVICE_", frozen=True)

    database_url: str | None = None
    api_database_url: str | None = None
    etl_database_url: str | None = None
    recorder_database_url: str | None = None
    """The login the API records patrol positions and events with (on the primary)."""
    read_url: str | None = None
    """A hot standby the API reads from (the primary stays ``database_url``)."""
    auth: bool = True
    """Keys required (``GEOSERVICE_AUTH=off`` is refused unless serving on loopback)."""
    rate_per_s: float = Field(default=200.0, gt=0)
    rate_burst: int = Field(default=400, ge=1)
    """A key's token bucket unless the key has its own (per server process)."""
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    public_url: str | None = None
    """The base of every absolute link the service writes (OGC links, TileJSON), as
    clients reach it (``https://gis.example/geoservice``); default: the listen address
    ``http://HOST:PORT``. The ``Host`` header is never used for links."""
    data_dir: Path = Path(".data")
    database_name: str = "geoservice"
    statement_timeout_ms: int = Field(default=30_000, ge=0)
    connect_timeout_s: int = Field(default=3, ge=1)
    analysis_workers: int = Field(default=2, ge=1, le=64)
    """Worker processes per server process for heavy requests (batches, isochrones,
    coverage, scenarios, layers)."""
    poll_s: float = Field(default=30.0, gt=0)
    """How often a server checks for a version it was not notified of."""
    positions_keep_days: int = Field(default=30, ge=1)
    """Days of patrol positions kept (older day partitions are dropped)."""
    position_max_age_s: float = Field(default=300.0, gt=0)
    """A position older than this is ignored (and a unit's last one stops counting)."""
    max_speed_kmh: float = Field(default=150.0, gt=0)
    """A position implying more than this from the unit's last position is refused."""
    journal_dir: Path | None = None
    """Where positions received while PostgreSQL is away are journaled (default
    ``<data dir>/journal``); on a local disk, kept across restarts."""
    journal_max_mb: float = Field(default=256.0, gt=0)
    """The bound on the journal (all its files); past it a position is a 503."""

    state_dir: Path | None = None
    """Where each dataset version's state (locate tables, road networks) is written once and
    mapped by every process of this host; default ``<data dir>/state``."""
    dask_scheduler: str | None = None
    """The address of a Dask scheduler (``tcp://host:8786``) for province-wide analysis;
    default: a local cluster of this host's cores, started for one analysis."""

    @field_validator("public_url")
    @classmethod
    def _check_public_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            msg = f"GEOSERVICE_PUBLIC_URL {value!r}: expected http(s)://host[:port][/path]"
            raise ValueError(msg)
        if parts.query or parts.fragment or parts.username or parts.password:
            msg = f"GEOSERVICE_PUBLIC_URL {value!r}: no query, fragment or user name"
            raise ValueError(msg)
        return value.rstrip("/")

    def public_base(self) -> str:
        """Where clients reach the service, without a trailing slash (``public_url``, else
        the listen address)."""
        if self.public_url:
            return self.public_url
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @cached_property
    def resolved_data_dir(self) -> Path:
        """The data dir, relative paths taken from the working dir, else the project root."""
        if self.data_dir.is_absolute():
            return self.data_dir
        here = Path.cwd() / self.data_dir
        if here.exists():
            return here
        return PROJECT_ROOT / self.data_dir

    @property
    def resolved_state_dir(self) -> Path:
        """The state directory (``state_dir``, else ``<data dir>/state``)."""
        return self.state_dir if self.state_dir is not None else self.resolved_data_dir / "state"

    @property
    def resolved_journal_dir(self) -> Path:
        """The position journal's directory (``journal_dir``, else under the data dir)."""
        if self.journal_dir is not None:
            return self.journal_dir.resolve()
        return self.resolved_data_dir.resolve() / "journal"

    def sqlalchemy_url(self) -> URL:
        """The SQLAlchemy URL of the database in use (the owner's login: the local cluster's
        ``geoservice_owner``, which is no superuser)."""
        if self.database_url:
            return _parse(self.database_url, "GEOSERVICE_DATABASE_URL")
        values = self._cluster()
        user, key = LOCAL_OWNER
        if key not in values:
            msg = (
                f"the local cluster has no {user} login yet (it was made by an older "
                "scripts/pgcluster.sh): run `scripts/pgcluster.sh ensure` (or `make db`)"
            )
            raise ConfigurationError(msg)
        return URL.create(
            "postgresql+psycopg",
            username=user,
            password=values[key],
            host="127.0.0.1",
            port=int(values["PORT"]),
            database=self.database_name,
        )

    def login(self, role: Role, *, primary: bool = False) -> tuple[URL, str | None]:
        """The URL ``role`` connects with, and the role to take for the session when that
        login is not the role's own (None: the login is). The reader reads from
        ``read_url`` (a hot standby) when there is one, unless ``primary``."""
        if role == "owner":
            return self.sqlalchemy_url(), None
        if role == "reader" and self.read_url and not primary:
            return _parse(self.read_url, "GEOSERVICE_READ_URL"), None
        setting = URL_SETTINGS[role]
        given = getattr(self, setting)
        if given:
            return _parse(given, f"GEOSERVICE_{setting.upper()}"), None
        if self.database_url:
            return self.sqlalchemy_url(), ROLE_GROUPS[role]
        user, key = LOCAL_LOGINS[role]
        values = self._cluster()
        if key not in values:
            msg = f"the local cluster has no {user} login yet: run `scripts/pgcluster.sh ensure`"
            raise ConfigurationError(msg)
        return self.sqlalchemy_url().set(username=user, password=values[key]), None

    def _cluster(self) -> dict[str, str]:
        """The local cluster's record (port, passwords)."""
        env_file = self.resolved_data_dir / "cluster.env"
        if not env_file.exists():
            msg = (
                f"no database configured: {env_file} does not exist. Run `make run` or "
                "`scripts/pgcluster.sh ensure` to start the local cluster, or set "
                "GEOSERVICE_DATABASE_URL."
            )
            raise ConfigurationError(msg)
        return dict(line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)


def _parse(text: str, name: str) -> URL:
    try:
        url = make_url(text)
    except Exception as exc:
        msg = f"{name} {text!r} is not a database URL: {exc}"
        raise ConfigurationError(msg) from exc
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    return url
