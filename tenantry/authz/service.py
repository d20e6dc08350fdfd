"""The cached principal, shared by every way of authenticating (tokens, API keys).

The principal projection is cached 5 minutes under `{tenant_id}:{user_id}`; whatever changes
a field of it (role, active flag, token version, name) calls `forget` in the same transaction,
and the request scope invalidates it on every instance once that commits. A warm
authenticated request therefore runs no query and opens no transaction.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.authz.principal import Principal
from tenantry.authz.repository import PrincipalRepository
from tenantry.kit.cache import declare
from tenantry.kit.caches import invalidate_on_commit
from tenantry.kit.errors import Unauthorized
from tenantry.kit.platform import Service
from tenantry.kit.repository import TenantScope

PRINCIPAL_CACHE = declare("principal", ttl_s=300, max_size=10_000, value_type=Principal)


def principal_key(tenant_id: uuid.UUID, user_id: uuid.UUID) -> str:
    return f"{tenant_id}:{user_id}"


def forget(session: AsyncSession, tenant_id: uuid.UUID, user_id: uuid.UUID) -> None:
    """The user's cached principal goes stale when this session commits (every instance)."""
    invalidate_on_commit(session, PRINCIPAL_CACHE.name, principal_key(tenant_id, user_id))


def check_active(principal: Principal | None, *, what: str = "token") -> Principal:
    """The principal, when the account and its company may still act; 401 otherwise."""
    if principal is None or not principal.is_active:
        raise Unauthorized(f"The account behind this {what} no longer exists or is disabled.")
    if principal.tenant_status != "active":
        raise Unauthorized("This company's account is suspended.")
    return principal


class PrincipalService(Service):
    async def cached(self, tenant_id: uuid.UUID, user_id: uuid.UUID) -> Principal | None:
        """The principal projection, from the cache or one lean query on a connection of its
        own (committed data only; the request's session stays untouched)."""
        platform = self.platform

        async def load() -> Principal | None:
            repo = PrincipalRepository(platform.db.reader, TenantScope(tenant_id))
            row = await repo.principal(user_id)
            return Principal(**row) if row is not None else None

        cache = platform.caches.cache(PRINCIPAL_CACHE)
        return await cache.get_or_load(principal_key(tenant_id, user_id), load)
