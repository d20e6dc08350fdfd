"""The fixtures, in one place: a migrated database per test run, one rolled-back transaction
per test, and the real ASGI app (middleware included) driven through httpx. Helpers that test
modules import live in `tests/support/`."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tenantry.app import create_app
from tenantry.config import Settings
from tenantry.kit.db import Database, Reader, make_sessionmaker
from tenantry.kit.jobs import Jobs
from tenantry.kit.migrations import upgrade
from tenantry.kit.platform import Platform
from tests.support.services import (
    create_database,
    delete_redis_keys,
    drop_database,
    postgres_admin_url,
    redis_url,
)
from tests.support.sync import sync_worker
from tests.support.world import CommittedWorld, World


@pytest.fixture(scope="session")
def admin_url() -> str:
    url, source = postgres_admin_url()
    print(f"\ntests use PostgreSQL from the {source}")
    return url


@pytest.fixture(scope="session")
async def database_url(admin_url: str) -> AsyncIterator[str]:
    name = f"tenantry_test_{uuid.uuid4().hex[:8]}"
    url = await create_database(admin_url, name)
    await asyncio.to_thread(upgrade, url)
    yield url
    await drop_database(admin_url, name)


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return Settings(
        _env_file=None,
        database_url=database_url,
        expose_query_count=True,
        max_body_bytes=64 * 1024,
        jwt_secret="test-secret-" + "x" * 40,
        # Every test logs in from the same address; tests of the limits build their own app.
        rate_limit_default="100000/minute",
        rate_limit_auth="100000/minute",
        rate_limit_login_account="100000/minute",
        # The shared app's periodic jobs would run on whatever connection the running test
        # bound the app to, in the middle of its savepoints; tests call sweep/flush themselves.
        state_sweep_interval_s=86_400,
        api_key_usage_flush_s=86_400,
    )


@pytest.fixture(scope="session")
async def database(settings: Settings) -> AsyncIterator[Database]:
    db = Database(settings.database_url or "", settings)
    yield db
    await db.dispose()


@pytest.fixture
async def session_factory(database: Database) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Every session of this test, the app's included, runs inside one outer transaction that
    is rolled back at the end: request-scope commits only release savepoints."""
    async with database.engine.connect() as conn:
        outer = await conn.begin()
        reader = Reader.bound(conn)
        factory = make_sessionmaker(conn, reader, join_transaction_mode="create_savepoint")
        original = database.sessionmaker, database.reader
        database.sessionmaker, database.reader = factory, reader
        try:
            yield factory
        finally:
            database.sessionmaker, database.reader = original
            await outer.rollback()


@pytest.fixture
async def session(session_factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    async with session_factory() as s:
        yield s
        await s.commit()


@pytest.fixture(scope="session")
async def app(settings: Settings, database: Database) -> AsyncIterator[Any]:
    """The app with its lifespan running (state store, cache bus, background tasks)."""
    application = create_app(settings, database=database)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(params=["fast lane", "FastAPI"])
def both_lanes(request: pytest.FixtureRequest, app: Any) -> Iterator[str]:
    """Each test that uses this runs twice: hot routes served by the fast lane (`kit.lane`),
    then by FastAPI, to show both answer alike."""
    lane = app.state.lane
    lane.active = request.param == "fast lane"
    try:
        yield request.param
    finally:
        lane.active = True


@pytest.fixture
async def client(app: Any, session_factory: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


@pytest.fixture(scope="session")
def redis_available() -> str:
    url = redis_url()
    if url is None:
        pytest.skip("no Redis on 127.0.0.1:6379 and TEST_REDIS_URL unset")
    return url


@pytest.fixture
def redis_settings(settings: Settings, redis_available: str) -> Iterator[Settings]:
    """The test settings with Redis, under a key prefix of this test's own (deleted after)."""
    prefix = f"tenantry-test-{uuid.uuid4().hex[:12]}:"
    yield settings.model_copy(update={"redis_url": redis_available, "redis_prefix": prefix})
    delete_redis_keys(redis_available, prefix)


@pytest.fixture(params=["postgres", "redis"])
def mode_settings(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    """Each test that takes this runs twice: without Redis (table and LISTEN/NOTIFY) and with."""
    if request.param == "postgres":
        return settings
    return request.getfixturevalue("redis_settings")  # type: ignore[no-any-return]


@pytest.fixture
async def committed_db(settings: Settings) -> AsyncIterator[Database]:
    """A Database whose sessions really commit (not the per-test rolled-back transaction),
    for what needs real commits: LISTEN/NOTIFY, two app instances. Clean up what you make
    (see `CommittedWorld`)."""
    db = Database(settings.database_url or "", settings)
    yield db
    await db.dispose()


@pytest.fixture
async def world(session: AsyncSession, client: httpx.AsyncClient, app: Any) -> World:
    return World(session, client, app.state.platform)


@pytest.fixture
async def committed(committed_db: Database, settings: Settings) -> AsyncIterator[CommittedWorld]:
    world = CommittedWorld(committed_db, Platform.build(settings, committed_db))
    yield world
    await world.cleanup()


@pytest.fixture
async def worker(
    committed_db: Database, settings: Settings
) -> AsyncIterator[tuple[Platform, Jobs]]:
    """A worker's platform (and its jobs) that may call 127.0.0.1: `tests/support/sync.py`."""
    async with sync_worker(committed_db, settings) as found:
        yield found
