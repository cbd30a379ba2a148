"""Generic volume groups and group snapshots (contract 1.1).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 00:00:00+00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _record_columns(*own: sa.Column) -> list[sa.Column]:
    return [
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("service", sa.String(255), nullable=False),
        *own,
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("display_name", sa.String(255), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "groups",
        *_record_columns(
            sa.Column("host", sa.String(255), nullable=False),
            sa.Column("group_type", sa.JSON(), nullable=True),
        ),
        sa.PrimaryKeyConstraint("id", name="pk_groups"),
    )
    op.create_index("ix_groups_service", "groups", ["service"])
    op.create_table(
        "group_snapshots",
        *_record_columns(sa.Column("group_id", sa.String(36), nullable=False)),
        sa.PrimaryKeyConstraint("id", name="pk_group_snapshots"),
    )
    op.create_index("ix_group_snapshots_service", "group_snapshots", ["service"])
    op.create_index("ix_group_snapshots_group_id", "group_snapshots", ["group_id"])
    with op.batch_alter_table("volumes") as batch:
        batch.add_column(sa.Column("group_id", sa.String(36), nullable=True))
    op.create_index("ix_volumes_group_id", "volumes", ["group_id"])
    with op.batch_alter_table("snapshots") as batch:
        batch.add_column(sa.Column("group_snapshot_id", sa.String(36), nullable=True))
    op.create_index(
        "ix_snapshots_group_snapshot_id", "snapshots", ["group_snapshot_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_snapshots_group_snapshot_id", "snapshots")
    with op.batch_alter_table("snapshots") as batch:
        batch.drop_column("group_snapshot_id")
    op.drop_index("ix_volumes_group_id", "volumes")
    with op.batch_alter_table("volumes") as batch:
        batch.drop_column("group_id")
    op.drop_table("group_snapshots")
    op.drop_table("groups")
