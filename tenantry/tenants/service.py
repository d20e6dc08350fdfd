"""Tenant rules: provisioning and settings, and their caches.

The tenant (1 h) and its settings (10 min, at most 1,000 tenants per process) are cached
under the tenant id; a settings write invalidates them on every instance once it commits.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.kit.cache import Caches, CacheSpec, invalidate_on_commit
from tenantry.kit.db import Database
from tenantry.kit.errors import Conflict, NotFound
from tenantry.kit.tenancy import TenantScope
from tenantry.tenants.models import Tenant, TenantSettings
from tenantry.tenants.repository import TenantDirectory, TenantReads, TenantsRepository
from tenantry.tenants.schemas import TenantOut, TenantSettingsOut, TenantSettingsPatch

TENANT_CACHE = CacheSpec("tenant", ttl_s=3600, max_size=10_000, value_type=TenantOut)
SETTINGS_CACHE = CacheSpec(
    "tenant_settings", ttl_s=600, max_size=1_000, value_type=TenantSettingsOut
)

DEFAULT_LEAD_STATUSES = ["new", "contacted", "qualified", "proposal", "won", "lost"]


async def get_tenant(session: AsyncSession, scope: TenantScope) -> Tenant:
    tenant = await TenantsRepository(session, scope).tenant()
    if tenant is None:
        raise NotFound("Your company no longer exists.")
    return tenant


async def tenant_view(db: Database, caches: Caches, scope: TenantScope) -> TenantOut:
    """The caller's company, cached."""

    async def load() -> TenantOut | None:
        tenant = await TenantReads(db.reader, scope).tenant()
        return TenantOut.model_validate(tenant) if tenant is not None else None

    out = await caches.cache(TENANT_CACHE).get_or_load(str(scope.tenant_id), load)
    if out is None:
        raise NotFound("Your company no longer exists.")
    return out


async def settings_view(db: Database, caches: Caches, scope: TenantScope) -> TenantSettingsOut:
    """The caller's company settings, cached."""

    async def load() -> TenantSettingsOut | None:
        row = await TenantReads(db.reader, scope).settings()
        return TenantSettingsOut.model_validate(row) if row is not None else None

    out = await caches.cache(SETTINGS_CACHE).get_or_load(str(scope.tenant_id), load)
    if out is None:
        raise NotFound("Your company has no settings yet.")
    return out


async def get_settings(session: AsyncSession, scope: TenantScope) -> TenantSettings:
    settings = await TenantsRepository(session, scope).settings()
    if settings is None:
        raise NotFound("Your company has no settings yet.")
    return settings


async def update_settings(
    session: AsyncSession, scope: TenantScope, patch: TenantSettingsPatch
) -> TenantSettings:
    settings = await get_settings(session, scope)
    for key, value in patch.model_dump(exclude_unset=True).items():
        if value is None and key != "default_team_id":
            continue
        setattr(settings, key, value)
    invalidate_on_commit(session, SETTINGS_CACHE.name, str(scope.tenant_id))
    await session.flush()
    await session.refresh(settings, ["updated_at"])
    return settings


async def provision(
    session: AsyncSession,
    *,
    slug: str,
    name: str,
    industry: str | None = None,
    company_size: str | None = None,
    suites: list[str] | None = None,
) -> Tenant:
    directory = TenantDirectory(session)
    if await directory.by_slug(slug) is not None:
        raise Conflict(f"A company with the slug {slug!r} already exists.")
    tenant = Tenant(
        slug=slug, name=name, industry=industry, company_size=company_size, suites=suites or []
    )
    return await directory.add(tenant, {"lead_statuses": list(DEFAULT_LEAD_STATUSES)})


async def find_by_slug(session: AsyncSession, slug: str) -> Tenant | None:
    return await TenantDirectory(session).by_slug(slug)
