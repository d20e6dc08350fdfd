"""A read replica (DATABASE_READ_URL) against a real streaming replica: a primary made with
initdb and a standby made from it with `pg_basebackup -R`, both from the suite's PostgreSQL
binaries, on spare ports (`tests/support/replica.py`).

Which server answered is shown twice over: by the data (the replica's replay is paused, so a
row written since exists on the primary only) and by the pool a request took its connection
from (the primary's or the replica's).
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import pytest
from sqlalchemy import bindparam, func, select
from starlette.requests import Request

from tenantry.app import create_app
from tenantry.config import Settings
from tenantry.crm.models import Customer
from tenantry.kit.db import Database, LeanQuery, reader_of, session_scope
from tenantry.kit.deps import get_reader, get_session
from tenantry.kit.ids import new_id
from tenantry.kit.migrations import upgrade
from tenantry.kit.platform import Platform
from tenantry.kit.replica import RoutingSession, fill_after
from tenantry.tenants.models import Tenant
from tests.support.platform import eventually, metric_samples, running, sample_value
from tests.support.replica import Checkouts, Pair, Unavailable, free_port, make_pair, until
from tests.support.services import IN_CI
from tests.support.world import CommittedWorld

MAX_LAG_S = 2.0
IN_RECOVERY = select(func.pg_is_in_recovery())


@pytest.fixture(scope="module")
def pair(admin_url: str) -> Iterator[Pair]:
    """Built once for the module (about 5 s): a migrated primary and its running replica."""
    try:
        made = make_pair(admin_url)
    except Unavailable as exc:
        if IN_CI:
            raise
        pytest.skip(f"no streaming replica to test against: {exc}")
    try:
        print(f"\nreplica tests use PostgreSQL binaries from {made.source}")
        asyncio.run(_create_database(made.url(made.primary_port)))
        upgrade(made.url(made.primary_port, "tenantry"))
        made.make_replica()
        yield made
    finally:
        made.stop()


async def _create_database(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute('CREATE DATABASE "tenantry"')
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def replica_settings(settings: Settings, pair: Pair) -> Settings:
    return settings.model_copy(
        update={
            "database_url": pair.url(pair.primary_port, "tenantry"),
            "database_read_url": pair.url(pair.replica_port, "tenantry"),
            "database_read_max_lag_s": MAX_LAG_S,
        }
    )


@pytest.fixture
async def db(replica_settings: Settings) -> AsyncIterator[Database]:
    database = Database(replica_settings.database_url or "", replica_settings)
    yield database
    await database.dispose()


@pytest.fixture
async def on_replica(pair: Pair) -> AsyncIterator[asyncpg.Connection[Any]]:
    """A connection to the replica that pauses and resumes its replay (resumed after)."""
    conn: asyncpg.Connection[Any] = await asyncpg.connect(pair.url(pair.replica_port, "tenantry"))
    try:
        yield conn
    finally:
        await conn.execute("SELECT pg_wal_replay_resume()")
        await conn.close()


async def _pause(conn: asyncpg.Connection[Any], db: Database) -> None:
    """Pause the replica's replay, then wait for a probe that finds it caught up all the
    same (nothing written since): from here any write leaves it behind."""
    await conn.execute("SELECT pg_wal_replay_pause()")
    state = "SELECT pg_get_wal_replay_pause_state()"
    async with asyncio.timeout(10):
        while await conn.fetchval(state) != "paused":  # noqa: ASYNC110 - the server's state
            await asyncio.sleep(0.02)
    replica = db.replica
    assert replica is not None
    paused_at = time.monotonic()
    await until(lambda: replica.covered_at > paused_at and replica.fresh(), what="a probe")


def _names(r: Any) -> set[str]:
    assert r.status_code == 200, r.text
    return {c["name"] for c in r.json()["items"]}


async def test_gets_read_the_replica_within_the_bound_and_writes_read_their_own(
    db: Database, replica_settings: Settings, on_replica: asyncpg.Connection[Any]
) -> None:
    app = create_app(replica_settings, database=db)
    replica = db.replica
    assert replica is not None
    primary, replica_pool = Checkouts(db.engine), Checkouts(replica.engine)
    async with running(app) as client:
        world = CommittedWorld(db, Platform.build(replica_settings, db))
        world.client = client
        owner = await world.user(await world.tenant(), "owner")
        await until(replica.fresh, what="the replica in use")
        before = await client.post(
            "/api/v1/customers", json={"name": "Before"}, headers=owner.headers
        )
        assert before.status_code == 201, before.text
        written = time.monotonic()
        await until(lambda: replica.covered_at > written, what="the replica to replay it")

        await _pause(on_replica, db)
        # A POST uses the primary throughout: its write, and the lead's check that the
        # customer exists, read what the replica does not have.
        r = await client.post("/api/v1/customers", json={"name": "During"}, headers=owner.headers)
        assert r.status_code == 201, r.text
        assert r.json()["name"] == "During"
        lead = await client.post(
            "/api/v1/leads", json={"customer_id": r.json()["id"]}, headers=owner.headers
        )
        assert lead.status_code == 201, lead.text
        during = f"/api/v1/customers/{r.json()['id']}"

        # Inside the bound, GETs read the replica, which has not replayed those writes: the
        # list (a session) and the customer (the lean path, no session).
        assert replica.fresh()
        primary.take(), replica_pool.take()
        assert _names(await client.get("/api/v1/customers", headers=owner.headers)) == {"Before"}
        assert (await client.get(during, headers=owner.headers)).status_code == 404
        assert (primary.take(), replica_pool.take()) == (0, 2)

        # Past the bound, they read the primary and see everything.
        await until(lambda: not replica.fresh(), what="the bound to pass")
        customers = await client.get("/api/v1/customers", headers=owner.headers)
        assert _names(customers) == {"Before", "During"}
        assert (await client.get(during, headers=owner.headers)).status_code == 200
        assert (primary.take(), replica_pool.take()) == (2, 0)
        # Information only: the instance stays ready, and says where reads go.
        ready = await client.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"]["replica"].endswith("reads go to the primary")
        assert "behind, more than DATABASE_READ_MAX_LAG_S" in ready.json()["checks"]["replica"]

        async def lag_past_the_bound() -> bool:
            samples = await metric_samples(client)
            return sample_value(samples, "tenantry_db_replica_lag_seconds") > MAX_LAG_S

        await eventually(lag_past_the_bound)

        # Replay resumed, the replica catches up and serves the reads again.
        await on_replica.execute("SELECT pg_wal_replay_resume()")
        await until(replica.fresh, what="the replica back in use")
        primary.take(), replica_pool.take()
        customers = await client.get("/api/v1/customers", headers=owner.headers)
        assert _names(customers) == {"Before", "During"}
        assert (primary.take(), replica_pool.take()) == (0, 1)
        assert (await client.get("/readyz")).json()["checks"]["replica"].startswith("ok: ")
        assert (
            0
            <= sample_value(await metric_samples(client), "tenantry_db_replica_lag_seconds")
            < MAX_LAG_S
        )


async def test_a_read_session_moves_to_the_primary_at_its_first_write(db: Database) -> None:
    """What a GET's session does (`read_sessionmaker`), statement by statement."""
    replica = db.replica
    assert replica is not None and db.read_sessionmaker is not None
    tracking = asyncio.create_task(replica.track())
    try:
        async with session_scope(db.sessionmaker) as s:
            tenant = Tenant(slug=f"replica-{uuid.uuid4().hex[:8]}", name="Replica")
            s.add(tenant)
        tenant_id = tenant.id
        await until(replica.fresh, what="the replica in use")
        by_id = LeanQuery.of(select(Customer.name).where(Customer.id == bindparam("id")))
        async with session_scope(db.read_sessionmaker) as session:
            assert isinstance(session.sync_session, RoutingSession)
            assert await session.scalar(IN_RECOVERY) is True  # read: the replica
            customer = Customer(tenant_id=tenant_id, id=new_id(), name="Written in a GET")
            session.add(customer)
            await session.flush()  # the first write: the primary from here on
            assert await session.scalar(IN_RECOVERY) is False
            # Its own write, on the ORM path and on the lean path (the session's connection).
            assert await session.get(Customer, (tenant_id, customer.id)) is customer
            row = await reader_of(session).one_in(session, by_id, id=customer.id)
            assert row is not None and row["name"] == "Written in a GET"
        # A savepoint or FOR UPDATE is a write too; so is a bare connection (raw driver work).
        for start in ("savepoint", "for update", "connection"):
            async with session_scope(db.read_sessionmaker) as session:
                assert await session.scalar(IN_RECOVERY) is True
                if start == "savepoint":
                    async with session.begin_nested():
                        pass
                elif start == "for update":
                    await session.execute(select(Customer.id).limit(1).with_for_update())
                else:
                    await session.connection()
                assert await session.scalar(IN_RECOVERY) is False, start
        # The lean reader of GET requests: the replica, outside a session.
        assert db.read_reader is not None
        assert (await db.read_reader.one(LeanQuery.of(IN_RECOVERY)))[0] is True
        # Jobs, the CLI and the worker use `sessionmaker`: the primary throughout.
        async with session_scope(db.sessionmaker) as session:
            assert await session.scalar(IN_RECOVERY) is False
    finally:
        tracking.cancel()
        await asyncio.gather(tracking, return_exceptions=True)


async def test_a_cache_filled_after_an_invalidation_reads_the_primary(
    db: Database, replica_settings: Settings, on_replica: asyncpg.Connection[Any]
) -> None:
    """`customer_insights` (a GET's lean path, a generation-keyed list): a write that drops
    the list is followed by a fill from the primary while the replica lacks that write."""
    app = create_app(replica_settings, database=db)
    replica = db.replica
    assert replica is not None
    primary, replica_pool = Checkouts(db.engine), Checkouts(replica.engine)
    insights = "/api/v1/intelligence/customers"
    async with running(app) as client:
        world = CommittedWorld(db, Platform.build(replica_settings, db))
        world.client = client
        owner = await world.user(await world.tenant(), "owner")
        await until(replica.fresh, what="the replica in use")
        before = await client.post(
            "/api/v1/customers", json={"name": "Before"}, headers=owner.headers
        )
        assert before.status_code == 201, before.text
        written = time.monotonic()
        await until(lambda: replica.covered_at > written, what="the replica to replay it")
        await _pause(on_replica, db)

        # A miss after an invalidation the replica holds already ("Before"): the replica.
        primary.take(), replica_pool.take()
        assert _names(await client.get(f"{insights}?limit=10", headers=owner.headers)) == {"Before"}
        assert (primary.take(), replica_pool.take()) == (0, 1)

        # A write the replica has not replayed drops the tenant's list ...
        r = await client.post("/api/v1/customers", json={"name": "During"}, headers=owner.headers)
        assert r.status_code == 201, r.text
        during = time.monotonic()
        # ... so its next fill reads the primary and caches the write,
        primary.take(), replica_pool.take()
        assert _names(await client.get(insights, headers=owner.headers)) == {"Before", "During"}
        assert (primary.take(), replica_pool.take()) == (1, 0)
        # while a read that fills no cache still goes to the replica, which lacks it,
        assert _names(await client.get("/api/v1/customers", headers=owner.headers)) == {"Before"}
        assert (primary.take(), replica_pool.take()) == (0, 1)
        assert replica.fresh(), "the replica stayed within its bound throughout"
        # and the page is served from the cache with the write in it.
        assert _names(await client.get(insights, headers=owner.headers)) == {"Before", "During"}
        assert (primary.take(), replica_pool.take()) == (0, 0)

        # Once the replica holds the write (before the bound has passed), fills read it again.
        await on_replica.execute("SELECT pg_wal_replay_resume()")
        await until(lambda: replica.covered_at > during, what="the replica to replay it")
        page = await client.get(f"{insights}?limit=5", headers=owner.headers)
        assert _names(page) == {"Before", "During"}
        assert (primary.take(), replica_pool.take()) == (0, 1)


async def test_a_fill_the_replica_cannot_serve_reads_the_primary(db: Database) -> None:
    """`fill_after`, statement by statement: in a GET's session and on its lean path."""
    replica = db.replica
    assert replica is not None and db.read_sessionmaker is not None
    assert db.read_reader is not None
    tracking = asyncio.create_task(replica.track())
    in_recovery = LeanQuery.of(IN_RECOVERY)
    try:
        await until(replica.fresh, what="the replica in use")
        lacks = math.inf  # an invalidation the replica does not hold (nor ever will)
        async with session_scope(db.read_sessionmaker) as session:
            assert await session.scalar(IN_RECOVERY) is True  # reading on the replica

            async def fill() -> tuple[bool, bool]:
                orm = await session.scalar(IN_RECOVERY)
                lean = await reader_of(session).one_in(session, in_recovery)
                assert orm is not None and lean is not None
                return orm, lean[0]

            # The fill's statements go to the primary, beside the replica's connection ...
            assert await fill_after(lacks, fill) == (False, False)
            # ... and the session's other reads stay where they were.
            assert await session.scalar(IN_RECOVERY) is True
            # A fill whose invalidation the replica holds reads it.
            assert await fill_after(replica.covered_at - 1, fill) == (True, True)
        # A session whose first read is such a fill reads the primary from then on.
        async with session_scope(db.read_sessionmaker) as session:
            assert await fill_after(lacks, lambda: session.scalar(IN_RECOVERY)) is False
            assert await session.scalar(IN_RECOVERY) is False
        # The lean reader outside a session.
        reader = db.read_reader
        assert (await fill_after(lacks, lambda: reader.one(in_recovery)))[0] is False
        assert (await reader.one(in_recovery))[0] is True
    finally:
        tracking.cancel()
        await asyncio.gather(tracking, return_exceptions=True)


def _request(app: Any, method: str) -> Request:
    return Request({"type": "http", "method": method, "app": app, "headers": []})


async def test_the_method_picks_the_factory(db: Database, replica_settings: Settings) -> None:
    app = create_app(replica_settings, database=db)
    for method, routed in (("GET", True), ("HEAD", True), ("POST", False), ("DELETE", False)):
        async for session in get_session(_request(app, method)):
            assert isinstance(session.sync_session, RoutingSession) is routed, method
        reader = await get_reader(_request(app, method))
        assert (reader is db.read_reader) is routed, method


async def test_without_a_read_url_nothing_changes(database: Database, app: Any) -> None:
    assert database.replica is None
    assert (database.read_reader, database.read_sessionmaker) == (None, None)
    for method in ("GET", "POST"):
        async for session in get_session(_request(app, method)):
            assert not isinstance(session.sync_session, RoutingSession)
        assert await get_reader(_request(app, method)) is database.reader


async def test_an_unreachable_replica_is_not_read(replica_settings: Settings) -> None:
    nowhere = f"postgresql://postgres@127.0.0.1:{free_port()}/tenantry"
    settings = replica_settings.model_copy(
        update={"database_read_url": nowhere, "db_connect_timeout_s": 1}
    )
    db = Database(settings.database_url or "", settings)
    try:
        replica = db.replica
        assert replica is not None
        app = create_app(settings, database=db)
        async with running(app) as client:
            await until(lambda: replica.problem != "not measured yet", what="a probe")
            assert not replica.fresh() and math.isinf(replica.lag_s)
            ready = await client.get("/readyz")
            assert ready.status_code == 200, ready.text
            line = ready.json()["checks"]["replica"]
            assert line.startswith("unavailable: ") and line.endswith("reads go to the primary")
            async for session in get_session(_request(app, "GET")):
                assert await session.scalar(IN_RECOVERY) is False
    finally:
        await db.dispose()


async def test_a_read_url_that_is_not_a_standby_is_not_read(replica_settings: Settings) -> None:
    """A promoted replica follows the old primary no more: never read from it."""
    settings = replica_settings.model_copy(
        update={"database_read_url": replica_settings.database_url}
    )
    db = Database(settings.database_url or "", settings)
    try:
        replica = db.replica
        assert replica is not None
        tracking = asyncio.create_task(replica.track())
        await until(lambda: replica.problem != "not measured yet", what="a probe")
        tracking.cancel()
        await asyncio.gather(tracking, return_exceptions=True)
        assert not replica.fresh()
        assert replica.describe().startswith("not a standby")
    finally:
        await db.dispose()
