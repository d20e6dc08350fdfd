"""Authentication and authorisation dependencies, shared by every router.

`CurrentPrincipal` decodes the bearer token once per request (FastAPI caches a dependency's
value within a request) and loads the principal with one narrow query.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from tenantry.auth import service
from tenantry.auth.principal import Principal
from tenantry.kit.deps import SessionDep
from tenantry.kit.errors import Forbidden, Unauthorized
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
    principal = await service.authenticate(
        session, request.app.state.tokens, credentials.credentials
    )
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
