from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status

from tenantry.authz.dependencies import TenantAdmin
from tenantry.kit.conditional import NOT_MODIFIED, cached_json
from tenantry.kit.deps import ReaderDep, SessionDep
from tenantry.kit.errors import problems
from tenantry.kit.lane import hot
from tenantry.kit.pagination import PageNumber, PerPage
from tenantry.sync.schemas import (
    RunOut,
    RunPage,
    RunStatus,
    SourceCreate,
    SourceOut,
    SourcePage,
    SourcePatch,
    SyncAccepted,
    SyncRequest,
)
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
    responses=problems(400, 401, 403, 409, 413, 422),
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


@router.post(
    "/sync",
    summary="Sync a source now; a source already syncing answers with its run",
    response_model=SyncAccepted,
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        202: {
            "description": "The run, new or already under way",
            "headers": {
                "Location": {
                    "description": "The run's status URL (`status_url`)",
                    "schema": {"type": "string"},
                }
            },
        },
        **problems(400, 401, 403, 404, 413, 422),
    },
)
async def start_sync(
    body: SyncRequest,
    request: Request,
    response: Response,
    sync: Sync,
    session: SessionDep,
    admin: TenantAdmin,
) -> SyncAccepted:
    run, created = await sync.trigger(session, admin, body.source_id)
    status_url = str(request.url_for("get_sync_run", run_id=run.id).path)
    response.headers["Location"] = status_url
    return SyncAccepted.model_validate(
        {"task_id": run.id, "status_url": status_url, "status": run.status, "created": created}
    )


@router.get(
    "/syncs",
    summary="Your company's sync runs, newest first (owners and admins)",
    response_model=RunPage,
    responses={**NOT_MODIFIED, **problems(401, 403, 422)},
)
@hot
async def list_sync_runs(
    request: Request,
    sync: Sync,
    reader: ReaderDep,
    admin: TenantAdmin,
    page: PageNumber = 1,
    per_page: PerPage = 20,
    status_: Annotated[RunStatus | None, Query(alias="status")] = None,
) -> Response:
    runs = await sync.runs(reader, admin.scope, status=status_, page=page, per_page=per_page)
    return cached_json(request, runs)


@router.get(
    "/syncs/{run_id}",
    summary="One sync run with its progress: pages, records written and failed, errors",
    response_model=RunOut,
    responses=problems(401, 403, 404, 422),
    name="get_sync_run",
)
async def get_sync_run(
    run_id: uuid.UUID, sync: Sync, session: SessionDep, admin: TenantAdmin
) -> RunOut:
    return await sync.run(session, admin, run_id)
