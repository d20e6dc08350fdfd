"""Sync runs against a real source with real commits: a worker's platform, a tenant with a
source and a pending run, and what the run wrote."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import func, select

from tenantry.app import JOB_TASKS
from tenantry.config import Settings
from tenantry.crm.models import Customer, Lead
from tenantry.kit.db import Database, session_scope
from tenantry.kit.http import Outbound
from tenantry.kit.jobs import Jobs
from tenantry.kit.platform import Platform
from tenantry.kit.repository import TenantScope
from tenantry.sync.models import SyncRun, SyncSource
from tenantry.sync.service import SyncService
from tenantry.webhooks.models import WebhookDelivery, WebhookEndpoint
from tenantry.webhooks.service import new_secret
from tests.support.http_source import Source
from tests.support.world import CommittedWorld


@asynccontextmanager
async def sync_worker(
    committed_db: Database, settings: Settings
) -> AsyncIterator[tuple[Platform, Jobs]]:
    """A worker's platform that may call 127.0.0.1, with the app's job tasks."""
    quick = settings.model_copy(
        update={
            "outbound_allowlist": ["127.0.0.1"],
            "outbound_retry_initial_s": 0.01,
            "outbound_retry_max_s": 0.05,
        }
    )
    platform = Platform.build(quick, committed_db)
    platform.outbound = Outbound(quick)
    platform.jobs = Jobs(settings.database_url or "", quick, JOB_TASKS)
    await platform.jobs.open()
    try:
        yield platform, platform.jobs
    finally:
        await platform.jobs.close()
        await platform.outbound.aclose()


async def start_run(
    committed: CommittedWorld, platform: Platform, source: Source, **fields: Any
) -> tuple[TenantScope, uuid.UUID, uuid.UUID]:
    """A committed tenant with a source on `source`, and a pending run of it."""
    tenant_id = await committed.tenant()
    scope = TenantScope(tenant_id)
    async with session_scope(committed.db.sessionmaker) as session:
        row = SyncSource(
            tenant_id=tenant_id,
            name="local",
            kind="http_json",
            base_url=source.url + "/customers",
            auth_header="Authorization",
            secret_sealed=platform.secrets.seal(source.secret) if source.secret else None,
            page_size=fields.get("page_size", 100),
            schedule=fields.get("schedule", "*/5 * * * *"),
            enabled=fields.get("enabled", True),
        )
        session.add(row)
        await session.flush()
        run, _ = await platform.service(SyncService).start_run(
            session, scope, row.id, trigger="manual"
        )
        return scope, row.id, run.id


async def run_of(committed: CommittedWorld, scope: TenantScope, run_id: uuid.UUID) -> SyncRun:
    async with session_scope(committed.db.sessionmaker) as session:
        found = await session.get(SyncRun, (scope.tenant_id, run_id))
        assert found is not None
        return found


async def counts_of(committed: CommittedWorld, scope: TenantScope) -> tuple[int, int]:
    async with session_scope(committed.db.sessionmaker) as session:
        n_customers = await session.scalar(
            select(func.count()).select_from(Customer).where(Customer.tenant_id == scope.tenant_id)
        )
        n_leads = await session.scalar(
            select(func.count()).select_from(Lead).where(Lead.tenant_id == scope.tenant_id)
        )
    return int(n_customers or 0), int(n_leads or 0)


async def add_endpoint(
    committed: CommittedWorld, platform: Platform, scope: TenantScope, events: list[str]
) -> uuid.UUID:
    """An enabled endpoint of the tenant subscribed to `events` (nothing listens at its URL:
    the deliveries are only queued)."""
    async with session_scope(committed.db.sessionmaker) as session:
        endpoint = WebhookEndpoint(
            tenant_id=scope.tenant_id,
            url="https://hooks.example.com/in",
            secret_sealed=platform.secrets.seal(new_secret()),
            events=events,
            enabled=True,
        )
        session.add(endpoint)
        await session.flush()
        return endpoint.id


async def deliveries_of(committed: CommittedWorld, scope: TenantScope) -> list[WebhookDelivery]:
    async with session_scope(committed.db.sessionmaker) as session:
        stmt = select(WebhookDelivery).where(WebhookDelivery.tenant_id == scope.tenant_id)
        return list((await session.execute(stmt)).scalars())
