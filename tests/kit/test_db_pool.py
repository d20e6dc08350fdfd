"""The pool's pre-ping policy and the lean read path, against a real server."""

from __future__ import annotations

import pytest
from sqlalchemy import bindparam, select, text
from sqlalchemy.exc import DBAPIError

from tenantry.config import Settings
from tenantry.kit.context import count_queries
from tenantry.kit.db import LeanQuery, Reader, make_engine
from tenantry.tenants.models import Tenant
from tests.support.world import World


async def _kill_pooled_backend(engine) -> None:  # type: ignore[no-untyped-def]
    async with engine.connect() as conn:
        pid = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
    async with make_engine(engine.url, Settings(_env_file=None)).connect() as killer:
        await killer.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})


@pytest.mark.parametrize(
    ("policy", "survives"), [("idle", True), ("always", True), ("never", False)]
)
async def test_a_dead_pooled_connection_is_replaced_when_pinged(
    database_url: str, policy: str, survives: bool
) -> None:
    settings = Settings(
        _env_file=None,
        db_pool_size=1,
        db_max_overflow=0,
        db_pool_pre_ping=policy,
        db_pool_ping_idle_s=0,
    )
    engine = make_engine(database_url, settings)
    try:
        await _kill_pooled_backend(engine)
        if survives:
            async with engine.connect() as conn:
                assert (await conn.execute(text("SELECT 1"))).scalar_one() == 1
        else:
            with pytest.raises(DBAPIError):
                async with engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
    finally:
        await engine.dispose()


async def test_idle_policy_skips_the_ping_for_a_connection_just_used(database_url: str) -> None:
    settings = Settings(_env_file=None, db_pool_size=1, db_max_overflow=0, db_pool_ping_idle_s=60)
    engine = make_engine(database_url, settings)
    try:
        await _kill_pooled_backend(engine)
        # Used a moment ago, so not pinged: the dead socket surfaces as an error, and the pool
        # is invalidated so the next checkout connects afresh.
        with pytest.raises(DBAPIError):
            async with engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        async with engine.connect() as conn:
            assert (await conn.execute(text("SELECT 1"))).scalar_one() == 1
    finally:
        await engine.dispose()


BY_SLUG = LeanQuery.of(select(Tenant.id, Tenant.name).where(Tenant.slug == bindparam("slug")))


async def test_lean_queries_read_counted_and_see_the_transaction(world: World, database) -> None:  # type: ignore[no-untyped-def]
    tid = await world.tenant("lean-co")
    with count_queries() as counter:
        row = await database.reader.one(BY_SLUG, slug="lean-co")
        missing = await database.reader.one(BY_SLUG, slug="nope")
    assert row["id"] == tid and row["name"] == "Lean-Co"
    assert missing is None
    assert counter.count == 2
    assert "$1" in BY_SLUG.sql and BY_SLUG.names == ("slug",)
    with pytest.raises(TypeError, match="missing query parameter 'slug'"):
        await database.reader.one(BY_SLUG)


async def test_a_reader_on_the_engine_uses_the_pool(database_url: str) -> None:
    engine = make_engine(database_url, Settings(_env_file=None))
    try:
        reader = Reader(engine.connect)
        rows = await reader.all(LeanQuery.of(select(text("1 AS one"))))
        assert rows[0]["one"] == 1
        assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    finally:
        await engine.dispose()


async def test_lean_reads_never_take_a_second_connection_under_load(database_url: str) -> None:
    """A request that holds a session connection and then reads lean must not wait for a
    second pooled connection: with a pool of 2 and 20 such requests at once, that would
    starve the pool."""
    import asyncio

    from tenantry.kit.db import Database, session_scope

    settings = Settings(_env_file=None, db_pool_size=2, db_max_overflow=0, db_pool_timeout=3)
    db = Database(database_url, settings)
    one = LeanQuery.of(select(text("1 AS one")))

    async def request() -> int:
        async with session_scope(db.sessionmaker) as session:
            await session.execute(text("SELECT 1"))  # the session now holds a connection
            await asyncio.sleep(0.01)
            row = await db.reader.one_in(session, one)
            return int(row["one"])

    try:
        assert await asyncio.gather(*(request() for _ in range(20))) == [1] * 20
    finally:
        await db.dispose()
