from __future__ import annotations

import uuid

from fastapi import APIRouter, Response, status

from tenantry.api_keys import service
from tenantry.api_keys.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyPage
from tenantry.auth.dependencies import TenantAdmin
from tenantry.kit.deps import SessionDep, SettingsDep
from tenantry.kit.errors import problems
from tenantry.kit.pagination import PageNumber, PerPage

router = APIRouter(prefix="/api-keys", tags=["api-keys"])


@router.get(
    "",
    summary="List your company's API keys (owners and admins)",
    response_model=ApiKeyPage,
    responses=problems(401, 403, 422),
)
async def list_api_keys(
    session: SessionDep,
    admin: TenantAdmin,
    page: PageNumber = 1,
    per_page: PerPage = 20,
) -> ApiKeyPage:
    return await service.page(session, admin.scope, page=page, per_page=per_page)


@router.post(
    "",
    summary="Create an API key; the key is in this response only (owners and admins)",
    response_model=ApiKeyCreated,
    status_code=status.HTTP_201_CREATED,
    responses=problems(400, 401, 403, 413, 422),
)
async def create_api_key(
    body: ApiKeyCreate, session: SessionDep, admin: TenantAdmin, settings: SettingsDep
) -> ApiKeyCreated:
    entity, key = await service.create(session, admin, settings.api_key_secret, body)
    return ApiKeyCreated(
        id=entity.id,
        name=entity.name,
        role=entity.role,
        prefix=entity.prefix,
        created_by=entity.created_by,
        expires_at=entity.expires_at,
        last_used_at=entity.last_used_at,
        created_at=entity.created_at,
        key=key,
    )


@router.delete(
    "/{key_id}",
    summary="Revoke an API key, on every instance at once (owners and admins)",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problems(401, 403, 404, 422),
)
async def revoke_api_key(key_id: uuid.UUID, session: SessionDep, admin: TenantAdmin) -> Response:
    await service.revoke(session, admin, key_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
