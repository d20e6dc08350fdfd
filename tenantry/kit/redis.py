"""The process's one Redis client, made in the lifespan when `REDIS_URL` is set, and the
health of the link to it.

A blocking pool: under a burst, callers wait for a free connection (up to
`REDIS_POOL_TIMEOUT_S`) instead of failing with `MaxConnectionsError` as a plain pool does.

`RedisHealth` is a small circuit breaker shared by everything that talks to Redis (cache L2,
invalidation bus, state store): after a failure, callers skip Redis for `REDIS_RETRY_S`
instead of each paying a connect timeout, a gauge and one log line per interval say Redis is
down, and the first call that succeeds after the pause closes the circuit again.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from prometheus_client import Counter, Gauge
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from tenantry.config import Settings

log = logging.getLogger("tenantry.redis")

REDIS_UP = Gauge("tenantry_redis_up", "1 while Redis answers, 0 while it does not")
REDIS_ERRORS = Counter(
    "tenantry_redis_errors_total", "Failed Redis calls, by component", ["component"]
)

# What a call to an unreachable, restarting or overloaded Redis raises.
REDIS_FAILURES: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)

T = TypeVar("T")
F = TypeVar("F")


def make_client(settings: Settings) -> Redis | None:
    if not settings.redis_url:
        return None
    pool = BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=settings.redis_max_connections,
        timeout=settings.redis_pool_timeout_s,
        socket_connect_timeout=2,
        socket_timeout=2,
        health_check_interval=30,
        # One immediate retry (a pooled connection that died with a Redis restart reconnects),
        # not redis-py's default of three with seconds of backoff: callers have the L1 and
        # the database to fall back on, and RedisHealth spaces out the next attempts.
        retry=Retry(NoBackoff(), 1),
    )
    return Redis(connection_pool=pool)


class RedisHealth:
    """Up or down, with a pause before the next try and a rate-limited log line."""

    def __init__(
        self,
        *,
        retry_s: float = 1.0,
        log_interval_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.retry_s = retry_s
        self.log_interval_s = log_interval_s
        self.clock = clock
        self.up = True
        self.errors = 0
        self.last_error: str | None = None
        self.down_since: float | None = None
        self._retry_at = 0.0
        self._last_log = float("-inf")
        REDIS_UP.set(1)

    def usable(self) -> bool:
        """False while the circuit is open (Redis failed less than `retry_s` ago)."""
        return self.up or self.clock() >= self._retry_at

    def failed(self, component: str, exc: BaseException) -> None:
        now = self.clock()
        self.errors += 1
        self.last_error = f"{type(exc).__name__}: {exc}"
        REDIS_ERRORS.labels(component).inc()
        if self.up:
            self.up = False
            self.down_since = now
            REDIS_UP.set(0)
        self._retry_at = now + self.retry_s
        if now - self._last_log >= self.log_interval_s:
            self._last_log = now
            log.warning(
                "Redis unavailable (%s, from %s); serving from memory and the database, "
                "%d failed calls so far",
                self.last_error,
                component,
                self.errors,
            )

    def succeeded(self) -> None:
        if self.up:
            return
        self.up = True
        self.down_since = None
        REDIS_UP.set(1)
        log.warning("Redis is reachable again")

    async def call(self, component: str, call: Callable[[], Awaitable[T]], fallback: F) -> T | F:
        """`call()` through the circuit: `fallback` while it is open or when Redis fails (the
        failure recorded against `component`), the result otherwise."""
        if not self.usable():
            return fallback
        try:
            result = await call()
        except REDIS_FAILURES as exc:
            self.failed(component, exc)
            return fallback
        self.succeeded()
        return result
