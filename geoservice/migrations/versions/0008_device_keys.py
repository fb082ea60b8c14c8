"""Device keys bound to patrol units; bounded events.

- ``api_key.units``: the patrol units whose positions a key may post; the ``tracker`` role
  (one key per patrol car's GPS device, below ``dispatch``) must have at least one.
- ``event``: times (and closing times) in [1900, 2200), ids of at most 64 characters,
  descriptions of at most 2,000: no stored row can break a read (the API and the ETL check
  narrower bounds, ``geoservice.events``). A database holding events outside these is not
  upgraded: the migration names them.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

S = "geoservice"
EVENT_TIME_BOUNDS = (
    "time >= '1900-01-01 00:00:00+00' AND time < '2200-01-01 00:00:00+00' "
    "AND (closed_at IS NULL OR closed_at < '2200-01-01 00:00:00+00')"
)
EVENT_CHECKS = {
    "event_time_bounds": EVENT_TIME_BOUNDS,
    "event_id_length": "length(id) <= 64",
    "event_description_length": "length(description) <= 2000",
}


def upgrade() -> None:
    op.add_column(
        "api_key",
        sa.Column(
            "units",
            ARRAY(sa.Text),
            comment="The patrol units whose positions the key may post",
        ),
        schema=S,
    )
    op.drop_constraint("api_key_role", "api_key", schema=S, type_="check")
    op.create_check_constraint(
        "api_key_role",
        "api_key",
        "role IN ('tracker', 'dispatch', 'planner', 'gis', 'admin')",
        schema=S,
    )
    op.create_check_constraint(
        "api_key_tracker_units",
        "api_key",
        "role <> 'tracker' OR cardinality(units) > 0",
        schema=S,
    )
    for name, check in EVENT_CHECKS.items():
        bad = (
            op.get_bind()
            .execute(sa.text(f"SELECT id FROM {S}.event WHERE NOT ({check}) ORDER BY id LIMIT 10"))
            .scalars()
            .all()
        )
        if bad:
            msg = (
                f"events {bad} break {name} ({check}): correct them (geoservice etl events "
                "replaces events by id) and upgrade again"
            )
            raise RuntimeError(msg)
        op.create_check_constraint(name, "event", check, schema=S)


def downgrade() -> None:
    for name in EVENT_CHECKS:
        op.drop_constraint(name, "event", schema=S, type_="check")
    op.execute(f"UPDATE {S}.api_key SET revoked_at = now() WHERE role = 'tracker'")
    op.drop_constraint("api_key_tracker_units", "api_key", schema=S, type_="check")
    op.drop_constraint("api_key_role", "api_key", schema=S, type_="check")
    op.execute(f"UPDATE {S}.api_key SET role = 'dispatch' WHERE role = 'tracker'")
    op.create_check_constraint(
        "api_key_role", "api_key", "role IN ('dispatch', 'planner', 'gis', 'admin')", schema=S
    )
    op.drop_column("api_key", "units", schema=S)
