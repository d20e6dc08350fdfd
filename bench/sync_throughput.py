"""The sync-throughput scenario (seed 003): whole syncs of 1,000 records each, from real HTTP
sources on 127.0.0.1 with 1% of their calls failing, run by one `tenantry worker` process,
kept busy for a while.

The sources are served by this process (pinned to the generator's core); the worker runs on
the server's core. Each of `SOURCES` sources always has one run going: when its run finishes,
the next is started (through `SyncService.start_run`, as `POST /sync` does). A sync's time is
from its run's creation to its end. Targets: p95 under 5 s, over 100 syncs a minute, over
99.5% of them succeeded.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import uvicorn
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

ROOT = Path(__file__).resolve().parents[1]
SOURCES = 4
RECORDS = 1000
PAGE_SIZE = 100
FAULT_RATE = 0.01
TARGET = "p95 < 5 s, > 100 syncs/min, > 99.5% succeeded"


class FaultySource:
    """1,000 customers in the sync contract; each call fails (503) with probability 1%."""

    def __init__(self) -> None:
        self.random = random.Random(3)  # noqa: S311 - faults, not secrets
        self.calls = self.faults = 0
        self.records = [
            {
                "external_id": f"c-{i}",
                "name": f"Customer {i}",
                "email": f"c{i}@example.com",
                "postal_code": f"{28000 + i % 50}",
                "leads": [{"external_id": f"l-{i}", "status": "new", "value": "10.00"}],
            }
            for i in range(RECORDS)
        ]
        self.app = Starlette(routes=[Route("/customers", self.page)])

    async def page(self, request: Request) -> Response:
        self.calls += 1
        if self.random.random() < FAULT_RATE:
            self.faults += 1
            return JSONResponse({"error": "unlucky"}, status_code=503)
        page = int(request.query_params.get("page", "1"))
        per_page = int(request.query_params.get("per_page", "100"))
        start = (page - 1) * per_page
        more = start + per_page < len(self.records)
        return JSONResponse(
            {
                "items": self.records[start : start + per_page],
                "next_page": page + 1 if more else None,
            }
        )


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def measure(
    database_url: str, env: dict[str, str], duration_s: float, worker_cpu: int | None
) -> dict[str, Any]:
    from tenantry.config import Settings
    from tenantry.kit.db import Database, session_scope
    from tenantry.kit.http import Outbound
    from tenantry.kit.jobs import Jobs
    from tenantry.kit.platform import Platform
    from tenantry.kit.repository import TenantScope
    from tenantry.sync.models import SyncRun, SyncSource
    from tenantry.sync.service import SyncService
    from tenantry.tenants.service import TenantsService

    source = FaultySource()
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(source.app, host="127.0.0.1", port=port, log_level="warning")
    )
    serving = asyncio.create_task(server.serve())
    settings = Settings(_env_file=None, database_url=database_url)
    db = Database(database_url, settings)
    platform = Platform.build(settings, db)
    platform.outbound = Outbound(settings)
    from tenantry.app import JOB_TASKS

    platform.jobs = Jobs(database_url, settings, JOB_TASKS)
    await platform.jobs.open()
    pin = (lambda: os.sched_setaffinity(0, {worker_cpu})) if worker_cpu is not None else None
    worker = await asyncio.create_subprocess_exec(
        *(
            sys.executable,
            "-m",
            "tenantry.cli",
            "worker",
            "--concurrency",
            str(SOURCES),
            "--queues",
            "sync",
        ),
        cwd=ROOT,
        env={**os.environ, **env, "OUTBOUND_ALLOWLIST": "127.0.0.1", "LOG_LEVEL": "WARNING"},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
        preexec_fn=pin,
    )
    service = platform.service(SyncService)
    started: dict[uuid.UUID, float] = {}
    durations: list[float] = []
    outcomes: dict[str, int] = {"succeeded": 0, "failed": 0}
    try:
        async with session_scope(db.sessionmaker) as session:
            tenant = await platform.service(TenantsService).provision(
                session, slug=f"bench-sync-{uuid.uuid4().hex[:8]}", name="Bench sync"
            )
            scope = TenantScope(tenant.id)
            sources = []
            for n in range(SOURCES):
                row = SyncSource(
                    tenant_id=tenant.id,
                    name=f"source {n}",
                    kind="http_json",
                    base_url=f"http://127.0.0.1:{port}/customers",
                    auth_header="Authorization",
                    page_size=PAGE_SIZE,
                    schedule="0 0 1 1 *",
                    enabled=False,
                )
                session.add(row)
                sources.append(row)
        busy: dict[uuid.UUID, uuid.UUID] = {}  # source -> its run
        deadline = time.monotonic() + duration_s
        while True:
            now = time.monotonic()
            if now < deadline:
                async with session_scope(db.sessionmaker) as session:
                    for row in sources:
                        if row.id not in busy:
                            run, _ = await service.start_run(
                                session, scope, row.id, trigger="manual"
                            )
                            busy[row.id] = run.id
                            started[run.id] = time.monotonic()
            elif not busy or now > deadline + 60:
                break
            await asyncio.sleep(0.05)
            async with session_scope(db.sessionmaker) as session:
                done = await session.execute(
                    select(SyncRun.source_id, SyncRun.id, SyncRun.status).where(
                        SyncRun.tenant_id == tenant.id,
                        SyncRun.id.in_(list(busy.values())),
                        SyncRun.status.in_(("succeeded", "failed")),
                    )
                )
                for source_id, run_id, status in done.all():
                    durations.append(time.monotonic() - started[run_id])
                    outcomes[status] += 1
                    del busy[source_id]
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(worker.wait(), 30)
        except TimeoutError:
            worker.kill()
        server.should_exit = True
        await serving
        await platform.jobs.close()
        await platform.outbound.aclose()
        await db.dispose()
    finished = sum(outcomes.values())
    quantiles = statistics.quantiles(durations, n=20) if len(durations) >= 2 else [0.0] * 19
    per_minute = finished / (duration_s / 60)
    success = outcomes["succeeded"] / finished if finished else 0.0
    met = quantiles[18] < 5 and per_minute > 100 and success > 0.995
    return {
        "name": "sync-throughput",
        "note": f"{SOURCES} sources of {RECORDS} records, {FAULT_RATE:.0%} of calls failing,"
        f" one worker process (concurrency {SOURCES})",
        "duration_s": duration_s,
        "syncs": finished,
        "syncs_per_minute": per_minute,
        "succeeded": outcomes["succeeded"],
        "success_rate": success,
        "p50_s": statistics.median(durations) if durations else 0.0,
        "p95_s": quantiles[18],
        "source_calls": source.calls,
        "source_faults": source.faults,
        "target": TARGET,
        "verdict": "met" if met else "missed",
    }
