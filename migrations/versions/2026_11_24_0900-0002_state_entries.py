"""state store table

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 09:00:00+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from tenantry.kit.migration_ops import create_index_concurrently, drop_index_concurrently

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "state_entries",
        sa.Column("namespace", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("value", postgresql.JSONB(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("namespace", "key", name=op.f("pk_state_entries")),
    )
    create_index_concurrently("ix_state_entries_expires_at", "state_entries", ["expires_at"])


def downgrade() -> None:
    drop_index_concurrently("ix_state_entries_expires_at", "state_entries")
    op.drop_table("state_entries")
