"""A sync from end to end, in both modes: through the API, by the worker inside the API process
(embedded) and by a separate `tenantry worker` process (scale-out), to a real source, ending
in a signed `sync.completed` webhook that a real receiver verifies; and reported in /metrics."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx

from tenantry.config import Settings
from tenantry.kit.db import Database, session_scope
from tenantry.sync.models import SyncSource
from tests.support.http_source import Source, customers, serving
from tests.support.platform import eventually, make_app, running
from tests.support.world import CommittedWorld

ROOT = Path(__file__).resolve().parents[2]
QUICK = {
    "outbound_allowlist": ["127.0.0.1"],
    "outbound_retry_initial_s": 0.01,
    "jobs_stats_interval_s": 0.2,
}


async def _sync_through_the_api(
    client: httpx.AsyncClient, committed: CommittedWorld, source: Source
) -> tuple[dict[str, Any], str]:
    committed.client = client
    owner = await committed.user(await committed.tenant(), "owner")
    r = await client.post(
        "/api/v1/sync-sources",
        json={"name": "local", "base_url": source.url + "/customers", "page_size": 50},
        headers=owner.headers,
    )
    assert r.status_code == 201, r.text
    source_id = r.json()["id"]
    r = await client.post(
        "/api/v1/webhooks",
        json={"url": source.url + "/hook", "events": ["sync.completed"]},
        headers=owner.headers,
    )
    assert r.status_code == 201, r.text
    source.webhook_secret = r.json()["secret"]
    r = await client.post("/api/v1/sync", json={"source_id": source_id}, headers=owner.headers)
    assert r.status_code == 202, r.text
    status_url = r.json()["status_url"]

    async def finished() -> bool:
        # The runs list is cached per tenant: it follows the worker's progress only because
        # each write of the run, in the worker's own transaction, invalidates it everywhere.
        listed = (await client.get("/api/v1/syncs", headers=owner.headers)).json()
        return bool(listed["items"][0]["status"] in ("succeeded", "failed"))

    await eventually(finished, within_s=60)
    run = (await client.get(status_url, headers=owner.headers)).json()

    async def told() -> bool:
        return bool(source.received)

    await eventually(told, within_s=30)
    return run, owner.headers["Authorization"]


async def test_embedded_the_worker_in_the_api_process_runs_the_sync(
    settings: Settings, committed_db: Database, committed: CommittedWorld
) -> None:
    app = make_app(settings, committed_db, jobs_in_process=True, **QUICK)
    source = Source(customers(120))
    async with serving(source), running(app) as client:
        run, _ = await _sync_through_the_api(client, committed, source)
        assert (run["status"], run["records_written"], run["leads_written"]) == (
            "succeeded",
            120,
            120,
        )
        [(_, _, payload)] = source.received
        assert payload is not None and payload["data"]["run_id"] == run["id"]

        async def reported() -> bool:
            text = (await client.get("/metrics")).text
            return (
                'tenantry_jobs_total{outcome="succeeded",task="sync:run_sync"}' in text
                and 'tenantry_domain_events_total{kind="sync_records",outcome="written"}' in text
                and "tenantry_jobs_waiting" in text
            )

        await eventually(reported, within_s=10)


async def test_scale_out_a_separate_worker_process_runs_the_sync(
    settings: Settings, committed_db: Database, committed: CommittedWorld
) -> None:
    app = make_app(settings, committed_db, jobs_in_process=False, **QUICK)
    source = Source(customers(60))
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url or "",
        "JWT_SECRET": settings.jwt_secret,
        "OUTBOUND_ALLOWLIST": "127.0.0.1",
        "JOBS_SHUTDOWN_GRACE_S": "2",
    }
    worker = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "tenantry.cli", "worker", "--queues", "sync,webhooks"),
        cwd=ROOT,
        env=env,
    )
    try:
        async with serving(source), running(app) as client:
            run, _ = await _sync_through_the_api(client, committed, source)
            assert (run["status"], run["records_written"]) == ("succeeded", 60)
            [(_, _, payload)] = source.received
            assert payload is not None and payload["type"] == "sync.completed"
    finally:
        worker.send_signal(signal.SIGTERM)
        async with asyncio.timeout(20):
            assert await worker.wait() == 0


async def test_the_sync_command_runs_a_source_in_the_foreground(
    settings: Settings, committed: CommittedWorld
) -> None:
    source = Source(customers(30))
    tenant_id = await committed.tenant()
    async with session_scope(committed.db.sessionmaker) as session:
        row = SyncSource(
            tenant_id=tenant_id,
            name="local",
            kind="http_json",
            base_url=source.url + "/customers",
            auth_header="Authorization",
            secret_sealed=None,
            page_size=10,
            schedule="0 0 1 1 *",
            enabled=True,
        )
        session.add(row)
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url or "",
        "JWT_SECRET": settings.jwt_secret,
        "OUTBOUND_ALLOWLIST": "127.0.0.1",
        "COLUMNS": "200",
    }

    async def command(*args: str) -> tuple[int, str]:
        process = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "tenantry.cli", "sync", *args),
            cwd=ROOT,
            env=env,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await process.communicate()
        return process.returncode or 0, err.decode()

    async with serving(source):
        code, out = await command(str(row.id))
    assert code == 0, out
    assert "succeeded: 30 customers and 30 leads written, 0 records failed, 3 pages" in out
    code, out = await command(str(uuid.uuid4()))
    assert code == 1 and "No sync source" in out
    code, out = await command("not-an-id")
    assert code == 2 and "is not a source id" in out
