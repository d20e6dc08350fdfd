"""Login, token checks, and the cached principal.

The principal projection is cached 5 minutes under `{tenant_id}:{user_id}`; whatever changes
a field of it (role, active flag, token version, name) calls `forget_principal` in the same
transaction, and the request scope invalidates it on every instance once that commits. A warm
authenticated request therefore runs no query and opens no transaction.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.auth.principal import Principal
from tenantry.auth.repository import AuthRepository, read_principal
from tenantry.kit.cache import Caches, CacheSpec, invalidate_on_commit
from tenantry.kit.db import Database
from tenantry.kit.errors import Unauthorized
from tenantry.kit.security import (
    TokenClaims,
    TokenCodec,
    hash_password,
    password_needs_rehash,
    verify_password,
)

PRINCIPAL_CACHE = CacheSpec("principal", ttl_s=300, max_size=10_000, value_type=Principal)

_BAD_LOGIN = "The email or password is wrong, or the account is disabled."


async def login(
    session: AsyncSession, codec: TokenCodec, email: str, password: str
) -> tuple[str, int]:
    repo = AuthRepository(session)
    row = await repo.login_row(email.strip().lower())
    # Verify even when the user is unknown: the same cost either way.
    ok = await verify_password(row.password_hash if row else None, password)
    if row is None or not ok or not row.is_active:
        raise Unauthorized(_BAD_LOGIN)
    new_hash = await hash_password(password) if password_needs_rehash(row.password_hash) else None
    return await logged_in(repo, codec, row, new_hash)


async def logged_in(
    repo: AuthRepository, codec: TokenCodec, row: Any, new_hash: str | None = None
) -> tuple[str, int]:
    """The end of every login (password or OpenID Connect): the login recorded, the token
    issued. `row` is `AuthRepository.login_row`'s, already checked active."""
    await repo.record_login(row.id, new_hash)
    return codec.issue(
        user_id=row.id, tenant_id=row.tenant_id, role=row.role, version=row.token_version
    )


def principal_key(tenant_id: uuid.UUID, user_id: uuid.UUID) -> str:
    return f"{tenant_id}:{user_id}"


async def cached_principal(
    db: Database, caches: Caches, tenant_id: uuid.UUID, user_id: uuid.UUID
) -> Principal | None:
    """The principal projection, from the cache or one lean query on a connection of its own
    (committed data only; the request's session stays untouched)."""

    async def load() -> Principal | None:
        return await read_principal(db.reader, user_id, tenant_id)

    return await caches.cache(PRINCIPAL_CACHE).get_or_load(principal_key(tenant_id, user_id), load)


def check_active(principal: Principal | None, *, what: str = "token") -> Principal:
    if principal is None or not principal.is_active:
        raise Unauthorized(f"The account behind this {what} no longer exists or is disabled.")
    if principal.tenant_status != "active":
        raise Unauthorized("This company's account is suspended.")
    return principal


async def authenticate(db: Database, caches: Caches, claims: TokenClaims) -> Principal:
    """The principal behind verified token claims, or 401."""
    principal = check_active(await cached_principal(db, caches, claims.tid, claims.sub))
    if claims.ver != principal.token_version:
        raise Unauthorized("This token has been revoked; log in again.")
    return principal


def forget_principal(session: AsyncSession, tenant_id: uuid.UUID, user_id: uuid.UUID) -> None:
    """The user's cached principal goes stale when this session commits (every instance)."""
    invalidate_on_commit(session, PRINCIPAL_CACHE.name, principal_key(tenant_id, user_id))


async def forget_principal_by_email(session: AsyncSession, email: str) -> uuid.UUID | None:
    """As `forget_principal`, found by email; the user's id, or None when there is none."""
    row = await AuthRepository(session).login_row(email.strip().lower())
    if row is None:
        return None
    forget_principal(session, row.tenant_id, row.id)
    return row.id  # type: ignore[no-any-return]
