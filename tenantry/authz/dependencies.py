"""Authentication and authorisation dependencies, shared by every router.

`CurrentPrincipal` accepts a bearer access token (JWT) or an API key (`tnt_...`). `authz`
knows neither: the domains that own them plug their authenticators in (`Authenticators`,
wired by `create_app`), so nothing here imports a domain. A token is verified once per
request (the edge middleware leaves its claims in the request state) and the principal comes
from the principal cache, so a warm request runs no query.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from tenantry.authz.principal import Principal
from tenantry.kit.errors import Forbidden, Unauthorized
from tenantry.kit.repository import TenantScope
from tenantry.kit.security import is_api_key

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearerAuth",
    description="An access token from `POST /api/v1/auth/login`, or an API key (`tnt_...`).",
    bearerFormat="JWT",
)

# (the request, the bearer credential) -> the principal, or Unauthorized.
Authenticate = Callable[[Request, str], Awaitable[Principal]]


@dataclass(frozen=True, slots=True)
class Authenticators:
    """How a bearer credential becomes a principal (`app.state.authenticators`)."""

    token: Authenticate
    api_key: Authenticate


async def get_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("Send `Authorization: Bearer <token>`.")
    token = credentials.credentials
    # App state is read directly rather than through more dependencies, each of which costs
    # FastAPI a resolution step on every authenticated request.
    authenticators: Authenticators = request.app.state.authenticators
    if is_api_key(token):
        return await authenticators.api_key(request, token)
    return await authenticators.token(request, token)


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
