"""Named caches: one bounded, expiring, counted cache per name, loaded once per missing key.

Each cache has a name, a maximum size, a TTL and counters, declared once beside the code that
uses it (`declare`). L1 is in-process (`kit/cache_l1.py`); with `REDIS_URL` an L2 in Redis
sits behind it (`kit/cache_redis.py`). A miss is loaded once: concurrent callers for a missing
key wait for the one load (no stampede). A load that was in flight when its key was
invalidated still answers its callers but is not stored: a cache is never filled from data
that was about to change; and a load that follows an invalidation reads the primary until a
read replica holds the write behind it (`kit.replica.fill_after`). The process's caches and
their invalidation on every instance are `kit/caches.py`.

Keys of tenant data always start with the tenant id. Written by hand (the glue): single-flight
and the stale-load guard; the LRU and TTL bookkeeping is cachetools'.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar, cast

from pydantic import TypeAdapter, ValidationError

from tenantry.kit.cache_l1 import CacheStats, Clock, Store
from tenantry.kit.metrics import record_cache, record_cache_eviction
from tenantry.kit.replica import fill_after

V = TypeVar("V")

_MISSING: Any = object()


@dataclass(frozen=True, slots=True)
class CacheSpec(Generic[V]):
    """A cache's name and bounds. `value_type` lets the L2 store values as JSON (through a
    pydantic TypeAdapter); a spec without one stays in process memory only."""

    name: str
    ttl_s: float
    max_size: int
    value_type: type[V] | None = None


_DECLARED: dict[str, CacheSpec[Any]] = {}


def declare(
    name: str, *, ttl_s: float, max_size: int, value_type: type[V] | None = None
) -> CacheSpec[V]:
    """Declare a named cache, once, beside the code that uses it (a module constant). The app
    builds every declared cache (`Caches.build`); the settings may override its bounds by name,
    `CACHE_<NAME>_TTL_S` and `CACHE_<NAME>_SIZE`. One declaration, nothing else to edit."""
    if name in _DECLARED:
        raise ValueError(f"a cache named {name!r} is declared already")
    spec = CacheSpec(name, ttl_s=ttl_s, max_size=max_size, value_type=value_type)
    _DECLARED[name] = spec
    return spec


def declared() -> list[CacheSpec[Any]]:
    """Every cache declared by the modules imported so far."""
    return list(_DECLARED.values())


class CacheBounds(Protocol):
    ttl_s: float | None
    size: int | None


@dataclass(frozen=True, slots=True)
class Rendered:
    """A response body made once from a cached entry, and its strong ETag."""

    body: bytes
    etag: str

    @classmethod
    def of(cls, body: bytes) -> Rendered:
        return cls(body, '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"')


class _LeaderGone(Exception):
    """The caller that was loading a key was cancelled; a waiting caller loads it instead."""


class _Flight:
    __slots__ = ("future", "stale")

    def __init__(self, future: asyncio.Future[Any]) -> None:
        self.future = future
        self.stale = False


def _retrieve(future: asyncio.Future[Any]) -> None:
    # A load may fail with nobody else waiting; reading the exception keeps asyncio quiet.
    if not future.cancelled():
        future.exception()


class SecondTier(Protocol):
    """The L2 (Redis) as a cache sees it; see kit/cache_redis.py."""

    async def get(self, cache: str, key: str) -> tuple[bytes | None, bytes | None] | None:
        """(value or None, generation or None), or None when the L2 cannot be asked."""

    async def put(
        self, cache: str, key: str, data: bytes, generation: bytes | None, ttl_s: float
    ) -> None:
        """Store unless the key was invalidated since `generation` was read."""


class NamedCache(Generic[V]):
    def __init__(self, spec: CacheSpec[V], *, clock: Clock = time.monotonic) -> None:
        self.spec = spec
        self.name = spec.name
        self._l1 = Store(spec.max_size, spec.ttl_s, clock, on_evict=self._evicted)
        self._adapter: TypeAdapter[V] | None = (
            TypeAdapter(spec.value_type) if spec.value_type is not None else None
        )
        self.l2: SecondTier | None = None
        self._inflight: dict[str, _Flight] = {}
        # key -> (the entry it was made from, its serialised form); see `rendered`.
        self._rendered: dict[str, tuple[Any, Rendered]] = {}
        self.hits = 0
        self.misses = 0
        self.loads = 0
        self.l2_hits = 0
        # When this process last applied an invalidation of this cache (time.monotonic(), set
        # by `Caches`): a fill reads the primary until a read replica holds it (`kit.replica`).
        self.invalidated_at = -math.inf

    # The counters above answer the stats endpoint; /metrics gets the same through
    # prometheus-client, whose counters also add up over several worker processes.

    def _hit(self) -> None:
        self.hits += 1
        record_cache(self.name, True)

    def _miss(self) -> None:
        self.misses += 1
        record_cache(self.name, False)

    def _evicted(self) -> None:
        record_cache_eviction(self.name)

    @property
    def shareable(self) -> bool:
        return self._adapter is not None

    @property
    def backend(self) -> str:
        return "memory+redis" if self.l2 is not None else "memory"

    def peek(self, key: str) -> V | None:
        """The L1 value, counted as a hit or a miss; never loads."""
        value = self._l1.get(key, _MISSING)
        if value is _MISSING:
            self._miss()
            return None
        self._hit()
        return cast(V, value)

    def put_local(self, key: str, value: V) -> None:
        self._l1[key] = value

    def keys(self) -> list[str]:
        return list(self._l1.keys())

    async def get_or_load(self, key: str, loader: Callable[[], Awaitable[V | None]]) -> V | None:
        """The cached value, else L2's, else `loader()`'s (None is returned, not cached)."""
        value = self._l1.get(key, _MISSING)
        if value is not _MISSING:
            self._hit()
            return cast(V, value)
        self._miss()
        while (flight := self._inflight.get(key)) is not None:
            try:
                # shield: a waiter that is cancelled must not cancel the others' load.
                return cast(V | None, await asyncio.shield(flight.future))
            except _LeaderGone:
                continue
        return await self._lead(key, loader)

    async def _lead(self, key: str, loader: Callable[[], Awaitable[V | None]]) -> V | None:
        flight = _Flight(asyncio.get_running_loop().create_future())
        flight.future.add_done_callback(_retrieve)
        self._inflight[key] = flight
        try:
            value = await self._fetch(key, loader, flight)
        except Exception as exc:
            self._land(key, flight)
            flight.future.set_exception(exc)
            raise
        except BaseException:
            self._land(key, flight)
            flight.future.set_exception(_LeaderGone())
            raise
        self._land(key, flight)
        flight.future.set_result(value)
        return value

    def _land(self, key: str, flight: _Flight) -> None:
        if self._inflight.get(key) is flight:
            del self._inflight[key]

    async def _fetch(
        self, key: str, loader: Callable[[], Awaitable[V | None]], flight: _Flight
    ) -> V | None:
        found = await self.l2.get(self.name, key) if self.l2 is not None else None
        if found is not None and found[0] is not None:
            value = self._decode(found[0])
            if value is not None:
                self.l2_hits += 1
                if not flight.stale:
                    self._l1[key] = value
                return value
        self.loads += 1
        if self.invalidated_at == -math.inf:  # never invalidated here: nothing to follow
            value = await loader()
        else:
            value = await fill_after(self.invalidated_at, loader)
        if value is not None and not flight.stale:
            self._l1[key] = value
            if self.l2 is not None and found is not None and self._adapter is not None:
                await self.l2.put(
                    self.name, key, self._adapter.dump_json(value), found[1], self.spec.ttl_s
                )
        return value

    def _decode(self, raw: bytes) -> V | None:
        assert self._adapter is not None
        try:
            return self._adapter.validate_json(raw)
        except ValidationError:
            # Written by an older release with another shape: treat as a miss.
            return None

    def drop_local(self, key: str | None) -> None:
        """Forget `key` (None: everything) here; a load in flight for it is not stored."""
        if key is None:
            self._l1.clear()
            self._rendered.clear()
            flights = list(self._inflight.values())
            self._inflight.clear()
        else:
            self._l1.pop(key, None)
            self._rendered.pop(key, None)
            flight = self._inflight.pop(key, None)
            flights = [flight] if flight is not None else []
        for flight in flights:
            flight.stale = True

    def rendered(self, key: str, value: V, render: Callable[[V], bytes] | None = None) -> Rendered:
        """`value`, this cache's entry for `key`, serialised once (`render`, by default the
        entry's JSON) with a strong ETag. Kept while the entry stays the same object: an
        invalidation, an expiry or a reload makes a new one, so the bytes can never outlive
        the data they were made from. At most `max_size` are kept, the oldest dropped first."""
        found = self._rendered.get(key)
        if found is not None and found[0] is value:
            return found[1]
        made = Rendered.of(render(value) if render is not None else self._json(value))
        if key not in self._rendered and len(self._rendered) >= self.spec.max_size:
            del self._rendered[next(iter(self._rendered))]
        self._rendered[key] = (value, made)
        return made

    def _json(self, value: V) -> bytes:
        if self._adapter is None:
            raise TypeError(f"the cache {self.name!r} has no value_type to render JSON with")
        return self._adapter.dump_json(value)

    def stats(self) -> CacheStats:
        self._l1.expire()
        lookups = self.hits + self.misses
        return CacheStats(
            name=self.name,
            backend=self.backend,
            size=len(self._l1),
            max_size=self.spec.max_size,
            ttl_s=self.spec.ttl_s,
            hits=self.hits,
            misses=self.misses,
            hit_rate=round(self.hits / lookups, 4) if lookups else 0.0,
            loads=self.loads,
            l2_hits=self.l2_hits,
            evictions=self._l1.evictions,
            expirations=self._l1.expirations,
        )
