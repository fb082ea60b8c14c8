"""Alembic environment: runs on the engine geoservice hands over (see ``db.alembic_config``)."""

from alembic import context

from geoservice.db import create_engine
from geoservice.models import SCHEMA, metadata
from geoservice.settings import Settings

engine = context.config.attributes.get("engine") or create_engine(Settings(), "owner")

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table_schema=SCHEMA,
        include_schemas=True,
        include_name=lambda name, type_, parent: type_ != "schema" or name == SCHEMA,
    )
    connection.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    with context.begin_transaction():
        context.run_migrations()
