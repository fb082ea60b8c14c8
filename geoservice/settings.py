"""Settings from the environment (prefix ``GEOSERVICE_``); nothing is built at import."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import URL, make_url

from geoservice.errors import ConfigurationError

PROJECT_ROOT = Path(__file__).resolve().parents[1]


class Settings(BaseSettings):
    """Runtime configuration.

    ``database_url`` wins when set; otherwise the project-local cluster recorded in
    ``<data_dir>/cluster.env`` by ``scripts/pgcluster.sh`` is used.
    """

    model_config = SettingsConfigDict(env_prefix="GEOSERVICE_", frozen=True)

    database_url: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    data_dir: Path = Path(".data")
    database_name: str = "geoservice"
    statement_timeout_ms: int = Field(default=30_000, ge=0)
    connect_timeout_s: int = Field(default=3, ge=1)
    analysis_workers: int = Field(default=2, ge=1, le=64)
    """Worker processes per server process for heavy requests (batches, isochrones,
    coverage, scenarios, layers)."""
    poll_s: float = Field(default=30.0, gt=0)
    """How often a server checks for a version it was not notified of."""

    @cached_property
    def resolved_data_dir(self) -> Path:
        """The data dir, relative paths taken from the working dir, else the project root."""
        if self.data_dir.is_absolute():
            return self.data_dir
        here = Path.cwd() / self.data_dir
        if here.exists():
            return here
        return PROJECT_ROOT / self.data_dir

    def sqlalchemy_url(self) -> URL:
        """The SQLAlchemy URL of the database in use."""
        if self.database_url:
            try:
                url = make_url(self.database_url)
            except Exception as exc:
                msg = f"GEOSERVICE_DATABASE_URL {self.database_url!r} is not a database URL: {exc}"
                raise ConfigurationError(msg) from exc
            if url.drivername in ("postgresql", "postgres"):
                url = url.set(drivername="postgresql+psycopg")
            return url
        env_file = self.resolved_data_dir / "cluster.env"
        if not env_file.exists():
            msg = (
                f"no database configured: {env_file} does not exist. Run `make run` or "
                "`scripts/pgcluster.sh ensure` to start the local cluster, or set "
                "GEOSERVICE_DATABASE_URL."
            )
            raise ConfigurationError(msg)
        values = dict(
            line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line
        )
        return URL.create(
            "postgresql+psycopg",
            username="postgres",
            password=values["PASSWORD"],
            host="127.0.0.1",
            port=int(values["PORT"]),
            database=self.database_name,
        )
