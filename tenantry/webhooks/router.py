from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from tenantry.authz.dependencies import TenantAdmin
from tenantry.kit.deps import SessionDep, no_store
from tenantry.kit.errors import problems
from tenantry.kit.pagination import PageNumber, PerPage
from tenantry.webhooks.schemas import (
    DeliveryOut,
    DeliveryPage,
    DeliveryStatus,
    EndpointCreate,
    EndpointCreated,
    EndpointPage,
)
from tenantry.webhooks.service import WebhooksService

router = APIRouter(prefix="/webhooks", tags=["webhooks"])

Webhooks = Annotated[WebhooksService, Depends(WebhooksService.dep)]


@router.get(
    "",
    summary="List your company's webhook endpoints (owners and admins)",
    response_model=EndpointPage,
    responses=problems(401, 403, 422),
)
async def list_webhooks(
    hooks: Webhooks,
    session: SessionDep,
    admin: TenantAdmin,
    page: PageNumber = 1,
    per_page: PerPage = 20,
) -> EndpointPage:
    return await hooks.endpoints(session, admin, page=page, per_page=per_page)


@router.post(
    "",
    summary="Add a webhook endpoint; its signing secret is in this response only",
    response_model=EndpointCreated,
    status_code=status.HTTP_201_CREATED,
    responses=problems(400, 401, 403, 409, 413, 422),
    dependencies=[Depends(no_store)],
)
async def create_webhook(
    body: EndpointCreate, hooks: Webhooks, session: SessionDep, admin: TenantAdmin
) -> EndpointCreated:
    return await hooks.create_endpoint(session, admin, body)


@router.delete(
    "/{endpoint_id}",
    summary="Remove a webhook endpoint and its deliveries (owners and admins)",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problems(401, 403, 404, 422),
)
async def delete_webhook(
    endpoint_id: uuid.UUID, hooks: Webhooks, session: SessionDep, admin: TenantAdmin
) -> Response:
    await hooks.delete_endpoint(session, admin, endpoint_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/deliveries",
    summary="Deliveries, newest first, each with its attempts (owners and admins)",
    response_model=DeliveryPage,
    responses=problems(401, 403, 422),
)
async def list_webhook_deliveries(
    hooks: Webhooks,
    session: SessionDep,
    admin: TenantAdmin,
    page: PageNumber = 1,
    per_page: PerPage = 20,
    status_: Annotated[DeliveryStatus | None, Query(alias="status")] = None,
) -> DeliveryPage:
    return await hooks.deliveries(session, admin, status=status_, page=page, per_page=per_page)


@router.post(
    "/deliveries/{delivery_id}/retry",
    summary="Send a failed delivery again, with the same webhook-id (owners and admins)",
    response_model=DeliveryOut,
    status_code=status.HTTP_202_ACCEPTED,
    responses=problems(401, 403, 404, 409, 422),
)
async def retry_webhook_delivery(
    delivery_id: uuid.UUID, hooks: Webhooks, session: SessionDep, admin: TenantAdmin
) -> DeliveryOut:
    return await hooks.retry(session, admin, delivery_id)
