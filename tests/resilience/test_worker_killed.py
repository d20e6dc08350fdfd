"""The worker killed with SIGKILL in the middle of a sync, with real processes: `tenantry serve`
(jobs not in process) and a `tenantry worker`, a real HTTP source of 1,000 customers served
slowly, and a steady load of API writes meanwhile. The dead worker's job is found stalled and
queued again; a second worker resumes the sync from its checkpoint; the source's 1,000
customers land exactly once, and every write the API acknowledged is in the database."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from typing import Any

import httpx

from tests.resilience.conftest import REQUEST_TIMEOUT_S, Server, Writes
from tests.support.http_source import Source, customers, serving

FAST_RECOVERY = {
    "JOBS_HEARTBEAT_S": "1",
    "JOBS_STALLED_AFTER_S": "3",
    "JOBS_SWEEP_INTERVAL_S": "1",
    "OUTBOUND_ALLOWLIST": "127.0.0.1",  # the source runs here
}


async def _imported(client: httpx.AsyncClient, headers: dict[str, str]) -> list[str]:
    """The external ids of every customer a sync brought in (walked by cursor)."""
    found: list[str] = []
    url: str | None = "/api/v1/customers?limit=100"
    while url is not None:
        page = (await client.get(url, headers=headers)).json()
        found += [c["external_id"] for c in page["items"] if c["external_id"]]
        url = (
            f"/api/v1/customers?limit=100&cursor={page['next_cursor']}"
            if page["next_cursor"]
            else None
        )
    return found


async def test_a_sync_whose_worker_is_killed_resumes_and_lands_once(
    serve: Callable[..., Server], workers: Callable[..., Any]
) -> None:
    server = serve(JOBS_IN_PROCESS="false", **FAST_RECOVERY)
    first = workers(server, **FAST_RECOVERY)
    source = Source(customers(1000))
    source.switches.delay_s, source.switches.delay_next = 0.3, 10_000  # a slow source
    async with (
        serving(source),
        httpx.AsyncClient(base_url=server.url, timeout=REQUEST_TIMEOUT_S + 5) as client,
    ):
        load = await Writes.as_demo_owner(client)
        owner = load.headers
        made = await client.post(
            "/api/v1/sync-sources",
            json={"name": "legacy", "base_url": source.url + "/customers", "page_size": 50},
            headers=owner,
        )
        assert made.status_code == 201, made.text
        load.start()
        accepted = await client.post(
            "/api/v1/sync", json={"source_id": made.json()["id"]}, headers=owner
        )
        assert accepted.status_code == 202, accepted.text
        run_url = f"/api/v1/syncs/{accepted.json()['task_id']}"

        async def run() -> dict[str, Any]:
            found: dict[str, Any] = (await client.get(run_url, headers=owner)).json()
            return found

        started = time.monotonic()
        while (state := await run())["pages_done"] < 3:
            assert state["status"] in ("pending", "running"), state
            assert time.monotonic() - started < 60, f"the sync did not get going: {state}"
            await asyncio.sleep(0.2)
        first.send_signal(signal.SIGKILL)
        first.wait()
        pages_at_kill = (await run())["pages_done"]
        killed_at = time.monotonic()
        workers(server, **FAST_RECOVERY)
        while (state := await run())["status"] not in ("succeeded", "failed"):
            assert time.monotonic() - killed_at < 120, state
            await asyncio.sleep(0.5)
        await load.stop()
        assert state["status"] == "succeeded", state
        imported = await _imported(client, owner)
        missing = await load.missing()
    print(
        f"killed at page {pages_at_kill} of 20; finished {time.monotonic() - killed_at:.1f} s"
        f" later; pages asked {len(source.switches.pages)}; customers {len(imported)} of 1000"
        f" ({len(set(imported))} distinct); writes acknowledged {len(load.acknowledged)},"
        f" missing {len(missing)}; answers {load.answers}"
    )
    assert sorted(imported) == sorted(f"c-{i}" for i in range(1000))  # each exactly once
    assert state["records_written"] >= 1000 - 50 * pages_at_kill  # resumed, not restarted
    assert not load.unexpected and not missing
