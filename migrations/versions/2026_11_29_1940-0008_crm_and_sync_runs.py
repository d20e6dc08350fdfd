"""customers, leads and sync_runs: what a sync writes, and its runs

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29 19:40:00+00:00

Tenant-owned, keyed on (tenant_id, id), with composite references. A customer or lead a sync
imported keeps the source's ids: UNIQUE (tenant_id, source_id, external_id) is the upsert's
conflict target. A partial unique index allows one pending or running run per source. New,
empty tables: the indexes are built plainly, not CONCURRENTLY.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "customers",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("phone", sa.String(length=50), nullable=True),
        sa.Column("postal_code", sa.String(length=20), nullable=True),
        sa.Column("zone_id", sa.Uuid(), nullable=True),
        sa.Column("source_id", sa.Uuid(), nullable=True),
        sa.Column("external_id", sa.String(length=200), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_customers_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_customers")),
        sa.UniqueConstraint(
            "tenant_id",
            "source_id",
            "external_id",
            name=op.f("uq_customers_tenant_id_source_id_external_id"),
        ),
    )
    op.create_table(
        "leads",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("team_id", sa.Uuid(), nullable=True),
        sa.Column("assigned_user_id", sa.Uuid(), nullable=True),
        sa.Column("value", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("source_id", sa.Uuid(), nullable=True),
        sa.Column("external_id", sa.String(length=200), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "assigned_user_id"],
            ["users.tenant_id", "users.id"],
            name=op.f("fk_leads_tenant_id_assigned_user_id_users"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "customer_id"],
            ["customers.tenant_id", "customers.id"],
            name=op.f("fk_leads_tenant_id_customer_id_customers"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_leads_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_leads")),
        sa.UniqueConstraint(
            "tenant_id",
            "source_id",
            "external_id",
            name=op.f("uq_leads_tenant_id_source_id_external_id"),
        ),
    )
    op.create_index(
        "ix_leads_tenant_id_customer_id", "leads", ["tenant_id", "customer_id"], unique=False
    )
    op.create_index(
        "ix_leads_tenant_id_status_created_at",
        "leads",
        ["tenant_id", "status", "created_at"],
        unique=False,
    )
    op.create_table(
        "sync_runs",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("source_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("job_id", sa.BigInteger(), nullable=True),
        sa.Column("next_page", sa.Integer(), nullable=True),
        sa.Column("pages_done", sa.Integer(), nullable=False),
        sa.Column("records_in", sa.Integer(), nullable=False),
        sa.Column("records_written", sa.Integer(), nullable=False),
        sa.Column("leads_written", sa.Integer(), nullable=False),
        sa.Column("records_failed", sa.Integer(), nullable=False),
        sa.Column("record_errors", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id", "source_id"],
            ["sync_sources.tenant_id", "sync_sources.id"],
            name=op.f("fk_sync_runs_tenant_id_source_id_sync_sources"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_sync_runs_tenant_id_tenants"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_sync_runs")),
    )
    op.create_index(
        "ix_sync_runs_tenant_id_created_at", "sync_runs", ["tenant_id", "created_at"], unique=False
    )
    op.create_index(
        "ix_sync_runs_tenant_id_status_created_at",
        "sync_runs",
        ["tenant_id", "status", "created_at"],
        unique=False,
    )
    op.create_index(
        "uq_sync_runs_active_source",
        "sync_runs",
        ["tenant_id", "source_id"],
        unique=True,
        postgresql_where=sa.text("status IN ('pending', 'running')"),
    )


def downgrade() -> None:
    op.drop_index(
        "uq_sync_runs_active_source",
        table_name="sync_runs",
        postgresql_where=sa.text("status IN ('pending', 'running')"),
    )
    op.drop_index("ix_sync_runs_tenant_id_status_created_at", table_name="sync_runs")
    op.drop_index("ix_sync_runs_tenant_id_created_at", table_name="sync_runs")
    op.drop_table("sync_runs")
    op.drop_index("ix_leads_tenant_id_status_created_at", table_name="leads")
    op.drop_index("ix_leads_tenant_id_customer_id", table_name="leads")
    op.drop_table("leads")
    op.drop_table("customers")
