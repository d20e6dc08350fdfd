"""Sync sources (outside systems a tenant imports customers and leads from) and their runs."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKeyConstraint,
    Index,
    Integer,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from tenantry.kit.models import Base, CreatedAtMixin, TenantOwned


class SyncSource(TenantOwned, CreatedAtMixin, Base):
    __tablename__ = "sync_sources"

    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(32))  # "http_json" (the documented contract)
    base_url: Mapped[str] = mapped_column(String(2048))
    # The header the secret is sent in (Authorization, X-Api-Key ...), and the secret itself,
    # sealed (`kit.secrets`): stored, used by the sync job, never returned.
    auth_header: Mapped[str] = mapped_column(String(64))
    secret_sealed: Mapped[str | None] = mapped_column(Text)
    page_size: Mapped[int] = mapped_column(Integer)
    schedule: Mapped[str] = mapped_column(String(100))  # a cron expression
    enabled: Mapped[bool] = mapped_column(Boolean)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class SyncRun(TenantOwned, CreatedAtMixin, Base):
    """One import from a source: its progress is checkpointed per page, so a run cut short
    resumes from `next_page`."""

    __tablename__ = "sync_runs"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "source_id"],
            ["sync_sources.tenant_id", "sync_sources.id"],
            ondelete="CASCADE",
        ),
        # At most one pending or running run per source: a second trigger finds the first.
        Index(
            "uq_sync_runs_active_source",
            "tenant_id",
            "source_id",
            unique=True,
            postgresql_where=text("status IN ('pending', 'running')"),
        ),
        Index("ix_sync_runs_tenant_id_status_created_at", "tenant_id", "status", "created_at"),
        Index("ix_sync_runs_tenant_id_created_at", "tenant_id", "created_at"),
    )

    source_id: Mapped[uuid.UUID] = mapped_column()
    status: Mapped[str] = mapped_column(String(16))  # pending | running | succeeded | failed
    trigger: Mapped[str] = mapped_column(String(16))  # manual | schedule
    job_id: Mapped[int | None] = mapped_column(BigInteger)
    next_page: Mapped[int | None] = mapped_column(Integer)  # the checkpoint
    pages_done: Mapped[int] = mapped_column(Integer, default=0)
    records_in: Mapped[int] = mapped_column(Integer, default=0)
    records_written: Mapped[int] = mapped_column(Integer, default=0)
    leads_written: Mapped[int] = mapped_column(Integer, default=0)
    records_failed: Mapped[int] = mapped_column(Integer, default=0)
    # The first record errors: [{"page", "external_id", "error"}], at most MAX_RECORD_ERRORS.
    record_errors: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    error: Mapped[str | None] = mapped_column(Text)  # why the run failed (or last retried)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
