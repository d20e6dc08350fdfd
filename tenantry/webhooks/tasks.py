"""The webhooks domain's jobs (`kit.jobs`): one try of a delivery."""

from __future__ import annotations

import uuid

from procrastinate import JobContext

from tenantry.kit.jobs import TaskSet, platform_of
from tenantry.kit.repository import TenantScope
from tenantry.kit.retries import Backoff, Planned
from tenantry.webhooks.delivery import Deliverer

tasks = TaskSet()


# Tries follow the delivery's own plan (`RetryIn`: Svix's schedule, a 429's Retry-After);
# an unexpected error (the database away) is retried a few times by itself.
@tasks.task(name="deliver", queue="webhooks", retry=Planned(fallback=Backoff(5, base_s=5)))
async def deliver(context: JobContext, tenant_id: str, delivery_id: str, manual: bool) -> None:
    deliverer = Deliverer(
        platform_of(context), TenantScope(uuid.UUID(tenant_id)), uuid.UUID(delivery_id)
    )
    await deliverer.run(manual=manual)
