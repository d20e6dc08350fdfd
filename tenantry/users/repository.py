"""Every query of the users domain."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, func, select

from tenantry.authz.models import accounts
from tenantry.kit.db import LeanQuery
from tenantry.kit.repository import PlatformRepository, TenantRepository
from tenantry.users.models import User


class UserRepository(TenantRepository[User]):
    model = User

    async def page(self, *, offset: int, limit: int) -> tuple[list[Any], int]:
        """The page with its total in one query (a window count over the same filter)."""
        return await self.page_of(_PAGE, _COUNT, offset=offset, limit=limit)

    async def active_among(self, user_ids: list[uuid.UUID]) -> set[uuid.UUID]:
        if not user_ids:
            return set()
        stmt = self.select(User.id).where(User.id.in_(user_ids), User.is_active.is_(True))
        return set((await self.session.execute(stmt)).scalars())

    async def record_login(self, user_id: uuid.UUID, password_hash: str | None = None) -> None:
        values: dict[str, Any] = {"last_login_at": datetime.now(UTC)}
        if password_hash is not None:
            values["password_hash"] = password_hash
        await self.session.execute(self.update().where(User.id == user_id).values(**values))


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
_COUNT = LeanQuery.of(UserRepository.lean_count())


class UserDirectory(PlatformRepository[User]):
    unscoped_because = (
        "logins are global by email: a user is found by email before any tenant is known, and"
        " an email is unique across every tenant"
    )
    model = User

    async def email_taken(self, email: str) -> bool:
        stmt = select(User.id).where(User.email == email).limit(1)
        return (await self.session.execute(stmt)).first() is not None

    async def login_row(self, email: str) -> Any | None:
        """What a login checks, and nothing more."""
        stmt = select(
            User.id,
            User.tenant_id,
            User.role,
            User.password_hash,
            User.is_active,
            User.token_version,
        ).where(User.email == email)
        return (await self.session.execute(stmt)).one_or_none()

    async def count_by_tenant(self, tenant_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
        """How many users each of these companies has, in one query."""
        if not tenant_ids:
            return {}
        stmt = (
            select(User.tenant_id, func.count())
            .where(User.tenant_id.in_(tenant_ids))
            .group_by(User.tenant_id)
        )
        return {tid: int(n) for tid, n in (await self.session.execute(stmt)).all()}


_STAFF_FILTER = accounts.c.account_type == "internal_employee"


class StaffDirectory(PlatformRepository[Any]):
    unscoped_because = "platform staff are listed by platform admins, across the platform"
    model = accounts

    async def page(self, *, offset: int, limit: int) -> tuple[list[Any], int]:
        """Internal employees with their company, in one query (the `accounts` view joins the
        company; no N+1)."""
        return await self.page_of(_STAFF_PAGE, _STAFF_COUNT, offset=offset, limit=limit)


_STAFF_PAGE = LeanQuery.of(
    select(*accounts.c, func.count().over().label("total"))
    .where(_STAFF_FILTER)
    .order_by(accounts.c.created_at, accounts.c.id)
    .offset(bindparam("offset"))
    .limit(bindparam("limit"))
)
_STAFF_COUNT = LeanQuery.of(select(func.count().label("n")).where(_STAFF_FILTER))
