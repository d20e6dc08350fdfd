"""The sync domain's jobs (`kit.jobs`): a run, and the schedule that starts runs."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from procrastinate import JobContext

from tenantry.kit.jobs import TaskSet, platform_of
from tenantry.kit.repository import TenantScope
from tenantry.kit.retries import Backoff
from tenantry.sync.runner import SyncRunner
from tenantry.sync.service import SyncService

tasks = TaskSet()

# A run's tries: the source may be down for a while; each try resumes from the checkpoint.
RUN_ATTEMPTS = 5
RUN_RETRY = Backoff(RUN_ATTEMPTS, base_s=5, cap_s=300)


@tasks.task(name="run_sync", queue="sync", retry=RUN_RETRY)
async def run_sync(context: JobContext, tenant_id: str, run_id: str) -> None:
    last_try = context.job.attempts + 1 >= RUN_ATTEMPTS
    runner = SyncRunner(platform_of(context), TenantScope(uuid.UUID(tenant_id)), uuid.UUID(run_id))
    await runner.run(last_try=last_try)


@tasks.task(name="start_due_syncs", queue="sync", retry=Backoff(2), cron="* * * * *")
async def start_due_syncs(context: JobContext, timestamp: int) -> None:
    """Every minute: a run for each enabled source whose schedule falls in this minute."""
    platform = platform_of(context)
    await platform.service(SyncService).start_due(datetime.fromtimestamp(timestamp, UTC))
