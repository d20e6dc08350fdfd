"""The in-process tier (L1) of the named caches: cachetools' `TTLCache` (bounded LRU with a
per-entry deadline), counting evictions. It is only touched from the event loop's thread,
between awaits, so it needs no lock."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cachetools import TTLCache

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class CacheStats:
    name: str
    backend: str
    size: int
    max_size: int
    ttl_s: float
    hits: int
    misses: int
    hit_rate: float
    loads: int
    l2_hits: int
    evictions: int
    expirations: int


class Store(TTLCache[str, Any]):
    """cachetools' TTLCache, counting LRU evictions and expirations."""

    def __init__(
        self, maxsize: int, ttl: float, timer: Clock, *, on_evict: Callable[[], None]
    ) -> None:
        super().__init__(maxsize, ttl, timer=timer)
        self.evictions = 0
        self.expirations = 0
        self._on_evict = on_evict

    def popitem(self) -> tuple[str, Any]:
        item = super().popitem()
        self.evictions += 1
        self._on_evict()
        return item

    def expire(self, time: float | None = None) -> list[tuple[str, Any]]:
        expired = super().expire(time)
        self.expirations += len(expired)
        return expired
