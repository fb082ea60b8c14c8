"""Drafts edited feature by feature (OGC API – Features Part 4).

An edit writes a new snapshot of the draft's layer (the layer copied with the edit
applied: feature tables stay append-only) and repoints the draft's
``dataset_version_layer`` row at it. The writer may update that one column, and a
trigger refuses it for any version that is not a draft, so published versions stay
exactly as they were published.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

S = "geoservice"
WRITER = "geoservice_writer"


def upgrade() -> None:
    op.execute(f"""
        CREATE FUNCTION {S}.only_drafts_are_edited() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.version_id <> OLD.version_id OR NEW.layer <> OLD.layer THEN
                RAISE EXCEPTION 'a version''s layer row can only be repointed to another snapshot';
            END IF;
            IF (SELECT status FROM {S}.dataset_version WHERE id = OLD.version_id) <> 'draft' THEN
                RAISE EXCEPTION 'dataset version % is not a draft: its layers are as published',
                    OLD.version_id;
            END IF;
            RETURN NEW;
        END $$
    """)
    op.execute(f"""
        CREATE TRIGGER dataset_version_layer_drafts_only
        BEFORE UPDATE ON {S}.dataset_version_layer
        FOR EACH ROW EXECUTE FUNCTION {S}.only_drafts_are_edited()
    """)
    op.execute(f"GRANT UPDATE (snapshot_id) ON {S}.dataset_version_layer TO {WRITER}")


def downgrade() -> None:
    op.execute(f"REVOKE UPDATE (snapshot_id) ON {S}.dataset_version_layer FROM {WRITER}")
    op.execute(f"DROP TRIGGER dataset_version_layer_drafts_only ON {S}.dataset_version_layer")
    op.execute(f"DROP FUNCTION {S}.only_drafts_are_edited()")
