"""What a cluster needs to survive its members: the volumes each journaled
operation touches (for journal order across members), and which member
serves each attachment.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 00:00:00+00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "operation_volumes",
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("volume_id", sa.String(36), nullable=False),
        sa.PrimaryKeyConstraint("seq", "volume_id", name="pk_operation_volumes"),
    )
    op.create_index(
        "ix_operation_volumes_volume_id", "operation_volumes", ["volume_id"]
    )
    with op.batch_alter_table("attachments") as batch:
        batch.add_column(sa.Column("served_by", sa.String(255), nullable=True))
        batch.add_column(sa.Column("lost", sa.Text(), nullable=True))
    op.create_index("ix_attachments_served_by", "attachments", ["served_by"])
    op.create_index("ix_operations_owner", "operations", ["owner"])


def downgrade() -> None:
    op.drop_index("ix_operations_owner", "operations")
    op.drop_index("ix_attachments_served_by", "attachments")
    with op.batch_alter_table("attachments") as batch:
        batch.drop_column("lost")
        batch.drop_column("served_by")
    op.drop_table("operation_volumes")
