"""The state store, in both modes: a table with `expires_at`, or Redis keys with a TTL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select

from tenantry.app import create_app
from tenantry.config import Settings
from tenantry.kit.db import Database, session_scope
from tenantry.kit.redis import RedisHealth
from tenantry.kit.state import (
    PostgresStateStore,
    RedisStateStore,
    StateEntry,
    StateStore,
    StateUnavailable,
    sweep_forever,
)
from tests.support.platform import eventually


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2030, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(params=["postgres", "redis"])
async def store(request: pytest.FixtureRequest, session_factory: Any) -> AsyncIterator[StateStore]:
    if request.param == "postgres":
        yield PostgresStateStore(request.getfixturevalue("database"))
        return
    settings: Settings = request.getfixturevalue("redis_settings")
    client = Redis.from_url(settings.redis_url or "")
    yield RedisStateStore(client, prefix=settings.redis_prefix, health=RedisHealth())
    await client.aclose()


def _ns() -> str:
    return f"t{uuid.uuid4().hex[:8]}"


async def test_put_get_take_extend_delete(store: StateStore) -> None:
    ns = _ns()
    value = {"a": [1, 2.5, "ü"], "nested": {"ok": True, "none": None}}
    await store.put(ns, "k", value, ttl_s=60)
    assert await store.get(ns, "k") == value
    assert await store.extend(ns, "k", 120) is True
    assert await store.take(ns, "k") == value
    assert await store.take(ns, "k") is None  # one time only
    assert await store.get(ns, "k") is None
    assert await store.extend(ns, "k", 60) is False
    await store.put(ns, "k", [1], ttl_s=60)
    await store.put(ns, "k", [2], ttl_s=60)  # overwrite
    assert await store.get(ns, "k") == [2]
    assert await store.delete(ns, "k") is True
    assert await store.delete(ns, "k") is False


async def test_a_claim_is_won_once_while_the_value_lives(store: StateStore) -> None:
    ns = _ns()
    # one at a time: the tests' transaction is one connection (the atomicity is the
    # statement's own: INSERT ... ON CONFLICT, or Redis' SET NX)
    won = [await store.claim(ns, "k", {"by": i}, ttl_s=60) for i in range(5)]
    assert sorted(won) == [False, False, False, False, True]
    winner = won.index(True)
    assert await store.get(ns, "k") == {"by": winner}
    assert await store.delete(ns, "k") is True
    assert await store.claim(ns, "k", {"by": "again"}, ttl_s=60) is True


async def test_an_expired_value_can_be_claimed(database: Database) -> None:
    clock = Clock()
    store = PostgresStateStore(database, clock=clock)
    ns = _ns()
    assert await store.claim(ns, "k", 1, ttl_s=10) is True
    assert await store.claim(ns, "k", 2, ttl_s=10) is False
    clock.now += timedelta(seconds=11)
    assert await store.claim(ns, "k", 3, ttl_s=10) is True
    assert await store.get(ns, "k") == 3


async def test_namespaces_are_separate(store: StateStore) -> None:
    a, b = _ns(), _ns()
    await store.put(a, "same", "for a", ttl_s=60)
    await store.put(b, "same", "for b", ttl_s=60)
    assert await store.take(a, "same") == "for a"
    assert await store.get(b, "same") == "for b"


async def test_bad_names_are_refused(store: StateStore) -> None:
    with pytest.raises(ValueError, match="namespace"):
        await store.put("a:b", "k", 1, ttl_s=1)
    with pytest.raises(ValueError, match="key"):
        await store.put("ns", "", 1, ttl_s=1)


async def test_expired_rows_are_never_returned_and_are_swept(database: Database) -> None:
    clock = Clock()
    store = PostgresStateStore(database, clock=clock)
    ns = _ns()
    await store.put(ns, "short", {"v": 1}, ttl_s=10)
    await store.put(ns, "long", {"v": 2}, ttl_s=3600)
    clock.now += timedelta(seconds=9)
    assert await store.get(ns, "short") == {"v": 1}
    clock.now += timedelta(seconds=2)
    assert await store.get(ns, "short") is None
    assert await store.take(ns, "short") is None
    assert await store.extend(ns, "short", 60) is False
    assert await store.sweep(batch=1) >= 1
    async with database.sessionmaker() as s:
        left = await s.scalar(
            select(func.count()).select_from(StateEntry).where(StateEntry.namespace == ns)
        )
    assert left == 1
    assert await store.get(ns, "long") == {"v": 2}


async def test_extend_moves_the_deadline(database: Database) -> None:
    clock = Clock()
    store = PostgresStateStore(database, clock=clock)
    ns = _ns()
    await store.put(ns, "k", 1, ttl_s=10)
    clock.now += timedelta(seconds=8)
    assert await store.extend(ns, "k", 10)
    clock.now += timedelta(seconds=8)
    assert await store.get(ns, "k") == 1


async def test_redis_keys_carry_the_ttl(redis_settings: Settings) -> None:
    client = Redis.from_url(redis_settings.redis_url or "")
    try:
        store = RedisStateStore(client, prefix=redis_settings.redis_prefix, health=RedisHealth())
        await store.put("oauth", "abc", {"x": 1}, ttl_s=600)
        ttl = await client.pttl(f"{redis_settings.redis_prefix}state:oauth:abc")
        assert 590_000 < ttl <= 600_000
    finally:
        await client.aclose()


async def test_concurrent_takes_hand_the_value_to_exactly_one(
    mode_settings: Settings, committed_db: Database
) -> None:
    app = create_app(mode_settings, database=committed_db)
    async with app.router.lifespan_context(app):
        store: StateStore = app.state.state_store
        ns = _ns()
        await store.put(ns, "once", {"secret": 1}, ttl_s=60)
        results = await asyncio.gather(*(store.take(ns, "once") for _ in range(10)))
        assert [r for r in results if r is not None] == [{"secret": 1}]


async def test_state_survives_an_app_restart(
    mode_settings: Settings, committed_db: Database
) -> None:
    ns = _ns()
    first = create_app(mode_settings, database=committed_db)
    async with first.router.lifespan_context(first):
        await first.state.state_store.put(ns, "k", {"kept": True}, ttl_s=60)
    second = create_app(mode_settings, database=committed_db)
    async with second.router.lifespan_context(second):
        assert second.state.state_store.backend == (
            "redis" if mode_settings.redis_url else "postgres"
        )
        assert await second.state.state_store.take(ns, "k") == {"kept": True}


async def test_an_unreachable_redis_is_a_503_not_a_500() -> None:
    client = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    health = RedisHealth(retry_s=60)
    store = RedisStateStore(client, prefix="x:", health=health)
    try:
        with pytest.raises(StateUnavailable) as failed:
            await store.put("ns", "k", 1, ttl_s=1)
        assert failed.value.status == 503
        assert not health.up
        with pytest.raises(StateUnavailable):  # the circuit is open: no second connect attempt
            await store.get("ns", "k")
        assert health.errors == 1
    finally:
        await client.aclose()


async def test_the_background_sweep_deletes_expired_rows(committed_db: Database) -> None:
    clock = Clock()
    store = PostgresStateStore(committed_db, clock=clock)
    ns = _ns()
    await store.put(ns, "old", 1, ttl_s=1)
    clock.now += timedelta(seconds=2)
    sweeper = asyncio.create_task(sweep_forever(store, 0.01))
    try:

        async def swept() -> bool:
            async with committed_db.sessionmaker() as s:
                left = await s.scalar(
                    select(func.count()).select_from(StateEntry).where(StateEntry.namespace == ns)
                )
            return left == 0

        await eventually(swept)
    finally:
        sweeper.cancel()


async def test_a_put_with_a_request_is_kept_only_if_the_request_commits(
    settings: Settings,
) -> None:
    db = Database(settings.database_url or "", settings)
    store = PostgresStateStore(db)
    kept, dropped = uuid.uuid4().hex, uuid.uuid4().hex

    async def request(key: str, *, fail: bool) -> None:
        async with session_scope(db.sessionmaker) as session:
            await store.put("with-request", key, {"k": key}, 60, with_=session)
            if fail:
                raise RuntimeError("the request failed after the put")

    try:
        await request(kept, fail=False)
        with pytest.raises(RuntimeError, match="after the put"):
            await request(dropped, fail=True)
        assert await store.get("with-request", kept) == {"k": kept}
        assert await store.get("with-request", dropped) is None
    finally:
        await store.delete("with-request", kept)
        await db.dispose()
