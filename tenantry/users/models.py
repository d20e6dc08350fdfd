"""People: a tenant's users and the platform's internal employees (operator tenant)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from tenantry.kit.models import Base, CreatedAtMixin, IdMixin, TenantScoped


class User(IdMixin, TenantScoped, CreatedAtMixin, Base):
    """A platform table, not a tenant-owned one: a login is global (one email, one account,
    found by email before its tenant is known; the internal staff list spans tenants), so the
    primary key is `id` alone and `email` is unique platform-wide. Each user still belongs to
    one tenant (`tenant_id`), and tenant admins read users through the tenant scope
    (`UserRepository`).

    The UNIQUE `(tenant_id, id)` is what tenant-owned tables reference: a composite foreign key
    `(tenant_id, <ref>) -> users (tenant_id, id)` accepts only a user of the row's own tenant.
    It also serves the scoped lookup by id.
    """

    __tablename__ = "users"
    __table_args__ = (
        UniqueConstraint("tenant_id", "id"),
        Index(
            "ix_users_internal_created_at",
            "created_at",
            postgresql_where=text("account_type = 'internal_employee'"),
        ),
    )

    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    full_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16), default="member")
    account_type: Mapped[str] = mapped_column(String(32), default="customer")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    token_version: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
