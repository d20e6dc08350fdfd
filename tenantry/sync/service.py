"""Sync sources: a tenant's outside systems, their URLs checked against where we will call
(`kit.http.check_url`) and their secrets sealed (`kit.secrets`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import orjson
from croniter import croniter
from pydantic import TypeAdapter
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.audit.service import AuditService
from tenantry.authz.principal import Principal
from tenantry.kit.cache import Rendered
from tenantry.kit.cache_lists import declare_list, invalidated_by
from tenantry.kit.db import Reader
from tenantry.kit.errors import Conflict, Invalid, NotFound
from tenantry.kit.http import OutboundRefused, check_url
from tenantry.kit.jobs import unit_of_work
from tenantry.kit.pagination import offset_of
from tenantry.kit.platform import Service
from tenantry.kit.repository import TenantScope
from tenantry.sync.models import SyncRun, SyncSource
from tenantry.sync.repository import RunRepository, SourceDirectory, SourceRepository
from tenantry.sync.schemas import (
    RunOut,
    RunPage,
    SourceCreate,
    SourceOut,
    SourcePage,
    SourcePatch,
)

# The job that runs a sync (`sync.tasks`), as registered by create_app.
RUN_SYNC = "sync:run_sync"


_RUN_ROWS = TypeAdapter(list[RunOut])

# The runs list as served, per tenant: every write of a run (a trigger, each page a sync
# checkpoints, its end) makes the tenant's pages stale on commit, on every instance.
RUNS_LIST = declare_list("sync_runs", ttl_s=300, max_pages=4_000, max_owners=1_000)
invalidated_by(SyncRun, RUNS_LIST, lambda run: str(run.tenant_id))


def _run_fields(fields: dict[str, Any]) -> dict[str, Any]:
    started, finished = fields["started_at"], fields["finished_at"]
    duration = None
    if started is not None and finished is not None:
        duration = round((finished - started).total_seconds(), 3)
    errors = fields["record_errors"]
    if isinstance(errors, str):  # jsonb straight from the driver is its text
        fields["record_errors"] = orjson.loads(errors)
    return {**fields, "duration_s": duration}


def run_out(run: SyncRun) -> RunOut:
    return RunOut.model_validate(_run_fields(dict(run.__dict__)))


class SyncService(Service):
    async def _checked_url(self, url: str) -> str:
        try:
            return await check_url(url, self.platform.settings.outbound_allowlist)
        except OutboundRefused as exc:
            raise Invalid(("body", "base_url"), str(exc), "url_refused") from None

    def _out(self, source: SyncSource) -> SourceOut:
        return SourceOut.model_validate(
            {**source.__dict__, "has_secret": source.secret_sealed is not None}
        )

    async def create_source(
        self, session: AsyncSession, admin: Principal, body: SourceCreate
    ) -> SourceOut:
        url = await self._checked_url(body.base_url)
        most = self.platform.settings.max_sync_sources_per_tenant
        if await SourceRepository(session, admin.scope).count_for_adding() >= most:
            raise Conflict(
                f"Your company has {most} sync sources, the most it may have; remove one"
                " first (MAX_SYNC_SOURCES_PER_TENANT)."
            )
        source = SyncSource(
            name=body.name,
            kind=body.kind,
            base_url=url,
            auth_header=body.auth_header,
            secret_sealed=self.platform.secrets.seal(body.secret) if body.secret else None,
            page_size=body.page_size,
            schedule=body.schedule,
            enabled=body.enabled,
        )
        SourceRepository(session, admin.scope).add(source)
        await session.flush()
        await session.refresh(source, ["created_at", "updated_at"])
        self.platform.service(AuditService).record(
            session,
            admin.scope,
            "sync_source.created",
            actor=admin,
            target=source.name,
            details={"source_id": str(source.id), "base_url": source.base_url},
        )
        return self._out(source)

    async def page(
        self, session: AsyncSession, admin: Principal, *, page: int, per_page: int
    ) -> SourcePage:
        sources, total = await SourceRepository(session, admin.scope).entity_page(
            offset=offset_of(page, per_page), limit=per_page
        )
        items = [self._out(s) for s in sources]
        return SourcePage.of(items, total=total, page=page, per_page=per_page)

    async def source(
        self, session: AsyncSession, admin: Principal, source_id: uuid.UUID
    ) -> SourceOut:
        return self._out(await self._find(session, admin, source_id))

    async def _find(
        self, session: AsyncSession, admin: Principal, source_id: uuid.UUID
    ) -> SyncSource:
        source = await SourceRepository(session, admin.scope).get(source_id)
        if source is None:
            raise NotFound("No such sync source in your company.")
        return source

    async def update_source(
        self, session: AsyncSession, admin: Principal, source_id: uuid.UUID, patch: SourcePatch
    ) -> SourceOut:
        source = await self._find(session, admin, source_id)
        sent = patch.model_fields_set
        if "base_url" in sent and patch.base_url is not None:
            source.base_url = await self._checked_url(patch.base_url)
        if "secret" in sent:
            secret = patch.secret
            source.secret_sealed = self.platform.secrets.seal(secret) if secret else None
        for field in ("name", "auth_header", "page_size", "schedule", "enabled"):
            value = getattr(patch, field)
            if field in sent and value is not None:
                setattr(source, field, value)
        self.platform.service(AuditService).record(
            session,
            admin.scope,
            "sync_source.changed",
            actor=admin,
            target=source.name,
            # which fields, never their values: the secret is among them
            details={"source_id": str(source.id), "fields": sorted(sent)},
        )
        await session.flush()
        await session.refresh(source, ["updated_at"])
        return self._out(source)

    # --- runs ---------------------------------------------------------------------------------

    async def trigger(
        self, session: AsyncSession, admin: Principal, source_id: uuid.UUID
    ) -> tuple[SyncRun, bool]:
        """Start a sync of the source, or find the one pending or running: (run, created)."""
        source = await self._find(session, admin, source_id)
        return await self.start_run(session, admin.scope, source.id, trigger="manual")

    async def start_run(
        self,
        session: AsyncSession,
        scope: TenantScope,
        source_id: uuid.UUID,
        *,
        trigger: str,
        queue_job: bool = True,
    ) -> tuple[SyncRun, bool]:
        """A new pending run with its job, both in the caller's transaction; or the source's
        active run (a partial unique index keeps it to one, even when two triggers race).
        `queue_job=False`: the caller runs it itself (`tenantry sync`)."""
        runs = RunRepository(session, scope)
        existing = await runs.active_for(source_id)
        if existing is not None:
            return existing, False
        run = SyncRun(
            source_id=source_id,
            status="pending",
            trigger=trigger,
            next_page=1,
            pages_done=0,
            records_in=0,
            records_written=0,
            leads_written=0,
            records_failed=0,
            record_errors=[],
        )
        try:
            async with session.begin_nested():
                runs.add(run)
                await session.flush()
        except IntegrityError:
            existing = await runs.active_for(source_id)
            if existing is None:
                raise
            return existing, False
        if not queue_job:
            return run, True
        jobs = self.platform.jobs
        run.job_id = await jobs.defer(
            session,
            jobs.task(RUN_SYNC),
            # one sync of a source at a time, whatever the number of workers
            options={"lock": f"sync-source:{source_id}"},
            tenant_id=str(scope.tenant_id),
            run_id=str(run.id),
        )
        await session.flush()
        return run, True

    async def runs(
        self,
        reader: Reader,
        scope: TenantScope,
        *,
        status: str | None,
        page: int,
        per_page: int,
    ) -> Rendered:
        """A page of runs as JSON, cached until a run of the tenant changes; on a miss read on
        the lean path and validated in one call."""

        async def render() -> bytes:
            rows, total = await RunRepository(reader, scope).page(
                status=status, offset=offset_of(page, per_page), limit=per_page
            )
            items = _RUN_ROWS.validate_python([_run_fields(dict(row)) for row in rows])
            runs = RunPage.of(items, total=total, page=page, per_page=per_page)
            return runs.__pydantic_serializer__.to_json(runs)

        lists = RUNS_LIST.on(self.platform.caches)
        return await lists.page(str(scope.tenant_id), f"{status}:{page}:{per_page}", render)

    async def run(self, session: AsyncSession, admin: Principal, run_id: uuid.UUID) -> RunOut:
        return run_out(await self.run_in(session, admin.scope, run_id))

    async def run_in(self, session: AsyncSession, scope: TenantScope, run_id: uuid.UUID) -> SyncRun:
        found = await RunRepository(session, scope).get(run_id)
        if found is None:
            raise NotFound("No such sync run in your company.")
        return found

    async def start_due(self, at: datetime) -> int:
        """A run for each enabled source whose schedule falls in the minute of `at`; how many
        were started (a source still syncing keeps its run)."""
        started = 0
        async with unit_of_work(self.platform) as session:
            for tenant_id, source_id, schedule in await SourceDirectory(session).enabled():
                if croniter.match(schedule, at):
                    _, created = await self.start_run(
                        session, TenantScope(tenant_id), source_id, trigger="schedule"
                    )
                    started += created
        return started

    async def tenant_of(self, session: AsyncSession, source_id: uuid.UUID) -> uuid.UUID | None:
        """The tenant of a source known only by its id (an operator's command)."""
        return await SourceDirectory(session).tenant_of(source_id)
