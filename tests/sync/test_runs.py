"""Sync runs: started through the API with their job in the same transaction, one at a time per
source, and the job itself against a real HTTP source on 127.0.0.1: pages imported exactly
once, faults retried, bad records kept with their errors, a cut-short run resumed from its
checkpoint."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.kit.db import session_scope
from tenantry.kit.http import UpstreamError
from tenantry.kit.jobs import Jobs
from tenantry.kit.platform import Platform
from tenantry.sync.models import SyncRun
from tenantry.sync.runner import SyncRunner
from tenantry.sync.service import SyncService
from tenantry.webhooks.models import WebhookDelivery, WebhookEndpoint
from tenantry.webhooks.service import new_secret
from tests.support.asserts import assert_problem, queries
from tests.support.http_source import Source, customers, serving
from tests.support.sync import add_endpoint, counts_of, deliveries_of, run_of, start_run
from tests.support.world import CommittedWorld, World

SYNC = "/api/v1/sync"
RUNS = "/api/v1/syncs"
PUBLIC = "https://93.184.215.14/export"


# --- through the API (the test's own transaction) -------------------------------------------


async def _source(world: World, headers: dict[str, str], **body: Any) -> str:
    r = await world.client.post(
        "/api/v1/sync-sources", json={"name": "src", "base_url": PUBLIC, **body}, headers=headers
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def _jobs_for(session: AsyncSession, run_id: str) -> int:
    found = await session.execute(
        text("SELECT count(*) FROM procrastinate_jobs WHERE args->>'run_id' = :r"), {"r": run_id}
    )
    return int(found.scalar_one())


async def test_a_sync_is_accepted_with_its_job_and_a_second_finds_the_first(
    world: World, session: AsyncSession
) -> None:
    owner = await world.user(await world.tenant(), "owner")
    source_id = await _source(world, owner.headers)
    r = await world.client.post(SYNC, json={"source_id": source_id}, headers=owner.headers)
    assert r.status_code == 202, r.text
    accepted = r.json()
    assert (accepted["status"], accepted["created"]) == ("pending", True)
    assert accepted["status_url"] == f"{RUNS}/{accepted['task_id']}"
    assert r.headers["location"] == accepted["status_url"]
    assert await _jobs_for(session, accepted["task_id"]) == 1  # queued with the run

    again = await world.client.post(SYNC, json={"source_id": source_id}, headers=owner.headers)
    assert again.status_code == 202
    assert (again.json()["task_id"], again.json()["created"]) == (accepted["task_id"], False)
    assert await _jobs_for(session, accepted["task_id"]) == 1  # no pile-up

    run = (await world.client.get(accepted["status_url"], headers=owner.headers)).json()
    assert (run["status"], run["trigger"], run["next_page"], run["pages_done"]) == (
        "pending",
        "manual",
        1,
        0,
    )


@pytest.mark.usefixtures("both_lanes")  # a hot route (`kit.lane`): both ways alike
async def test_runs_are_listed_newest_first_by_status_in_one_query(world: World) -> None:
    owner = await world.user(await world.tenant(), "owner")
    first = await _source(world, owner.headers, name="a")
    second = await _source(world, owner.headers, name="b")
    for source_id in (first, second):
        await world.client.post(SYNC, json={"source_id": source_id}, headers=owner.headers)
    r = await world.client.get(f"{RUNS}?per_page=1", headers=owner.headers)
    body = r.json()
    assert (body["total"], body["pages"], body["items"][0]["source_id"]) == (2, 2, second)
    assert queries(r) == 1
    r = await world.client.get(f"{RUNS}?status=succeeded", headers=owner.headers)
    assert r.json()["total"] == 0


@pytest.mark.usefixtures("both_lanes")
async def test_the_runs_list_is_served_from_cache_until_a_run_of_the_tenant_changes(
    world: World,
) -> None:
    owner = await world.user(await world.tenant(), "owner")
    other = await world.user(await world.tenant(), "owner")
    first = await _source(world, owner.headers, name="a")
    await world.client.post(SYNC, json={"source_id": first}, headers=owner.headers)
    r = await world.client.get(RUNS, headers=owner.headers)
    assert (r.json()["total"], queries(r)) == (1, 1)
    again = await world.client.get(RUNS, headers=owner.headers)
    assert (again.content, queries(again)) == (r.content, 0)  # cached
    etag = r.headers["etag"]
    unchanged = await world.client.get(RUNS, headers={**owner.headers, "If-None-Match": etag})
    assert (unchanged.status_code, unchanged.content) == (304, b"")
    assert (await world.client.get(RUNS, headers=other.headers)).json()["total"] == 0

    # Another tenant's run leaves this list's cache alone; one of this tenant's drops it.
    await world.client.post(
        SYNC, json={"source_id": await _source(world, other.headers)}, headers=other.headers
    )
    assert queries(await world.client.get(RUNS, headers=owner.headers)) == 0
    second = await _source(world, owner.headers, name="b")
    await world.client.post(SYNC, json={"source_id": second}, headers=owner.headers)
    r = await world.client.get(RUNS, headers=owner.headers)
    assert (r.json()["total"], r.json()["items"][0]["source_id"], queries(r)) == (2, second, 1)
    assert r.headers["etag"] != etag
    # A status filter and a page size are pages of their own.
    assert (await world.client.get(f"{RUNS}?status=running", headers=owner.headers)).json()[
        "total"
    ] == 0


@pytest.mark.parametrize(
    "query", ["per_page=0", "per_page=101", "page=-1", "page=0", "status=done"]
)
@pytest.mark.usefixtures("both_lanes")
async def test_bad_list_parameters_are_named(world: World, query: str) -> None:
    owner = await world.user(await world.tenant(), "owner")
    r = await world.client.get(f"{RUNS}?{query}", headers=owner.headers)
    problem = assert_problem(r, 422, "validation-error")
    assert problem["errors"][0]["loc"][0] == "query"


async def test_an_unknown_or_foreign_source_or_run_is_not_found(world: World) -> None:
    owner = await world.user(await world.tenant(), "owner")
    stranger = await world.user(await world.tenant(), "owner")
    theirs = await _source(world, stranger.headers)
    for source_id in (str(uuid.uuid4()), theirs):
        r = await world.client.post(SYNC, json={"source_id": source_id}, headers=owner.headers)
        assert_problem(r, 404)
    assert_problem(await world.client.get(f"{RUNS}/{uuid.uuid4()}", headers=owner.headers), 404)
    r = await world.client.post(SYNC, json={"source_id": "nope"}, headers=owner.headers)
    assert_problem(r, 422)


# --- the job, against a real source, with real commits ------------------------------------


async def test_a_thousand_records_land_exactly_once_even_when_synced_twice(
    committed: CommittedWorld, worker: tuple[Platform, Jobs]
) -> None:
    platform, jobs = worker
    source = Source(customers(1000), secret="Bearer s3cret")
    async with serving(source):
        scope, source_id, run_id = await start_run(committed, platform, source)
        await jobs.work(platform, queues=["sync"], wait=False)  # the queued job, by a worker
        run = await run_of(committed, scope, run_id)
        assert (run.status, run.pages_done, run.records_in, run.records_written) == (
            "succeeded",
            10,
            1000,
            1000,
        )
        assert (run.leads_written, run.records_failed, run.next_page) == (1000, 0, None)
        assert run.finished_at is not None and run.error is None
        assert await counts_of(committed, scope) == (1000, 1000)

        async with session_scope(committed.db.sessionmaker) as session:
            again, created = await platform.service(SyncService).start_run(
                session, scope, source_id, trigger="manual"
            )
        assert created
        await jobs.work(platform, queues=["sync"], wait=False)
        assert (await run_of(committed, scope, again.id)).status == "succeeded"
        assert await counts_of(committed, scope) == (1000, 1000)  # updated, not duplicated


async def test_one_percent_of_failing_source_calls_do_not_fail_the_sync(
    committed: CommittedWorld, worker: tuple[Platform, Jobs]
) -> None:
    platform, _ = worker
    source = Source(customers(1000, leads_each=0))
    source.switches.fail_rate = 0.01
    async with serving(source):
        scope, _, run_id = await start_run(committed, platform, source, page_size=20)
        assert await SyncRunner(platform, scope, run_id).run(last_try=True) == "succeeded"
    run = await run_of(committed, scope, run_id)
    assert (run.status, run.records_written, run.pages_done) == ("succeeded", 1000, 50)
    assert len(source.switches.pages) > 50  # some pages were asked for again


async def test_bad_records_are_kept_with_their_errors_and_the_rest_is_written(
    committed: CommittedWorld, worker: tuple[Platform, Jobs]
) -> None:
    platform, _ = worker
    records = customers(10)
    records[2] = {"external_id": "c-2", "email": "no-name@example.com"}  # no name
    records[5]["name"] = ["not", "a", "string"]
    records[7]["leads"] = [{"external_id": "x", "status": "bogus", "value": "1"}]
    source = Source(records)
    async with serving(source):
        scope, _, run_id = await start_run(committed, platform, source, page_size=4)
        async with session_scope(committed.db.sessionmaker) as session:
            session.add(
                WebhookEndpoint(
                    tenant_id=scope.tenant_id,
                    url=source.url + "/hook",
                    secret_sealed=platform.secrets.seal(new_secret()),
                    events=["sync.completed"],
                    enabled=True,
                )
            )
        assert await SyncRunner(platform, scope, run_id).run(last_try=True) == "succeeded"
    run = await run_of(committed, scope, run_id)
    assert (run.records_in, run.records_written, run.records_failed) == (10, 7, 3)
    async with session_scope(committed.db.sessionmaker) as session:
        [event] = (
            await session.execute(
                select(WebhookDelivery).where(WebhookDelivery.tenant_id == scope.tenant_id)
            )
        ).scalars()
    assert event.event_type == "sync.completed"  # told in the run's last transaction
    assert event.payload["data"]["records_written"] == 7
    errors = {e["external_id"]: e for e in run.record_errors}
    assert set(errors) == {"c-2", "c-5", "c-7"}
    assert errors["c-2"]["error"].startswith("name:") and errors["c-2"]["page"] == 1
    assert "not one of the company's statuses" in errors["c-7"]["error"]


async def test_a_run_cut_short_resumes_from_its_checkpoint_and_fails_on_its_last_try(
    committed: CommittedWorld, worker: tuple[Platform, Jobs]
) -> None:
    platform, _ = worker
    source = Source(customers(100, leads_each=0))
    source.switches.fail_from_page = 4  # pages 1-3 go through, then the source is down
    async with serving(source):
        scope, _, run_id = await start_run(committed, platform, source, page_size=10)
        runner = SyncRunner(platform, scope, run_id)
        with pytest.raises(UpstreamError, match="503"):
            await runner.run(last_try=False)  # the job's try fails; the job is retried
        run = await run_of(committed, scope, run_id)
        assert (run.status, run.next_page, run.pages_done) == ("running", 4, 3)
        assert run.error and "503" in run.error and run.finished_at is None
        assert await counts_of(committed, scope) == (30, 0)

        source.switches.fail_from_page = None  # back up: the retry goes on from page 4
        source.switches.pages.clear()
        assert await runner.run(last_try=False) == "succeeded"
        assert source.switches.pages == list(range(4, 11))
        run = await run_of(committed, scope, run_id)
        assert (run.status, run.records_written, run.error) == ("succeeded", 100, None)

        source.switches.fail_from_page = 1
        scope2, _, run2 = await start_run(committed, platform, source, page_size=10)
        await add_endpoint(committed, platform, scope2, ["sync.completed"])
        with pytest.raises(UpstreamError):
            await SyncRunner(platform, scope2, run2).run(last_try=True)
    failed = await run_of(committed, scope2, run2)
    assert failed.status == "failed" and failed.error and failed.finished_at is not None
    [told] = await deliveries_of(committed, scope2)  # a failed run is completed too
    assert (told.payload["data"]["status"], told.payload["data"]["error"]) == (
        "failed",
        failed.error,
    )


async def test_due_sources_get_a_run_and_disabled_ones_do_not(
    committed: CommittedWorld, worker: tuple[Platform, Jobs]
) -> None:
    platform, _ = worker
    source = Source()
    every_minute, _, first_run = await start_run(committed, platform, source, schedule="* * * * *")
    async with session_scope(committed.db.sessionmaker) as session:
        run = await session.get(SyncRun, (every_minute.tenant_id, first_run))
        assert run is not None
        run.status = "succeeded"  # the first is done: the next minute starts another
    disabled, _, _ = await start_run(
        committed, platform, source, schedule="* * * * *", enabled=False
    )
    started = await platform.service(SyncService).start_due(datetime.now(UTC))
    assert started >= 1
    async with session_scope(committed.db.sessionmaker) as session:
        runs = (
            await session.execute(
                select(SyncRun.tenant_id, SyncRun.trigger).where(
                    SyncRun.tenant_id.in_([every_minute.tenant_id, disabled.tenant_id])
                )
            )
        ).all()
    scheduled = [t for t, trigger in runs if trigger == "schedule"]
    assert scheduled == [every_minute.tenant_id]
