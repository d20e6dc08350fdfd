"""Watching a sync finish, retrying a failed webhook delivery, and reading the funnel and the
other platform pages, in the browser against the real server (its jobs run in process)."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import asyncpg
import httpx

from tenantry.kit.db import plain_url
from tests.browser.conftest import Served, api_login, shot, sign_in
from tests.onboarding.test_profile import SEED_PROFILE
from tests.support.http_source import Source, customers, serving


async def test_watch_a_sync_run_to_its_end(page: Any, served: Served) -> None:
    source = Source(records=customers(120))
    source.switches.delay_s, source.switches.delay_next = 0.4, 100  # slow enough to watch
    owner = await api_login(served)
    name = f"CRM export {uuid.uuid4().hex[:6]}"
    async with serving(source), httpx.AsyncClient(base_url=served.url) as api:
        made = await api.post(
            "/api/v1/sync-sources",
            json={"name": name, "base_url": source.url + "/customers", "page_size": 20},
            headers=owner,
        )
        assert made.status_code == 201, made.text
        await sign_in(page, then="/console/syncs")
        await page.click(f"button[aria-label='Sync now: {name}']")
        await page.wait_for_url("**/console/syncs/*")
        await page.wait_for_selector("[data-poll] .badge.running", timeout=30_000)  # live
        await shot(page, "sync-running")
        started = time.monotonic()
        await page.wait_for_selector("[data-done]", timeout=60_000)
        took = time.monotonic() - started
        text = await page.inner_text("main")
        assert "succeeded" in text and "120" in text, text
        assert took > 0.5  # it was watched, not found finished
        await shot(page, "sync-finished")


async def test_retry_a_failed_delivery(page: Any, served: Served) -> None:
    receiver = Source(webhook_secret="whsec_" + "Br0wSeRrKQ9r8GKYqrTwjUPD8ILPZIo2")
    receiver.switches.fail_next = 1000  # down: every try fails
    owner = await api_login(served)
    async with serving(receiver), httpx.AsyncClient(base_url=served.url) as api:
        hook = await api.post(
            "/api/v1/webhooks",
            json={
                "url": receiver.url + "/hook",
                "events": ["customer.created"],
                "secret": receiver.webhook_secret,
            },
            headers=owner,
        )
        assert hook.status_code == 201, hook.text
        made = await api.post("/api/v1/customers", json={"name": "Retry Me"}, headers=owner)
        assert made.status_code == 201

        async def first_try_failed() -> dict[str, Any]:
            while True:
                r = await api.get("/api/v1/webhooks/deliveries?per_page=100", headers=owner)
                items = [i for i in r.json()["items"] if i["endpoint_id"] == hook.json()["id"]]
                if items and items[0]["attempts"] >= 1:
                    return dict(items[0])
                await asyncio.sleep(0.2)

        delivery = await asyncio.wait_for(first_try_failed(), 30)
        # Its schedule would retry for a day before giving up: give up now, as it would.
        conn = await asyncpg.connect(plain_url(served.database))
        try:
            await conn.execute(
                "UPDATE webhook_deliveries SET status = 'failed', next_attempt_at = NULL"
                " WHERE id = $1",
                uuid.UUID(delivery["id"]),
            )
        finally:
            await conn.close()
        receiver.switches.fail_next = 0  # the receiver is back
        await sign_in(page, then="/console/webhooks")
        retry = page.locator("button:text('Retry')").first
        await retry.focus()
        await shot(page, "webhooks-failed")
        await page.keyboard.press("Enter")
        await page.wait_for_url("**/console/webhooks?retried=*")
        deadline = time.monotonic() + 30
        while not [p for _, _, p in receiver.received if p is not None]:
            assert time.monotonic() < deadline, "the retried delivery never arrived"
            await asyncio.sleep(0.2)
        while True:  # the receiver has it; its answer is recorded a moment later
            await page.reload()
            if await page.locator(".badge.succeeded").count():
                break
            assert time.monotonic() < deadline, "the delivery was never marked succeeded"
            await asyncio.sleep(0.3)
        await shot(page, "webhooks-retried")


async def test_read_the_funnel_and_the_platform_pages(page: Any, served: Served) -> None:
    async with httpx.AsyncClient(base_url=served.url) as visitor:
        for n in range(3):
            r = await visitor.post(
                "/api/v1/onboarding/company-profile",
                json={**SEED_PROFILE, "company_name": f"Funnel Co {n}"},
            )
            assert r.status_code == 201, r.text
    await sign_in(page, "admin@tenantry.example", then="/console/platform/funnel")
    chart = page.locator("svg[role='img']")
    await chart.wait_for()
    assert await chart.get_attribute("aria-labelledby")
    svg = await chart.inner_html()
    assert "<pattern" in svg and "<title" in svg
    table = await page.inner_text("table")
    assert "3" in table
    await shot(page, "funnel")
    for path, name in (
        ("/console/platform/tenants", "tenants"),
        ("/console/platform/caches", "caches"),
        ("/console/platform/jobs", "jobs"),
    ):
        await page.goto(served.url + path)
        await page.wait_for_selector("h1")
        await shot(page, name)
