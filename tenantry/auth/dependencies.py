"""Authentication and authorisation dependencies, shared by every router.

`CurrentPrincipal` accepts a bearer access token (JWT) or an API key (`tnt_...`). A token is
verified once per request through `kit.security.request_claims` (a middleware that verified
it already left the claims in `scope["state"]["token_claims"]`); the principal comes from the
principal cache, so a warm request runs no query and leaves the request's session unused.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from tenantry.api_keys import service as api_keys
from tenantry.auth import service
from tenantry.auth.principal import Principal
from tenantry.kit.errors import Forbidden, Unauthorized
from tenantry.kit.security import InvalidToken, is_api_key, request_claims
from tenantry.kit.tenancy import TenantScope

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearerAuth",
    description="An access token from `POST /api/v1/auth/login`, or an API key (`tnt_...`).",
    bearerFormat="JWT",
)


async def get_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    # On every authenticated request: app state is read directly rather than through more
    # dependencies, each of which costs FastAPI a resolution step.
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("Send `Authorization: Bearer <token>`.")
    token = credentials.credentials
    state = request.app.state
    db, caches = state.db, state.caches
    if is_api_key(token):
        principal = await api_keys.authenticate(
            db, caches, state.api_key_usage, state.settings.api_key_secret, token
        )
    else:
        try:
            claims = request_claims(request.scope, state.tokens, token)
        except InvalidToken:
            raise Unauthorized("The access token is invalid or has expired.") from None
        principal = await service.authenticate(db, caches, claims)
    request.scope.setdefault("state", {})["principal"] = principal
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


async def get_scope(principal: CurrentPrincipal) -> TenantScope:
    return principal.scope


ScopeDep = Annotated[TenantScope, Depends(get_scope)]


async def require_tenant_admin(principal: CurrentPrincipal) -> Principal:
    if not principal.at_least("admin"):
        raise Forbidden("Only the company's owners and admins can do this.")
    return principal


async def require_platform_admin(principal: CurrentPrincipal) -> Principal:
    if not (principal.is_platform_staff and principal.at_least("admin")):
        raise Forbidden("Only platform administrators can do this.")
    return principal


TenantAdmin = Annotated[Principal, Depends(require_tenant_admin)]
PlatformAdmin = Annotated[Principal, Depends(require_platform_admin)]
