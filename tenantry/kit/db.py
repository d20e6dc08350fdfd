"""Engine, pool, the per-request session, the lean read path, and the query counter.

The driver (asyncpg today) is a detail of this module: the rest of the code sees SQLAlchemy
engines, sessions, and `Reader`/`LeanQuery` for hot reads.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

from tenantry.config import Settings
from tenantry.kit.caches import Caches, take_invalidations
from tenantry.kit.context import record_statement
from tenantry.kit.replica import READ_BIND, Replica, routing_session

ASYNC_DRIVER = "postgresql+asyncpg"
log = logging.getLogger("tenantry.db")


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


# --- query counting: `kit.context` (per request, and `count_queries` blocks) ------------------


# Transaction control is not a query: BEGIN/COMMIT never reach this hook, and savepoints (the
# tests' per-test isolation, nested transactions) are skipped so counts mean the same everywhere.
_TRANSACTION_CONTROL = ("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT")


def _on_cursor_execute(
    conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
) -> None:
    if not statement.startswith(_TRANSACTION_CONTROL):
        record_statement(statement, parameters)


def instrument(engine: AsyncEngine) -> None:
    event.listen(engine.sync_engine, "before_cursor_execute", _on_cursor_execute)


# --- engines and sessions --------------------------------------------------------------------


def _ping_when_idle(engine: AsyncEngine, idle_s: float) -> None:
    """Pre-ping, but only connections that sat idle in the pool for `idle_s` or more.

    SQLAlchemy's `pool_pre_ping` pings on every checkout, and the asyncpg adapter's ping is
    BEGIN; ; ROLLBACK: three round trips, about 240 µs of CPU per request here, more than a
    whole bare request costs. The connections that go stale (a restarted server, a dropped
    idle socket) are the idle ones; a connection used a moment ago is as good as a ping. A
    failed ping raises DisconnectionError, which the pool answers with a fresh connection.
    """
    pool = engine.sync_engine.pool

    def on_checkin(dbapi_connection: Any, record: Any) -> None:
        record.info["tenantry_checked_in_at"] = time.monotonic()

    def on_checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        since = record.info.get("tenantry_checked_in_at")
        if since is None or time.monotonic() - since < idle_s:
            return
        try:
            dbapi_connection.ping()
        except Exception as exc:
            raise DisconnectionError("pre-ping of an idle connection failed") from exc

    event.listen(pool, "checkin", on_checkin)
    event.listen(pool, "checkout", on_checkout)


def make_engine(
    url: str | URL, settings: Settings, *, application_name: str = "tenantry"
) -> AsyncEngine:
    engine = create_async_engine(
        async_url(url),
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
        pool_recycle=settings.db_pool_recycle,
        pool_pre_ping=settings.db_pool_pre_ping == "always",
        echo=settings.db_echo,
        # Errors and echoed statements never carry the parameters (password hashes, key HMACs).
        hide_parameters=True,
        # A database that does not answer fails the connect in DB_CONNECT_TIMEOUT_S (a 503,
        # `kit.outage`) rather than asyncpg's 60 s.
        connect_args={
            "server_settings": {"application_name": application_name},
            "timeout": settings.db_connect_timeout_s,
        },
    )
    if settings.db_pool_pre_ping == "idle":
        _ping_when_idle(engine, settings.db_pool_ping_idle_s)
    instrument(engine)
    return engine


# --- the lean read path ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LeanQuery:
    """A Core statement compiled once, at import, to asyncpg's SQL (`$1` parameters) with
    the order of its parameters. Hot reads run it on the driver connection directly: a
    primary-key read costs ~190 µs of CPU this way against ~600 µs through an AsyncSession
    (DESIGN.md, "hot reads are lean"). Statements take their inputs as `bindparam("name")`."""

    sql: str
    names: tuple[str, ...]
    defaults: dict[str, Any]

    @classmethod
    def of(cls, statement: ClauseElement) -> LeanQuery:
        compiled = statement.compile(dialect=_ASYNCPG_DIALECT)
        assert isinstance(compiled, SQLCompiler)
        names = tuple(compiled.positiontup or ())
        # Literal values in the statement are defaults; a bare bindparam("x") must be given.
        defaults = {
            name: value
            for name, value in compiled.params.items()
            if not compiled.binds[name].required
        }
        return cls(str(compiled), names, defaults)

    def args(self, params: dict[str, Any]) -> list[Any]:
        try:
            return [params[n] if n in params else self.defaults[n] for n in self.names]
        except KeyError as exc:
            raise TypeError(f"missing query parameter {exc.args[0]!r}") from None


_ASYNCPG_DIALECT = asyncpg_dialect()  # type: ignore[no-untyped-call]

Connect = Callable[[], AbstractAsyncContextManager[AsyncConnection]]


class Reader:
    """Runs LeanQuery reads outside the ORM, on a pooled connection and without a transaction
    (a single statement reads one consistent snapshot anyway). They are counted like any other
    statement."""

    def __init__(self, connect: Connect, *, routing: bool = False) -> None:
        self._connect = connect
        # The replica's reader (`kit.replica`): in a session, read where the session reads.
        self._routing = routing

    @classmethod
    def bound(cls, connection: AsyncConnection) -> Reader:
        """A reader on one given connection (the tests' rolled-back transaction)."""

        @asynccontextmanager
        async def use() -> AsyncIterator[AsyncConnection]:
            yield connection

        return cls(use)

    async def _run(
        self, method: str, query: LeanQuery, params: dict[str, Any], session: AsyncSession | None
    ) -> Any:
        args = query.args(params)
        record_statement(query.sql, args)
        if session is not None and session.in_transaction():
            # The request already holds a connection: read on it. Taking a second one from the
            # pool while holding the first starves the pool under load (N requests each holding
            # one and waiting for another), and the session's transaction sees its own writes.
            if self._routing:
                conn = await session.connection(bind_arguments=dict(READ_BIND))
            else:
                conn = await session.connection()
            raw = await conn.get_raw_connection()
            return await getattr(raw.driver_connection, method)(query.sql, *args)
        async with self._connect() as conn:
            raw = await conn.get_raw_connection()
            return await getattr(raw.driver_connection, method)(query.sql, *args)

    async def one(self, query: LeanQuery, **params: Any) -> Any | None:
        return await self._run("fetchrow", query, params, None)

    async def all(self, query: LeanQuery, **params: Any) -> list[Any]:
        rows: list[Any] = await self._run("fetch", query, params, None)
        return rows

    async def one_in(self, session: AsyncSession, query: LeanQuery, **params: Any) -> Any | None:
        """Like `one`, on the session's connection when it has one (see `_run`)."""
        return await self._run("fetchrow", query, params, session)

    async def all_in(self, session: AsyncSession, query: LeanQuery, **params: Any) -> list[Any]:
        rows: list[Any] = await self._run("fetch", query, params, session)
        return rows


def make_sessionmaker(
    bind: AsyncEngine | AsyncConnection, reader: Reader, **kw: Any
) -> async_sessionmaker[AsyncSession]:
    """Sessions carry the matching `Reader` in `session.info`, so repositories can take the
    lean path on the same database (and, in tests, the same transaction) as the session."""
    return async_sessionmaker(
        bind, expire_on_commit=False, autoflush=False, info={"reader": reader}, **kw
    )


def reader_of(session: AsyncSession) -> Reader:
    reader: Reader = session.info["reader"]
    return reader


class Database:
    """The process's engines and session factories, made in the app's lifespan.

    With DATABASE_READ_URL, also the replica's (`kit.replica`): `read_sessionmaker` and
    `read_reader` read there while it is within DATABASE_READ_MAX_LAG_S (GET and HEAD
    requests take them, `kit.deps`); jobs, the CLI and the worker use the primary's. Without
    it they are None and nothing else differs."""

    def __init__(self, url: str, settings: Settings) -> None:
        self.url = url
        self.engine = make_engine(url, settings)
        self.reader = Reader(self.engine.connect)
        self.sessionmaker = make_sessionmaker(self.engine, self.reader)
        self.replica: Replica | None = None
        self.read_reader: Reader | None = None
        self.read_sessionmaker: async_sessionmaker[AsyncSession] | None = None
        self._probes: list[AsyncEngine] = []
        if settings.database_read_url:
            self._open_replica(settings.database_read_url, settings)

    def _open_replica(self, read_url: str, settings: Settings) -> None:
        size = settings.db_read_pool_size or settings.db_pool_size
        read_settings = settings.model_copy(update={"db_pool_size": size})
        engine = make_engine(read_url, read_settings, application_name="tenantry-read")
        # The lag probe's own connection on each server, so a busy pool never delays it.
        one = settings.model_copy(update={"db_pool_size": 1, "db_max_overflow": 0})
        self._probes = [
            make_engine(self.url, one, application_name="tenantry-lag"),
            make_engine(read_url, one, application_name="tenantry-lag"),
        ]
        on_primary, on_replica = (Reader(probe.connect) for probe in self._probes)

        replica = self.replica = Replica(
            engine,
            primary_position=lambda: _position(on_primary, _PRIMARY_POSITION),
            replica_position=lambda: _position(on_replica, _REPLICA_POSITION),
            max_lag_s=settings.database_read_max_lag_s,
        )
        primary = self.engine

        def read_connect() -> AsyncConnection:
            return (replica.engine if replica.readable() else primary).connect()

        self.read_reader = Reader(read_connect, routing=True)
        self.read_sessionmaker = make_sessionmaker(
            self.engine, self.read_reader, sync_session_class=routing_session(primary, replica)
        )

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.replica is not None:
            await self.replica.engine.dispose()
        for probe in self._probes:
            await probe.dispose()


# WAL positions as byte offsets: the primary's flushed (every acknowledged commit is within
# it), and how far the replica has replayed (NULL on a server that is not a standby).
_PRIMARY_POSITION = LeanQuery.of(
    text("SELECT pg_wal_lsn_diff(pg_current_wal_flush_lsn(), '0/0')::bigint AS at")
)
_REPLICA_POSITION = LeanQuery.of(
    text("SELECT pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0')::bigint AS at")
)


async def _position(reader: Reader, query: LeanQuery) -> int | None:
    row = await reader.one(query)
    return None if row is None or row["at"] is None else int(row["at"])


_AFTER_COMMIT = "tenantry.after_commit"


def after_commit(session: AsyncSession, action: Callable[[], Awaitable[None]]) -> None:
    """Run `action()` once this session's transaction has committed (never when it rolls
    back): for what lives outside the database and must not get ahead of it, such as the
    state store. Its failure is logged, not raised: the commit stands and the caller gets
    its answer."""
    session.info.setdefault(_AFTER_COMMIT, []).append(action)


async def _run_after_commit(actions: list[Callable[[], Awaitable[None]]]) -> None:
    for action in actions:
        try:
            await action()
        except Exception:
            log.exception("an after-commit action failed")


@asynccontextmanager
async def session_scope(
    factory: async_sessionmaker[AsyncSession], caches: Caches | None = None
) -> AsyncIterator[AsyncSession]:
    """One unit of work: committed when the block succeeds, rolled back when it raises.

    The request dependency and job runners use this; services only flush. What the services
    marked stale (`kit.caches.invalidate_on_commit`) is staged on the bus inside the
    transaction and published once it has committed, and `after_commit` actions run then; a
    rollback forgets both.
    """
    session = factory()
    try:
        try:
            yield session
        except BaseException:
            take_invalidations(session)
            session.info.pop(_AFTER_COMMIT, None)
            if _began(session):
                await session.rollback()
            raise
        if session.new or session.dirty or session.deleted:
            # Flushed here, not by the commit: a row's ORM events may mark caches stale
            # (`kit.cache_lists.invalidated_by`), and they must be taken before it commits.
            await session.flush()
        stale = take_invalidations(session)
        if stale or _began(session):  # else nothing ran and nothing is pending
            if stale and caches is not None:
                await caches.stage(session, stale)
            await session.commit()
            if stale and caches is not None:
                await caches.publish(stale)
        if actions := session.info.pop(_AFTER_COMMIT, None):
            await _run_after_commit(actions)
    finally:
        if _began(session) or session.identity_map:
            await session.close()


def _began(session: AsyncSession) -> bool:
    """Whether the session holds a transaction or objects waiting for one. A session that
    never did (a request that only read from a cache or on the lean path) is dropped as it
    is: committing and closing it would cost three greenlet switches for nothing."""
    return session.in_transaction() or bool(session.new or session.deleted or session.dirty)
