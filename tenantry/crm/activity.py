"""What happens with customers: calls logged and messages sent or received (the
customer-intelligence view that sums them up is `crm/insights.py`)."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.crm.models import Call, Message
from tenantry.crm.repository import (
    CallRepository,
    CustomerRepository,
    LeadRepository,
    MessageRepository,
)
from tenantry.crm.schemas import (
    CallCreate,
    CallList,
    CallOut,
    MessageCreate,
    MessageList,
    MessageOut,
)
from tenantry.kit import cursor as cursor_kit
from tenantry.kit.errors import Invalid, NotFound
from tenantry.kit.platform import Service
from tenantry.kit.repository import TenantScope


class ActivityService(Service):
    async def _customer_phone(
        self, session: AsyncSession, scope: TenantScope, customer_id: uuid.UUID
    ) -> str | None:
        customer = await CustomerRepository(session, scope).get(customer_id)
        if customer is None:
            raise NotFound("No such customer in your company.")
        return customer.phone

    async def log_call(
        self, session: AsyncSession, scope: TenantScope, body: CallCreate
    ) -> CallOut:
        await self._customer_phone(session, scope, body.customer_id)
        if body.lead_id is not None:
            lead = await LeadRepository(session, scope).get(body.lead_id)
            if lead is None or lead.customer_id != body.customer_id:
                why = "no such lead of this customer in your company"
                raise Invalid(("body", "lead_id"), why, "unknown_lead")
        call = Call(**body.model_dump())
        CallRepository(session, scope).add(call)
        await session.flush()
        await session.refresh(call, ["created_at"])
        return CallOut.model_validate(call)

    async def calls(
        self,
        session: AsyncSession,
        scope: TenantScope,
        *,
        status: str | None,
        cursor: str | None,
        limit: int,
    ) -> CallList:
        rows = await CallRepository(session, scope).newest(
            status=status, after=cursor_kit.decode(cursor), limit=limit + 1
        )
        return CallList.of(rows, [CallOut.model_validate(r) for r in rows], limit=limit)

    async def send_message(
        self, session: AsyncSession, scope: TenantScope, body: MessageCreate
    ) -> MessageOut:
        """Records the message (delivery by a channel provider is not part of this API)."""
        phone = await self._customer_phone(session, scope, body.customer_id)
        message = Message(**body.model_dump())
        message.to_number = body.to_number or phone
        MessageRepository(session, scope).add(message)
        await session.flush()
        await session.refresh(message, ["created_at"])
        return MessageOut.model_validate(message)

    async def conversation(
        self,
        session: AsyncSession,
        scope: TenantScope,
        customer_id: uuid.UUID,
        *,
        channel: str | None,
        cursor: str | None,
        limit: int,
    ) -> MessageList:
        """A customer's messages, newest first: two queries (the customer, the page)."""
        await self._customer_phone(session, scope, customer_id)
        rows = await MessageRepository(session, scope).conversation(
            customer_id, channel=channel, after=cursor_kit.decode(cursor), limit=limit + 1
        )
        return MessageList.of(rows, [MessageOut.model_validate(r) for r in rows], limit=limit)
