from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from tenantry.api_keys.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyPage
from tenantry.api_keys.service import ApiKeysService
from tenantry.authz.dependencies import TenantAdmin
from tenantry.kit.deps import SessionDep, no_store
from tenantry.kit.errors import problems
from tenantry.kit.pagination import PageNumber, PerPage

router = APIRouter(prefix="/api-keys", tags=["api-keys"])

ApiKeys = Annotated[ApiKeysService, Depends(ApiKeysService.dep)]


@router.get(
    "",
    summary="List your company's API keys (owners and admins)",
    response_model=ApiKeyPage,
    responses=problems(401, 403, 422),
)
async def list_api_keys(
    keys: ApiKeys,
    session: SessionDep,
    admin: TenantAdmin,
    page: PageNumber = 1,
    per_page: PerPage = 20,
) -> ApiKeyPage:
    return await keys.page(session, admin, page=page, per_page=per_page)


@router.post(
    "",
    summary="Create an API key; the key is in this response only (owners and admins)",
    response_model=ApiKeyCreated,
    status_code=status.HTTP_201_CREATED,
    responses=problems(400, 401, 403, 413, 422),
    dependencies=[Depends(no_store)],
)
async def create_api_key(
    body: ApiKeyCreate, keys: ApiKeys, session: SessionDep, admin: TenantAdmin
) -> ApiKeyCreated:
    return await keys.create(session, admin, body)


@router.delete(
    "/{key_id}",
    summary="Revoke an API key, on every instance at once (owners and admins)",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problems(401, 403, 404, 422),
)
async def revoke_api_key(
    key_id: uuid.UUID, keys: ApiKeys, session: SessionDep, admin: TenantAdmin
) -> Response:
    await keys.revoke(session, admin, key_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
