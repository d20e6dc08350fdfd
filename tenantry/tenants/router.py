from __future__ import annotations

from fastapi import APIRouter

from tenantry.auth.dependencies import ScopeDep, TenantAdmin
from tenantry.kit.deps import CachesDep, DatabaseDep, SessionDep
from tenantry.kit.errors import problems
from tenantry.tenants import service
from tenantry.tenants.schemas import TenantOut, TenantSettingsOut, TenantSettingsPatch

router = APIRouter(prefix="/tenant", tags=["tenant"])


@router.get("", summary="Your company", response_model=TenantOut, responses=problems(401, 404))
async def get_tenant(db: DatabaseDep, caches: CachesDep, scope: ScopeDep) -> TenantOut:
    return await service.tenant_view(db, caches, scope)


@router.get(
    "/settings",
    summary="Your company's settings",
    response_model=TenantSettingsOut,
    responses=problems(401, 404),
)
async def get_tenant_settings(
    db: DatabaseDep, caches: CachesDep, scope: ScopeDep
) -> TenantSettingsOut:
    return await service.settings_view(db, caches, scope)


@router.patch(
    "/settings",
    summary="Change your company's settings (owners and admins)",
    response_model=TenantSettingsOut,
    responses=problems(400, 401, 403, 404, 413, 422),
)
async def update_tenant_settings(
    patch: TenantSettingsPatch, session: SessionDep, admin: TenantAdmin
) -> TenantSettingsOut:
    settings = await service.update_settings(session, admin.scope, patch)
    return TenantSettingsOut.model_validate(settings)
