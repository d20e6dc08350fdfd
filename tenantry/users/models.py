"""People: a tenant's users and the platform's internal employees (operator tenant)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from tenantry.kit.models import Base, CreatedAtMixin, IdMixin, TenantOwned

ROLES = ("owner", "admin", "member")
ROLE_RANK = {"member": 0, "admin": 1, "owner": 2}
ACCOUNT_TYPES = ("customer", "internal_employee")


class User(IdMixin, TenantOwned, CreatedAtMixin, Base):
    __tablename__ = "users"
    __table_args__ = (
        Index("ix_users_tenant_id_id", "tenant_id", "id"),
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
