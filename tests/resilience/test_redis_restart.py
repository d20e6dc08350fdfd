"""Redis killed and started again under a running server, with real processes: `tenantry serve`
with a Redis of the test's own (state store, cache L2, invalidation bus, shared rate limits)
takes a steady stream of writes; Redis is killed, and later started again. Writes keep
succeeding throughout (memory and the database serve meanwhile; the limits count per process),
the bus reconnects, and every acknowledged write is in the database afterwards."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx

from tests.resilience.conftest import REQUEST_TIMEOUT_S, PrivateRedis, Server, Writes


async def test_writes_go_on_while_redis_is_down_and_after_it_returns(
    serve: Callable[..., Server], private_redis: PrivateRedis
) -> None:
    server = serve(REDIS_URL=private_redis.url, REDIS_RETRY_S="0.5")
    # By the way: the server runs Tenantry's HTTP protocol (`kit.server`), whose refusals are
    # problem documents too.
    host, port = server.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Bad: a\x00b\r\n\r\n")
    refused = await reader.read()
    writer.close()
    assert refused.startswith(b"HTTP/1.1 400 ") and b"application/problem+json" in refused
    async with httpx.AsyncClient(base_url=server.url, timeout=REQUEST_TIMEOUT_S + 5) as client:
        load = await Writes.as_demo_owner(client)
        load.start()
        await asyncio.sleep(2)
        before = len(load.acknowledged)
        private_redis.kill()
        await asyncio.sleep(3)
        during = len(load.acknowledged) - before
        private_redis.start()
        await asyncio.sleep(3)
        after = len(load.acknowledged) - before - during
        await load.stop()
        missing = await load.missing()
        ready = (await client.get("/readyz")).json()
    print(
        f"acknowledged {before} before, {during} with Redis down, {after} after it returned;"
        f" answers {load.answers}; slowest {load.slowest:.2f} s; missing {len(missing)}"
    )
    assert not load.unexpected, load.unexpected[:5]
    assert set(load.answers) == {201}, load.answers  # not one refusal, error or cut
    assert during >= 20 and after >= 20
    assert not missing
    assert ready["checks"]["redis"] == "ok"
