"""Every query of the sync domain."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import bindparam, func, select

from tenantry.kit.db import LeanQuery
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

    async def page(self, *, status: str | None, offset: int, limit: int) -> tuple[list[Any], int]:
        """Newest first, optionally of one status: the rows (lean, straight from the driver)
        and the total, in one statement (a window count)."""
        if status is None:
            return await self.page_of(_RUNS, _RUNS_COUNT, offset=offset, limit=limit)
        return await self.page_of(
            _RUNS_BY_STATUS, _RUNS_COUNT_BY_STATUS, offset=offset, limit=limit, status=status
        )


_RUN_COLUMNS = (
    SyncRun.id,
    SyncRun.source_id,
    SyncRun.status,
    SyncRun.trigger,
    SyncRun.pages_done,
    SyncRun.next_page,
    SyncRun.records_in,
    SyncRun.records_written,
    SyncRun.leads_written,
    SyncRun.records_failed,
    SyncRun.record_errors,
    SyncRun.error,
    SyncRun.created_at,
    SyncRun.started_at,
    SyncRun.finished_at,
)
_RUNS = LeanQuery.of(
    RunRepository.lean(*_RUN_COLUMNS, func.count().over().label("total"))
    .order_by(SyncRun.created_at.desc(), SyncRun.id.desc())
    .offset(bindparam("offset"))
    .limit(bindparam("limit"))
)
_RUNS_BY_STATUS = LeanQuery.of(
    RunRepository.lean(*_RUN_COLUMNS, func.count().over().label("total"))
    .where(SyncRun.status == bindparam("status"))
    .order_by(SyncRun.created_at.desc(), SyncRun.id.desc())
    .offset(bindparam("offset"))
    .limit(bindparam("limit"))
)
_RUNS_COUNT = LeanQuery.of(RunRepository.lean_count())
_RUNS_COUNT_BY_STATUS = LeanQuery.of(
    RunRepository.lean_count().where(SyncRun.status == bindparam("status"))
)


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
