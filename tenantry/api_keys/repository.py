"""Every query of the API keys domain."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, text

from tenantry.api_keys.models import ApiKey
from tenantry.kit.db import LeanQuery
from tenantry.kit.repository import PlatformRepository, TenantRepository


class ApiKeyRepository(TenantRepository[ApiKey]):
    model = ApiKey

    async def delete_key(self, key_id: uuid.UUID) -> str | None:
        """Delete the tenant's key in one statement; its hash (to drop from the caches), or
        None when the tenant has no such key."""
        stmt = self.delete().where(ApiKey.id == key_id).returning(ApiKey.key_hash)
        key_hash: str | None = (await self.session.execute(stmt)).scalar_one_or_none()
        return key_hash


class ApiKeyLookup(PlatformRepository[ApiKey]):
    unscoped_because = (
        "a presented key is found by its hash before its tenant is known, and the usage flush"
        " writes every tenant's keys in one statement"
    )
    model = ApiKey

    async def grant(self, key_hash: str) -> dict[str, Any] | None:
        row = await self.read_one(_BY_HASH, key_hash=key_hash)
        return dict(row) if row is not None else None

    async def record_usage(self, seen: dict[tuple[uuid.UUID, uuid.UUID], datetime]) -> None:
        """One statement for every key used since the last flush, each found by its primary
        key `(tenant_id, id)`."""
        keys, ats = zip(*seen.items(), strict=True)
        await self.session.execute(
            _RECORD_USAGE,
            {
                "tenants": [tenant_id for tenant_id, _ in keys],
                "ids": [key_id for _, key_id in keys],
                "ats": list(ats),
            },
        )


_BY_HASH = LeanQuery.of(
    select(
        ApiKey.id,
        ApiKey.tenant_id,
        ApiKey.created_by.label("user_id"),
        ApiKey.role,
        ApiKey.expires_at,
        ApiKey.creator_version,
    ).where(ApiKey.key_hash == bindparam("key_hash"))
)

_RECORD_USAGE = text(
    "UPDATE api_keys AS k SET last_used_at = u.at FROM unnest("
    "CAST(:tenants AS uuid[]), CAST(:ids AS uuid[]), CAST(:ats AS timestamptz[])"
    ") AS u(tenant_id, id, at)"
    " WHERE k.tenant_id = u.tenant_id AND k.id = u.id"
    " AND (k.last_used_at IS NULL OR k.last_used_at < u.at)"
)
