"""A company's customers and leads: lists scrolled virtually over cursor pages (the API's
filters and search), a lead's timeline, a customer's messages. Every read goes through the
CRM's services, as the API's do."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from tenantry.console.deps import SignedIn
from tenantry.console.web import page
from tenantry.crm.activity import ActivityService
from tenantry.crm.leads import LeadsService
from tenantry.crm.schemas import CustomerOut, LeadOut
from tenantry.crm.service import CrmService
from tenantry.kit.deps import ReaderDep, SessionDep
from tenantry.kit.text import text
from tenantry.tenants.service import TenantsService

router = APIRouter(prefix="/console", include_in_schema=False)
Leads = Annotated[LeadsService, Depends(LeadsService.dep)]
Crm = Annotated[CrmService, Depends(CrmService.dep)]
Activity = Annotated[ActivityService, Depends(ActivityService.dep)]
Tenants = Annotated[TenantsService, Depends(TenantsService.dep)]
# The API's filters, but a form sends its empty fields too: "" means "any" here.
Status = Annotated[str | None, text(max_length=32), Query(alias="status")]
Search = Annotated[str | None, text(max_length=100), Query()]
Cursor = Annotated[str | None, text(max_length=64), Query()]
PAGE = 50  # rows per fetch: a screenful or two at 44 px a row


def when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value is not None else ""


def money(value: Decimal | None) -> str:
    return "" if value is None else f"{value:,.2f}"


def lead_row(lead: LeadOut) -> dict[str, Any]:
    return {
        "href": f"/console/leads/{lead.id}",
        "cells": [lead.customer_name, lead.status, money(lead.value), when(lead.created_at)],
    }


def customer_row(customer: CustomerOut) -> dict[str, Any]:
    return {
        "href": f"/console/customers/{customer.id}",
        "cells": [
            customer.name,
            customer.email or "",
            customer.phone or "",
            when(customer.created_at),
        ],
    }


def rows_json(rows: list[dict[str, Any]], next_cursor: str | None) -> Response:
    body = orjson.dumps({"rows": rows, "next_cursor": next_cursor})
    return Response(body, media_type="application/json", headers={"cache-control": "no-store"})


def first_page(rows: list[dict[str, Any]], next_cursor: str | None) -> str:
    """The first page for the script, in the page itself (a JSON block, not a script: the
    CSP runs none inline). `<`, `>` and `&` are written as JSON escapes, so no text in it
    (`</script>`, `<!--`) can end the block or change how the parser reads it."""
    raw = orjson.dumps({"rows": rows, "next_cursor": next_cursor}).decode()
    return raw.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _more(path: str, next_cursor: str | None, **filters: str | None) -> str | None:
    """The next page's link, for a browser without script: the filters and the cursor."""
    return None if next_cursor is None else _source(path, **filters, cursor=next_cursor)


# --- leads ---------------------------------------------------------------------------------


async def _leads(
    leads: LeadsService,
    session: Any,
    scope: Any,
    status: str | None,
    q: str | None,
    cursor: str | None,
) -> Any:
    return await leads.leads(
        session,
        scope,
        status=status or None,
        team_id=None,
        assignee=None,
        q=q or None,
        cursor=cursor or None,
        limit=PAGE,
    )


@router.get("/leads")
async def leads_page(
    request: Request,
    user: SignedIn,
    leads: Leads,
    tenants: Tenants,
    session: SessionDep,
    status: Status = None,
    q: Search = None,
    cursor: Cursor = None,
) -> Response:
    scope = user.principal.scope
    found = await _leads(leads, session, scope, status, q, cursor)
    rows = [lead_row(lead) for lead in found.items]
    statuses = (await tenants.settings_view(scope)).lead_statuses
    return page(
        request,
        "leads.html",
        user=user,
        rows=rows,
        data=first_page(rows, found.next_cursor),
        more=_more("/console/leads", found.next_cursor, status=status, q=q),
        statuses=statuses,
        chosen=status,
        q=q or "",
        source=_source("/console/leads/rows", status=status, q=q),
    )


@router.get("/leads/rows")
async def lead_rows(
    user: SignedIn,
    leads: Leads,
    session: SessionDep,
    status: Status = None,
    q: Search = None,
    cursor: Cursor = None,
) -> Response:
    scope = user.principal.scope
    found = await _leads(leads, session, scope, status, q, cursor)
    return rows_json([lead_row(lead) for lead in found.items], found.next_cursor)


@router.get("/leads/{lead_id}")
async def lead_page(
    lead_id: uuid.UUID, request: Request, user: SignedIn, leads: Leads, session: SessionDep
) -> Response:
    scope = user.principal.scope
    lead = await leads.lead(session, scope, lead_id)  # another company's id: 404
    timeline = await leads.timeline(session, scope, lead_id)
    return page(request, "lead.html", user=user, lead=lead, timeline=timeline, money=money)


# --- customers -----------------------------------------------------------------------------


@router.get("/customers")
async def customers_page(
    request: Request,
    user: SignedIn,
    crm: Crm,
    session: SessionDep,
    q: Search = None,
    cursor: Cursor = None,
) -> Response:
    found = await crm.customers(
        session, user.principal.scope, q=q or None, cursor=cursor or None, limit=PAGE
    )
    rows = [customer_row(c) for c in found.items]
    return page(
        request,
        "customers.html",
        user=user,
        rows=rows,
        data=first_page(rows, found.next_cursor),
        more=_more("/console/customers", found.next_cursor, q=q),
        q=q or "",
        source=_source("/console/customers/rows", q=q),
    )


@router.get("/customers/rows")
async def customer_rows(
    user: SignedIn, crm: Crm, session: SessionDep, q: Search = None, cursor: Cursor = None
) -> Response:
    found = await crm.customers(
        session, user.principal.scope, q=q or None, cursor=cursor or None, limit=PAGE
    )
    return rows_json([customer_row(c) for c in found.items], found.next_cursor)


@router.get("/customers/{customer_id}")
async def customer_page(
    customer_id: uuid.UUID,
    request: Request,
    user: SignedIn,
    crm: Crm,
    activity: Activity,
    reader: ReaderDep,
    session: SessionDep,
    cursor: Cursor = None,
) -> Response:
    scope = user.principal.scope
    customer = await crm.customer_out(reader, scope, customer_id)  # another company's: 404
    messages = await activity.conversation(
        session, scope, customer_id, channel=None, cursor=cursor or None, limit=PAGE
    )
    return page(
        request,
        "customer.html",
        user=user,
        customer=customer,
        messages=messages.items,
        next_cursor=messages.next_cursor,
        when=when,
    )


async def _customers(
    crm: CrmService, session: Any, user: Any, q: str | None, cursor: str | None
) -> Any:
    return await crm.customers(
        session, user.principal.scope, q=q or None, cursor=cursor or None, limit=PAGE
    )


def _source(path: str, **params: str | None) -> str:
    from urllib.parse import urlencode

    given = {k: v for k, v in params.items() if v}
    return f"{path}?{urlencode(given)}" if given else path
