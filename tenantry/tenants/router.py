from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from tenantry.authz.dependencies import CurrentPrincipal, TenantAdmin
from tenantry.kit.conditional import NOT_MODIFIED, cached_json
from tenantry.kit.deps import SessionDep
from tenantry.kit.errors import problems
from tenantry.kit.lane import hot
from tenantry.tenants.schemas import TenantOut, TenantSettingsOut, TenantSettingsPatch
from tenantry.tenants.service import TenantsService

router = APIRouter(prefix="/tenant", tags=["tenant"])

Tenants = Annotated[TenantsService, Depends(TenantsService.dep)]


@router.get(
    "",
    summary="Your company",
    response_model=TenantOut,
    responses={**NOT_MODIFIED, **problems(401, 404)},
)
@hot
async def get_tenant(request: Request, tenants: Tenants, principal: CurrentPrincipal) -> Response:
    """Served from the cache as bytes, with an `ETag`; `If-None-Match` gets a 304."""
    return cached_json(request, await tenants.view_json(principal.scope))


@router.get(
    "/settings",
    summary="Your company's settings",
    response_model=TenantSettingsOut,
    responses={**NOT_MODIFIED, **problems(401, 404)},
)
@hot
async def get_tenant_settings(
    request: Request, tenants: Tenants, principal: CurrentPrincipal
) -> Response:
    """Served from the cache as bytes, with an `ETag`; `If-None-Match` gets a 304."""
    return cached_json(request, await tenants.settings_json(principal.scope))


@router.patch(
    "/settings",
    summary="Change your company's settings (owners and admins)",
    response_model=TenantSettingsOut,
    responses=problems(400, 401, 403, 404, 413, 422),
)
async def update_tenant_settings(
    patch: TenantSettingsPatch, tenants: Tenants, session: SessionDep, admin: TenantAdmin
) -> TenantSettingsOut:
    return await tenants.update_settings(session, admin, patch)
