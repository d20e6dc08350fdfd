"""The CRM's HTTP surface: customers, leads, calls, messages and customer intelligence."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status

from tenantry.authz.dependencies import CurrentPrincipal
from tenantry.crm.activity import ActivityService
from tenantry.crm.insights import InsightsService
from tenantry.crm.leads import LeadsService
from tenantry.crm.schemas import (
    CallCreate,
    CallList,
    CallOut,
    CallStatus,
    Channel,
    CustomerCreate,
    CustomerList,
    CustomerOut,
    CustomerPatch,
    InsightList,
    LeadCreate,
    LeadList,
    LeadOut,
    LeadPatch,
    MessageCreate,
    MessageList,
    MessageOut,
    Search,
    StatusFilter,
    Timeline,
)
from tenantry.crm.service import CrmService
from tenantry.kit.conditional import NOT_MODIFIED, cached_json, model_json
from tenantry.kit.cursor import Cursor, Limit
from tenantry.kit.deps import ReaderDep, SessionDep
from tenantry.kit.errors import problems
from tenantry.kit.lane import hot

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
    customer_id: uuid.UUID, crm: Crm, reader: ReaderDep, principal: CurrentPrincipal
) -> Response:
    """One statement on the lean path, no transaction."""
    return model_json(await crm.customer_out(reader, principal.scope, customer_id))


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


leads_router = APIRouter(prefix="/leads", tags=["crm"])
Leads = Annotated[LeadsService, Depends(LeadsService.dep)]


@leads_router.get(
    "",
    summary="Your company's leads, newest first, filtered, paged by cursor",
    response_model=LeadList,
    responses=problems(401, 422),
)
async def list_leads(
    leads: Leads,
    session: SessionDep,
    principal: CurrentPrincipal,
    status_: Annotated[StatusFilter, Query(alias="status")] = None,
    team: Annotated[uuid.UUID | None, Query(description="The owning team")] = None,
    assignee: Annotated[uuid.UUID | None, Query(description="The assigned user")] = None,
    q: Search = None,
    cursor: Cursor = None,
    limit: Limit = 20,
) -> LeadList:
    """`q` matches part of the customer's name, email or phone."""
    return await leads.leads(
        session,
        principal.scope,
        status=status_,
        team_id=team,
        assignee=assignee,
        q=q,
        cursor=cursor,
        limit=limit,
    )


@leads_router.post(
    "",
    summary="Add a lead for a customer (tells webhooks `lead.created`)",
    response_model=LeadOut,
    status_code=status.HTTP_201_CREATED,
    responses=problems(400, 401, 404, 413, 422),
)
async def create_lead(
    body: LeadCreate, leads: Leads, session: SessionDep, principal: CurrentPrincipal
) -> LeadOut:
    return await leads.create(session, principal, body)


@leads_router.get(
    "/{lead_id}", summary="One lead", response_model=LeadOut, responses=problems(401, 404, 422)
)
async def get_lead(
    lead_id: uuid.UUID, leads: Leads, session: SessionDep, principal: CurrentPrincipal
) -> LeadOut:
    return await leads.lead(session, principal.scope, lead_id)


@leads_router.patch(
    "/{lead_id}",
    summary="Change a lead; a new status is recorded and told (`lead.status_changed`)",
    response_model=LeadOut,
    responses=problems(400, 401, 404, 413, 422),
)
async def update_lead(
    lead_id: uuid.UUID,
    body: LeadPatch,
    leads: Leads,
    session: SessionDep,
    principal: CurrentPrincipal,
) -> LeadOut:
    return await leads.update(session, principal, lead_id, body)


@leads_router.get(
    "/{lead_id}/timeline",
    summary="What happened to a lead, newest first",
    response_model=Timeline,
    responses=problems(401, 404, 422),
)
async def get_lead_timeline(
    lead_id: uuid.UUID, leads: Leads, session: SessionDep, principal: CurrentPrincipal
) -> Timeline:
    return await leads.timeline(session, principal.scope, lead_id)


activity_router = APIRouter(tags=["crm"])
Activity = Annotated[ActivityService, Depends(ActivityService.dep)]


@activity_router.get(
    "/calls",
    summary="Your company's calls, newest first, paged by cursor",
    response_model=CallList,
    responses=problems(401, 422),
)
async def list_calls(
    activity: Activity,
    session: SessionDep,
    principal: CurrentPrincipal,
    status_: Annotated[CallStatus | None, Query(alias="status")] = None,
    cursor: Cursor = None,
    limit: Limit = 20,
) -> CallList:
    return await activity.calls(
        session, principal.scope, status=status_, cursor=cursor, limit=limit
    )


@activity_router.post(
    "/calls",
    summary="Log a call with a customer",
    response_model=CallOut,
    status_code=status.HTTP_201_CREATED,
    responses=problems(400, 401, 404, 413, 422),
)
async def log_call(
    body: CallCreate, activity: Activity, session: SessionDep, principal: CurrentPrincipal
) -> CallOut:
    return await activity.log_call(session, principal.scope, body)


@activity_router.post(
    "/messages",
    summary="Record a message to or from a customer",
    response_model=MessageOut,
    status_code=status.HTTP_201_CREATED,
    responses=problems(400, 401, 404, 413, 422),
)
async def send_message(
    body: MessageCreate, activity: Activity, session: SessionDep, principal: CurrentPrincipal
) -> MessageOut:
    return await activity.send_message(session, principal.scope, body)


@activity_router.get(
    "/customers/{customer_id}/messages",
    summary="A customer's conversation, newest first, paged by cursor",
    response_model=MessageList,
    responses=problems(401, 404, 422),
)
async def list_customer_messages(
    customer_id: uuid.UUID,
    activity: Activity,
    session: SessionDep,
    principal: CurrentPrincipal,
    channel: Annotated[Channel | None, Query()] = None,
    cursor: Cursor = None,
    limit: Limit = 20,
) -> MessageList:
    return await activity.conversation(
        session, principal.scope, customer_id, channel=channel, cursor=cursor, limit=limit
    )


insights_router = APIRouter(tags=["crm"])
Insights = Annotated[InsightsService, Depends(InsightsService.dep)]


@insights_router.get(
    "/intelligence/customers",
    summary="Customers with their lead and call numbers, newest lead and last call",
    response_model=InsightList,
    responses={**NOT_MODIFIED, **problems(401, 422)},
)
@hot
async def customer_intelligence(
    request: Request,
    insights: Insights,
    reader: ReaderDep,
    principal: CurrentPrincipal,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Response:
    """One query whatever the page's size, cached for the company until a customer, lead or
    call changes; answers 304 to a matching `If-None-Match`."""
    page = await insights.page(reader, principal.scope, cursor=cursor, limit=limit)
    return cached_json(request, page)
