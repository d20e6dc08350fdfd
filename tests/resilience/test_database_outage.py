"""PostgreSQL dies under a running server, with real processes: `tenantry serve` in embedded
mode (it started the database, and supervises it) takes a steady stream of writes; the
database's postmaster is killed with SIGKILL. Meanwhile every request gets an answer within
the request timeout: a 503 problem while the database is down, never a 500 or a hang; the
supervisor starts the database again, the pool replaces its dead connections, and writes
succeed again. Every write the API acknowledged (201) is in the database afterwards."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable

import httpx

from tests.resilience.conftest import REQUEST_TIMEOUT_S, Server, Writes


async def test_a_killed_database_is_503_then_back_and_nothing_acknowledged_is_lost(
    serve: Callable[..., Server],
) -> None:
    server = serve()
    async with httpx.AsyncClient(base_url=server.url, timeout=REQUEST_TIMEOUT_S + 5) as client:
        load = await Writes.as_demo_owner(client)
        load.start()
        await asyncio.sleep(2)
        before = len(load.acknowledged)
        postmaster = int((server.pgdata / "postmaster.pid").read_text().splitlines()[0])
        os.kill(postmaster, signal.SIGKILL)
        killed_at = time.monotonic()

        async def recovered() -> bool:
            """The outage was seen, and for a whole second since: writes, no refusal."""
            seen, refused = len(load.acknowledged), load.answers.get(503, 0)
            await asyncio.sleep(1)
            return (
                refused > 0
                and load.answers.get(503, 0) == refused > 0
                and (len(load.acknowledged) > seen)
            )

        while not await recovered():
            if time.monotonic() > killed_at + 60:
                log = server.log.read_text()[-3000:]
                raise AssertionError(f"not back within 60 s: {load.answers}\n{log}")
        back_after = time.monotonic() - killed_at
        steady = len(load.acknowledged)
        await asyncio.sleep(3)
        assert len(load.acknowledged) - steady >= 20, load.answers  # writing steadily again
        await load.stop()
        assert not load.unexpected, load.unexpected[:5]
        assert load.answers.get(0, 0) == 0, load.answers
        assert load.slowest < REQUEST_TIMEOUT_S + 1
        missing = await load.missing()
        print(
            f"acknowledged {before} before the kill, {len(load.acknowledged)} in all; back"
            f" after {back_after:.1f} s; answers {load.answers}; slowest {load.slowest:.2f} s;"
            f" missing afterwards {len(missing)}"
        )
        assert not missing
    assert "is running again" in server.log.read_text()  # the supervisor started it, not luck
