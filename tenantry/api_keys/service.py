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

from tenantry.api_keys.models import ApiKey
from tenantry.api_keys.repository import ApiKeyLookup, ApiKeyRepository, read_grant
from tenantry.api_keys.schemas import ApiKeyCreate, ApiKeyOut, ApiKeyPage
from tenantry.auth import service as auth
from tenantry.auth.principal import ROLE_RANK, Principal
from tenantry.kit.cache import Caches, CacheSpec, invalidate_on_commit
from tenantry.kit.db import Database, session_scope
from tenantry.kit.errors import Forbidden, NotFound, Unauthorized
from tenantry.kit.pagination import offset_of
from tenantry.kit.security import API_KEY_PREFIX
from tenantry.kit.tenancy import TenantScope

log = logging.getLogger("tenantry.api_keys")


@dataclass(frozen=True, slots=True)
class ApiKeyGrant:
    id: uuid.UUID
    tenant_id: uuid.UUID
    user_id: uuid.UUID
    role: str
    expires_at: datetime | None


API_KEY_CACHE = CacheSpec("api_keys", ttl_s=300, max_size=10_000, value_type=ApiKeyGrant)


def hash_key(secret: str, key: str) -> str:
    return hmac.new(secret.encode(), key.encode(), hashlib.sha256).hexdigest()


async def create(
    session: AsyncSession, creator: Principal, secret: str, body: ApiKeyCreate
) -> tuple[ApiKey, str]:
    if creator.via_api_key:
        raise Forbidden("An API key cannot create API keys; log in as a person.")
    if ROLE_RANK[body.role] > ROLE_RANK[creator.role]:
        raise Forbidden(f"A {creator.role} cannot create a key with the role {body.role!r}.")
    key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    entity = ApiKey(
        name=body.name.strip(),
        role=body.role,
        prefix=key[:12],
        key_hash=hash_key(secret, key),
        created_by=creator.id,
        expires_at=body.expires_at,
    )
    ApiKeyRepository(session, creator.scope).add(entity)
    await session.flush()
    await session.refresh(entity, ["created_at"])
    return entity, key


async def page(
    session: AsyncSession, scope: TenantScope, *, page: int, per_page: int
) -> ApiKeyPage:
    keys, total = await ApiKeyRepository(session, scope).page(
        offset=offset_of(page, per_page), limit=per_page
    )
    items = [ApiKeyOut.model_validate(k) for k in keys]
    return ApiKeyPage.of(items, total=total, page=page, per_page=per_page)


async def revoke(session: AsyncSession, actor: Principal, key_id: uuid.UUID) -> None:
    if actor.via_api_key:
        raise Forbidden("An API key cannot revoke API keys; log in as a person.")
    key_hash = await ApiKeyRepository(session, actor.scope).delete(key_id)
    if key_hash is None:
        raise NotFound("No such API key in your company.")
    invalidate_on_commit(session, API_KEY_CACHE.name, key_hash)


class UsageBuffer:
    """When each key was last used, kept in memory until the next flush."""

    def __init__(self) -> None:
        self._seen: dict[uuid.UUID, datetime] = {}

    def touch(self, key_id: uuid.UUID, at: datetime) -> None:
        self._seen[key_id] = at

    def __len__(self) -> int:
        return len(self._seen)

    async def flush(self, db: Database) -> int:
        if not self._seen:
            return 0
        seen, self._seen = self._seen, {}
        try:
            async with session_scope(db.sessionmaker) as session:
                await ApiKeyLookup(session).record_usage(seen)
        except Exception:
            for key_id, at in seen.items():  # keep them for the next try
                self._seen.setdefault(key_id, at)
            raise
        return len(seen)


async def flush_usage_forever(buffer: UsageBuffer, db: Database, interval_s: float) -> None:
    while True:
        await asyncio.sleep(interval_s)
        try:
            await buffer.flush(db)
        except Exception:  # retried next interval; never kill the loop
            log.exception("recording API key usage failed")


async def authenticate(
    db: Database, caches: Caches, usage: UsageBuffer, secret: str, key: str
) -> Principal:
    """The principal a presented key acts as, or 401."""
    key_hash = hash_key(secret, key)

    async def load() -> ApiKeyGrant | None:
        row = await read_grant(db.reader, key_hash)
        return ApiKeyGrant(**row) if row is not None else None

    grant = await caches.cache(API_KEY_CACHE).get_or_load(key_hash, load)
    if grant is None:
        raise Unauthorized("This API key is unknown or has been revoked.")
    now = datetime.now(UTC)
    if grant.expires_at is not None and grant.expires_at <= now:
        raise Unauthorized("This API key has expired.")
    creator = auth.check_active(
        await auth.cached_principal(db, caches, grant.tenant_id, grant.user_id), what="API key"
    )
    role = min(grant.role, creator.role, key=ROLE_RANK.__getitem__)
    usage.touch(grant.id, now)
    return replace(creator, role=role, api_key_id=grant.id)
