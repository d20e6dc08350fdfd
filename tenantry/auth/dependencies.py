"""Authentication and authorisation dependencies, shared by every router.

`CurrentPrincipal` loads the principal with one narrow query, once per request (FastAPI caches
a dependency's value within a request). It does not decode the token again: the platform
middleware verified it before the route ran and stashed the claims in the request's state (the
decode-once contract, `tenantry.kit.security`); only an app built without that middleware
makes `get_principal` decode it here.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from tenantry.auth import service
from tenantry.auth.principal import Principal
from tenantry.kit.deps import SessionDep
from tenantry.kit.errors import Forbidden, Unauthorized
from tenantry.kit.security import ABSENT, stashed_claims
from tenantry.kit.tenancy import TenantScope

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearerAuth",
    description="An access token from `POST /api/v1/auth/login`.",
    bearerFormat="JWT",
)


async def get_principal(
    request: Request,
    session: SessionDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized("Send `Authorization: Bearer <token>`.")
    claims = stashed_claims(request.scope)
    if claims is ABSENT:
        principal = await service.authenticate(
            session, request.app.state.tokens, credentials.credentials
        )
    else:
        principal = await service.principal_for(session, claims)
    request.scope.setdefault("state", {})["principal"] = principal
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def get_scope(principal: CurrentPrincipal) -> TenantScope:
    return principal.scope


ScopeDep = Annotated[TenantScope, Depends(get_scope)]


def require_tenant_admin(principal: CurrentPrincipal) -> Principal:
    if not principal.at_least("admin"):
        raise Forbidden("Only the company's owners and admins can do this.")
    return principal


def require_platform_admin(principal: CurrentPrincipal) -> Principal:
    if not (principal.is_platform_staff and principal.at_least("admin")):
        raise Forbidden("Only platform administrators can do this.")
    return principal


TenantAdmin = Annotated[Principal, Depends(require_tenant_admin)]
PlatformAdmin = Annotated[Principal, Depends(require_platform_admin)]
