"""Background jobs: Procrastinate on the application's own PostgreSQL, no second broker.

A domain declares its tasks on a `TaskSet` in its `tasks.py`, each with an explicit name (a
queued job names its task: a name taken from the module path would orphan queued jobs when
code moves); `create_app` registers each set under the domain's name (`sync:run_sync`).
`TaskSet` is ours rather than Procrastinate's `Blueprint` because a blueprint can join only one
app per process (it renames its tasks in place), and one process may build several apps (the
tests do); a `TaskSet` only records the declarations, and every `Jobs` makes its own tasks.
A task takes the job's context first and reaches the platform with `platform_of(context)`;
it opens its own unit of work (`unit_of_work`). Tasks must be idempotent: a job whose worker died
runs again (see the stalled-job sweep below).

Deferring from a request: `Jobs.defer(session, task, **kwargs)` inserts the job on the
request's own connection, inside its transaction, so a request that rolls back queues
nothing and one that commits always has its job. Procrastinate has no asyncpg connector, and
its documented way to defer on an outside connection wants a psycopg one, a second
transaction. We call its versioned SQL function `procrastinate_defer_jobs_v1` on the
session's asyncpg connection instead: the job is built by Procrastinate (`task.configure`, so
its queue, locks and schedule are the task's), only the insert is ours. The function is part
of Procrastinate's schema contract (versioned, its predecessor dropped in 3.2), so the
dependency is pinned below 3.11 and `tests/kit/test_jobs.py` defers, commits and sees a worker
run the job; a Procrastinate upgrade that changes it fails there first. asyncpg stays the one
driver of the request path (about 175 µs of CPU a primary-key lookup against psycopg's 229).

The worker itself runs on Procrastinate's psycopg connector with a small pool of its own:
inside the API process in embedded mode (`JOBS_IN_PROCESS`, by default on when embedded), or
as `tenantry worker` processes. Retries: `kit.retries` (`Backoff`, exponential with jitter and a
maximum per task; `Schedule`, fixed delays, for webhooks; `Planned`, when the task says).
Periodic tasks: `@tasks.task(..., cron=)`.
Shutdown: running jobs get `JOBS_SHUTDOWN_GRACE_S` to finish, then are cancelled and queued
again at once (`Released`, around every task's own strategy).
A worker killed outright (SIGKILL, a lost machine) leaves its jobs `doing`: every worker sweeps
for jobs whose worker's heartbeat stopped and puts them back in the queue.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import asyncpg
import procrastinate
from procrastinate import JobContext, PsycopgConnector
from procrastinate.exceptions import AlreadyEnqueued
from procrastinate.job_context import AbortReason
from procrastinate.retry import BaseRetryStrategy
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.config import Settings
from tenantry.kit import metrics
from tenantry.kit.context import record_statement
from tenantry.kit.db import plain_url, session_scope
from tenantry.kit.logging import get_logger
from tenantry.kit.retries import CUT_BY_SHUTDOWN, Backoff, Released

if TYPE_CHECKING:
    from tenantry.kit.platform import Platform

log = get_logger("tenantry.jobs")

# Procrastinate's insert, on our connection (see the module's docstring). One row type per
# job, as Procrastinate's own `defer_jobs` query passes them.
# Many jobs in one statement; the ids come back in the order the jobs were given (see
# `defer_many`).
_DEFER_MANY_SQL = (
    "SELECT unnest(procrastinate_defer_jobs_v1(ARRAY(SELECT ROW(q, t, p, l, ql, a, s)"
    "::procrastinate_job_to_defer_v1 FROM unnest($1::varchar[], $2::varchar[], $3::int[],"
    " $4::text[], $5::text[], $6::jsonb[], $7::timestamptz[]) WITH ORDINALITY"
    " AS u(q, t, p, l, ql, a, s, n) ORDER BY n))) AS id"
)
_QUEUEING_LOCK_INDEX = "procrastinate_jobs_queueing_lock_idx_v1"
# The queues' state, for /metrics and the staff console (`Jobs.queue_stats`, `failures`).
_WAITING_SQL = (
    "SELECT queue_name, status::text AS status, count(*) AS n FROM procrastinate_jobs"
    " WHERE status IN ('todo', 'doing') GROUP BY queue_name, status"
)
_AGES_SQL = (
    "SELECT j.queue_name, extract(epoch FROM clock_timestamp() - min(e.at)) AS age"
    " FROM procrastinate_jobs j JOIN procrastinate_events e"
    " ON e.job_id = j.id AND e.type = 'deferred'"
    " WHERE j.status = 'todo' AND (j.scheduled_at IS NULL OR j.scheduled_at <= now())"
    " GROUP BY j.queue_name"
)
_FAILED_SQL = (
    "SELECT queue_name, count(*) AS n FROM procrastinate_jobs WHERE status = 'failed'"
    " GROUP BY queue_name"
)
_RECENT_FAILED_SQL = (
    "SELECT j.id, j.queue_name, j.task_name, j.attempts,"
    " (SELECT max(e.at) FROM procrastinate_events e WHERE e.job_id = j.id) AS failed_at"
    " FROM procrastinate_jobs j WHERE j.status = 'failed' ORDER BY j.id DESC LIMIT :limit"
)


TaskFunc = Callable[..., Any]


@dataclass(frozen=True, slots=True)
class FailedJob:
    id: int
    queue_name: str
    task_name: str
    attempts: int
    failed_at: datetime | None


@dataclass(frozen=True, slots=True)
class TaskSpec:
    name: str
    func: TaskFunc
    queue: str
    retry: BaseRetryStrategy | None
    cron: str | None


@dataclass
class TaskSet:
    """A domain's tasks, declared once and registered by each `Jobs` under a namespace. Every
    task takes the job's context first (`platform_of(context)`); a periodic one then takes
    the `timestamp` it was due at."""

    specs: list[TaskSpec] = field(default_factory=list)

    def task(
        self,
        *,
        name: str,
        queue: str = "default",
        retry: BaseRetryStrategy | None = None,
        cron: str | None = None,
    ) -> Callable[[TaskFunc], TaskFunc]:
        def register(func: TaskFunc) -> TaskFunc:
            if any(spec.name == name for spec in self.specs):
                raise ValueError(f"a task named {name!r} is declared twice")
            self.specs.append(TaskSpec(name, func, queue, retry, cron))
            return func

        return register


# The kit's own periodic work, registered as `kit:*` by create_app.
maintenance = TaskSet()


@maintenance.task(
    name="prune_finished_jobs", queue="maintenance", retry=Backoff(3), cron="17 * * * *"
)
async def prune_finished_jobs(context: JobContext, timestamp: int) -> None:
    """Hourly: jobs that succeeded more than JOBS_KEEP_HOURS ago are deleted (failed ones
    stay, to be looked at)."""
    hours = platform_of(context).settings.jobs_keep_hours
    await context.app.job_manager.delete_old_jobs(nb_hours=hours)


def platform_of(context: JobContext) -> Platform:
    """The platform a task runs with (its services, caches, database)."""
    extra = context.additional_context or {}
    platform: Platform = extra["platform"]
    return platform


@asynccontextmanager
async def unit_of_work(platform: Platform) -> AsyncIterator[AsyncSession]:
    """A task's transaction, committed when the block succeeds (as a request's is)."""
    async with session_scope(platform.db.sessionmaker, platform.caches) as session:
        yield session


class Jobs:
    """The Procrastinate app of one process: its tasks, its connector, its worker."""

    def __init__(self, database_url: str, settings: Settings, tasks: Mapping[str, TaskSet]):
        self.settings = settings
        self.connector = PsycopgConnector(
            conninfo=plain_url(database_url),
            min_size=1,
            max_size=settings.jobs_pool_size,
            kwargs={"application_name": "tenantry-jobs"},
        )
        self.app = procrastinate.App(connector=self.connector)
        for namespace, task_set in tasks.items():
            for spec in task_set.specs:
                task = self.app.task(
                    name=f"{namespace}:{spec.name}",
                    queue=spec.queue,
                    retry=Released(spec.retry),
                    pass_context=True,
                )(spec.func)
                if spec.cron is not None:
                    self.app.periodic(cron=spec.cron, periodic_id=spec.name)(task)
        self._open = False

    async def open(self) -> None:
        if not self._open:
            await self.app.open_async()
            self._open = True

    async def close(self) -> None:
        if self._open:
            await self.app.close_async()
            self._open = False

    def task(self, name: str) -> procrastinate.tasks.Task[Any, Any, Any]:
        """A registered task by its full name (`namespace:name`)."""
        return self.app.tasks[name]

    async def defer(
        self,
        session: AsyncSession,
        task: procrastinate.tasks.Task[Any, Any, Any],
        *,
        options: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> int:
        """Queue `task(**kwargs)` in the session's transaction: it exists once the transaction
        commits, and never if it rolls back. `options` are `Task.configure`'s (lock,
        queueing_lock, schedule_in, priority, queue). A job with the queueing lock of one
        still waiting raises `AlreadyEnqueued` and leaves the transaction usable (the insert
        runs in a savepoint)."""
        [job_id] = await self.defer_many(session, task, [kwargs], options=options)
        return job_id

    async def defer_many(
        self,
        session: AsyncSession,
        task: procrastinate.tasks.Task[Any, Any, Any],
        calls: Sequence[Mapping[str, Any]],
        *,
        options: Mapping[str, Any] | None = None,
    ) -> list[int]:
        """Queue `task(**kwargs)` for each of `calls` in the session's transaction, in one
        statement whatever their number (`defer`'s rules otherwise); their job ids, in order."""
        if not calls:
            return []
        configured = task.configure(**(options or {}))
        jobs = [configured.make_new_job(**kwargs) for kwargs in calls]
        columns = (
            [j.queue for j in jobs],
            [j.task_name for j in jobs],
            [j.priority for j in jobs],
            [j.lock for j in jobs],
            [j.queueing_lock for j in jobs],
            [json.dumps(j.task_kwargs) for j in jobs],
            [j.scheduled_at for j in jobs],
        )
        record_statement(_DEFER_MANY_SQL)
        try:
            async with session.begin_nested():
                raw = await (await session.connection()).get_raw_connection()
                driver: asyncpg.Connection[Any] = raw.driver_connection
                rows = await driver.fetch(_DEFER_MANY_SQL, *columns)
        except Exception as exc:
            if _queueing_lock_clash(exc):
                locks = sorted({j.queueing_lock for j in jobs if j.queueing_lock})
                raise AlreadyEnqueued(
                    f"a job with the queueing lock {', '.join(map(repr, locks))} is already waiting"
                ) from None
            raise
        # The function answers the ids as the insert returned them, in no promised order;
        # they come from the jobs table's sequence, drawn row by row in the order the jobs
        # were given (ORDER BY n above), so sorted they are the jobs' own order.
        ids = sorted(int(row["id"]) for row in rows)
        log.info("jobs deferred", task=task.name, job_ids=ids, queue=jobs[0].queue)
        return ids

    async def work(
        self,
        platform: Platform,
        *,
        concurrency: int | None = None,
        queues: list[str] | None = None,
        wait: bool = True,
        name: str = "worker",
        install_signal_handlers: bool = False,
    ) -> None:
        """Run a worker until it is stopped (or, with `wait=False`, until the queues are
        empty), with the stalled-job sweep beside it."""
        await self.open()
        sweep = asyncio.create_task(self.sweep_stalled_forever()) if wait else None
        try:
            await self.app.run_worker_async(
                queues=queues or None,  # type: ignore[arg-type]  # None: every queue
                concurrency=concurrency or self.settings.jobs_concurrency,
                wait=wait,
                name=name,
                install_signal_handlers=install_signal_handlers,
                additional_context={"platform": platform},
                shutdown_graceful_timeout=self.settings.jobs_shutdown_grace_s,
                update_heartbeat_interval=self.settings.jobs_heartbeat_s,
                stalled_worker_timeout=self.settings.jobs_stalled_after_s,
                listen_notify=True,
                worker_middleware=[_observe],
            )
        finally:
            if sweep is not None:
                sweep.cancel()
                await asyncio.gather(sweep, return_exceptions=True)

    async def queue_stats(
        self, session: AsyncSession | None = None
    ) -> tuple[dict[tuple[str, str], int], dict[str, float]]:
        """Jobs waiting or running by (queue, status), and the age in seconds of the oldest
        job waiting in each queue; on the jobs' own pool, or on `session` (a page's)."""
        counts, ages = [await self._rows(sql, session) for sql in (_WAITING_SQL, _AGES_SQL)]
        waiting = {(r["queue_name"], r["status"]): int(r["n"]) for r in counts}
        oldest = {r["queue_name"]: float(r["age"] or 0) for r in ages}
        return waiting, oldest

    async def failures(
        self, session: AsyncSession, *, recent: int = 10
    ) -> tuple[dict[str, int], list[FailedJob]]:
        """Failed jobs (kept until looked at) by queue, and the `recent` latest of them."""
        counts = await self._rows(_FAILED_SQL, session)
        rows = await session.execute(text(_RECENT_FAILED_SQL), {"limit": recent})
        latest = [FailedJob(**row) for row in rows.mappings()]
        return {r["queue_name"]: int(r["n"]) for r in counts}, latest

    async def _rows(self, sql: str, session: AsyncSession | None) -> list[Any]:
        if session is not None:
            return list((await session.execute(text(sql))).mappings())
        return list(await self.app.job_manager.connector.execute_query_all_async(sql))

    async def report_forever(self) -> None:
        """Keep the queue gauges of `/metrics` fresh (`kit.metrics.record_queues`)."""
        seen: set[tuple[str, str]] = set()
        while True:
            try:
                waiting, oldest = await self.queue_stats()
                for gone in seen - set(waiting):  # emptied since: say 0, not the last count
                    waiting[gone] = 0
                seen = set(waiting)
                for queue, _ in seen:
                    oldest.setdefault(queue, 0.0)
                metrics.record_queues(waiting, oldest)
            except Exception as exc:  # the database away for a moment: next round
                log.warning("job queue stats failed", error=type(exc).__name__)
            await asyncio.sleep(self.settings.jobs_stats_interval_s)

    async def sweep_stalled(self) -> int:
        """Put back in the queue the jobs left `doing` by a worker whose heartbeat stopped;
        how many. Another worker's sweep may take a job first: that one is skipped."""
        manager = self.app.job_manager
        stalled = await manager.get_stalled_jobs(
            seconds_since_heartbeat=self.settings.jobs_stalled_after_s
        )
        retried = 0
        for job in stalled:
            try:
                await manager.retry_job(job)
            except Exception as exc:  # taken by another sweep, or finished meanwhile
                log.info("stalled job already handled", job_id=job.id, error=type(exc).__name__)
                continue
            retried += 1
            log.warning("stalled job requeued", task=job.task_name, job_id=job.id)
        return retried

    async def sweep_stalled_forever(self) -> None:
        while True:
            await asyncio.sleep(self.settings.jobs_sweep_interval_s)
            try:
                await self.sweep_stalled()
            except Exception as exc:  # the database away for a moment: next round
                log.warning("stalled-job sweep failed", error=type(exc).__name__)


async def _observe(call_next: Any, context: JobContext, worker: Any) -> Any:
    """Worker middleware: each job run's duration and outcome in `/metrics`, and a log line
    naming the task and job (the task adds its tenant and run ids)."""
    job = context.job
    started = time.monotonic()
    try:
        result = await call_next()
    except BaseException as exc:
        shutdown = context.abort_reason() is AbortReason.SHUTDOWN
        if isinstance(exc, asyncio.CancelledError) and shutdown and job.id is not None:
            CUT_BY_SHUTDOWN.add(job.id)  # `Released` queues it again
        task = context.task
        retried = task is not None and task.get_retry_exception(exception=exc, job=job)
        outcome = "retried" if retried else "failed"
        metrics.record_job(job.task_name, outcome, time.monotonic() - started)
        log.warning("job " + outcome, task=job.task_name, job_id=job.id, error=type(exc).__name__)
        raise
    metrics.record_job(job.task_name, "succeeded", time.monotonic() - started)
    return result


def _queueing_lock_clash(exc: BaseException) -> bool:
    return (
        isinstance(exc, asyncpg.UniqueViolationError)
        and exc.constraint_name == _QUEUEING_LOCK_INDEX
    )
