"""The integration pages: sync sources and runs (a run's progress polled live until it is done,
a failed run's record errors), webhook endpoints and deliveries with their attempts and a
retry that needs the form's token; owners and admins only, another company's ids 404 pages,
list pages in a constant number of queries."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text

from tenantry.config import Settings
from tenantry.kit.db import Database
from tenantry.kit.http import Outbound, UpstreamError
from tenantry.kit.platform import Platform
from tenantry.kit.repository import TenantScope
from tenantry.sync.models import SyncRun, SyncSource
from tenantry.sync.runner import SyncRunner
from tenantry.webhooks.models import WebhookAttempt, WebhookDelivery
from tests.console.test_sign_in import _INLINE_SCRIPT
from tests.support.asserts import queries
from tests.support.console import csrf_of, sign_in
from tests.support.http_source import Source, customers, serving
from tests.support.world import Account, World

PUBLIC = "https://93.184.215.14/export"
HOOK = "https://93.184.215.14/hooks"
_POLL = re.compile(r'data-poll="([^"]+)" data-every="1000"')


def browser_for(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


@pytest.fixture
async def runner_platform(world: World, database: Database, settings: Settings) -> Any:
    """A worker's platform in the test's own transaction (the app's pages see what its runs
    write), that may call the test's HTTP source on 127.0.0.1."""
    quick = settings.model_copy(
        update={
            "outbound_allowlist": ["127.0.0.1"],
            "outbound_retry_initial_s": 0.01,
            "outbound_retry_max_s": 0.05,
        }
    )
    platform = Platform.build(quick, database)
    platform.outbound = Outbound(quick)
    try:
        yield platform
    finally:
        await platform.outbound.aclose()


async def _source(world: World, owner: Account, name: str = "Legacy CRM") -> str:
    r = await world.client.post(
        "/api/v1/sync-sources", json={"name": name, "base_url": PUBLIC}, headers=owner.headers
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def _finished_runs(world: World, tenant_id: uuid.UUID, source_id: str, n: int) -> None:
    now = datetime.now(UTC)
    for i in range(n):
        world.session.add(
            SyncRun(
                tenant_id=tenant_id,
                source_id=uuid.UUID(source_id),
                status="succeeded",
                trigger="schedule",
                next_page=None,
                pages_done=2,
                records_in=10 + i,
                records_written=10 + i,
                leads_written=0,
                records_failed=0,
                record_errors=[],
                started_at=now,
                finished_at=now,
            )
        )
    await world.session.flush()


async def _local_source(world: World, tenant_id: uuid.UUID, source: Source) -> uuid.UUID:
    """A source on the test's HTTP server (the API would refuse 127.0.0.1)."""
    row = SyncSource(
        tenant_id=tenant_id,
        name="Local export",
        kind="http_json",
        base_url=source.url + "/customers",
        auth_header="Authorization",
        secret_sealed=None,
        page_size=4,
        schedule="*/5 * * * *",
        enabled=True,
    )
    world.session.add(row)
    await world.session.flush()
    return row.id


def _assert_locked_down(r: httpx.Response) -> None:
    assert r.headers["content-type"].startswith("text/html")
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert not _INLINE_SCRIPT.search(r.text)
    assert " style=" not in r.text


# --- syncs -----------------------------------------------------------------------------------


async def test_the_syncs_page_lists_sources_and_runs_in_constant_queries(
    app: Any, world: World
) -> None:
    counts = []
    for sources, runs in ((1, 1), (4, 30)):
        tenant = await world.tenant()
        owner = await world.user(tenant, "owner")
        made = [await _source(world, owner, f"Source {i}") for i in range(sources)]
        await _finished_runs(world, tenant, made[-1], runs)
        async with browser_for(app) as browser:
            await sign_in(browser, owner.email)
            r = await browser.get("/console/syncs")
            assert r.status_code == 200, r.text
            _assert_locked_down(r)
            counts.append(queries(r))
            assert 'aria-current="page">Syncs' in r.text
            assert (
                "Source 0" in r.text and f'action="/console/syncs/sources/{made[0]}/sync"' in r.text
            )
            shown = re.findall(r'href="/console/syncs/([0-9a-f-]{36})"', r.text)
            assert len(shown) == min(runs, 20)  # the API's page: 20 unless asked otherwise
            if runs > 20:
                assert 'href="/console/syncs?page=2"' in r.text
                second = await browser.get("/console/syncs?page=2")
                assert len(re.findall(r'href="/console/syncs/[0-9a-f-]{36}"', second.text)) == 10
            none = await browser.get("/console/syncs?status=failed")
            assert "No runs with this status yet." in none.text
    assert counts[0] == counts[1], counts  # 1 source and 1 run, or 4 and 30: the same


async def test_sync_now_needs_the_form_s_token_and_the_run_s_progress_is_polled_until_done(
    app: Any, world: World, runner_platform: Platform
) -> None:
    tenant = await world.tenant()
    owner = await world.user(tenant, "owner", login=False)
    source = Source(customers(10, leads_each=0))
    source.switches.fail_from_page = 2  # page 1 goes through, then the source is down
    async with serving(source), browser_for(app) as browser:
        source_id = await _local_source(world, tenant, source)
        await sign_in(browser, owner.email)
        listing = await browser.get("/console/syncs")
        action = f"/console/syncs/sources/{source_id}/sync"
        refused = await browser.post(action, data={})
        assert refused.status_code == 403 and "form has expired" in refused.text
        no_run = select(SyncRun.id).where(SyncRun.tenant_id == tenant)
        assert (await world.session.execute(no_run)).first() is None  # nothing started
        started = await browser.post(action, data={"csrf": csrf_of(listing.text)})
        assert started.status_code == 303, started.text
        run_path = started.headers["location"]
        run_id = uuid.UUID(run_path.rsplit("/", 1)[1])

        pending = await browser.get(run_path)
        assert pending.status_code == 200 and "Local export" in pending.text
        _assert_locked_down(pending)
        poll = _POLL.search(pending.text)
        assert poll is not None and poll.group(1) == f"{run_path}/progress"
        assert "data-done" not in pending.text

        runner = SyncRunner(runner_platform, TenantScope(tenant), run_id)
        with pytest.raises(UpstreamError):
            await runner.run(last_try=False)  # a try cut short after page 1
        fragment = await browser.get(poll.group(1))
        assert fragment.status_code == 200
        _assert_locked_down(fragment)
        assert "data-done" not in fragment.text and "<progress" in fragment.text
        assert re.search(r"Pages read</dt><dd>1</dd>", fragment.text)
        assert "Last try:" in fragment.text and "503" in fragment.text

        source.switches.fail_from_page = None
        assert await runner.run(last_try=False) == "succeeded"
        done = await browser.get(poll.group(1))
        assert "data-done" in done.text and "<progress" not in done.text
        assert re.search(r"Pages read</dt><dd>3</dd>", done.text)
        assert re.search(r"Customers written</dt><dd>10</dd>", done.text)
        finished = await browser.get(run_path)
        assert "data-poll" not in finished.text and "succeeded" in finished.text


async def test_a_failed_run_shows_its_record_errors(
    app: Any, world: World, runner_platform: Platform
) -> None:
    tenant = await world.tenant()
    owner = await world.user(tenant, "owner")
    records = customers(8, leads_each=0)
    records[2] = {"external_id": "c-2", "email": "no-name@example.com"}  # no name
    records[3]["name"] = "<b>bold</b>"
    records[3]["email"] = "not an email"
    source = Source(records)
    source.switches.fail_from_page = 2
    async with serving(source), browser_for(app) as browser:
        source_id = await _local_source(world, tenant, source)
        r = await world.client.post(
            "/api/v1/sync", json={"source_id": str(source_id)}, headers=owner.headers
        )
        run_id = uuid.UUID(r.json()["task_id"])
        with pytest.raises(UpstreamError):
            await SyncRunner(runner_platform, TenantScope(tenant), run_id).run(last_try=True)
        await sign_in(browser, owner.email)
        page = await browser.get(f"/console/syncs/{run_id}")
    assert page.status_code == 200
    assert "data-poll" not in page.text and 'badge failed">failed' in page.text
    assert "Failed: " in page.text and "503" in page.text
    assert "Records that failed" in page.text
    assert "<td>c-2</td><td>name:" in page.text
    assert "<td>c-3</td>" in page.text and "<b>bold" not in page.text


# --- webhooks --------------------------------------------------------------------------------


async def _deliveries(world: World, owner: Account, n: int) -> list[WebhookDelivery]:
    r = await world.client.post(
        "/api/v1/webhooks",
        json={"url": HOOK, "events": ["customer.created"]},
        headers=owner.headers,
    )
    assert r.status_code == 201, r.text
    for i in range(n):
        made = await world.client.post(
            "/api/v1/customers", json={"name": f"Customer {i}"}, headers=owner.headers
        )
        assert made.status_code == 201, made.text
    found = await world.session.execute(
        select(WebhookDelivery)
        .where(WebhookDelivery.tenant_id == owner.tenant_id)
        .execution_options(populate_existing=True)
    )
    rows = list(found.scalars())
    assert len(rows) == n
    return rows


async def _failed(world: World, delivery: WebhookDelivery, tries: int = 2) -> None:
    """The delivery's tries all failed, the last of them its last."""
    for number in range(1, tries + 1):
        world.session.add(
            WebhookAttempt(
                tenant_id=delivery.tenant_id,
                delivery_id=delivery.id,
                number=number,
                status_code=500,
                error="answered 500",
                duration_ms=12,
            )
        )
    delivery.status, delivery.attempts, delivery.next_attempt_at = "failed", tries, None
    delivery.last_status_code, delivery.last_error = 500, "answered 500"
    await world.session.flush()


async def _jobs_for(world: World, delivery_id: uuid.UUID) -> int:
    found = await world.session.execute(
        text("SELECT count(*) FROM procrastinate_jobs WHERE args->>'delivery_id' = :d"),
        {"d": str(delivery_id)},
    )
    return int(found.scalar_one())


async def _state(world: World, delivery_id: uuid.UUID) -> tuple[str, int | None]:
    found = await world.session.execute(
        select(WebhookDelivery.status, WebhookDelivery.job_id).where(
            WebhookDelivery.id == delivery_id
        )
    )
    status, job_id = found.one()
    return status, job_id


async def test_the_webhooks_page_lists_endpoints_and_deliveries_in_constant_queries(
    app: Any, world: World
) -> None:
    counts = []
    for n in (1, 12):
        owner = await world.user(await world.tenant(), "owner")
        made = await _deliveries(world, owner, n)
        for delivery in made:
            await _failed(world, delivery, tries=3)
        async with browser_for(app) as browser:
            await sign_in(browser, owner.email)
            r = await browser.get("/console/webhooks")
            assert r.status_code == 200, r.text
            _assert_locked_down(r)
            counts.append(queries(r))
            assert HOOK in r.text and "customer.created" in r.text
            assert r.text.count('id="delivery-') == n
            assert r.text.count("<summary>3 attempts</summary>") == n
            assert r.text.count(">Retry</button>") == n
            pending = await browser.get("/console/webhooks?status=pending")
            assert "No deliveries with this status yet." in pending.text
    assert counts[0] == counts[1], counts


async def test_retry_needs_the_form_s_token_and_queues_the_delivery_again(
    app: Any, world: World
) -> None:
    owner = await world.user(await world.tenant(), "owner")
    failed, waiting = await _deliveries(world, owner, 2)
    await _failed(world, failed)
    first_job = failed.job_id
    assert await _jobs_for(world, failed.id) == 1
    async with browser_for(app) as browser:
        await sign_in(browser, owner.email)
        listing = await browser.get("/console/webhooks")
        assert f'action="/console/webhooks/deliveries/{failed.id}/retry"' in listing.text
        assert f"/console/webhooks/deliveries/{waiting.id}/retry" not in listing.text  # pending
        retry = f"/console/webhooks/deliveries/{failed.id}/retry"

        for forged in ({}, {"csrf": "not the token"}):
            refused = await browser.post(retry, data=forged)
            assert refused.status_code == 403, refused.text
            assert refused.headers["content-type"].startswith("text/html")
        assert await _state(world, failed.id) == ("failed", first_job)  # nothing changed
        assert await _jobs_for(world, failed.id) == 1

        done = await browser.post(retry, data={"csrf": csrf_of(listing.text)})
        assert done.status_code == 303
        assert done.headers["location"] == f"/console/webhooks?retried={failed.id}"
        status, job_id = await _state(world, failed.id)
        assert status == "pending" and job_id not in (None, first_job)
        assert await _jobs_for(world, failed.id) == 2  # queued again, as a retry by hand
        job = await world.session.execute(
            text("SELECT status, args->>'manual' FROM procrastinate_jobs WHERE id = :j"),
            {"j": job_id},
        )
        assert tuple(job.one()) == ("todo", "true")
        shown = await browser.get(done.headers["location"])
        assert "is queued to be sent again" in shown.text

        again = await browser.post(retry, data={"csrf": csrf_of(listing.text)})
        assert again.status_code == 409 and "Only a failed delivery" in again.text
        assert await _jobs_for(world, failed.id) == 2


# --- who may see what ------------------------------------------------------------------------


async def test_another_company_s_runs_and_deliveries_are_404_pages_and_members_are_refused(
    app: Any, world: World
) -> None:
    theirs = await world.user(await world.tenant(), "owner")
    their_source = await _source(world, theirs, "Not Yours")
    r = await world.client.post(
        "/api/v1/sync", json={"source_id": their_source}, headers=theirs.headers
    )
    their_run = r.json()["task_id"]
    [their_delivery] = await _deliveries(world, theirs, 1)
    await _failed(world, their_delivery)

    tenant = await world.tenant()
    mine = await world.user(tenant, "owner", login=False)
    member = await world.user(tenant, login=False)
    async with browser_for(app) as browser:
        await sign_in(browser, mine.email)
        token = csrf_of((await browser.get("/console/syncs")).text)
        for method, path in (
            ("GET", f"/console/syncs/{their_run}"),
            ("GET", f"/console/syncs/{their_run}/progress"),
            ("POST", f"/console/syncs/sources/{their_source}/sync"),
            ("POST", f"/console/webhooks/deliveries/{their_delivery.id}/retry"),
        ):
            r = await browser.request(
                method, path, data={"csrf": token} if method == "POST" else None
            )
            assert r.status_code == 404, (path, r.status_code)
            assert r.headers["content-type"].startswith("text/html")
            assert "Not Yours" not in r.text
        assert await _state(world, their_delivery.id) == ("failed", their_delivery.job_id)
        assert "Not Yours" not in (await browser.get("/console/syncs")).text
        assert HOOK not in (await browser.get("/console/webhooks")).text
    async with browser_for(app) as browser:
        await sign_in(browser, member.email)
        for path in ("/console/syncs", "/console/webhooks"):
            r = await browser.get(path)
            assert r.status_code == 403 and "owners and admins" in r.text
