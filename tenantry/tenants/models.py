"""Tenants and their settings."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ARRAY, DateTime, ForeignKey, ForeignKeyConstraint, String, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from tenantry.kit.models import Base, CreatedAtMixin, IdMixin, TenantScoped

TENANT_STATUSES = ("active", "suspended")


class Tenant(IdMixin, CreatedAtMixin, Base):
    """The platform's list of companies (a platform table: it is the tenant)."""

    __tablename__ = "tenants"

    slug: Mapped[str] = mapped_column(String(63), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    industry: Mapped[str | None] = mapped_column(String(100))
    company_size: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default="active", server_default="active")
    suites: Mapped[list[str]] = mapped_column(
        ARRAY(String(64)), default=list, server_default=text("'{}'")
    )


class TenantSettings(TenantScoped, Base):
    """One row per tenant, keyed by the tenant itself."""

    __tablename__ = "tenant_settings"
    __table_args__ = (
        # The default team is one of the company's own: another company's team id is refused
        # by the database itself; a team deleted clears it (PostgreSQL 15's column list).
        ForeignKeyConstraint(
            ["tenant_id", "default_team_id"],
            ["teams.tenant_id", "teams.id"],
            name="tenant_settings_default_team_fkey",
            ondelete="SET NULL (default_team_id)",
        ),
    )

    @declared_attr
    def tenant_id(cls) -> Mapped[uuid.UUID]:  # noqa: N805 - declared_attr receives the class
        return mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True)

    timezone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")
    locale: Mapped[str] = mapped_column(String(16), default="en-US", server_default="en-US")
    currency: Mapped[str] = mapped_column(String(3), default="USD", server_default="USD")
    business_hours: Mapped[dict[str, Any]] = mapped_column(
        JSONB, default=dict, server_default=text("'{}'::jsonb")
    )
    lead_statuses: Mapped[list[str]] = mapped_column(ARRAY(String(32)))
    default_team_id: Mapped[uuid.UUID | None] = mapped_column()
    branding: Mapped[dict[str, Any]] = mapped_column(
        JSONB, default=dict, server_default=text("'{}'::jsonb")
    )
    feature_flags: Mapped[dict[str, bool]] = mapped_column(
        JSONB, default=dict, server_default=text("'{}'::jsonb")
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )
