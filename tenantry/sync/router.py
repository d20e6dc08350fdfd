from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, status

from tenantry.authz.dependencies import TenantAdmin
from tenantry.kit.deps import SessionDep
from tenantry.kit.errors import problems
from tenantry.kit.pagination import PageNumber, PerPage
from tenantry.sync.schemas import SourceCreate, SourceOut, SourcePage, SourcePatch
from tenantry.sync.service import SyncService

router = APIRouter(tags=["sync"])

Sync = Annotated[SyncService, Depends(SyncService.dep)]


@router.get(
    "/sync-sources",
    summary="List your company's sync sources (owners and admins)",
    response_model=SourcePage,
    responses=problems(401, 403, 422),
)
async def list_sync_sources(
    sync: Sync,
    session: SessionDep,
    admin: TenantAdmin,
    page: PageNumber = 1,
    per_page: PerPage = 20,
) -> SourcePage:
    return await sync.page(session, admin, page=page, per_page=per_page)


@router.post(
    "/sync-sources",
    summary="Add a sync source: an outside system to import customers and leads from",
    response_model=SourceOut,
    status_code=status.HTTP_201_CREATED,
    responses=problems(400, 401, 403, 413, 422),
)
async def create_sync_source(
    body: SourceCreate, sync: Sync, session: SessionDep, admin: TenantAdmin
) -> SourceOut:
    return await sync.create_source(session, admin, body)


@router.get(
    "/sync-sources/{source_id}",
    summary="One sync source (owners and admins)",
    response_model=SourceOut,
    responses=problems(401, 403, 404, 422),
)
async def get_sync_source(
    source_id: uuid.UUID, sync: Sync, session: SessionDep, admin: TenantAdmin
) -> SourceOut:
    return await sync.source(session, admin, source_id)


@router.patch(
    "/sync-sources/{source_id}",
    summary="Change a sync source; only the fields sent change (owners and admins)",
    response_model=SourceOut,
    responses=problems(400, 401, 403, 404, 413, 422),
)
async def update_sync_source(
    source_id: uuid.UUID, body: SourcePatch, sync: Sync, session: SessionDep, admin: TenantAdmin
) -> SourceOut:
    return await sync.update_source(session, admin, source_id, body)
