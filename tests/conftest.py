"""Test fixtures: a migrated database per test run, one rolled-back transaction per test, and
the real ASGI app (middleware included) driven through httpx."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
from redis import Redis as SyncRedis
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tenantry.app import create_app
from tenantry.config import Settings
from tenantry.kit.context import count_queries
from tenantry.kit.db import (
    Database,
    Reader,
    make_sessionmaker,
    plain_url,
    session_scope,
)
from tenantry.kit.migrations import upgrade
from tenantry.kit.tenancy import TenantScope
from tenantry.tenants import service as tenants
from tenantry.tenants.models import Tenant
from tenantry.users import service as users
from tests.services import postgres_admin_url, redis_url

PASSWORD = "correct horse battery staple"


async def create_database(admin_url: str, name: str) -> str:
    conn = await asyncpg.connect(plain_url(admin_url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    from sqlalchemy.engine import make_url

    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


async def drop_database(admin_url: str, name: str) -> None:
    conn = await asyncpg.connect(plain_url(admin_url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


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


def delete_redis_keys(url: str, prefix: str) -> None:
    """Only this test's keys: other runs share the server."""
    client = SyncRedis.from_url(url)
    try:
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        if keys:
            client.unlink(*keys)
    finally:
        client.close()


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


@asynccontextmanager
async def running(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """Run an app's lifespan and give a client for it; waits until its cache bus listens."""
    async with app.router.lifespan_context(app):
        bus = app.state.caches.bus
        await asyncio.wait_for(bus.ready.wait(), 10)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            yield c


# --- data ------------------------------------------------------------------------------------


@dataclass
class Account:
    id: uuid.UUID
    tenant_id: uuid.UUID
    email: str
    role: str
    headers: dict[str, str]


class World:
    """Builds tenants and users through the services, and logs them in through the API."""

    def __init__(self, session: AsyncSession, client: httpx.AsyncClient) -> None:
        self.session = session
        self.client = client

    async def tenant(self, slug: str | None = None) -> uuid.UUID:
        slug = slug or f"t-{uuid.uuid4().hex[:10]}"
        tenant = await tenants.provision(self.session, slug=slug, name=slug.title())
        await self.session.commit()
        return tenant.id

    async def user(
        self,
        tenant_id: uuid.UUID,
        role: str = "member",
        *,
        account_type: str = "customer",
        login: bool = True,
        email: str | None = None,
    ) -> Account:
        email = email or f"{role}-{uuid.uuid4().hex[:10]}@example.com"
        user = await users.create_user(
            self.session,
            TenantScope(tenant_id),
            email=email,
            full_name=f"{role.title()} User",
            password=PASSWORD,
            role=role,
            account_type=account_type,
        )
        await self.session.commit()
        headers: dict[str, str] = {}
        if login:
            headers = await self.login(email)
        return Account(user.id, tenant_id, email, role, headers)

    async def login(self, email: str, password: str = PASSWORD) -> dict[str, str]:
        r = await self.client.post(
            "/api/v1/auth/login", json={"email": email, "password": password}
        )
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['access_token']}"}


@pytest.fixture
async def world(session: AsyncSession, client: httpx.AsyncClient) -> World:
    return World(session, client)


class CommittedWorld:
    """Tenants and users that are really committed (for tests with several app instances);
    every tenant made here is deleted, with its users, at the end of the test."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.tenants: list[uuid.UUID] = []

    async def tenant(self) -> uuid.UUID:
        slug = f"c-{uuid.uuid4().hex[:10]}"
        async with session_scope(self.db.sessionmaker) as s:
            tenant = await tenants.provision(s, slug=slug, name=slug.title())
        self.tenants.append(tenant.id)
        return tenant.id

    async def user(
        self, tenant_id: uuid.UUID, role: str = "member", *, account_type: str = "customer"
    ) -> Account:
        email = f"{role}-{uuid.uuid4().hex[:10]}@example.com"
        async with session_scope(self.db.sessionmaker) as s:
            user = await users.create_user(
                s,
                TenantScope(tenant_id),
                email=email,
                full_name=f"{role.title()} User",
                password=PASSWORD,
                role=role,
                account_type=account_type,
            )
        return Account(user.id, tenant_id, email, role, {})

    async def cleanup(self) -> None:
        if self.tenants:
            async with session_scope(self.db.sessionmaker) as s:
                await s.execute(delete(Tenant).where(Tenant.id.in_(self.tenants)))


@pytest.fixture
async def committed(committed_db: Database) -> AsyncIterator[CommittedWorld]:
    world = CommittedWorld(committed_db)
    yield world
    await world.cleanup()


async def login(client: httpx.AsyncClient, email: str) -> dict[str, str]:
    r = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


# --- assertions ------------------------------------------------------------------------------


@contextmanager
def assert_max_queries(n: int) -> Iterator[Any]:
    """Fails when the block (requests through the app included) runs more than `n` queries."""
    with count_queries(keep_statements=True) as counter:
        yield counter
    assert counter.count <= n, f"{counter.count} queries, at most {n} allowed:\n" + "\n".join(
        counter.statements
    )


def queries(response: httpx.Response) -> int:
    return int(response.headers["x-db-queries"])


def assert_problem(
    response: httpx.Response, status: int, slug: str | None = None
) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["title"]
    assert body["type"].startswith("https://")
    if slug:
        assert body["type"].endswith("/" + slug), body["type"]
    return body
