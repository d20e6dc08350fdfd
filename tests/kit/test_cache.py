"""The cache machinery on its own: TTL, LRU, single-flight, the stale-load guard, messages."""

from __future__ import annotations

import asyncio

import pytest

from tenantry.kit.cache import CacheSpec, NamedCache
from tenantry.kit.caches import Caches


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _cache(clock: Clock, *, ttl_s: float = 60, max_size: int = 3) -> NamedCache[str]:
    return NamedCache(CacheSpec("t", ttl_s=ttl_s, max_size=max_size, value_type=str), clock=clock)


class Loader:
    def __init__(self, value: str | None = "v") -> None:
        self.calls = 0
        self.value = value
        self.gate: asyncio.Event | None = None

    async def __call__(self) -> str | None:
        self.calls += 1
        if self.gate is not None:
            await self.gate.wait()
        return self.value


async def test_entries_expire_after_the_ttl_without_sleeping() -> None:
    clock = Clock()
    cache = _cache(clock, ttl_s=60)
    load = Loader()
    assert await cache.get_or_load("k", load) == "v"
    clock.now += 59.9
    assert await cache.get_or_load("k", load) == "v"
    assert load.calls == 1
    clock.now += 0.2
    assert await cache.get_or_load("k", load) == "v"
    assert load.calls == 2
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.loads, stats.expirations) == (1, 2, 2, 1)


async def test_least_recently_used_entry_is_evicted_and_counted() -> None:
    cache = _cache(Clock(), max_size=3)
    for key in ("a", "b", "c"):
        await cache.get_or_load(key, Loader(key))
    await cache.get_or_load("a", Loader())  # touch a: b is now the least recently used
    await cache.get_or_load("d", Loader("d"))
    assert sorted(cache.keys()) == ["a", "c", "d"]
    stats = cache.stats()
    assert stats.evictions == 1 and stats.size == 3 and stats.max_size == 3


async def test_a_hundred_concurrent_misses_make_one_load() -> None:
    cache = _cache(Clock())
    load = Loader("shared")
    load.gate = asyncio.Event()
    tasks = [asyncio.create_task(cache.get_or_load("k", load)) for _ in range(100)]
    await asyncio.sleep(0)
    load.gate.set()
    assert await asyncio.gather(*tasks) == ["shared"] * 100
    assert load.calls == 1
    assert cache.stats().loads == 1


async def test_a_cancelled_leader_hands_the_load_to_a_waiter() -> None:
    cache = _cache(Clock())
    first = Loader("first")
    first.gate = asyncio.Event()
    leader = asyncio.create_task(cache.get_or_load("k", first))
    await asyncio.sleep(0)
    waiter = asyncio.create_task(cache.get_or_load("k", Loader("second")))
    await asyncio.sleep(0)
    leader.cancel()
    assert await waiter == "second"
    with pytest.raises(asyncio.CancelledError):
        await leader


async def test_a_cancelled_waiter_does_not_cancel_the_load() -> None:
    cache = _cache(Clock())
    load = Loader("v")
    load.gate = asyncio.Event()
    leader = asyncio.create_task(cache.get_or_load("k", load))
    await asyncio.sleep(0)
    waiter = asyncio.create_task(cache.get_or_load("k", load))
    await asyncio.sleep(0)
    waiter.cancel()
    load.gate.set()
    assert await leader == "v"
    assert waiter.cancelled()


async def test_a_failed_load_fails_its_waiters_and_is_not_cached() -> None:
    cache = _cache(Clock())
    gate = asyncio.Event()

    async def broken() -> str:
        await gate.wait()
        raise RuntimeError("database down")

    tasks = [asyncio.create_task(cache.get_or_load("k", broken)) for _ in range(3)]
    await asyncio.sleep(0)
    gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(r, RuntimeError) for r in results)
    assert await cache.get_or_load("k", Loader("ok")) == "ok"


async def test_none_is_returned_but_not_cached() -> None:
    cache = _cache(Clock())
    missing = Loader(None)
    assert await cache.get_or_load("k", missing) is None
    assert await cache.get_or_load("k", missing) is None
    assert missing.calls == 2


async def test_a_load_invalidated_in_flight_answers_but_is_not_stored() -> None:
    cache = _cache(Clock())
    old = Loader("old")
    old.gate = asyncio.Event()
    task = asyncio.create_task(cache.get_or_load("k", old))
    await asyncio.sleep(0)
    cache.drop_local("k")  # the row changed and committed while it was being read
    old.gate.set()
    assert await task == "old"
    assert await cache.get_or_load("k", Loader("new")) == "new"


async def test_invalidation_messages_reach_other_instances_but_not_their_sender() -> None:
    a, b = Caches(instance_id="a"), Caches(instance_id="b")
    spec = CacheSpec("s", ttl_s=60, max_size=10, value_type=str)
    for caches in (a, b):
        caches.add(spec)
        caches.cache(spec).put_local("tenant-1", "x")
        caches.cache(spec).put_local("tenant-2", "y")
    [message] = a._messages([("s", "tenant-1")])
    a.on_message(message)
    assert a.cache(spec).keys() == ["tenant-1", "tenant-2"]  # its own: ignored
    b.on_message(message)
    assert b.cache(spec).keys() == ["tenant-2"]
    b.on_message(a._messages([("s", None)])[0])
    assert b.cache(spec).keys() == []
    b.on_message(b"not json")  # logged and ignored


def test_large_invalidation_batches_split_under_the_notify_limit() -> None:
    caches = Caches()
    events: list[tuple[str, str | None]] = [("principal", f"{i:032x}:{i:032x}") for i in range(400)]
    messages = caches._messages(events)
    assert len(messages) > 1
    assert all(len(m) < 8000 for m in messages)


async def test_stats_report_the_hit_rate() -> None:
    cache = _cache(Clock())
    await cache.get_or_load("k", Loader())
    for _ in range(3):
        await cache.get_or_load("k", Loader())
    stats = cache.stats()
    assert stats.hit_rate == 0.75
    assert stats.backend == "memory"
