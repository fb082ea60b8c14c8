"""Drafts and the history of the current version.

- ``dataset_version.status`` may be ``draft``: published data that is not current until
  ``geoservice promote``.
- ``current_history``: every time a version became current (publish, promote, rollback),
  append-only, so that ``at=`` reads find the version current at any moment.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

S = "geoservice"


def upgrade() -> None:
    op.drop_constraint("dataset_version_status", "dataset_version", schema=S, type_="check")
    op.create_check_constraint(
        "dataset_version_status",
        "dataset_version",
        "status IN ('published', 'draft', 'archived')",
        schema=S,
    )
    op.create_table(
        "current_history",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column(
            "version_id", sa.Integer, sa.ForeignKey(f"{S}.dataset_version.id"), nullable=False
        ),
        sa.Column(
            "since", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        schema=S,
    )
    op.create_index("current_history_since", "current_history", ["since"], schema=S)
    op.execute(
        f"INSERT INTO {S}.current_history (version_id, since) "
        f"SELECT version_id, made_current_at FROM {S}.current_dataset"
    )
    op.execute(f"GRANT SELECT ON {S}.current_history TO geoservice_reader")
    op.execute(f"GRANT SELECT, INSERT ON {S}.current_history TO geoservice_writer")
    op.execute(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA {S} TO geoservice_writer")


def downgrade() -> None:
    op.drop_table("current_history", schema=S)
    op.execute(f"UPDATE {S}.dataset_version SET status = 'archived' WHERE status = 'draft'")
    op.drop_constraint("dataset_version_status", "dataset_version", schema=S, type_="check")
    op.create_check_constraint(
        "dataset_version_status", "dataset_version", "status IN ('published', 'archived')", schema=S
    )
