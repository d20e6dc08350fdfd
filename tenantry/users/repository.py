from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, func, select

from tenantry.kit.db import LeanQuery
from tenantry.kit.tenancy import TenantRepository
from tenantry.tenants.models import Tenant
from tenantry.users.models import User


class UserRepository(TenantRepository[User]):
    model = User

    async def page(self, *, offset: int, limit: int) -> tuple[list[Any], int]:
        """One query: the page, with the total from a window count over the same filter."""
        rows = await self.read_all(_PAGE, offset=offset, limit=limit)
        if rows:
            return rows, int(rows[0]["total"])
        # Past the last page the window has no row to ride on; count alone.
        total = await self.read_one(_COUNT)
        return [], int(total["n"]) if total else 0


_LIST_COLUMNS = (
    User.id,
    User.email,
    User.full_name,
    User.role,
    User.account_type,
    User.is_active,
    User.last_login_at,
    User.created_at,
)
_PAGE = LeanQuery.of(
    UserRepository.lean(*_LIST_COLUMNS, func.count().over().label("total"))
    .order_by(User.id)
    .offset(bindparam("offset"))
    .limit(bindparam("limit"))
)
_COUNT = LeanQuery.of(UserRepository.lean(func.count().label("n")))


class UserDirectory:
    """Platform-wide user lookups (email uniqueness, the internal staff list)."""

    def __init__(self, session: Any) -> None:
        self.session = session

    async def email_taken(self, email: str) -> bool:
        stmt = select(User.id).where(User.email == email).limit(1)
        return (await self.session.execute(stmt)).first() is not None

    async def internal_page(self, *, offset: int, limit: int) -> tuple[list[Any], int]:
        """Internal employees with their company, in one query (join, no N+1)."""
        stmt = (
            select(
                User,
                Tenant.id.label("company_id"),
                Tenant.slug.label("company_slug"),
                Tenant.name.label("company_name"),
                Tenant.status.label("company_status"),
                func.count().over().label("total"),
            )
            .join(Tenant, Tenant.id == User.tenant_id)
            .where(User.account_type == "internal_employee")
            .order_by(User.created_at, User.id)
            .offset(offset)
            .limit(limit)
        )
        rows = (await self.session.execute(stmt)).all()
        if rows:
            return list(rows), int(rows[0].total)
        count = select(func.count()).where(User.account_type == "internal_employee")
        return [], int((await self.session.execute(count.select_from(User))).scalar_one())
