"""Auth's queries: the narrow login lookup and the principal projection. Core statements, not
ORM entities: these run on every login and every cold authenticated request (the principal on
the lean path: no session, no transaction)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.auth.principal import Principal
from tenantry.kit.db import LeanQuery, Reader
from tenantry.tenants.models import Tenant
from tenantry.users.models import User

_PRINCIPAL_COLUMNS = (
    User.id,
    User.tenant_id,
    User.role,
    User.account_type,
    User.is_active,
    User.token_version,
    User.email,
    User.full_name,
    Tenant.slug.label("tenant_slug"),
    Tenant.name.label("tenant_name"),
    Tenant.status.label("tenant_status"),
)


# The principal: the user joined to their tenant, scoped by the token's tenant. One lean query,
# the whole of a cold authenticated request's database work.
_PRINCIPAL = LeanQuery.of(
    select(*_PRINCIPAL_COLUMNS)
    .join(Tenant, Tenant.id == User.tenant_id)
    .where(User.id == bindparam("user_id"), User.tenant_id == bindparam("tenant_id"))
)


async def read_principal(
    reader: Reader, user_id: uuid.UUID, tenant_id: uuid.UUID
) -> Principal | None:
    """The principal projection on the lean path: one statement, no transaction, committed
    data only (what a cache may be filled from)."""
    row = await reader.one(_PRINCIPAL, user_id=user_id, tenant_id=tenant_id)
    return Principal(**dict(row)) if row is not None else None


class AuthRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def login_row(self, email: str) -> Any | None:
        stmt = select(
            User.id,
            User.tenant_id,
            User.role,
            User.password_hash,
            User.is_active,
            User.token_version,
        ).where(User.email == email)
        return (await self.session.execute(stmt)).one_or_none()

    async def record_login(self, user_id: uuid.UUID, password_hash: str | None = None) -> None:
        values: dict[str, Any] = {"last_login_at": datetime.now(UTC)}
        if password_hash is not None:
            values["password_hash"] = password_hash
        await self.session.execute(update(User).where(User.id == user_id).values(**values))
