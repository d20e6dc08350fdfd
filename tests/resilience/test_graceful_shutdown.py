"""SIGTERM to a real `tenantry serve`: it stops listening and readiness fails at once, a
request in flight (its body still arriving) finishes with its answer, and the process exits 0
once the drain and the request are over."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator, Callable

import httpx
import pytest

from tests.resilience.conftest import Server, Writes


async def test_sigterm_drains_finishes_the_request_in_flight_and_exits_0(
    serve: Callable[..., Server],
) -> None:
    server = serve(SHUTDOWN_DRAIN_S="1", SHUTDOWN_GRACE_S="10")
    arrived = asyncio.Event()

    async def slow_body() -> AsyncIterator[bytes]:
        yield b'{"name": "Ada '
        arrived.set()
        await asyncio.sleep(3)  # past the drain: uvicorn has stopped listening by then
        yield b'Lovelace"}'

    async with (
        httpx.AsyncClient(base_url=server.url, timeout=20) as client,
        httpx.AsyncClient(base_url=server.url, timeout=5) as probe,
    ):
        owner = (await Writes.as_demo_owner(client)).headers
        assert (await probe.get("/healthz")).status_code == 200  # its connection, open now
        slow = asyncio.create_task(
            client.post(
                "/api/v1/customers",
                content=slow_body(),
                headers={**owner, "content-type": "application/json"},
            )
        )
        await arrived.wait()
        await asyncio.sleep(0.2)
        server.process.send_signal(signal.SIGTERM)
        sent = time.monotonic()
        await asyncio.sleep(0.2)
        r = await probe.get("/readyz")  # on a connection opened before: draining at once
        assert r.status_code == 503 and time.monotonic() - sent < 1, r.text
        with pytest.raises(httpx.ConnectError):  # and no new connection is taken
            async with httpx.AsyncClient(base_url=server.url, timeout=5) as late:
                await late.get("/healthz")
        answer = await slow
        assert answer.status_code == 201, answer.text
        assert answer.json()["name"] == "Ada Lovelace"
        assert answer.headers["connection"] == "close"
    code = await asyncio.to_thread(server.process.wait, 20)
    log = server.log.read_text()
    assert code == 0, log[-2000:]
    assert "draining before shutdown" in log
    assert log.index("draining before shutdown") < log.index("Shutting down")
