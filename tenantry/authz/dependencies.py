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
from fastapi.security import HTTPBearer
from starlette.types import Scope

from tenantry.authz.principal import Principal
from tenantry.kit.errors import Forbidden, Unauthorized
from tenantry.kit.repository import TenantScope
from tenantry.kit.security import TokenClaims, bearer_token, is_api_key, stashed_claims

# (the request, the bearer credential) -> the principal, or Unauthorized.
Authenticate = Callable[[Request, str], Awaitable[Principal]]


@dataclass(frozen=True, slots=True)
class Authenticators:
    """How a credential becomes a principal (`app.state.authenticators`): the claims of an
    access token the edge verified already, an access token, or an API key."""

    claims: Callable[[TokenClaims], Awaitable[Principal]]
    token: Authenticate
    api_key: Authenticate


class BearerPrincipal(HTTPBearer):
    """The principal, as one dependency.

    It is an `HTTPBearer` so that FastAPI documents the bearer scheme on every operation that
    depends on it, but it resolves in one step: where the edge middleware verified the token
    already (the decode-once contract, `kit.security`), the claims come from its stash and the
    header is not read again; otherwise the `Authorization` header is parsed here, as
    `HTTPBearer` parses it. `HTTPBearer` followed by `Depends(get_principal)` cost FastAPI two
    resolutions on every authenticated request.
    """

    async def __call__(self, request: Request) -> Principal:  # type: ignore[override]
        scope = request.scope
        authenticators: Authenticators = request.app.state.authenticators
        stashed = stashed_claims(scope)
        if isinstance(stashed, TokenClaims):
            return await authenticators.claims(stashed)
        token = bearer_token(_authorization(scope))
        if token is None:
            raise Unauthorized("Send `Authorization: Bearer <token>`.")
        if is_api_key(token):
            return await authenticators.api_key(request, token)
        return await authenticators.token(request, token)


def _authorization(scope: Scope) -> bytes | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            return value  # type: ignore[no-any-return]
    return None


get_principal = BearerPrincipal(
    scheme_name="bearerAuth",
    description="An access token from `POST /api/v1/auth/login`, or an API key (`tnt_...`).",
    bearerFormat="JWT",
)

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
