from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.kit.db import LeanQuery, Reader
from tenantry.kit.tenancy import TenantScope
from tenantry.tenants.models import Tenant, TenantSettings


class TenantsRepository:
    """The caller's own tenant row and settings: the scope is the key."""

    def __init__(self, session: AsyncSession, scope: TenantScope) -> None:
        self.session = session
        self.scope = scope

    async def tenant(self) -> Tenant | None:
        return await self.session.get(Tenant, self.scope.tenant_id)

    async def settings(self) -> TenantSettings | None:
        stmt = select(TenantSettings).where(TenantSettings.tenant_id == self.scope.tenant_id)
        return (await self.session.execute(stmt)).scalar_one_or_none()


_TENANT = LeanQuery.of(select(*Tenant.__table__.c).where(Tenant.id == bindparam("tenant_id")))
_SETTINGS = LeanQuery.of(
    select(*TenantSettings.__table__.c).where(TenantSettings.tenant_id == bindparam("tenant_id"))
)


class TenantReads:
    """The cache loaders' lean reads of the caller's tenant and settings (committed data, no
    transaction). The scope is the key, as in `TenantsRepository`."""

    def __init__(self, reader: Reader, scope: TenantScope) -> None:
        self.reader = reader
        self.scope = scope

    async def tenant(self) -> dict[str, Any] | None:
        row = await self.reader.one(_TENANT, tenant_id=self.scope.tenant_id)
        return dict(row) if row is not None else None

    async def settings(self) -> dict[str, Any] | None:
        row = await self.reader.one(_SETTINGS, tenant_id=self.scope.tenant_id)
        return dict(row) if row is not None else None


class TenantDirectory:
    """Platform-level tenant operations (provisioning, lookups by slug); not tenant-scoped."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def by_slug(self, slug: str) -> Tenant | None:
        return (
            await self.session.execute(select(Tenant).where(Tenant.slug == slug))
        ).scalar_one_or_none()

    async def add(self, tenant: Tenant, settings: dict[str, Any]) -> Tenant:
        self.session.add(tenant)
        await self.session.flush()
        self.session.add(TenantSettings(tenant_id=tenant.id, **settings))
        await self.session.flush()
        return tenant
