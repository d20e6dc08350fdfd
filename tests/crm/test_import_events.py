"""What a sync imports tells the company's webhooks: `customer.created` and `lead.created` for
new records, `lead.status_changed` for a lead whose status moved, each event once to each
endpoint subscribed to its type, in statements that do not grow with the page."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from typing import Any

from sqlalchemy import text

from tenantry.crm.insights import InsightsService
from tenantry.kit.context import count_queries
from tenantry.kit.db import session_scope
from tenantry.kit.jobs import Jobs
from tenantry.kit.platform import Platform
from tenantry.kit.repository import TenantScope
from tenantry.sync.runner import SyncRunner
from tenantry.sync.service import SyncService
from tenantry.webhooks.models import WebhookDelivery
from tests.support.http_source import Source, customers, serving
from tests.support.sync import add_endpoint, deliveries_of, start_run
from tests.support.world import CommittedWorld

_JOBS = text("SELECT id, args->>'delivery_id' FROM procrastinate_jobs WHERE id = ANY(:ids)")
_JOBS = text("SELECT id, args->>'delivery_id' FROM procrastinate_jobs WHERE id = ANY(:ids)")
CRM_EVENTS = ["customer.created", "lead.created", "lead.status_changed"]


def _by_endpoint(deliveries: list[WebhookDelivery]) -> dict[uuid.UUID, Counter[str]]:
    found: dict[uuid.UUID, Counter[str]] = {}
    for d in deliveries:
        found.setdefault(d.endpoint_id, Counter())[d.event_type] += 1
    return found


async def _sync_again(
    committed: CommittedWorld, platform: Platform, scope: TenantScope, source_id: uuid.UUID
) -> str:
    async with session_scope(committed.db.sessionmaker) as session:
        run, created = await platform.service(SyncService).start_run(
            session, scope, source_id, trigger="manual", queue_job=False
        )
    assert created
    return await SyncRunner(platform, scope, run.id).run(last_try=True)


async def test_new_and_changed_records_are_told_once_to_each_subscriber(
    committed: CommittedWorld, worker: tuple[Platform, Jobs]
) -> None:
    platform, _ = worker
    source = Source(customers(30))
    async with serving(source):
        scope, source_id, run_id = await start_run(committed, platform, source, page_size=10)
        everything = await add_endpoint(committed, platform, scope, CRM_EVENTS)
        moves = await add_endpoint(committed, platform, scope, ["lead.status_changed"])
        runs = await add_endpoint(committed, platform, scope, ["sync.completed"])
        assert await SyncRunner(platform, scope, run_id).run(last_try=True) == "succeeded"
        first = await deliveries_of(committed, scope)
        assert _by_endpoint(first) == {
            everything: Counter({"customer.created": 30, "lead.created": 30}),
            runs: Counter({"sync.completed": 1}),
        }

        insights = platform.service(InsightsService)
        before = json.loads(
            (await insights.page(committed.db.reader, scope, cursor=None, limit=100)).body
        )
        assert len(before["items"]) == 30  # now cached until the next import writes

        # The same records again change nothing; one lead moves, one customer is new.
        source.records[4]["leads"][0]["status"] = "contacted"  # type: ignore[index]
        source.records.append(customers(31)[30])
        assert await _sync_again(committed, platform, scope, source_id) == "succeeded"
    after = json.loads(
        (await insights.page(committed.db.reader, scope, cursor=None, limit=100)).body
    )
    assert len(after["items"]) == 31
    assert "contacted" in {c["latest_lead"]["status"] for c in after["items"]}
    new = [d for d in await deliveries_of(committed, scope) if d.id not in {f.id for f in first}]
    assert _by_endpoint(new) == {
        everything: Counter({"customer.created": 1, "lead.created": 1, "lead.status_changed": 1}),
        moves: Counter({"lead.status_changed": 1}),
        runs: Counter({"sync.completed": 1}),
    }
    moved = next(d for d in new if d.event_type == "lead.status_changed")
    data: dict[str, Any] = moved.payload["data"]
    assert (data["external_id"], data["previous_status"], data["status"]) == (
        "c-4-lead-0",
        "new",
        "contacted",
    )
    assert data["value"] == "100.50" and moved.payload["type"] == "lead.status_changed"
    created = next(d for d in new if d.event_type == "customer.created")
    assert (created.payload["data"]["external_id"], created.payload["data"]["name"]) == (
        "c-30",
        "Customer 30",
    )

    # Each delivery has its own job, which names it.
    async with session_scope(committed.db.sessionmaker) as session:
        jobs = dict(
            (
                await session.execute(
                    _JOBS,
                    {"ids": [d.job_id for d in new]},
                )
            ).all()
        )
    assert {d.job_id: str(d.id) for d in new} == jobs


async def test_the_statements_of_a_page_do_not_grow_with_its_records(
    committed: CommittedWorld, worker: tuple[Platform, Jobs]
) -> None:
    platform, _ = worker
    counts = []
    for size in (5, 50):  # two pages either way
        source = Source(customers(2 * size, prefix=f"p{size}"))
        async with serving(source):
            scope, _, run_id = await start_run(committed, platform, source, page_size=size)
            await add_endpoint(committed, platform, scope, CRM_EVENTS)
            with count_queries() as counter:
                assert await SyncRunner(platform, scope, run_id).run(last_try=True) == "succeeded"
            counts.append(counter.count)
        assert len(await deliveries_of(committed, scope)) == 4 * size
    assert counts[0] == counts[1] > 0
