"""The unit of work: committed when the block succeeds, rolled back when it raises, and free
when nothing ran in it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.config import Settings
from tenantry.kit.caches import Caches, invalidate_on_commit
from tenantry.kit.db import Database, after_commit, session_scope
from tenantry.tenants.models import Tenant


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    """Really committing sessions; every tenant these tests make is slugged `scope-...`."""
    database = Database(settings.database_url or "", settings)
    yield database
    async with session_scope(database.sessionmaker) as s:
        await s.execute(delete(Tenant).where(Tenant.slug.like("scope-%")))
    await database.dispose()


def _tenant() -> Tenant:
    slug = f"scope-{uuid.uuid4().hex[:10]}"
    return Tenant(slug=slug, name=slug)


async def _exists(db: Database, slug: str) -> bool:
    async with session_scope(db.sessionmaker) as s:
        return (await s.execute(select(Tenant.id).where(Tenant.slug == slug))).first() is not None


class Counting:
    def __init__(self, session: AsyncSession) -> None:
        self.calls: list[str] = []
        for name in ("commit", "rollback", "close"):
            real = getattr(session, name)

            async def counted(real=real, name=name):  # type: ignore[no-untyped-def]
                self.calls.append(name)
                return await real()

            setattr(session, name, counted)


async def test_an_unused_session_is_neither_committed_nor_closed(db: Database) -> None:
    async with session_scope(db.sessionmaker) as session:
        counting = Counting(session)
    assert counting.calls == []


async def test_an_added_but_unflushed_entity_is_committed(db: Database) -> None:
    tenant = _tenant()
    async with session_scope(db.sessionmaker) as session:
        counting = Counting(session)
        session.add(tenant)  # no flush: the session has not begun, but holds the object
    assert counting.calls == ["commit", "close"]
    assert await _exists(db, tenant.slug)


async def test_a_used_session_is_committed_and_closed(db: Database) -> None:
    tenant = _tenant()
    async with session_scope(db.sessionmaker) as session:
        counting = Counting(session)
        session.add(tenant)
        await session.flush()
    assert counting.calls == ["commit", "close"]
    assert await _exists(db, tenant.slug)


async def _fail(db: Database, tenant: Tenant | None) -> Counting:
    """A unit of work that raises, after flushing `tenant` when one is given."""
    counting = None
    try:
        async with session_scope(db.sessionmaker) as session:
            counting = Counting(session)
            if tenant is not None:
                session.add(tenant)
                await session.flush()
            raise RuntimeError("the request failed")
    except RuntimeError:
        assert counting is not None
        return counting
    raise AssertionError("the failure did not come out of the scope")


async def test_a_failure_rolls_back_what_ran(db: Database) -> None:
    tenant = _tenant()
    counting = await _fail(db, tenant)
    assert counting.calls[0] == "rollback"
    assert db.engine.sync_engine.pool.checkedout() == 0  # the connection went back
    assert not await _exists(db, tenant.slug)


async def test_a_failure_before_anything_ran_costs_nothing(db: Database) -> None:
    assert (await _fail(db, None)).calls == []


async def test_invalidations_alone_still_go_out_with_a_commit(db: Database) -> None:
    caches = Caches()
    published = []

    async def publish(events):  # type: ignore[no-untyped-def]
        published.extend(events)

    caches.publish = publish  # type: ignore[method-assign]
    async with session_scope(db.sessionmaker, caches) as session:
        counting = Counting(session)
        invalidate_on_commit(session, "tenant", "k")
    assert counting.calls[0] == "commit"
    assert published == [("tenant", "k")]


async def test_after_commit_actions_run_once_it_committed_and_never_on_rollback(
    db: Database,
) -> None:
    seen: list[bool] = []
    tenant = _tenant()

    async def check() -> None:  # runs after the commit: another session sees the row
        seen.append(await _exists(db, tenant.slug))

    async def fail() -> None:
        raise RuntimeError("the state store is away")

    async with session_scope(db.sessionmaker) as s:
        s.add(tenant)
        after_commit(s, fail)  # logged, not raised: the commit stands
        after_commit(s, check)
    assert seen == [True]

    async def failing_request() -> None:
        async with session_scope(db.sessionmaker) as s:
            s.add(_tenant())
            after_commit(s, check)
            raise ValueError("the request failed")

    with pytest.raises(ValueError, match="the request failed"):
        await failing_request()
    assert seen == [True]

    async with session_scope(db.sessionmaker) as s:  # nothing to commit: it runs all the same
        after_commit(s, check)
    assert seen == [True, True]
