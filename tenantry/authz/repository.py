"""The principal projection: one lean statement on the `accounts` view, scoped by the tenant
the token names."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import bindparam

from tenantry.authz.models import PRINCIPAL_COLUMNS, accounts
from tenantry.kit.db import LeanQuery
from tenantry.kit.repository import TenantRepository


class PrincipalRepository(TenantRepository[Any]):
    model = accounts

    async def principal(self, user_id: uuid.UUID) -> dict[str, Any] | None:
        row = await self.read_one(_PRINCIPAL, user_id=user_id)
        return dict(row) if row is not None else None


_PRINCIPAL = LeanQuery.of(
    PrincipalRepository.lean(*PRINCIPAL_COLUMNS).where(accounts.c.id == bindparam("user_id"))
)
