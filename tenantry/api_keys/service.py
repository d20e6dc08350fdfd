"""API keys: who may make them, how a presented key becomes a principal, and usage.

A key is `tnt_` + 43 random URL-safe characters (256 bits). Only its HMAC-SHA256 under
`API_KEY_SECRET` is stored: a fast keyed hash is right for high-entropy keys (argon2 is for
passwords people choose). A key acts for its creator with the lower of its own role and the
creator's current one, so demoting or deactivating the creator reaches their keys too.

A presented key is resolved through the `api_keys` cache (by hash; the hash identifies one
key of one tenant) and the principal cache, so a warm request with a key runs no query.
Revoking invalidates the key's entry on every instance once the revocation commits.
`last_used_at` is buffered in memory and written by a background flush (one statement for all
keys, every `API_KEY_USAGE_FLUSH_S`), never once per request.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from tenantry.api_keys.models import ApiKey
from tenantry.api_keys.repository import ApiKeyLookup, ApiKeyRepository
from tenantry.api_keys.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyOut, ApiKeyPage
from tenantry.audit.service import AuditService
from tenantry.authz import service as principals
from tenantry.authz.principal import ROLE_RANK, Principal
from tenantry.authz.service import PrincipalService
from tenantry.kit.cache import declare
from tenantry.kit.caches import invalidate_on_commit
from tenantry.kit.db import session_scope
from tenantry.kit.errors import Forbidden, NotFound, Unauthorized
from tenantry.kit.pagination import offset_of
from tenantry.kit.platform import Platform, Service
from tenantry.kit.security import API_KEY_PREFIX

log = logging.getLogger("tenantry.api_keys")


@dataclass(frozen=True, slots=True)
class ApiKeyGrant:
    id: uuid.UUID
    tenant_id: uuid.UUID
    user_id: uuid.UUID
    role: str
    expires_at: datetime | None
    creator_version: int = 0


API_KEY_CACHE = declare("api_keys", ttl_s=300, max_size=10_000, value_type=ApiKeyGrant)


def hash_key(secret: str, key: str) -> str:
    return hmac.new(secret.encode(), key.encode(), hashlib.sha256).hexdigest()


class UsageBuffer:
    """When each key (tenant id, key id) was last used, kept in memory until the next flush."""

    def __init__(self) -> None:
        self._seen: dict[tuple[uuid.UUID, uuid.UUID], datetime] = {}

    def touch(self, tenant_id: uuid.UUID, key_id: uuid.UUID, at: datetime) -> None:
        self._seen[(tenant_id, key_id)] = at

    def __len__(self) -> int:
        return len(self._seen)

    def take(self) -> dict[tuple[uuid.UUID, uuid.UUID], datetime]:
        seen, self._seen = self._seen, {}
        return seen

    def give_back(self, seen: dict[tuple[uuid.UUID, uuid.UUID], datetime]) -> None:
        """A failed flush's entries, for the next try (newer uses win)."""
        for key, at in seen.items():
            self._seen.setdefault(key, at)


class ApiKeysService(Service):
    def __init__(self, platform: Platform) -> None:
        super().__init__(platform)
        self.usage = UsageBuffer()

    async def create(
        self, session: AsyncSession, creator: Principal, body: ApiKeyCreate
    ) -> ApiKeyCreated:
        """The new key, with the key itself (shown this once)."""
        if creator.via_api_key:
            raise Forbidden("An API key cannot create API keys; log in as a person.")
        if not creator.may_grant(body.role):
            raise Forbidden(f"A {creator.role} cannot create a key with the role {body.role!r}.")
        key = API_KEY_PREFIX + secrets.token_urlsafe(32)
        entity = ApiKey(
            name=body.name.strip(),
            role=body.role,
            prefix=key[:12],
            key_hash=hash_key(self.platform.settings.api_key_secret, key),
            created_by=creator.id,
            creator_version=creator.token_version,
            expires_at=body.expires_at,
        )
        ApiKeyRepository(session, creator.scope).add(entity)
        await session.flush()
        self.platform.service(AuditService).record(
            session,
            creator.scope,
            "api_key.created",
            actor=creator,
            target=entity.name,
            details={"api_key_id": str(entity.id), "prefix": entity.prefix, "role": entity.role},
        )
        await session.refresh(entity, ["created_at"])
        return ApiKeyCreated(**ApiKeyOut.model_validate(entity).model_dump(), key=key)

    async def page(
        self, session: AsyncSession, actor: Principal, *, page: int, per_page: int
    ) -> ApiKeyPage:
        keys, total = await ApiKeyRepository(session, actor.scope).entity_page(
            offset=offset_of(page, per_page), limit=per_page
        )
        items = [ApiKeyOut.model_validate(k) for k in keys]
        return ApiKeyPage.of(items, total=total, page=page, per_page=per_page)

    async def revoke(self, session: AsyncSession, actor: Principal, key_id: uuid.UUID) -> None:
        if actor.via_api_key:
            raise Forbidden("An API key cannot revoke API keys; log in as a person.")
        key_hash = await ApiKeyRepository(session, actor.scope).delete_key(key_id)
        if key_hash is None:
            raise NotFound("No such API key in your company.")
        invalidate_on_commit(session, API_KEY_CACHE.name, key_hash)
        self.platform.service(AuditService).record(
            session, actor.scope, "api_key.revoked", actor=actor, target=str(key_id)
        )

    async def authenticate(self, request: Request, key: str) -> Principal:
        """The principal a presented key acts as, or 401 (`authz.Authenticators.api_key`)."""
        platform = self.platform
        key_hash = hash_key(platform.settings.api_key_secret, key)

        async def load() -> ApiKeyGrant | None:
            row = await ApiKeyLookup(platform.db.reader).grant(key_hash)
            return ApiKeyGrant(**row) if row is not None else None

        grant = await platform.caches.cache(API_KEY_CACHE).get_or_load(key_hash, load)
        if grant is None:
            raise Unauthorized("This API key is unknown or has been revoked.")
        now = datetime.now(UTC)
        if grant.expires_at is not None and grant.expires_at <= now:
            raise Unauthorized("This API key has expired.")
        creator = principals.check_active(
            await platform.service(PrincipalService).cached(grant.tenant_id, grant.user_id),
            what="API key",
        )
        if creator.token_version != grant.creator_version:
            raise Unauthorized(
                "This API key was revoked when its creator's access changed"
                " (deactivated, reactivated or given another role)."
            )
        role = min(grant.role, creator.role, key=ROLE_RANK.__getitem__)
        self.usage.touch(grant.tenant_id, grant.id, now)
        return replace(creator, role=role, api_key_id=grant.id)

    # --- usage, written in the background -----------------------------------------------------

    async def flush_usage(self) -> int:
        """Write every use since the last flush in one statement; how many keys."""
        seen = self.usage.take()
        if not seen:
            return 0
        try:
            async with session_scope(self.platform.db.sessionmaker) as session:
                await ApiKeyLookup(session).record_usage(seen)
        except Exception:
            self.usage.give_back(seen)
            raise
        return len(seen)

    async def flush_usage_forever(self) -> None:
        interval_s = self.platform.settings.api_key_usage_flush_s
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.flush_usage()
            except Exception:  # retried next interval; never kill the loop
                log.exception("recording API key usage failed")
