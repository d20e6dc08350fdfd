"""The jobs kit (`kit.jobs`) against real PostgreSQL and real workers: a job exists exactly when
the transaction that deferred it commits, runs, is retried with backoff, and survives the
worker that ran it being killed."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from procrastinate.jobs import Job

from tenantry.config import Settings
from tenantry.kit.db import Database, session_scope
from tenantry.kit.jobs import AlreadyEnqueued, Jobs
from tenantry.kit.platform import Platform
from tenantry.kit.retries import CUT_BY_SHUTDOWN, Backoff, Released, Schedule
from tests.support import jobs as support
from tests.support.platform import eventually

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
async def jobs(settings: Settings) -> AsyncIterator[Jobs]:
    """One Jobs for the module."""
    made = Jobs(settings.database_url or "", support.job_settings(settings), support.task_sets())
    await made.open()
    try:
        yield made
    finally:
        await made.app.job_manager.connector.execute_query_async(
            "DELETE FROM procrastinate_jobs WHERE queue_name = %(q)s", q=support.QUEUE
        )
        await made.close()


@pytest.fixture
async def worker_platform(committed_db: Database, settings: Settings) -> Platform:
    return Platform.build(support.job_settings(settings), committed_db)


async def _jobs_for(jobs: Jobs, value: str) -> list[Job]:
    found = await jobs.app.job_manager.list_jobs_async(queue=support.QUEUE)
    return [j for j in found if j.task_kwargs.get("value") == value]


async def _drain(jobs: Jobs, platform: Platform, value: str, until: str) -> list[Job]:
    """Run workers that stop when caught up, until the job reaches `until` (retries are due
    a few milliseconds after a failure)."""
    for _ in range(100):
        await jobs.work(platform, queues=[support.QUEUE], wait=False)
        found = await _jobs_for(jobs, value)
        if found and all(j.status == until for j in found):
            return found
        await asyncio.sleep(0.02)
    raise AssertionError(f"job {value} never reached {until}: {found}")


def _note(jobs: Jobs) -> Any:
    return jobs.task(f"{support.NAMESPACE}:note")


async def test_a_job_exists_exactly_when_its_transaction_commits(
    jobs: Jobs, committed_db: Database, worker_platform: Platform
) -> None:
    value = uuid.uuid4().hex

    async def failing_request() -> None:
        async with session_scope(committed_db.sessionmaker) as session:
            await jobs.defer(session, _note(jobs), value=value)
            assert len(await _jobs_for(jobs, value)) == 0  # not visible before the commit
            raise RuntimeError("the request failed")

    with pytest.raises(RuntimeError, match="the request failed"):
        await failing_request()
    assert await _jobs_for(jobs, value) == []

    async with session_scope(committed_db.sessionmaker) as session:
        job_id = await jobs.defer(session, _note(jobs), value=value)
    [job] = await _jobs_for(jobs, value)
    assert (job.id, job.status, job.task_name) == (job_id, "todo", "kit-test:note")

    await _drain(jobs, worker_platform, value, until="succeeded")
    assert support.RUNS.count((value, 0)) == 1


async def test_a_failing_job_is_retried_with_backoff_then_succeeds(
    jobs: Jobs, committed_db: Database, worker_platform: Platform
) -> None:
    value = uuid.uuid4().hex
    async with session_scope(committed_db.sessionmaker) as session:
        await jobs.defer(session, _note(jobs), value=value, failures=2)
    [job] = await _drain(jobs, worker_platform, value, until="succeeded")
    assert [a for v, a in support.RUNS if v == value] == [0, 1, 2]
    assert job.attempts == 3  # Procrastinate counts every run, the last one included


async def test_a_job_that_keeps_failing_stops_at_its_maximum(
    jobs: Jobs, committed_db: Database, worker_platform: Platform
) -> None:
    value = uuid.uuid4().hex
    async with session_scope(committed_db.sessionmaker) as session:
        await jobs.defer(session, _note(jobs), value=value, failures=99)
    await _drain(jobs, worker_platform, value, until="failed")
    assert [a for v, a in support.RUNS if v == value] == [0, 1, 2, 3]  # Backoff(4): four runs


async def test_a_queueing_lock_clash_leaves_the_transaction_usable(
    jobs: Jobs, committed_db: Database
) -> None:
    value, lock = uuid.uuid4().hex, f"lock-{uuid.uuid4().hex}"
    async with session_scope(committed_db.sessionmaker) as session:
        await jobs.defer(session, _note(jobs), options={"queueing_lock": lock}, value=value)
        with pytest.raises(AlreadyEnqueued):
            await jobs.defer(session, _note(jobs), options={"queueing_lock": lock}, value=value)
        # the savepoint took the failed insert with it: the transaction goes on and commits
        await jobs.defer(session, _note(jobs), value=value)
    assert len(await _jobs_for(jobs, value)) == 2


async def test_a_job_whose_worker_is_killed_runs_again(
    jobs: Jobs, committed_db: Database, worker_platform: Platform, settings: Settings
) -> None:
    value = uuid.uuid4().hex
    async with session_scope(committed_db.sessionmaker) as session:
        await jobs.defer(session, jobs.task(f"{support.NAMESPACE}:slow_first"), value=value)
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.support.jobs",
        settings.database_url or "",
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:

        async def running() -> bool:
            return [j.status for j in await _jobs_for(jobs, value)] == ["doing"]

        await eventually(running, within_s=60)
    finally:
        process.send_signal(signal.SIGKILL)  # no graceful shutdown: the job stays `doing`
        await process.wait()
    assert [j.status for j in await _jobs_for(jobs, value)] == ["doing"]

    async def requeued() -> bool:  # once the dead worker's heartbeat is 2 s old
        await jobs.sweep_stalled()
        return [j.status for j in await _jobs_for(jobs, value)] == ["todo"]

    await eventually(requeued, within_s=30)
    await _drain(jobs, worker_platform, value, until="succeeded")
    assert (value, 1) in support.RUNS  # its second run, in another worker


async def test_the_worker_command_starts_and_stops_gracefully_on_sigterm(
    settings: Settings, jobs: Jobs
) -> None:
    """`tenantry worker` (the app's lifespan without HTTP) registers as a worker, and on
    SIGTERM stops taking jobs, unregisters and exits 0."""
    connector = jobs.app.job_manager.connector

    async def worker_ids() -> set[int]:
        rows = await connector.execute_query_all_async("SELECT id FROM procrastinate_workers")
        return {r["id"] for r in rows}

    before = await worker_ids()
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url or "",
        "JWT_SECRET": settings.jwt_secret,
        "JOBS_SHUTDOWN_GRACE_S": "1",
    }
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "tenantry.cli", "worker", "--concurrency", "2", "--queues", "x,y"),
        cwd=ROOT,
        env=env,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stderr is not None
        line = (await process.stderr.readline()).decode()
        assert "worker on x, y, 2 at once" in line

        async def registered() -> bool:
            assert process.returncode is None, "the worker exited early"
            return bool(await worker_ids() - before)

        await eventually(registered, within_s=30)
        mine = await worker_ids() - before
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(20):
            code = await process.wait()
        rest = (await process.stderr.read()).decode()[-3000:]
        assert code == 0, rest
        assert not (await worker_ids() & mine)  # unregistered on the way out
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


@given(st.integers(1, 30), st.floats(0.01, 10), st.floats(1, 7200))
def test_backoff_grows_within_its_bounds(failures: int, base: float, cap: float) -> None:
    backoff = Backoff(40, base_s=base, cap_s=cap)
    full = min(cap, base * 2 ** (failures - 1))
    assert full / 2 <= backoff.delay_s(failures) <= full


def test_schedule_follows_its_delays_then_gives_up() -> None:
    schedule = Schedule((0, 5, 300), jitter=0.1)
    assert schedule.delay_s(1) == 0
    assert 4.5 <= (schedule.delay_s(2) or 0) <= 5.5
    assert 270 <= (schedule.delay_s(3) or 0) <= 330
    assert schedule.delay_s(4) is None


async def test_sigterm_gives_a_running_job_its_grace_then_releases_it(
    jobs: Jobs, committed_db: Database, worker_platform: Platform, settings: Settings
) -> None:
    """A worker told to stop while a job runs past JOBS_SHUTDOWN_GRACE_S (2 s here) cancels
    it and exits; the job is not lost: it runs again, to success, on another worker."""
    value = uuid.uuid4().hex
    async with session_scope(committed_db.sessionmaker) as session:
        await jobs.defer(session, jobs.task(f"{support.NAMESPACE}:slow_first"), value=value)
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "tests.support.jobs", settings.database_url or ""),
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:

        async def running() -> bool:
            return [j.status for j in await _jobs_for(jobs, value)] == ["doing"]

        await eventually(running, within_s=60)
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(20):
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    [job] = await _jobs_for(jobs, value)
    assert (job.status, job.attempts) == ("todo", 1)  # released, not aborted
    await _drain(jobs, worker_platform, value, until="succeeded")
    assert (value, 1) in support.RUNS  # its second run, here


def test_only_a_shutdown_s_cancellation_is_released() -> None:
    released = Released(None)
    job = Job(id=1, queue="q", lock=None, queueing_lock=None, task_name="t", attempts=4)
    cancelled = asyncio.CancelledError()
    assert released.get_retry_decision(exception=cancelled, job=job) is None  # not at shutdown
    CUT_BY_SHUTDOWN.add(1)
    try:
        assert released.get_retry_decision(exception=cancelled, job=job) is not None
    finally:
        CUT_BY_SHUTDOWN.discard(1)
    assert released.get_retry_decision(exception=RuntimeError(), job=job) is None
    inner = Released(Backoff(9)).get_retry_decision(exception=RuntimeError(), job=job)
    assert inner is not None  # the task's own strategy decides the rest
