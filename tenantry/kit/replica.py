"""A streaming read replica (DATABASE_READ_URL): how far behind the primary it is, and the
session that reads from it until it writes.

**Lag.** `Replica.track` (a background task of the app, only when a read URL is set) reads the
primary's flushed WAL position, then asks the replica until it has replayed that far. Once it
has, the replica holds every commit acknowledged before that probe began (a commit returns
after its WAL is flushed), so `covered_at` moves to the probe's start. The lag reported is how
long the replica took to get there; while it takes longer than a probe interval, how long
since it was last known to hold everything (the figure the bound is checked against). From WAL
positions rather than `pg_last_xact_replay_timestamp()`, which stands still while the primary
is idle and would call an idle, caught-up replica behind.

**The bound.** A read goes to the replica only while `fresh()`: every commit older than
DATABASE_READ_MAX_LAG_S is on it. Checked against the clock at each read, so a replica that
stops answering, or a probe that hangs, falls out of use by itself once the bound has passed;
a probe that finds the replica unreachable (or no longer a standby) takes it out at once.

**Routing** (`RoutingSession`): a GET or HEAD request's session reads from the replica (or
the primary, when the replica is not fresh as the session first reads) until it writes; from
the first write on, every statement goes to the primary. A write is a flush, any statement
that is not a plain SELECT (INSERT, UPDATE, DELETE, `text()`, FOR UPDATE), a savepoint
(`begin_nested`) or a bare `session.connection()` (raw driver work such as a job insert).

**Caches.** A fill reads wherever its request reads: on a GET, the replica while it is fresh.
The caches of who may act (principal, API keys) and of tenants and their settings load
through `Database.reader`, always the primary, so a revocation is never undone by a replica.
What a GET fills from the replica (`user_context`, the `customer_insights` and `sync_runs`
pages) follows the invalidations: each process notes, per cache, the monotonic time it last
applied one (its own after the commit, or another's from the bus; for a list, its
generations' cache), and a fill runs inside `fill_after(that time, loader)`. While it runs,
a read goes to the replica only if the replica also holds every commit acknowledged before
that time (`covered_at` past it): otherwise to the primary, on the lean path and in the
session alike (a session already reading on the replica takes a primary connection for the
fill's statements, beside its replica one; one whose first read is the fill reads the primary
from then on). As `fresh()` holds only while `covered_at` is within DATABASE_READ_MAX_LAG_S,
a fill reads the primary for at most that long after an invalidation, and never fills a
cache with rows from before the write that invalidated it. What remains: a process that has
not yet received an invalidation (the bus's delivery, milliseconds) fills as if it had not
happened, from the replica (with Redis, into the L2 too, where it stays until the entry's
TTL); an entry expiring by its TTL alone is refilled from the replica, as stale as it is
(within the bound).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any, ClassVar, TypeVar

from sqlalchemy import CompoundSelect, Engine, Select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Session, SessionTransaction

log = logging.getLogger("tenantry.db.replica")

Position = Callable[[], Awaitable[int | None]]
# Passed by `kit.db.Reader` to a routing session's `connection()`: a lean read.
READ_BIND: dict[str, Any] = {"tenantry_read": True}

T = TypeVar("T")

# While a cache's loader runs (a miss being filled, `fill_after`): the monotonic time that cache
# was last invalidated in this process. A read routed here goes to the replica only if it holds
# every commit acknowledged before then.
_filling_after: ContextVar[float] = ContextVar("tenantry_filling_after", default=-math.inf)


async def fill_after(invalidated_at: float, loader: Callable[[], Awaitable[T]]) -> T:
    """`loader()`, the fill of a cache last invalidated at `invalidated_at` (time.monotonic()):
    its routed reads go to the primary until the replica holds what that invalidation was
    for. Nested fills keep the later time. Without a replica nothing reads it."""
    token = _filling_after.set(max(invalidated_at, _filling_after.get()))
    try:
        return await loader()
    finally:
        _filling_after.reset(token)


class NotAStandby(Exception):
    """The read URL's server is not replaying a primary's WAL (a primary, or promoted)."""


class Replica:
    """The replica's engine, and whether it may be read (`fresh`)."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        primary_position: Position,
        replica_position: Position,
        max_lag_s: float,
    ) -> None:
        self.engine = engine
        self.max_lag_s = max_lag_s
        # Probed often enough that a replica keeping up is never taken for one that is not.
        self.interval_s = min(1.0, max_lag_s / 4)
        self._primary_position = primary_position
        self._replica_position = replica_position
        # The replica holds every commit acknowledged before this (time.monotonic()).
        self.covered_at = -math.inf
        self.lag_s = math.inf  # as last measured
        self.problem: str | None = "not measured yet"
        self._was_fresh = False

    def fresh(self) -> bool:
        """Whether reads may go to the replica now."""
        return time.monotonic() - self.covered_at <= self.max_lag_s

    def readable(self) -> bool:
        """Whether this read may go to the replica: `fresh()`, and, inside a cache's fill
        (`fill_after`), holding every commit from before that cache's last invalidation."""
        covered_at = self.covered_at
        return time.monotonic() - covered_at <= self.max_lag_s and covered_at > _filling_after.get()

    def lacks_fill(self) -> bool:
        """Inside a cache's fill, whether the replica may lack a commit from before that
        cache's last invalidation (outside one, never)."""
        filling = _filling_after.get()
        return filling != -math.inf and self.covered_at <= filling

    def describe(self) -> str:
        """One line for /readyz (information only: a lagging replica leaves us ready)."""
        if self.fresh():
            return f"ok: {self.lag_s:.3f} s behind"
        if self.problem is not None:
            return f"{self.problem}; reads go to the primary"
        behind = time.monotonic() - self.covered_at
        return (
            f"{behind:.1f} s behind, more than DATABASE_READ_MAX_LAG_S"
            f" ({self.max_lag_s:g} s); reads go to the primary"
        )

    async def track(self, report: Callable[[float], None] | None = None) -> None:
        """Measure the lag every `interval_s` until cancelled; `report(lag_s)` each time."""
        while True:
            started = time.monotonic()
            try:
                await self.probe(started, report)
            except asyncio.CancelledError:
                raise
            except NotAStandby:
                self._out("not a standby (pg_is_in_recovery() is false)", report)
            except Exception as exc:  # unreachable, timed out, refused: measured next round
                self._out(f"unavailable: {type(exc).__name__}", report)
            await asyncio.sleep(self.interval_s)

    async def probe(self, started: float, report: Callable[[float], None] | None = None) -> None:
        """One measurement: the primary's position, then the replica's until it gets there."""
        timeout = max(1.0, 2 * self.interval_s)
        try:
            async with asyncio.timeout(timeout):
                target = await self._primary_position()
        except Exception as exc:
            # Nothing is learned: the replica stays in use until the bound has passed since
            # it was last seen caught up.
            self.problem = f"the primary's position is unknown: {type(exc).__name__}"
            return
        assert target is not None
        pause = 0.001
        while True:
            async with asyncio.timeout(timeout):
                position = await self._replica_position()
            if position is None:
                raise NotAStandby
            now = time.monotonic()
            if position >= target:
                self.covered_at = max(self.covered_at, started)
                self.problem = None
                self._measured(now - started, report)
                return
            if now - started > self.interval_s:  # slow to replay, not a round trip behind
                self._measured(now - self.covered_at, report)
            await asyncio.sleep(pause)
            pause = min(pause * 4, self.interval_s)

    def _measured(self, lag_s: float, report: Callable[[float], None] | None) -> None:
        self.lag_s = lag_s
        if report is not None:
            report(lag_s)
        self._log_change()

    def _out(self, problem: str, report: Callable[[float], None] | None) -> None:
        self.covered_at = -math.inf
        self.problem = problem
        self._measured(math.inf, report)

    def _log_change(self) -> None:
        fresh = self.fresh()
        if fresh != self._was_fresh:
            self._was_fresh = fresh
            if fresh:
                log.info("read replica in use (%.3f s behind)", self.lag_s)
            else:
                log.warning("read replica not in use: %s", self.describe())


def _reads_only(clause: Any) -> bool:
    if isinstance(clause, Select):
        return clause._for_update_arg is None  # no public accessor for FOR UPDATE
    return isinstance(clause, CompoundSelect)


class RoutingSession(Session):
    """SQLAlchemy's routing session ("Custom Vertical Partitioning"): reads on the replica
    until the first write, then everything on the primary; a cache fill's reads on the primary
    while the replica may lack that cache's last invalidation (`fill_after`). Made per
    database by `routing_session`; a GET or HEAD request's session is one (`kit.deps`)."""

    _primary: ClassVar[Engine]
    _replica: ClassVar[Replica]
    _pinned = False  # wrote, or may have: the primary from now on
    _reads: Engine | None = None  # where reads go, decided at the first one

    def get_bind(
        self,
        mapper: Any = None,
        *,
        clause: Any = None,
        bind: Any = None,
        tenantry_read: bool = False,
        **kw: Any,
    ) -> Any:
        if bind is not None:
            return bind
        if not self._pinned:
            if tenantry_read or (not self._flushing and _reads_only(clause)):
                replica = self._replica
                if self._reads is None:
                    # Not readable (lagging, or a first read inside a fill it cannot serve):
                    # the primary for the rest of the session, one connection throughout.
                    readable = replica.readable()
                    self._reads = replica.engine.sync_engine if readable else self._primary
                elif self._reads is not self._primary and replica.lacks_fill():
                    # Reading on the replica already: this statement (a fill's) goes to the
                    # primary, on a second connection in the session's transaction.
                    return self._primary
                return self._reads
            self._pinned = True
        return self._primary

    def begin_nested(self) -> SessionTransaction:
        self._pinned = True
        return super().begin_nested()


def routing_session(primary: AsyncEngine, replica: Replica) -> type[Session]:
    """A `RoutingSession` class bound to these engines, for `async_sessionmaker`'s
    `sync_session_class`."""
    return type(
        "DatabaseRoutingSession",
        (RoutingSession,),
        {"_primary": primary.sync_engine, "_replica": replica},
    )
