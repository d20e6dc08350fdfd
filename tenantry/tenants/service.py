"""Tenant rules: provisioning and settings."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.kit.errors import Conflict, NotFound
from tenantry.kit.tenancy import TenantScope
from tenantry.tenants.models import Tenant, TenantSettings
from tenantry.tenants.repository import TenantDirectory, TenantsRepository
from tenantry.tenants.schemas import TenantSettingsPatch

DEFAULT_LEAD_STATUSES = ["new", "contacted", "qualified", "proposal", "won", "lost"]


async def get_tenant(session: AsyncSession, scope: TenantScope) -> Tenant:
    tenant = await TenantsRepository(session, scope).tenant()
    if tenant is None:
        raise NotFound("Your company no longer exists.")
    return tenant


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
