"""Every query of the tenants domain."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import bindparam, func, select

from tenantry.kit.db import LeanQuery
from tenantry.kit.repository import PlatformRepository, TenantRepository
from tenantry.tenants.models import Tenant, TenantSettings


class SettingsRepository(TenantRepository[TenantSettings]):
    """The tenant's one settings row."""

    model = TenantSettings

    async def entity(self) -> TenantSettings | None:
        found: TenantSettings | None = (
            await self.session.execute(self.select())
        ).scalar_one_or_none()
        return found

    async def row(self) -> dict[str, Any] | None:
        """Committed settings on the lean path (the cache's loader)."""
        row = await self.read_one(_SETTINGS)
        return dict(row) if row is not None else None


_SETTINGS = LeanQuery.of(SettingsRepository.lean(*TenantSettings.__table__.c))


class TenantDirectory(PlatformRepository[Tenant]):
    unscoped_because = (
        "the tenants table is the list of companies itself: provisioning and slug lookups come"
        " before any scope, and a company's own row is found by the scope's id"
    )
    model = Tenant

    async def row(self, tenant_id: uuid.UUID) -> dict[str, Any] | None:
        """Committed tenant row on the lean path (the cache's loader)."""
        row = await self.read_one(_TENANT, tenant_id=tenant_id)
        return dict(row) if row is not None else None

    async def by_slug(self, slug: str) -> Tenant | None:
        stmt = select(Tenant).where(Tenant.slug == slug)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def add(self, tenant: Tenant, settings: dict[str, Any]) -> Tenant:
        """A new tenant and its settings row."""
        self.session.add(tenant)
        await self.session.flush()
        self.session.add(TenantSettings(tenant_id=tenant.id, **settings))
        await self.session.flush()
        return tenant

    async def page(self, *, offset: int, limit: int) -> tuple[list[Any], int]:
        """Every company, newest first, with the total in the same query."""
        return await self.page_of(_DIRECTORY_PAGE, _DIRECTORY_COUNT, offset=offset, limit=limit)


_DIRECTORY_PAGE = LeanQuery.of(
    select(*Tenant.__table__.c, func.count().over().label("total"))
    .order_by(Tenant.created_at.desc(), Tenant.id)
    .offset(bindparam("offset"))
    .limit(bindparam("limit"))
)
_DIRECTORY_COUNT = LeanQuery.of(select(func.count().label("n")).select_from(Tenant))
_TENANT = LeanQuery.of(select(*Tenant.__table__.c).where(Tenant.id == bindparam("tenant_id")))
