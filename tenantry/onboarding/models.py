"""What onboarding keeps in the database. A visitor's session itself lives in the state store
(24 h); these are what must outlast it: the funnel's events, the quotes (immutable), and each
completion, which names the tenant it made and records the welcome mail.

None of them is tenant-owned: they exist before any tenant does (a completion then points to
the tenant it created, and goes with it)."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import DateTime, ForeignKey, Index, Numeric, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from tenantry.kit.models import Base, CreatedAtMixin, IdMixin

SESSION_ID_LENGTH = 32  # secrets.token_urlsafe(24)


class OnboardingEvent(IdMixin, CreatedAtMixin, Base):
    """One step of one session: `profile`, `pricing_viewed`, `completed`."""

    __tablename__ = "onboarding_events"
    # The funnel reads a date range by step.
    __table_args__ = (Index("ix_onboarding_events_created_at_step", "created_at", "step"),)

    session_id: Mapped[str] = mapped_column(String(SESSION_ID_LENGTH))
    step: Mapped[str] = mapped_column(String(32))
    properties: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)


class OnboardingQuote(IdMixin, CreatedAtMixin, Base):
    """A quote exactly as it was answered (`body`), never changed."""

    __tablename__ = "onboarding_quotes"

    session_id: Mapped[str | None] = mapped_column(String(SESSION_ID_LENGTH))
    catalog_version: Mapped[str] = mapped_column(String(32))
    currency: Mapped[str] = mapped_column(String(3))
    total: Mapped[Decimal] = mapped_column(Numeric(14, 4))
    body: Mapped[dict[str, Any]] = mapped_column(JSONB)


class OnboardingCompletion(CreatedAtMixin, Base):
    """A session's completion: one per session (its key), whatever the number of tries."""

    __tablename__ = "onboarding_completions"
    # A tenant's deletion finds its completion without a scan.
    __table_args__ = (Index("ix_onboarding_completions_tenant_id", "tenant_id"),)

    session_id: Mapped[str] = mapped_column(String(SESSION_ID_LENGTH), primary_key=True)
    tenant_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tenants.id", ondelete="CASCADE"))
    user_id: Mapped[uuid.UUID] = mapped_column()
    # What the welcome report is made of (profile, recommendations, quote), as completed.
    report: Mapped[dict[str, Any]] = mapped_column(JSONB)
    welcome_message_id: Mapped[str | None] = mapped_column(String(255))
    welcome_sent_to: Mapped[str | None] = mapped_column(String(512))
    welcome_sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
