"""Login and token checks."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.auth.principal import Principal
from tenantry.auth.repository import AuthRepository
from tenantry.kit.errors import Unauthorized
from tenantry.kit.security import (
    InvalidToken,
    TokenClaims,
    TokenCodec,
    hash_password,
    password_needs_rehash,
    verify_password,
)

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
    await repo.record_login(row.id, new_hash)
    return codec.issue(
        user_id=row.id, tenant_id=row.tenant_id, role=row.role, version=row.token_version
    )


_BAD_TOKEN = "The access token is invalid or has expired."


async def authenticate(session: AsyncSession, codec: TokenCodec, token: str) -> Principal:
    """The principal behind a bearer token, or 401."""
    try:
        claims = codec.decode(token)
    except InvalidToken:
        raise Unauthorized(_BAD_TOKEN) from None
    return await principal_for(session, claims)


async def principal_for(session: AsyncSession, claims: TokenClaims | None) -> Principal:
    """The principal behind verified claims (`None`: the token did not verify), or 401."""
    if claims is None:
        raise Unauthorized(_BAD_TOKEN)
    principal = await AuthRepository(session).principal(claims.sub, claims.tid)
    if principal is None or not principal.is_active:
        raise Unauthorized("The account behind this token no longer exists or is disabled.")
    if claims.ver != principal.token_version:
        raise Unauthorized("This token has been revoked; log in again.")
    if principal.tenant_status != "active":
        raise Unauthorized("This company's account is suspended.")
    return principal
