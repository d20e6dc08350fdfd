"""The audit log: each security-relevant action is recorded in the transaction of the change
it records (a rolled-back change leaves no record); a failed login, which changes nothing
and is answered by an error that rolls its request back, in a transaction of its own.
Owners read their company's events; platform administrators read every company's."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.audit.models import AuditEvent
from tenantry.audit.repository import AuditLog, AuditRepository
from tenantry.audit.schemas import Action, AuditEventList, AuditEventOut
from tenantry.authz.principal import Principal
from tenantry.kit import cursor as cursor_kit
from tenantry.kit.context import request_state
from tenantry.kit.errors import Forbidden
from tenantry.kit.jobs import unit_of_work
from tenantry.kit.platform import Service
from tenantry.kit.repository import TenantScope


def _event(
    action: Action,
    actor: Principal | uuid.UUID | None,
    target: str | None,
    details: dict[str, Any] | None,
) -> AuditEvent:
    state = request_state()
    extra = dict(details or {})
    actor_id = actor.id if isinstance(actor, Principal) else actor
    if isinstance(actor, Principal) and actor.via_api_key:
        extra["api_key_id"] = str(actor.api_key_id)
    return AuditEvent(
        actor_id=actor_id,
        action=action,
        target=target[:320] if target else None,
        request_id=None if state is None else state.get("request_id"),
        details=extra,
    )


class AuditService(Service):
    def record(
        self,
        session: AsyncSession,
        scope: TenantScope,
        action: Action,
        *,
        actor: Principal | uuid.UUID | None,
        target: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Record `action` in the session's transaction: it commits with the change."""
        AuditRepository(session, scope).add(_event(action, actor, target, details))

    async def record_apart(
        self,
        scope: TenantScope,
        action: Action,
        *,
        actor: Principal | uuid.UUID | None,
        target: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        """Record `action` in a transaction of its own, committed now: for what the request's
        own answer rolls back (a refused login)."""
        async with unit_of_work(self.platform) as session:
            self.record(session, scope, action, actor=actor, target=target, details=details)

    async def page(
        self,
        session: AsyncSession,
        reader: Principal,
        *,
        action: str | None,
        everyone: bool,
        cursor: str | None,
        limit: int,
    ) -> AuditEventList:
        """A page of events, newest first: the reader's company's (its owners), or with
        `everyone` every company's (platform administrators)."""
        after = cursor_kit.decode(cursor)
        if everyone:
            if not (reader.is_platform_staff and reader.at_least("admin")):
                raise Forbidden("Only platform administrators read every company's events.")
            rows = await AuditLog(session).newest(action=action, after=after, limit=limit + 1)
        else:
            if not reader.at_least("owner") and not reader.is_platform_staff:
                raise Forbidden("Only the company's owners read its audit events.")
            rows = await AuditRepository(session, reader.scope).newest(
                action=action, after=after, limit=limit + 1
            )
        items = [AuditEventOut.model_validate(r) for r in rows]
        return AuditEventList.of(rows, items, limit=limit)
