"""The CRM's HTTP surface: customers (leads, calls and messages come next, #14)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from tenantry.authz.dependencies import CurrentPrincipal
from tenantry.crm.schemas import (
    CustomerCreate,
    CustomerList,
    CustomerOut,
    CustomerPatch,
    Search,
)
from tenantry.crm.service import CrmService
from tenantry.kit.cursor import Cursor, Limit
from tenantry.kit.deps import SessionDep
from tenantry.kit.errors import problems

router = APIRouter(prefix="/customers", tags=["crm"])

Crm = Annotated[CrmService, Depends(CrmService.dep)]


@router.get(
    "",
    summary="Your company's customers, newest first, paged by cursor",
    response_model=CustomerList,
    responses=problems(401, 422),
)
async def list_customers(
    crm: Crm,
    session: SessionDep,
    principal: CurrentPrincipal,
    q: Search = None,
    cursor: Cursor = None,
    limit: Limit = 20,
) -> CustomerList:
    return await crm.customers(session, principal.scope, q=q, cursor=cursor, limit=limit)


@router.post(
    "",
    summary="Add a customer (tells webhooks `customer.created`)",
    response_model=CustomerOut,
    status_code=status.HTTP_201_CREATED,
    responses=problems(400, 401, 413, 422),
)
async def create_customer(
    body: CustomerCreate, crm: Crm, session: SessionDep, principal: CurrentPrincipal
) -> CustomerOut:
    return await crm.create_customer(session, principal.scope, body)


@router.get(
    "/{customer_id}",
    summary="One customer",
    response_model=CustomerOut,
    responses=problems(401, 404, 422),
)
async def get_customer(
    customer_id: uuid.UUID, crm: Crm, session: SessionDep, principal: CurrentPrincipal
) -> CustomerOut:
    return CustomerOut.model_validate(await crm.customer(session, principal.scope, customer_id))


@router.patch(
    "/{customer_id}",
    summary="Change a customer; only the fields sent change",
    response_model=CustomerOut,
    responses=problems(400, 401, 404, 413, 422),
)
async def update_customer(
    customer_id: uuid.UUID,
    body: CustomerPatch,
    crm: Crm,
    session: SessionDep,
    principal: CurrentPrincipal,
) -> CustomerOut:
    return await crm.update_customer(session, principal.scope, customer_id, body)


@router.delete(
    "/{customer_id}",
    summary="Remove a customer, with its leads",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problems(401, 404, 422),
)
async def delete_customer(
    customer_id: uuid.UUID, crm: Crm, session: SessionDep, principal: CurrentPrincipal
) -> Response:
    await crm.delete_customer(session, principal.scope, customer_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
