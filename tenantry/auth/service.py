"""Logins (password and OpenID Connect) and access tokens.

A login ends the same way whichever door it came through (`_logged_in`): the login recorded
by the users domain, a token issued. A presented token becomes a principal through
`authenticate`, which `create_app` plugs into `authz` (the token is verified once per request,
the principal comes from its cache).

OpenID Connect: `state`, the PKCE verifier and the nonce are kept 10 minutes in the state store
(the table or Redis, never process memory), so a login started on one instance completes on
any other, and are taken atomically on the way back: a state works once.
"""

from __future__ import annotations

import secrets
from functools import cached_property
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from tenantry.audit.service import AuditService
from tenantry.auth.oidc import OidcClient, OidcRefused
from tenantry.authz import service as principals
from tenantry.authz.principal import Principal
from tenantry.authz.service import PrincipalService
from tenantry.kit.errors import BadRequest, TooManyRequests, Unauthorized
from tenantry.kit.platform import Service
from tenantry.kit.repository import TenantScope
from tenantry.kit.security import (
    InvalidToken,
    TokenClaims,
    hash_password,
    password_needs_rehash,
    request_claims,
    verify_password,
)
from tenantry.users.service import UsersService

STATE_NAMESPACE = "oauth"
_BAD_LOGIN = "The email or password is wrong, or the account is disabled."


class OAuthStateInvalid(BadRequest):
    slug, title = "oauth-state-invalid", "Login state invalid"


class AuthService(Service):
    @cached_property
    def oidc(self) -> OidcClient:
        """Made on first use, once the lifespan has opened the outbound HTTP client."""
        platform = self.platform
        return OidcClient(platform.settings.oidc_providers, platform.caches, platform.http)

    @property
    def users(self) -> UsersService:
        return self.platform.service(UsersService)

    async def login(self, session: AsyncSession, *, email: str, password: str) -> tuple[str, int]:
        """An access token and its lifetime for the right password, else 401 (the same answer
        and the same cost whether or not the account exists)."""
        limiter = self.platform.limiter
        wait = None if limiter is None else await limiter.account_attempt(email.lower())
        if wait is not None:
            raise TooManyRequests(
                f"Too many login attempts for this account; retry in {wait} s.", retry_after=wait
            )
        row = await self.users.login_row(session, email)
        ok = await verify_password(row.password_hash if row else None, password)
        if row is None or not ok or not row.is_active:
            if row is not None:  # an account's company keeps the record (none: no company)
                why = "inactive account" if ok else "wrong password"
                await self.platform.service(AuditService).record_apart(
                    TenantScope(row.tenant_id),
                    "login.failed",
                    actor=None,
                    target=email.strip().lower(),
                    details={"reason": why},
                )
            raise Unauthorized(_BAD_LOGIN)
        rehash = password_needs_rehash(row.password_hash)
        return await self._logged_in(
            session, row, email, await hash_password(password) if rehash else None
        )

    async def _logged_in(
        self,
        session: AsyncSession,
        row: Any,
        email: str,
        new_hash: str | None = None,
        provider: str | None = None,
    ) -> tuple[str, int]:
        await self.users.record_login(session, row, new_hash)
        self.platform.service(AuditService).record(
            session,
            TenantScope(row.tenant_id),
            "login.succeeded",
            actor=row.id,
            target=email.strip().lower(),
            details={"provider": provider} if provider else {"method": "password"},
        )
        return self.platform.tokens.issue(
            user_id=row.id, tenant_id=row.tenant_id, role=row.role, version=row.token_version
        )

    async def authenticate(self, request: Request, token: str) -> Principal:
        """The principal behind a bearer access token, or 401 (`authz.Authenticators.token`)."""
        try:
            claims = request_claims(request.scope, self.platform.tokens, token)
        except InvalidToken:
            raise Unauthorized("The access token is invalid or has expired.") from None
        return await self.principal_for(claims)

    async def principal_for(self, claims: TokenClaims) -> Principal:
        """The principal behind verified claims, or 401 (`authz.Authenticators.claims`)."""
        found = await self.platform.service(PrincipalService).cached(claims.tid, claims.sub)
        principal = principals.check_active(found)
        if claims.ver != principal.token_version:
            raise Unauthorized("This token has been revoked; log in again.")
        return principal

    # --- OpenID Connect ----------------------------------------------------------------------

    async def start_oauth(self, *, provider: str, redirect_uri: str) -> str:
        """The provider's authorization URL for a new login attempt."""
        self.oidc.provider(provider)  # 404 before any work for an unknown name
        meta = await self.oidc.metadata(provider)
        state, nonce, verifier = (secrets.token_urlsafe(32) for _ in range(3))
        verifier += secrets.token_urlsafe(32)  # 86 characters: within RFC 7636's 43 to 128
        await self.platform.state.put(
            STATE_NAMESPACE,
            state,
            {
                "provider": provider,
                "nonce": nonce,
                "verifier": verifier,
                "redirect_uri": redirect_uri,
            },
            ttl_s=self.platform.settings.oauth_state_ttl_s,
        )
        return self.oidc.authorization_url(
            provider, meta, redirect_uri=redirect_uri, state=state, nonce=nonce, verifier=verifier
        )

    async def finish_oauth(
        self,
        session: AsyncSession,
        *,
        provider: str,
        code: str | None,
        state: str | None,
        error: str | None,
    ) -> tuple[str, int]:
        """Check the state, exchange the code, verify the ID token, log the user in."""
        oidc = self.oidc
        oidc.provider(provider)
        saved: dict[str, Any] | None = None
        if state and len(state) <= 255:
            # Used once, whatever happens next.
            saved = await self.platform.state.take(STATE_NAMESPACE, state)
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
        row = await self.users.login_row(session, email)
        if row is None or not row.is_active:
            raise OidcRefused(f"No active Tenantry account has the email {email}.")
        return await self._logged_in(session, row, email, provider=provider)
