from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request

from tenantry.admin import service
from tenantry.admin.schemas import CacheClearIn, CacheClearOut, CacheStatsOut, InvalidatedOut
from tenantry.auth.dependencies import PlatformAdmin
from tenantry.kit.deps import CachesDep, SessionDep
from tenantry.kit.errors import problems
from tenantry.kit.text import text

router = APIRouter(prefix="/admin/cache", tags=["admin"])


@router.get(
    "/stats",
    summary="Cache statistics of the instance that answers (platform admins)",
    response_model=CacheStatsOut,
    responses=problems(401, 403),
)
async def cache_stats(request: Request, caches: CachesDep, _: PlatformAdmin) -> CacheStatsOut:
    return service.stats(caches, request.app.state.redis_health)


@router.post(
    "/clear",
    summary="Clear every cache, or one by name, on every instance (platform admins)",
    response_model=CacheClearOut,
    responses=problems(400, 401, 403, 404, 413, 422),
)
async def clear_caches(
    session: SessionDep, caches: CachesDep, _: PlatformAdmin, body: CacheClearIn | None = None
) -> CacheClearOut:
    return CacheClearOut(cleared=service.clear(session, caches, body.cache if body else None))


@router.post(
    "/invalidate/{email}",
    summary="Forget one user's cached principal on every instance (platform admins)",
    response_model=InvalidatedOut,
    responses=problems(401, 403, 404, 422),
)
async def invalidate_user_cache(
    email: Annotated[str, text(max_length=320), Path()], session: SessionDep, _: PlatformAdmin
) -> InvalidatedOut:
    return await service.invalidate_user(session, email)
