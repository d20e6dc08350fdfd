"""API keys for integrations: stored only as a keyed hash, shown once at creation."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import DateTime, ForeignKeyConstraint, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from tenantry.kit.models import Base, CreatedAtMixin, TenantOwned


class ApiKey(TenantOwned, CreatedAtMixin, Base):
    """Tenant-owned: the primary key is (tenant_id, id), and the creator is referenced with
    its tenant, so a key can only act for a user of its own tenant."""

    __tablename__ = "api_keys"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "created_by"], ["users.tenant_id", "users.id"], ondelete="CASCADE"
        ),
    )

    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(16))
    # The first characters of the key, to recognise it in a list; not enough to use it.
    prefix: Mapped[str] = mapped_column(String(16))
    # HMAC-SHA256 of the whole key under API_KEY_SECRET (hex); the key itself is never stored.
    # Unique platform-wide: a presented key is found by its hash before its tenant is known.
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by: Mapped[uuid.UUID] = mapped_column()
    # The creator's `token_version` when the key was made: a change of the creator's access
    # (deactivation, reactivation, a new role) moves it on, and the key stops working for good.
    creator_version: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
