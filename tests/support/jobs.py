"""Tasks for the jobs kit's tests (`tests/kit/test_jobs.py`), and a worker process running them
(`python -m tests.support.jobs DATABASE_URL`), so a test can kill a real worker mid-job."""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import Any

from procrastinate import JobContext

from tenantry.config import Settings
from tenantry.kit.db import Database
from tenantry.kit.jobs import Jobs, TaskSet
from tenantry.kit.platform import Platform
from tenantry.kit.retries import Backoff

NAMESPACE = "kit-test"
QUEUE = "kit-test"
tasks = TaskSet()
# (value, attempt) of every run in this process.
RUNS: list[tuple[str, int]] = []


@tasks.task(name="note", queue=QUEUE, retry=Backoff(4, base_s=0.01, cap_s=0.02))
async def note(context: JobContext, value: str, failures: int = 0) -> None:
    """Records its run; fails its first `failures` runs."""
    attempt = context.job.attempts
    RUNS.append((value, attempt))
    if attempt < failures:
        raise RuntimeError(f"failing on purpose ({attempt + 1}/{failures})")


@tasks.task(name="slow_first", queue=QUEUE, retry=Backoff(3, base_s=0.01, cap_s=0.02))
async def slow_first(context: JobContext, value: str) -> None:
    """Hangs on its first run (for a worker to be killed under it), records the next."""
    if context.job.attempts == 0:
        await asyncio.sleep(120)
    RUNS.append((value, context.job.attempts))


def task_sets() -> dict[str, TaskSet]:
    return {NAMESPACE: tasks}


def job_settings(settings: Settings, **overrides: Any) -> Settings:
    """Fast heartbeats, so a dead worker is found in seconds."""
    quick = {
        "jobs_heartbeat_s": 0.5,
        "jobs_stalled_after_s": 2.0,
        "jobs_sweep_interval_s": 0.5,
        "jobs_shutdown_grace_s": 2.0,
    }
    return settings.model_copy(update={**quick, **overrides})


async def _serve(url: str) -> None:
    settings = job_settings(Settings(_env_file=None, database_url=url))
    db = Database(url, settings)
    jobs = Jobs(url, settings, task_sets())
    # SIGTERM as `tenantry worker` takes it: stop taking jobs, give running ones the grace.
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        work = asyncio.create_task(
            jobs.work(Platform.build(settings, db), queues=[QUEUE], name="killable")
        )
        await asyncio.wait({work, asyncio.create_task(stop.wait())}, return_when="FIRST_COMPLETED")
        work.cancel()
        await asyncio.gather(work, return_exceptions=True)
    finally:
        await jobs.close()
        await db.dispose()


if __name__ == "__main__":
    asyncio.run(_serve(sys.argv[1]))
