"""Customers and leads: the customers' API, and what a sync writes (`import_batch`), with the
events each tells the company's webhooks."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.crm.insights import INSIGHTS_LIST
from tenantry.crm.models import Customer
from tenantry.crm.repository import CustomerRepository, LeadRepository
from tenantry.crm.schemas import (
    CustomerCreate,
    CustomerList,
    CustomerOut,
    CustomerPatch,
    ImportedCustomer,
)
from tenantry.kit import cursor as cursor_kit
from tenantry.kit.db import Reader
from tenantry.kit.errors import Invalid, NotFound
from tenantry.kit.platform import Service
from tenantry.kit.repository import TenantScope
from tenantry.webhooks.service import WebhooksService


@dataclass(frozen=True, slots=True)
class Imported:
    customers: int
    leads: int


class CrmService(Service):
    # --- customers ----------------------------------------------------------------------

    async def customers(
        self,
        session: AsyncSession,
        scope: TenantScope,
        *,
        q: str | None,
        cursor: str | None,
        limit: int,
    ) -> CustomerList:
        """A page of customers, newest first: one query (a row more than asked says whether
        there is a next page)."""
        rows = await CustomerRepository(session, scope).newest(
            q=q, after=cursor_kit.decode(cursor), limit=limit + 1
        )
        items = [CustomerOut.model_validate(row) for row in rows]
        return CustomerList.of(rows, items, limit=limit)

    async def customer_out(
        self, reader: Reader, scope: TenantScope, customer_id: uuid.UUID
    ) -> CustomerOut:
        """One customer, read on the lean path: one statement, no transaction."""
        row = await CustomerRepository(reader, scope).lean_by_id(customer_id)
        if row is None:
            raise NotFound("No such customer in your company.")
        return CustomerOut.model_validate(dict(row))

    async def customer(
        self, session: AsyncSession, scope: TenantScope, customer_id: uuid.UUID
    ) -> Customer:
        found = await CustomerRepository(session, scope).get(customer_id)
        if found is None:
            raise NotFound("No such customer in your company.")
        return found

    async def create_customer(
        self, session: AsyncSession, scope: TenantScope, body: CustomerCreate
    ) -> CustomerOut:
        customer = Customer(**body.model_dump())
        CustomerRepository(session, scope).add(customer)
        await session.flush()
        await session.refresh(customer, ["created_at", "updated_at"])
        out = CustomerOut.model_validate(customer)
        await self.platform.service(WebhooksService).emit(
            session, scope, "customer.created", out.model_dump(mode="json")
        )
        return out

    async def update_customer(
        self,
        session: AsyncSession,
        scope: TenantScope,
        customer_id: uuid.UUID,
        patch: CustomerPatch,
    ) -> CustomerOut:
        customer = await self.customer(session, scope, customer_id)
        changes = patch.model_dump(exclude_unset=True)
        if changes.get("name", "") is None:
            raise Invalid(("body", "name"), "a customer always has a name", "required")
        for field, value in changes.items():
            setattr(customer, field, value)
        await session.flush()
        await session.refresh(customer, ["updated_at"])
        return CustomerOut.model_validate(customer)

    async def delete_customer(
        self, session: AsyncSession, scope: TenantScope, customer_id: uuid.UUID
    ) -> None:
        """The customer and its leads (they go with it)."""
        if not await CustomerRepository(session, scope).remove(customer_id):
            raise NotFound("No such customer in your company.")
        INSIGHTS_LIST.invalidate(session, str(scope.tenant_id))  # a Core delete: no ORM event

    # --- imports ------------------------------------------------------------------------

    async def import_batch(
        self,
        session: AsyncSession,
        scope: TenantScope,
        source_id: uuid.UUID,
        customers: list[ImportedCustomer],
    ) -> Imported:
        """Upsert a page of a source's customers and their leads, and tell the company's
        webhooks what is new (`customer.created`, `lead.created`) and which leads moved
        (`lead.status_changed`): at most five statements whatever the page's size. A record
        seen twice in one page counts once (the last one wins)."""
        by_id = {c.external_id: c for c in customers}
        written = await CustomerRepository(session, scope).upsert_imported(
            source_id,
            [
                {
                    "external_id": c.external_id,
                    "name": c.name,
                    "email": c.email,
                    "phone": c.phone,
                    "postal_code": c.postal_code,
                }
                for c in by_id.values()
            ],
        )
        ids = {row.external_id: row.id for row in written}
        leads = {
            lead.external_id: {
                "external_id": lead.external_id,
                "customer_id": ids[c.external_id],
                "status": lead.status,
                "value": lead.value,
            }
            for c in by_id.values()
            for lead in c.leads
        }
        upserted = await LeadRepository(session, scope).upsert_imported(
            source_id, list(leads.values())
        )
        events = [
            ("customer.created", _customer_event(source_id, row)) for row in written if row.inserted
        ]
        for row in upserted:
            if row.inserted:
                events.append(("lead.created", _lead_event(source_id, row)))
            elif row.previous_status != row.status:
                changed = {**_lead_event(source_id, row), "previous_status": row.previous_status}
                events.append(("lead.status_changed", changed))
        await self.platform.service(WebhooksService).emit_many(session, scope, events)
        if written or upserted:  # Core upserts: no ORM event marks the insights stale
            INSIGHTS_LIST.invalidate(session, str(scope.tenant_id))
        return Imported(customers=len(written), leads=len(upserted))


def _customer_event(source_id: uuid.UUID, row: Any) -> dict[str, Any]:
    return {
        "customer_id": str(row.id),
        "source_id": str(source_id),
        "external_id": row.external_id,
        "name": row.name,
        "email": row.email,
        "phone": row.phone,
        "postal_code": row.postal_code,
    }


def _lead_event(source_id: uuid.UUID, row: Any) -> dict[str, Any]:
    return {
        "lead_id": str(row.id),
        "customer_id": str(row.customer_id),
        "source_id": str(source_id),
        "external_id": row.external_id,
        "status": row.status,
        # a decimal string, as the source sent it: no float rounding on the way
        "value": None if row.value is None else str(row.value),
    }
