"""OpenID Connect login: start at the provider, finish with our own access token.

`state`, the PKCE verifier and the nonce are kept 10 minutes in the state store (the table or
Redis, never process memory), so a login started on one instance completes on any other, and
are taken atomically on the way back: a state works once.
"""

from __future__ import annotations

import secrets
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.auth import service as auth
from tenantry.auth.oidc import OidcClient, OidcRefused
from tenantry.auth.repository import AuthRepository
from tenantry.kit.errors import BadRequest
from tenantry.kit.security import TokenCodec
from tenantry.kit.state import StateStore

STATE_NAMESPACE = "oauth"


class OAuthStateInvalid(BadRequest):
    slug, title = "oauth-state-invalid", "Login state invalid"


async def start(
    oidc: OidcClient, store: StateStore, *, provider: str, redirect_uri: str, ttl_s: int
) -> str:
    """The provider's authorization URL for a new login attempt."""
    oidc.provider(provider)  # 404 before any work for an unknown name
    meta = await oidc.metadata(provider)
    state, nonce, verifier = (secrets.token_urlsafe(32) for _ in range(3))
    verifier += secrets.token_urlsafe(32)  # 86 characters: within RFC 7636's 43 to 128
    await store.put(
        STATE_NAMESPACE,
        state,
        {"provider": provider, "nonce": nonce, "verifier": verifier, "redirect_uri": redirect_uri},
        ttl_s=ttl_s,
    )
    return oidc.authorization_url(
        provider, meta, redirect_uri=redirect_uri, state=state, nonce=nonce, verifier=verifier
    )


async def finish(
    session: AsyncSession,
    oidc: OidcClient,
    store: StateStore,
    codec: TokenCodec,
    *,
    provider: str,
    code: str | None,
    state: str | None,
    error: str | None,
) -> tuple[str, int]:
    """Check the state, exchange the code, verify the ID token, log the user in."""
    oidc.provider(provider)
    saved: dict[str, Any] | None = None
    if state and len(state) <= 255:
        saved = await store.take(STATE_NAMESPACE, state)  # used once, whatever happens next
    if saved is None or saved.get("provider") != provider:
        raise OAuthStateInvalid(
            "This login's state is unknown, expired or already used; start the login again."
        )
    if error:
        raise OidcRefused(f"The provider did not log you in ({error[:100]}).")
    if not code:
        raise OAuthStateInvalid("The provider sent no authorization code.")
    tokens = await oidc.exchange(
        provider, code=code, verifier=saved["verifier"], redirect_uri=saved["redirect_uri"]
    )
    claims = await oidc.verify_id_token(provider, tokens["id_token"], nonce=saved["nonce"])
    email = claims.get("email")
    if not isinstance(email, str) or claims.get("email_verified") is not True:
        raise OidcRefused("The provider did not vouch for an email address (email_verified).")
    repo = AuthRepository(session)
    row = await repo.login_row(email.strip().lower())
    if row is None or not row.is_active:
        raise OidcRefused(f"No active Tenantry account has the email {email}.")
    return await auth.logged_in(repo, codec, row)
