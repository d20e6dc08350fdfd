"""Webhook endpoints a tenant registers, the deliveries of events to them, and every attempt."""

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
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from tenantry.kit.models import Base, CreatedAtMixin, TenantOwned


class WebhookEndpoint(TenantOwned, CreatedAtMixin, Base):
    __tablename__ = "webhook_endpoints"

    url: Mapped[str] = mapped_column(String(2048))
    secret_sealed: Mapped[str] = mapped_column(Text)  # `whsec_...`, sealed (`kit.secrets`)
    events: Mapped[list[str]] = mapped_column(ARRAY(String(64)))
    enabled: Mapped[bool] = mapped_column(Boolean)
    disabled_reason: Mapped[str | None] = mapped_column(String(200))


class WebhookDelivery(TenantOwned, CreatedAtMixin, Base):
    """One event for one endpoint: sent, retried on Svix's schedule, succeeded or failed."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "endpoint_id"],
            ["webhook_endpoints.tenant_id", "webhook_endpoints.id"],
            ondelete="CASCADE",
        ),
        Index(
            "ix_webhook_deliveries_tenant_id_status_next_attempt_at",
            "tenant_id",
            "status",
            "next_attempt_at",
        ),
        Index("ix_webhook_deliveries_tenant_id_created_at", "tenant_id", "created_at"),
    )

    endpoint_id: Mapped[uuid.UUID] = mapped_column()
    event_type: Mapped[str] = mapped_column(String(64))
    message_id: Mapped[str] = mapped_column(String(64))  # `webhook-id`, the same on every try
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB)  # {type, timestamp, data}
    status: Mapped[str] = mapped_column(String(16))  # pending | succeeded | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    job_id: Mapped[int | None] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class WebhookAttempt(TenantOwned, CreatedAtMixin, Base):
    __tablename__ = "webhook_attempts"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "delivery_id"],
            ["webhook_deliveries.tenant_id", "webhook_deliveries.id"],
            ondelete="CASCADE",
        ),
        Index("ix_webhook_attempts_tenant_id_delivery_id", "tenant_id", "delivery_id"),
    )

    delivery_id: Mapped[uuid.UUID] = mapped_column()
    number: Mapped[int] = mapped_column(Integer)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int] = mapped_column(Integer)
