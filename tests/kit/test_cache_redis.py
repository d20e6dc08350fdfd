"""The Redis L2: shared between instances, and never refilled by a load that an invalidation
overtook."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from tenantry.config import Settings
from tenantry.kit.cache import CacheSpec
from tenantry.kit.cache_redis import RedisTier
from tenantry.kit.caches import Caches
from tenantry.kit.redis import RedisHealth

SPEC = CacheSpec("things", ttl_s=60, max_size=10, value_type=dict)


@pytest.fixture
async def redis(redis_settings: Settings) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_settings.redis_url or "")
    yield client
    await client.aclose()


def _instance(redis: Redis, prefix: str) -> tuple[Caches, RedisTier]:
    caches = Caches()
    tier = RedisTier(redis, prefix=prefix, health=RedisHealth())
    caches.attach(tier, l2=tier)
    caches.add(SPEC)
    return caches, tier


async def test_a_value_loaded_by_one_instance_is_an_l2_hit_for_another(
    redis: Redis, redis_settings: Settings
) -> None:
    a, _ = _instance(redis, redis_settings.redis_prefix)
    b, _ = _instance(redis, redis_settings.redis_prefix)

    async def load() -> dict[str, int]:
        return {"n": 1}

    assert await a.cache(SPEC).get_or_load("t1:x", load) == {"n": 1}

    async def must_not_run() -> dict[str, int]:
        raise AssertionError("B should have found it in Redis")

    assert await b.cache(SPEC).get_or_load("t1:x", must_not_run) == {"n": 1}
    assert b.cache(SPEC).stats().l2_hits == 1
    assert b.cache(SPEC).stats().backend == "memory+redis"


async def test_an_overtaken_load_does_not_write_the_old_value_back(
    redis: Redis, redis_settings: Settings
) -> None:
    a, tier = _instance(redis, redis_settings.redis_prefix)
    b, _ = _instance(redis, redis_settings.redis_prefix)
    gate = asyncio.Event()

    async def slow_old_read() -> dict[str, str]:
        await gate.wait()
        return {"v": "old"}

    loading = asyncio.create_task(a.cache(SPEC).get_or_load("t1:x", slow_old_read))
    await asyncio.sleep(0.05)  # A has read the (missing) value and its generation
    await b.publish([("things", "t1:x")])  # B commits a change and invalidates
    gate.set()
    assert await loading == {"v": "old"}  # A's caller still gets an answer
    assert await redis.get(tier._value_key("things", "t1:x")) is None  # but Redis is clean


async def test_clearing_a_cache_empties_its_l2(redis: Redis, redis_settings: Settings) -> None:
    a, tier = _instance(redis, redis_settings.redis_prefix)

    async def load() -> dict[str, int]:
        return {"n": 1}

    for key in ("t1:a", "t1:b", "t2:c"):
        await a.cache(SPEC).get_or_load(key, load)
    await a.publish([("things", None)])
    assert a.cache(SPEC).keys() == []
    keys = [k async for k in redis.scan_iter(match=f"{redis_settings.redis_prefix}cache:*")]
    assert keys == []
    assert tier.health.up
