"""onboarding: the funnel's events, immutable quotes, and one completion per session

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29 21:18:28+00:00

Platform tables (they exist before any tenant does); a completion points to the tenant it
created and goes with it. New, empty tables: the indexes are built plainly.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "onboarding_events",
        sa.Column("session_id", sa.String(length=32), nullable=False),
        sa.Column("step", sa.String(length=32), nullable=False),
        sa.Column("properties", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_onboarding_events")),
    )
    op.create_index(
        "ix_onboarding_events_created_at_step",
        "onboarding_events",
        ["created_at", "step"],
        unique=False,
    )
    op.create_table(
        "onboarding_quotes",
        sa.Column("session_id", sa.String(length=32), nullable=True),
        sa.Column("catalog_version", sa.String(length=32), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("total", sa.Numeric(precision=14, scale=4), nullable=False),
        sa.Column("body", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_onboarding_quotes")),
    )
    op.create_table(
        "onboarding_completions",
        sa.Column("session_id", sa.String(length=32), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("report", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("welcome_message_id", sa.String(length=255), nullable=True),
        sa.Column("welcome_sent_to", sa.String(length=512), nullable=True),
        sa.Column("welcome_sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_onboarding_completions_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("session_id", name=op.f("pk_onboarding_completions")),
    )
    op.create_index(
        "ix_onboarding_completions_tenant_id", "onboarding_completions", ["tenant_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_onboarding_completions_tenant_id", table_name="onboarding_completions")
    op.drop_table("onboarding_completions")
    op.drop_table("onboarding_quotes")
    op.drop_index("ix_onboarding_events_created_at_step", table_name="onboarding_events")
    op.drop_table("onboarding_events")
