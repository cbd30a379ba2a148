"""What drivers save per initiator between attachments (the seed's
driver_initiator_data).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 00:00:00+00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "initiator_data",
        sa.Column("initiator", sa.String(255), nullable=False),
        sa.Column("namespace", sa.String(255), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("value", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint(
            "initiator", "namespace", "key", name="pk_initiator_data"
        ),
    )


def downgrade() -> None:
    op.drop_table("initiator_data")
