"""The initial schema: volumes, snapshots, attachments, the operation journal.

Revision ID: 0001
Revises:
Create Date: 2025-01-01 00:00:00+00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _timestamp(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _resource_columns(*own: sa.Column) -> list[sa.Column]:
    """The columns volumes and snapshots share, around their own ones."""
    return [
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("service", sa.String(255), nullable=False),
        *own,
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("display_name", sa.String(255), nullable=True),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("provider_location", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        _timestamp("created_at"),
        _timestamp("updated_at"),
    ]


def _resource_indexes(table: str, *columns: str) -> None:
    for column in ("service", "status", *columns):
        op.create_index(f"ix_{table}_{column}", table, [column])


def upgrade() -> None:
    op.create_table(
        "volumes",
        *_resource_columns(
            sa.Column("host", sa.String(255), nullable=False),
            sa.Column("pool", sa.String(255), nullable=True),
            sa.Column("volume_type", sa.JSON(), nullable=True),
            sa.Column("snapshot_id", sa.String(36), nullable=True),
            sa.Column("source_volid", sa.String(36), nullable=True),
            sa.Column("image_id", sa.String(255), nullable=True),
            sa.Column("provider_auth", sa.Text(), nullable=True),
        ),
        sa.PrimaryKeyConstraint("id", name="pk_volumes"),
    )
    _resource_indexes("volumes")
    op.create_table(
        "snapshots",
        *_resource_columns(sa.Column("volume_id", sa.String(36), nullable=False)),
        sa.PrimaryKeyConstraint("id", name="pk_snapshots"),
    )
    _resource_indexes("snapshots", "volume_id")
    op.create_table(
        "attachments",
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("volume_id", sa.String(36), nullable=False),
        sa.Column("connector_host", sa.String(255), nullable=False),
        sa.Column("connector", sa.JSON(), nullable=False),
        sa.Column("connection_info", sa.JSON(), nullable=True),
        _timestamp("created_at"),
        sa.PrimaryKeyConstraint("id", name="pk_attachments"),
        sa.UniqueConstraint(
            "volume_id",
            "connector_host",
            name="uq_attachments_volume_id_connector_host",
        ),
    )
    op.create_index("ix_attachments_volume_id", "attachments", ["volume_id"])
    op.create_table(
        "operations",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("message_id", sa.String(64), nullable=True),
        sa.Column("service", sa.String(255), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("resource_type", sa.String(16), nullable=False),
        sa.Column("resource_id", sa.String(36), nullable=False),
        sa.Column("args", sa.JSON(), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("owner", sa.String(255), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        _timestamp("created_at"),
        _timestamp("started_at", nullable=True),
        _timestamp("finished_at", nullable=True),
        sa.PrimaryKeyConstraint("seq", name="pk_operations"),
        sa.UniqueConstraint("message_id", name="uq_operations_message_id"),
    )
    op.create_index("ix_operations_resource_id", "operations", ["resource_id"])
    op.create_index("ix_operations_service_state", "operations", ["service", "state"])


def downgrade() -> None:
    for table in ("operations", "attachments", "snapshots", "volumes"):
        op.drop_table(table)
