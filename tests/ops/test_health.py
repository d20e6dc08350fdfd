from __future__ import annotations

from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from tests.support.asserts import assert_problem

# The hot routes' answers, by the fast lane and by FastAPI (`kit.lane`).
pytestmark = pytest.mark.usefixtures("both_lanes")


async def test_healthz_is_cheap(client: httpx.AsyncClient) -> None:
    r = await client.get("/healthz")
    assert r.status_code == 200
    assert r.json()["status"] == "ok"
    assert r.headers["x-db-queries"] == "0"


async def test_readyz_checks_the_database(client: httpx.AsyncClient) -> None:
    r = await client.get("/readyz")
    assert r.status_code == 200
    assert r.json()["checks"] == {"database": "ok"}


async def test_readyz_checks_redis_when_configured(
    client: httpx.AsyncClient, app: Any, redis_available: str
) -> None:
    app.state.redis = Redis.from_url(redis_available)
    try:
        r = await client.get("/readyz")
        assert r.json()["checks"] == {"database": "ok", "redis": "ok"}
    finally:
        await app.state.redis.aclose()
        app.state.redis = None


async def test_readyz_is_503_when_redis_is_gone(client: httpx.AsyncClient, app: Any) -> None:
    app.state.redis = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    try:
        body = assert_problem(await client.get("/readyz"), 503, "not-ready")
        assert body["checks"]["redis"].startswith("unavailable")
        assert body["checks"]["database"] == "ok"
    finally:
        await app.state.redis.aclose()
        app.state.redis = None


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
async def test_probes_need_no_auth(client: httpx.AsyncClient, path: str) -> None:
    assert (await client.get(path)).status_code == 200


async def test_probes_may_send_head(client: httpx.AsyncClient) -> None:
    for path in ("/healthz", "/readyz"):
        r = await client.head(path)
        assert r.status_code == 200, path
        assert r.headers["content-type"].startswith("application/json")
