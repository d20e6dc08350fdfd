"""Named two-tier caches and their invalidation.

Each cache has a name, a maximum size, a TTL and counters. L1 is in-process
(`kit/cache_l1.py`); with `REDIS_URL` an L2 in Redis sits behind it (`kit/cache_redis.py`). A
miss is loaded once: concurrent callers for a missing key wait for the one load (no stampede).

Invalidation reaches every instance. A service registers what its change makes stale with
`invalidate_on_commit(session, cache, key)`; the request (or job) scope then, around its
commit, hands the list to `Caches`: inside the transaction it is staged on the PostgreSQL
bus (`NOTIFY`, delivered by PostgreSQL at commit, so never before the data and never lost
between commit and publish), and after the commit it is applied locally, deleted from L2 and
published on Redis. A load that was in flight when its key was invalidated still answers its
callers but is not stored: a cache is never filled from data that was about to change.

Keys of tenant data always start with the tenant id. Written by hand (the glue): single-flight,
the stale-load guard and the bus protocol; the LRU and TTL bookkeeping is cachetools'.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Generic, Protocol, TypeVar, cast

import orjson
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.kit.cache_l1 import CacheStats, Clock, Store
from tenantry.kit.metrics import record_cache, record_cache_eviction

log = logging.getLogger("tenantry.cache")

V = TypeVar("V")
# (cache name, key); a key of None stands for the whole cache.
Event = tuple[str, str | None]

_PENDING = "tenantry.invalidations"
_MISSING: Any = object()
# PostgreSQL refuses NOTIFY payloads of 8000 bytes or more; stay well under.
MAX_MESSAGE_BYTES = 7000
# Failed invalidations kept for replay when Redis comes back; past this, whole caches are
# cleared instead of single keys.
MAX_PENDING = 10_000


def invalidate_on_commit(session: AsyncSession, cache: str, key: str | None) -> None:
    """Mark `key` of `cache` (None: all of it) stale once this session's transaction commits."""
    session.info.setdefault(_PENDING, []).append((cache, key))


def take_invalidations(session: AsyncSession) -> list[Event]:
    """What the session marked stale, each once (a whole-cache clear covers its keys)."""
    return _dedupe(cast(list[Event], session.info.pop(_PENDING, [])))


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
        value = await loader()
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


class Bus(Protocol):
    """Carries invalidations between instances: kit/cache_pg.py or kit/cache_redis.py."""

    ready: asyncio.Event
    # True: the messages go out inside the transaction (`stage`: PostgreSQL NOTIFY, delivered
    # by the commit); False: after it (`send`: Redis). Messages are encoded for that one only.
    in_transaction: bool

    async def stage(self, session: AsyncSession, messages: list[bytes]) -> None:
        """Inside the transaction, before it commits; only called when `in_transaction`."""

    async def send(self, events: list[Event], messages: list[bytes]) -> bool:
        """After the commit (Redis: delete from L2 and publish, `messages` empty when
        `in_transaction`); False when it failed."""

    async def listen(
        self,
        on_message: Callable[[bytes | str], None],
        on_reconnect: Callable[[], Awaitable[None]],
    ) -> None:
        """Deliver every message until cancelled; reconnect by itself."""


class Caches:
    """The process's caches, the L2 and the bus; one per app instance (`app.state.caches`)."""

    def __init__(self, *, clock: Clock = time.monotonic, instance_id: str | None = None) -> None:
        self.clock = clock
        self.instance_id = instance_id or uuid.uuid4().hex
        self._caches: dict[str, NamedCache[Any]] = {}
        self.l2: SecondTier | None = None
        self.bus: Bus | None = None
        self._failed: list[Event] = []

    @classmethod
    def build(cls, overrides: Mapping[str, CacheBounds], **kwargs: Any) -> Caches:
        """Every declared cache, with the bounds `overrides` gives by name; an override naming
        no declared cache is an error (a typo would otherwise pass silently)."""
        specs = declared()
        unknown = sorted(set(overrides) - {spec.name for spec in specs})
        if unknown:
            names = ", ".join(sorted(spec.name for spec in specs))
            raise ValueError(
                f"CACHE_<NAME>_TTL_S / CACHE_<NAME>_SIZE name no cache: {', '.join(unknown)}"
                f" (the caches are: {names})"
            )
        caches = cls(**kwargs)
        for spec in specs:
            bounds = overrides.get(spec.name)
            if bounds is not None:
                spec = replace(
                    spec,
                    ttl_s=bounds.ttl_s if bounds.ttl_s is not None else spec.ttl_s,
                    max_size=bounds.size if bounds.size is not None else spec.max_size,
                )
            caches.add(spec)
        return caches

    def add(self, spec: CacheSpec[V]) -> NamedCache[V]:
        if spec.name in self._caches:
            raise ValueError(f"a cache named {spec.name!r} exists already")
        cache = NamedCache(spec, clock=self.clock)
        cache.l2 = self.l2 if cache.shareable else None
        self.register(cache)
        return cache

    def register(self, cache: NamedCache[Any]) -> None:
        self._caches[cache.name] = cache

    def cache(self, spec: CacheSpec[V]) -> NamedCache[V]:
        return cast(NamedCache[V], self._caches[spec.name])

    def get(self, name: str) -> NamedCache[Any] | None:
        return self._caches.get(name)

    def __iter__(self) -> Any:
        return iter(self._caches.values())

    def attach(self, bus: Bus, l2: SecondTier | None = None) -> None:
        self.bus = bus
        self.l2 = l2
        for cache in self._caches.values():
            cache.l2 = l2 if cache.shareable else None

    # --- invalidation -----------------------------------------------------------------------

    def _messages(self, events: list[Event]) -> list[bytes]:
        """The events as bus messages of at most MAX_MESSAGE_BYTES each (one event's size
        counted once, plus its comma)."""
        messages: list[bytes] = []
        empty = len(orjson.dumps({"o": self.instance_id, "e": []}))
        batch: list[Event] = []
        size = empty
        for event in events:
            grows = len(orjson.dumps(event)) + 1
            if batch and size + grows > MAX_MESSAGE_BYTES:
                messages.append(orjson.dumps({"o": self.instance_id, "e": batch}))
                batch, size = [], empty
            batch.append(event)
            size += grows
        if batch:
            messages.append(orjson.dumps({"o": self.instance_id, "e": batch}))
        return messages

    def _after_commit(self, events: list[Event]) -> list[bytes]:
        """The messages `send` carries: none when the bus sent them inside the transaction."""
        assert self.bus is not None
        return [] if self.bus.in_transaction else self._messages(events)

    async def stage(self, session: AsyncSession, events: list[Event]) -> None:
        if self.bus is not None and self.bus.in_transaction and events:
            await self.bus.stage(session, self._messages(events))

    async def publish(self, events: list[Event]) -> None:
        """After the commit: drop here, then tell the L2 and the other instances. `events` come
        from `take_invalidations`, each once."""
        if not events:
            return
        self.apply(events)
        if self.bus is not None and not await self.bus.send(events, self._after_commit(events)):
            self._remember(events)

    def clear_local(self) -> None:
        """Empty every cache of this process only (the benchmark's cold scenarios)."""
        for cache in self._caches.values():
            cache.drop_local(None)

    def apply(self, events: Iterable[Event]) -> None:
        for name, key in events:
            cache = self._caches.get(name)
            if cache is not None:
                cache.drop_local(key)

    def on_message(self, payload: bytes | str) -> None:
        try:
            message = orjson.loads(payload)
            if message.get("o") == self.instance_id:
                return  # ours: applied already, before it was sent
            self.apply((str(name), None if key is None else str(key)) for name, key in message["e"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError):
            log.warning("ignoring a malformed cache invalidation message")

    async def on_reconnect(self) -> None:
        """The bus was down: messages may have been missed, so forget everything here and
        replay what this instance failed to send."""
        self.clear_local()
        if self._failed and self.bus is not None:
            failed, self._failed = self._failed, []
            if not await self.bus.send(failed, self._after_commit(failed)):
                self._remember(failed)

    def _remember(self, events: list[Event]) -> None:
        self._failed = _dedupe(self._failed + events)
        if len(self._failed) > MAX_PENDING:
            self._failed = [(name, None) for name in sorted({n for n, _ in self._failed})]

    async def listen(self) -> None:
        if self.bus is not None:
            await self.bus.listen(self.on_message, self.on_reconnect)

    def stats(self) -> list[CacheStats]:
        return [cache.stats() for cache in self._caches.values()]


def _dedupe(events: list[Event]) -> list[Event]:
    whole = {name for name, key in events if key is None}
    seen: dict[Event, None] = {}
    for name, key in events:
        if key is None or name not in whole:
            seen.setdefault((name, key), None)
    return list(seen)
