"""The audit log: security-relevant actions, each written with the change it records."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import Index, String, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from tenantry.kit.models import Base, CreatedAtMixin, TenantOwned


class AuditEvent(TenantOwned, CreatedAtMixin, Base):
    """Who did what to what, when, in which request. `actor_id` is a user of this tenant or,
    for platform staff acting on it, of the operator's: not a reference, so the record
    outlives the user."""

    __tablename__ = "audit_events"
    __table_args__ = (
        # A company's events of one kind, newest first; every company's, for platform staff.
        Index("ix_audit_events_tenant_id_action_id", "tenant_id", "action", "id"),
        Index("ix_audit_events_id", "id"),
    )

    actor_id: Mapped[uuid.UUID | None] = mapped_column()
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(320))
    request_id: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]] = mapped_column(
        JSONB, default=dict, server_default=text("'{}'::jsonb")
    )
