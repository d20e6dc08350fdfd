"""Leads: made by hand (or by a sync, `CrmService.import_batch`), moved through the company's
statuses, each move written to the lead's history in the same transaction and told to the
company's webhooks (`lead.status_changed`)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.authz.principal import Principal
from tenantry.crm.models import Customer, Lead
from tenantry.crm.repository import CustomerRepository, HistoryRepository, LeadRepository
from tenantry.crm.schemas import LeadCreate, LeadList, LeadOut, LeadPatch, StatusChange, Timeline
from tenantry.kit import cursor as cursor_kit
from tenantry.kit.errors import Invalid, NotFound
from tenantry.kit.platform import Service
from tenantry.kit.repository import TenantScope
from tenantry.tenants.service import TenantsService
from tenantry.territories.service import TerritoriesService
from tenantry.users.service import UsersService
from tenantry.webhooks.service import WebhooksService


def _closed(statuses: list[str]) -> list[str]:
    """The statuses that end a lead: `won` and `lost` when the company has them, else its last."""
    ends = [s for s in statuses if s in ("won", "lost")]
    return ends or statuses[-1:]


def _event(lead: LeadOut) -> dict[str, Any]:
    data = lead.model_dump(mode="json", include={"id", "customer_id", "status", "value"})
    return {"lead_id": data.pop("id"), **data}


class LeadsService(Service):
    async def leads(
        self,
        session: AsyncSession,
        scope: TenantScope,
        *,
        status: str | None,
        team_id: uuid.UUID | None,
        assignee: uuid.UUID | None,
        q: str | None,
        cursor: str | None,
        limit: int,
    ) -> LeadList:
        """A page of leads with their customers' names, newest first: one query."""
        rows = await LeadRepository(session, scope).newest(
            status=status,
            team_id=team_id,
            assignee=assignee,
            q=q,
            after=cursor_kit.decode(cursor),
            limit=limit + 1,
        )
        return LeadList.of(rows, [LeadOut.model_validate(r) for r in rows], limit=limit)

    async def lead(self, session: AsyncSession, scope: TenantScope, lead_id: uuid.UUID) -> LeadOut:
        found = await LeadRepository(session, scope).one(lead_id)
        if found is None:
            raise NotFound("No such lead in your company.")
        return LeadOut.model_validate(found)

    async def _status(self, scope: TenantScope, status: str | None) -> str:
        """`status` if it is one of the company's (its first when unset), else a 422."""
        allowed = (await self.platform.service(TenantsService).settings_view(scope)).lead_statuses
        if status is None:
            return allowed[0]
        if status not in allowed:
            why = f"not one of your company's lead statuses: {', '.join(allowed)}"
            raise Invalid(("body", "status"), why, "unknown_status")
        return status

    async def _assignee(
        self, session: AsyncSession, scope: TenantScope, user_id: uuid.UUID | None
    ) -> uuid.UUID | None:
        if user_id is None:
            return None
        users = self.platform.service(UsersService)
        if user_id not in await users.active_among(session, scope, [user_id]):
            why = "not an active user of your company"
            raise Invalid(("body", "assigned_user_id"), why, "unknown_user")
        return user_id

    async def _route(
        self,
        session: AsyncSession,
        scope: TenantScope,
        customer: Customer,
        assignee: uuid.UUID | None,
    ) -> tuple[uuid.UUID | None, uuid.UUID | None, dict[str, Any]]:
        """(team, assignee, the decision): the team owning the zone of the customer's postal
        code; unless one was given, that team's active member with the fewest open leads
        (the earlier slot on a tie). Inactive users never receive leads."""
        territories = self.platform.service(TerritoriesService)
        zone = await territories.resolve(scope, customer.postal_code or "")
        if zone is None or zone.team_id is None:
            why = (
                "no zone covers the customer's postal code" if zone is None else "zone has no team"
            )
            return None, assignee, {"rule": "unrouted", "reason": why}
        decision: dict[str, Any] = {
            "rule": "zone",
            "zone_id": str(zone.zone_id),
            "zone": zone.code,
            "matched_prefix": zone.matched_prefix,
            "team_id": str(zone.team_id),
        }
        if assignee is not None:
            return zone.team_id, assignee, {**decision, "assignee": "given"}
        members = await territories.members(session, scope, zone.team_id)
        active = await self.platform.service(UsersService).active_among(session, scope, members)
        candidates = [m for m in members if m in active]
        if not candidates:
            return zone.team_id, None, {**decision, "assignee": "none active in the team"}
        statuses = (await self.platform.service(TenantsService).settings_view(scope)).lead_statuses
        counts = await LeadRepository(session, scope).open_counts(candidates, _closed(statuses))
        chosen = min(candidates, key=lambda m: counts.get(m, 0))  # min keeps the first on ties
        return (
            zone.team_id,
            chosen,
            {
                **decision,
                "assignee": "fewest open leads",
                "open_leads": counts.get(chosen, 0),
            },
        )

    async def create(self, session: AsyncSession, actor: Principal, body: LeadCreate) -> LeadOut:
        scope = actor.scope
        customer = await CustomerRepository(session, scope).get(body.customer_id)
        if customer is None:
            # as POST /sync answers for an unknown source: the thing named is not found
            raise NotFound("No such customer in your company.")
        assignee = await self._assignee(session, scope, body.assigned_user_id)
        team_id, assignee, routing = await self._route(session, scope, customer, assignee)
        lead = Lead(
            customer_id=body.customer_id,
            status=await self._status(scope, body.status),
            source="api" if actor.via_api_key else "manual",
            value=body.value,
            team_id=team_id,
            assigned_user_id=assignee,
            routing=routing,
        )
        LeadRepository(session, scope).add(lead)
        await session.flush()
        HistoryRepository(session, scope).record(lead.id, None, lead.status, actor.id)
        out = await self.lead(session, scope, lead.id)
        await self.platform.service(WebhooksService).emit(
            session, scope, "lead.created", _event(out)
        )
        return out

    async def update(
        self, session: AsyncSession, actor: Principal, lead_id: uuid.UUID, patch: LeadPatch
    ) -> LeadOut:
        scope = actor.scope
        lead = await LeadRepository(session, scope).get(lead_id)
        if lead is None:
            raise NotFound("No such lead in your company.")
        changes = patch.model_dump(exclude_unset=True)
        if "status" in changes and changes["status"] is None:
            raise Invalid(("body", "status"), "a lead always has a status", "required")
        before = lead.status
        if "status" in changes:
            lead.status = await self._status(scope, changes["status"])
        if "value" in changes:
            lead.value = changes["value"]
        if "assigned_user_id" in changes:
            lead.assigned_user_id = await self._assignee(
                session, scope, changes["assigned_user_id"]
            )
        await session.flush()
        out = await self.lead(session, scope, lead_id)
        if lead.status != before:
            HistoryRepository(session, scope).record(lead_id, before, lead.status, actor.id)
            event = {**_event(out), "previous_status": before}
            await self.platform.service(WebhooksService).emit(
                session, scope, "lead.status_changed", event
            )
        return out

    async def timeline(
        self, session: AsyncSession, scope: TenantScope, lead_id: uuid.UUID
    ) -> Timeline:
        """The lead's statuses, newest first (calls and messages join it with their tables)."""
        if await LeadRepository(session, scope).get(lead_id) is None:
            raise NotFound("No such lead in your company.")
        history = await HistoryRepository(session, scope).of(lead_id)
        return Timeline(lead_id=lead_id, statuses=[StatusChange.model_validate(h) for h in history])
