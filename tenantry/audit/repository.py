"""Every query of the audit log."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from tenantry.audit.models import AuditEvent
from tenantry.kit.repository import PlatformRepository, TenantRepository


class AuditRepository(TenantRepository[AuditEvent]):
    model = AuditEvent

    async def newest(
        self, *, action: str | None, after: uuid.UUID | None, limit: int
    ) -> list[AuditEvent]:
        where = () if action is None else (AuditEvent.action == action,)
        return await self.newest_after(after, limit, *where)


class AuditLog(PlatformRepository[AuditEvent]):
    unscoped_because = (
        "platform administrators read every company's audit events in one list, newest first"
    )
    model = AuditEvent

    async def newest(
        self, *, action: str | None, after: uuid.UUID | None, limit: int
    ) -> list[AuditEvent]:
        stmt = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
        if action is not None:
            stmt = stmt.where(AuditEvent.action == action)
        if after is not None:
            stmt = stmt.where(AuditEvent.id < after)
        return list((await self.session.execute(stmt)).scalars())
