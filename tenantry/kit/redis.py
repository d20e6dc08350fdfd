"""The process's one Redis client, made in the lifespan when `REDIS_URL` is set.

A blocking pool: under a burst, callers wait for a free connection (up to
`REDIS_POOL_TIMEOUT_S`) instead of failing with `MaxConnectionsError` as a plain pool does.
"""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis

from tenantry.config import Settings


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
    )
    return Redis(connection_pool=pool)
