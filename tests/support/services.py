"""Which PostgreSQL and Redis the tests use.

PostgreSQL: `TEST_DATABASE_URL` if set, else 127.0.0.1:5432 if it answers, else the embedded
server (under `var/test-pgdata`; `TEST_DATABASE_URL=embedded` forces it). Redis:
`TEST_REDIS_URL` if set, else 127.0.0.1:6379 if it answers, else Redis tests are skipped with
the reason. Under `CI=true` a missing service is a
failure, never a skip or a silent fallback.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import asyncpg
from redis import Redis as SyncRedis
from sqlalchemy.engine import make_url

from tenantry.kit.db import plain_url

ROOT = Path(__file__).resolve().parents[2]
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
LOCAL_PG = "postgresql://postgres@127.0.0.1:5432/postgres"
LOCAL_REDIS = "redis://127.0.0.1:6379/15"


class MissingService(RuntimeError):
    pass


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def postgres_admin_url() -> tuple[str, str]:
    """(URL of a database we may CREATE DATABASE from, where it came from)."""
    explicit = os.environ.get("TEST_DATABASE_URL")
    if explicit and explicit != "embedded":
        return explicit, "TEST_DATABASE_URL"
    if not explicit and _answers("127.0.0.1", 5432):
        return LOCAL_PG, "local server 127.0.0.1:5432"
    if IN_CI and not explicit:
        raise MissingService(
            "CI=true and no PostgreSQL: set TEST_DATABASE_URL or run one on 127.0.0.1:5432"
        )
    from tenantry.kit import embedded

    url = embedded.start(ROOT / "var" / "test-pgdata", database="postgres")
    return url, "embedded server (var/test-pgdata)"


def redis_url() -> str | None:
    explicit = os.environ.get("TEST_REDIS_URL")
    if explicit:
        return explicit
    parsed = make_url(LOCAL_REDIS.replace("redis://", "postgresql://"))
    if _answers(parsed.host or "127.0.0.1", parsed.port or 6379):
        return LOCAL_REDIS
    if IN_CI:
        raise MissingService("CI=true and no Redis: set TEST_REDIS_URL or run one on :6379")
    return None


async def create_database(admin_url: str, name: str) -> str:
    """A new, empty database `name` (dropped first if left over); its URL."""
    conn = await asyncpg.connect(plain_url(admin_url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


async def drop_database(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(plain_url(admin_url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def delete_redis_keys(url: str, prefix: str) -> None:
    """Only this test's keys: other runs share the server."""
    client = SyncRedis.from_url(url)
    try:
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        if keys:
            client.unlink(*keys)
    finally:
        client.close()
