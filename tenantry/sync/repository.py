"""Every query of the sync domain."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select

from tenantry.kit.repository import PlatformRepository, TenantRepository
from tenantry.sync.models import SyncRun, SyncSource


class SourceRepository(TenantRepository[SyncSource]):
    model = SyncSource


class RunRepository(TenantRepository[SyncRun]):
    model = SyncRun

    async def active_for(self, source_id: uuid.UUID) -> SyncRun | None:
        stmt = self.select().where(
            SyncRun.source_id == source_id, SyncRun.status.in_(("pending", "running"))
        )
        run: SyncRun | None = (await self.session.execute(stmt)).scalar_one_or_none()
        return run

    async def page(
        self, *, status: str | None, offset: int, limit: int
    ) -> tuple[list[SyncRun], int]:
        """Newest first, optionally of one status, with the total in the same statement."""
        stmt = self.select(SyncRun, func.count().over().label("total"))
        count = self.select(func.count())
        if status is not None:
            stmt, count = (
                stmt.where(SyncRun.status == status),
                count.where(SyncRun.status == status),
            )
        stmt = (
            stmt.order_by(SyncRun.created_at.desc(), SyncRun.id.desc()).offset(offset).limit(limit)
        )
        rows = (await self.session.execute(stmt)).all()
        if rows:
            return [r[0] for r in rows], int(rows[0].total)
        return [], int((await self.session.execute(count)).scalar_one())


class SourceDirectory(PlatformRepository[SyncSource]):
    unscoped_because = (
        "the scheduler starts due syncs of every tenant's sources once a minute, and an"
        " operator's `tenantry sync SOURCE_ID` finds a source by its id alone: both before any"
        " tenant is in scope"
    )
    model = SyncSource

    async def enabled(self) -> list[tuple[uuid.UUID, uuid.UUID, str]]:
        """(tenant id, source id, cron schedule) of every enabled source."""
        stmt = select(SyncSource.tenant_id, SyncSource.id, SyncSource.schedule).where(
            SyncSource.enabled.is_(True)
        )
        return [(t, s, c) for t, s, c in (await self.session.execute(stmt)).all()]

    async def tenant_of(self, source_id: uuid.UUID) -> uuid.UUID | None:
        stmt = select(SyncSource.tenant_id).where(SyncSource.id == source_id)
        tenant_id: uuid.UUID | None = (await self.session.execute(stmt)).scalar_one_or_none()
        return tenant_id
