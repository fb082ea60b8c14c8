"""Device keys bound to patrol units.

- ``api_key.units``: the patrol units whose positions a key may post; the ``tracker`` role
  (one key per patrol car's GPS device, below ``dispatch``) must have at least one.

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


def downgrade() -> None:
    op.execute(f"UPDATE {S}.api_key SET revoked_at = now() WHERE role = 'tracker'")
    op.drop_constraint("api_key_tracker_units", "api_key", schema=S, type_="check")
    op.drop_constraint("api_key_role", "api_key", schema=S, type_="check")
    op.execute(f"UPDATE {S}.api_key SET role = 'dispatch' WHERE role = 'tracker'")
    op.create_check_constraint(
        "api_key_role", "api_key", "role IN ('dispatch', 'planner', 'gis', 'admin')", schema=S
    )
    op.drop_column("api_key", "units", schema=S)
