"""Tenant rules: provisioning and settings, and their caches.

The tenant (1 h) and its settings (10 min, at most 1,000 tenants per process) are cached
under the tenant id; a settings write invalidates them on every instance once it commits.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.audit.service import AuditService
from tenantry.authz.principal import Principal
from tenantry.kit.cache import CacheSpec, Rendered, declare
from tenantry.kit.caches import invalidate_on_commit
from tenantry.kit.errors import Conflict, NotFound
from tenantry.kit.pagination import offset_of
from tenantry.kit.platform import Service
from tenantry.kit.repository import TenantScope
from tenantry.tenants.models import Tenant
from tenantry.tenants.repository import SettingsRepository, TenantDirectory
from tenantry.tenants.schemas import (
    TenantOut,
    TenantPage,
    TenantSettingsOut,
    TenantSettingsPatch,
    TenantSummary,
)

TENANT_CACHE = declare("tenant", ttl_s=3600, max_size=10_000, value_type=TenantOut)
SETTINGS_CACHE = declare("tenant_settings", ttl_s=600, max_size=1_000, value_type=TenantSettingsOut)

V = TypeVar("V")

DEFAULT_LEAD_STATUSES = ["new", "contacted", "qualified", "proposal", "won", "lost"]


class TenantsService(Service):
    async def view(self, scope: TenantScope) -> TenantOut:
        """The caller's company, cached."""

        async def load() -> TenantOut | None:
            row = await TenantDirectory(self.platform.db.reader).row(scope.tenant_id)
            return TenantOut.model_validate(row) if row is not None else None

        return await self._cached(TENANT_CACHE, scope, load, "Your company no longer exists.")

    async def view_json(self, scope: TenantScope) -> Rendered:
        """`view`, serialised once per cache entry (with its ETag)."""
        tenant = await self.view(scope)
        return self.platform.caches.cache(TENANT_CACHE).rendered(str(scope.tenant_id), tenant)

    async def summary(self, scope: TenantScope) -> TenantSummary:
        """The caller's company in brief (from the cached view)."""
        tenant = await self.view(scope)
        return TenantSummary(id=tenant.id, slug=tenant.slug, name=tenant.name, status=tenant.status)

    async def settings_view(self, scope: TenantScope) -> TenantSettingsOut:
        """The caller's company settings, cached."""

        async def load() -> TenantSettingsOut | None:
            row = await SettingsRepository(self.platform.db.reader, scope).row()
            return TenantSettingsOut.model_validate(row) if row is not None else None

        return await self._cached(SETTINGS_CACHE, scope, load, "Your company has no settings yet.")

    async def settings_json(self, scope: TenantScope) -> Rendered:
        """`settings_view`, serialised once per cache entry (with its ETag)."""
        settings = await self.settings_view(scope)
        cache = self.platform.caches.cache(SETTINGS_CACHE)
        return cache.rendered(str(scope.tenant_id), settings)

    async def _cached(
        self,
        spec: CacheSpec[V],
        scope: TenantScope,
        load: Callable[[], Awaitable[V | None]],
        missing: str,
    ) -> V:
        """The tenant's entry of a cache keyed by tenant id, loaded from committed data on a
        miss; 404 `missing` when there is none."""
        found = await self.platform.caches.cache(spec).get_or_load(str(scope.tenant_id), load)
        if found is None:
            raise NotFound(missing)
        return found

    async def update_settings(
        self, session: AsyncSession, admin: Principal, patch: TenantSettingsPatch
    ) -> TenantSettingsOut:
        scope = admin.scope
        settings = await SettingsRepository(session, scope).entity()
        if settings is None:
            raise NotFound("Your company has no settings yet.")
        for key, value in patch.model_dump(exclude_unset=True).items():
            if value is None and key != "default_team_id":
                continue
            setattr(settings, key, value)
        invalidate_on_commit(session, SETTINGS_CACHE.name, str(scope.tenant_id))
        fields = sorted(patch.model_dump(exclude_unset=True))
        if fields:
            audit = self.platform.service(AuditService)
            audit.record(
                session, scope, "settings.changed", actor=admin, details={"fields": fields}
            )
        try:
            await session.flush()
        except IntegrityError:  # the only reference it holds: the default team
            raise NotFound("No such team in your company (default_team_id).") from None
        await session.refresh(settings, ["updated_at"])
        return TenantSettingsOut.model_validate(settings)

    async def provision(
        self,
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

    async def directory(self, session: AsyncSession, *, page: int, per_page: int) -> TenantPage:
        """Every company, newest first, a numbered page (platform staff)."""
        rows, total = await TenantDirectory(session).page(
            offset=offset_of(page, per_page), limit=per_page
        )
        items = [TenantOut.model_validate(dict(row)) for row in rows]
        return TenantPage.of(items, total=total, page=page, per_page=per_page)

    async def find_by_slug(self, session: AsyncSession, slug: str) -> Tenant | None:
        return await TenantDirectory(session).by_slug(slug)
