"""The process's named caches and their invalidation on every instance.

A service registers what its change makes stale with `invalidate_on_commit(session, cache,
key)`; the request (or job) scope then, around its commit, hands the list to `Caches`: inside
the transaction it is staged on the PostgreSQL bus (`NOTIFY`, delivered by PostgreSQL at
commit, so never before the data and never lost between commit and publish), and after the
commit it is applied locally, deleted from L2 and published on Redis. Written by hand: the bus
protocol (which messages, how split, what is replayed after an outage).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any, Protocol, TypeVar, cast, runtime_checkable

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.kit.cache import (
    CacheBounds,
    CacheSpec,
    NamedCache,
    SecondTier,
    declared,
)
from tenantry.kit.cache_l1 import CacheStats, Clock

log = logging.getLogger("tenantry.cache")

V = TypeVar("V")
Event = tuple[str, str | None]

_PENDING = "tenantry.invalidations"
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


# Names caches had in earlier releases' settings (CACHE_SETTINGS_TTL_S, CACHE_TOKEN_SIZE).
FORMER_NAMES = {"settings": "tenant_settings", "token": "token_claims"}


def unknown_overrides(overrides: Mapping[str, Any]) -> list[str]:
    """Names in `overrides` that match no declared cache: a typo, or a variable of something
    else that happens to look like ours. Call it once every module is imported."""
    known = {spec.name for spec in declared()}
    return sorted(n for n in overrides if FORMER_NAMES.get(n, n) not in known)


class Bus(Protocol):
    """Carries invalidations between instances: kit/cache_pg.py or kit/cache_redis.py."""

    ready: asyncio.Event

    async def send(self, events: list[Event], messages: list[bytes]) -> bool:
        """After the commit (Redis: delete from L2 and publish; `messages` is empty for a bus
        that staged them in the transaction); False when it failed."""

    async def listen(
        self,
        on_message: Callable[[bytes | str], None],
        on_reconnect: Callable[[], Awaitable[None]],
    ) -> None:
        """Deliver every message until cancelled; reconnect by itself."""


@runtime_checkable
class StagingBus(Bus, Protocol):
    """A bus whose messages go out inside the transaction (PostgreSQL NOTIFY, delivered by the
    commit itself); a bus without `stage` (Redis) sends them after it, in `send`. Messages are
    encoded for the one way the bus takes only."""

    async def stage(self, session: AsyncSession, messages: list[bytes]) -> None:
        """Inside the transaction, before it commits."""


class Caches:
    """The process's caches, the L2 and the bus; one per app instance (`app.state.caches`)."""

    def __init__(self, *, clock: Clock = time.monotonic, instance_id: str | None = None) -> None:
        self.clock = clock
        self.instance_id = instance_id or uuid.uuid4().hex
        self._caches: dict[str, NamedCache[Any]] = {}
        self.l2: SecondTier | None = None
        self.bus: Bus | None = None
        self._staging: StagingBus | None = None
        self._failed: list[Event] = []

    @classmethod
    def build(cls, overrides: Mapping[str, CacheBounds], **kwargs: Any) -> Caches:
        """Every declared cache, with the bounds `overrides` gives by name (or by a name it had
        before, `FORMER_NAMES`); see `unknown_overrides` for the names that match none."""
        overrides = {FORMER_NAMES.get(name, name): bounds for name, bounds in overrides.items()}
        specs = declared()
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
        self._staging = bus if isinstance(bus, StagingBus) else None
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
        return [] if self._staging is not None else self._messages(events)

    async def stage(self, session: AsyncSession, events: list[Event]) -> None:
        if self._staging is not None and events:
            await self._staging.stage(session, self._messages(events))

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
        """Drop what `events` name here, noting when (`NamedCache.invalidated_at`: a fill
        follows it, `kit.replica.fill_after`)."""
        now = time.monotonic()
        for name, key in events:
            cache = self._caches.get(name)
            if cache is not None:
                cache.drop_local(key)
                cache.invalidated_at = now

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
        replay what this instance failed to send. A missed invalidation is as recent as now."""
        self.clear_local()
        now = time.monotonic()
        for cache in self._caches.values():
            cache.invalidated_at = now
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

    async def distrust_while_deaf(self, names: Iterable[str], trust_s: float) -> None:
        """While the bus is down this instance cannot hear another's invalidations, a revoked
        key or a deactivated user included: every `trust_s` seconds meanwhile, the caches
        `names` (who may act) are emptied here, so nothing in them is trusted for longer.
        (Once the bus is back, `on_reconnect` empties every cache.)"""
        watched = [cache for name in names if (cache := self._caches.get(name)) is not None]
        while True:
            await asyncio.sleep(trust_s)
            bus = self.bus
            if bus is not None and not bus.ready.is_set():
                for cache in watched:
                    cache.drop_local(None)

    def stats(self) -> list[CacheStats]:
        return [cache.stats() for cache in self._caches.values()]


def _dedupe(events: list[Event]) -> list[Event]:
    whole = {name for name, key in events if key is None}
    seen: dict[Event, None] = {}
    for name, key in events:
        if key is None or name not in whole:
            seen.setdefault((name, key), None)
    return list(seen)
