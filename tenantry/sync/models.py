"""Sync sources: outside systems a tenant imports customers and leads from."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, Integer, String, Text, func
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
