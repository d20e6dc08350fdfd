"""Engine, pool, the per-request session, and the query counter.

The driver (asyncpg today) is a detail of this module: the rest of the code sees SQLAlchemy
engines and sessions only.
"""

from __future__ import annotations

import contextvars
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from tenantry.config import Settings
from tenantry.kit.cache import Caches, take_invalidations

ASYNC_DRIVER = "postgresql+asyncpg"


def async_url(url: str | URL) -> URL:
    """Any PostgreSQL URL (`postgres://`, `postgresql://`, `+psycopg` ...) as our async driver's."""
    parsed = make_url(url) if isinstance(url, str) else url
    if parsed.get_backend_name() not in ("postgresql", "postgres"):
        raise ValueError(f"Tenantry speaks PostgreSQL only; got a {parsed.drivername} URL")
    return parsed.set(drivername=ASYNC_DRIVER)


def plain_url(url: str | URL) -> str:
    """The URL for libpq-style clients (psql, asyncpg.connect): no SQLAlchemy driver suffix."""
    parsed = make_url(url) if isinstance(url, str) else url
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


# --- query counting --------------------------------------------------------------------------
# SQLAlchemy runs the DBAPI calls of an async session in a greenlet that shares the calling
# task's contextvars, so a mutable counter set per request sees every statement of it.


@dataclass(slots=True)
class QueryCounter:
    count: int = 0
    statements: list[str] = field(default_factory=list)
    keep_statements: bool = False
    # An enclosing counter (a test's block around a request) sees the inner one's queries too.
    parent: QueryCounter | None = None

    def record(self, statement: str) -> None:
        counter: QueryCounter | None = self
        while counter is not None:
            counter.count += 1
            if counter.keep_statements:
                counter.statements.append(statement)
            counter = counter.parent


_counter: contextvars.ContextVar[QueryCounter | None] = contextvars.ContextVar(
    "tenantry_query_counter", default=None
)


def current_query_counter() -> QueryCounter | None:
    return _counter.get()


@contextmanager
def count_queries(*, keep_statements: bool = False) -> Iterator[QueryCounter]:
    counter = QueryCounter(keep_statements=keep_statements, parent=_counter.get())
    token = _counter.set(counter)
    try:
        yield counter
    finally:
        _counter.reset(token)


# Transaction control is not a query: BEGIN/COMMIT never reach this hook, and savepoints (the
# tests' per-test isolation, nested transactions) are skipped so counts mean the same everywhere.
_TRANSACTION_CONTROL = ("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT")


def _on_cursor_execute(
    conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
) -> None:
    counter = _counter.get()
    if counter is not None and not statement.startswith(_TRANSACTION_CONTROL):
        counter.record(statement)


def instrument(engine: AsyncEngine) -> None:
    event.listen(engine.sync_engine, "before_cursor_execute", _on_cursor_execute)


# --- engines and sessions --------------------------------------------------------------------


def make_engine(
    url: str | URL, settings: Settings, *, application_name: str = "tenantry"
) -> AsyncEngine:
    engine = create_async_engine(
        async_url(url),
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
        pool_recycle=settings.db_pool_recycle,
        pool_pre_ping=True,
        echo=settings.db_echo,
        connect_args={"server_settings": {"application_name": application_name}},
    )
    instrument(engine)
    return engine


def make_sessionmaker(bind: AsyncEngine | Any) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(bind, expire_on_commit=False, autoflush=False)


class Database:
    """The process's engines and session factories, made in the app's lifespan."""

    def __init__(self, url: str, settings: Settings, read_url: str | None = None) -> None:
        self.url = url
        self.engine = make_engine(url, settings)
        self.read_engine = make_engine(read_url, settings) if read_url else self.engine
        self.sessionmaker = make_sessionmaker(self.engine)
        self.read_sessionmaker = make_sessionmaker(self.read_engine)

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.read_engine is not self.engine:
            await self.read_engine.dispose()


@asynccontextmanager
async def session_scope(
    factory: async_sessionmaker[AsyncSession], caches: Caches | None = None
) -> AsyncIterator[AsyncSession]:
    """One unit of work: committed when the block succeeds, rolled back when it raises.

    The request dependency and job runners use this; services only flush. What the services
    marked stale (`kit.cache.invalidate_on_commit`) is staged on the bus inside the
    transaction and published once it has committed; a rollback forgets it.
    """
    async with factory() as session:
        try:
            yield session
        except BaseException:
            take_invalidations(session)
            await session.rollback()
            raise
        stale = take_invalidations(session)
        if stale and caches is not None:
            await caches.stage(session, stale)
        await session.commit()
        if stale and caches is not None:
            await caches.publish(stale)
