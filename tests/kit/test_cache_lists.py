"""Cached list pages (`kit.cache_lists`): each page made once, every page of one owner dropped
by one invalidation, and a page that was loading when its owner changed never served."""

from __future__ import annotations

import asyncio

from tenantry.kit.cache import CacheSpec, NamedCache, Rendered
from tenantry.kit.cache_lists import ListCache, ListSpec
from tenantry.kit.caches import Caches

SPEC = ListSpec(
    pages=CacheSpec("runs", ttl_s=60, max_size=100),
    generations=CacheSpec("runs_generation", ttl_s=60, max_size=10),
)


def _lists() -> tuple[Caches, ListCache]:
    caches = Caches()
    caches.register(NamedCache(SPEC.pages))
    caches.register(NamedCache(SPEC.generations))
    return caches, SPEC.on(caches)


class Render:
    def __init__(self) -> None:
        self.calls = 0
        self.gate: asyncio.Event | None = None

    async def __call__(self) -> bytes:
        self.calls += 1
        made = f"page {self.calls}".encode()
        if self.gate is not None:
            await self.gate.wait()
        return made


async def test_each_page_is_made_once_until_its_owner_is_invalidated() -> None:
    caches, lists = _lists()
    render = Render()
    first = await lists.page("t1", "1:20", render)
    assert await lists.page("t1", "1:20", render) is first
    assert first == Rendered.of(b"page 1")
    await lists.page("t1", "2:20", render)
    await lists.page("t2", "1:20", render)
    assert render.calls == 3

    caches.apply([(SPEC.generations.name, "t1")])
    assert (await lists.page("t1", "1:20", render)).body == b"page 4"
    assert (await lists.page("t1", "2:20", render)).body == b"page 5"
    assert (await lists.page("t2", "1:20", render)).body == b"page 3"  # another owner's stays


async def test_a_page_loading_while_its_owner_changes_is_never_served() -> None:
    caches, lists = _lists()
    render = Render()
    render.gate = asyncio.Event()
    loading = asyncio.create_task(lists.page("t1", "1:20", render))
    await asyncio.sleep(0)
    caches.apply([(SPEC.generations.name, "t1")])  # a run changed while the page was read
    render.gate.set()
    assert (await loading).body == b"page 1"  # its own caller gets what it read
    assert (await lists.page("t1", "1:20", render)).body == b"page 2"  # nobody after it


async def test_concurrent_readers_of_a_missing_page_share_one_load() -> None:
    _, lists = _lists()
    render = Render()
    render.gate = asyncio.Event()
    readers = [asyncio.create_task(lists.page("t1", "1:20", render)) for _ in range(5)]
    await asyncio.sleep(0)
    render.gate.set()
    pages = await asyncio.gather(*readers)
    assert render.calls == 1 and all(p is pages[0] for p in pages)
