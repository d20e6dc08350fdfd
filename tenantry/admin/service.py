"""Cache administration: per-instance statistics, and clearing or invalidating on every
instance (through the request's commit, like any other invalidation)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.admin.schemas import CacheStatOut, CacheStatsOut, InvalidatedOut, RedisStatusOut
from tenantry.audit.service import AuditService
from tenantry.authz.principal import Principal
from tenantry.authz.service import PRINCIPAL_CACHE
from tenantry.kit.caches import invalidate_on_commit
from tenantry.kit.errors import NotFound
from tenantry.kit.platform import Service
from tenantry.kit.repository import TenantScope
from tenantry.territories.service import CONTEXT_CACHE, forget_context
from tenantry.users.service import UsersService


class CacheAdminService(Service):
    def stats(self) -> CacheStatsOut:
        caches, health = self.platform.caches, self.platform.redis_health
        redis = None
        if health is not None:
            since = health.down_since
            redis = RedisStatusOut(
                up=health.up,
                errors=health.errors,
                last_error=health.last_error,
                down_for_s=None if since is None else round(health.clock() - since, 3),
            )
        bus = caches.bus
        return CacheStatsOut(
            instance_id=caches.instance_id,
            invalidation_bus="redis" if health is not None else "postgres",
            bus_connected=bus is not None and bus.ready.is_set(),
            redis=redis,
            caches=[CacheStatOut.model_validate(s, from_attributes=True) for s in caches.stats()],
        )

    def clear(self, session: AsyncSession, staff: Principal, name: str | None) -> list[str]:
        """Clear one cache, or all, on every instance once the session commits (recorded in
        the staff member's own company's audit log)."""
        names = [c.name for c in self.platform.caches]
        if name is not None:
            if self.platform.caches.get(name) is None:
                raise NotFound(f"No cache named {name!r}; there are: {', '.join(names)}.")
            names = [name]
        for each in names:
            invalidate_on_commit(session, each, None)
        audit = self.platform.service(AuditService)
        audit.record(session, staff.scope, "cache.cleared", actor=staff, details={"caches": names})
        return names

    async def invalidate_user(
        self, session: AsyncSession, staff: Principal, email: str
    ) -> InvalidatedOut:
        found = await self.platform.service(UsersService).forget_by_email(session, email)
        if found is None:
            raise NotFound(f"No user has the email {email}.")
        tenant_id, user_id = found
        forget_context(session, tenant_id, user_id)
        self.platform.service(AuditService).record(
            session, TenantScope(tenant_id), "cache.invalidated", actor=staff, target=email
        )
        return InvalidatedOut(
            email=email, user_id=user_id, invalidated=[PRINCIPAL_CACHE.name, CONTEXT_CACHE.name]
        )
