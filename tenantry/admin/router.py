from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from tenantry.admin.schemas import CacheClearIn, CacheClearOut, CacheStatsOut, InvalidatedOut
from tenantry.admin.service import CacheAdminService
from tenantry.authz.dependencies import PlatformAdmin
from tenantry.kit.deps import SessionDep
from tenantry.kit.errors import problems
from tenantry.kit.text import text

router = APIRouter(prefix="/admin/cache", tags=["admin"])

CacheAdmin = Annotated[CacheAdminService, Depends(CacheAdminService.dep)]


@router.get(
    "/stats",
    summary="Cache statistics of the instance that answers (platform admins)",
    response_model=CacheStatsOut,
    responses=problems(401, 403),
)
async def cache_stats(admin: CacheAdmin, _: PlatformAdmin) -> CacheStatsOut:
    return admin.stats()


@router.post(
    "/clear",
    summary="Clear every cache, or one by name, on every instance (platform admins)",
    response_model=CacheClearOut,
    responses=problems(400, 401, 403, 404, 413, 422),
)
async def clear_caches(
    admin: CacheAdmin,
    session: SessionDep,
    staff: PlatformAdmin,
    body: CacheClearIn | None = None,
) -> CacheClearOut:
    return CacheClearOut(cleared=admin.clear(session, staff, body.cache if body else None))


@router.post(
    "/invalidate/{email}",
    summary="Forget one user's cached principal on every instance (platform admins)",
    response_model=InvalidatedOut,
    responses=problems(401, 403, 404, 422),
)
async def invalidate_user_cache(
    email: Annotated[str, text(max_length=320), Path()],
    admin: CacheAdmin,
    session: SessionDep,
    staff: PlatformAdmin,
) -> InvalidatedOut:
    return await admin.invalidate_user(session, staff, email)
