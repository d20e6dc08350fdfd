"""`tenantry worker`: the app's services and jobs without its HTTP server (scale-out)."""

from __future__ import annotations

import asyncio
import os
import signal

from tenantry.config import Settings


async def work(settings: Settings, concurrency: int | None, queues: list[str] | None) -> None:
    from tenantry.app import create_app

    # Ours from the first instant, not Procrastinate's (installed only once its worker has
    # registered: a SIGTERM in between killed the process). Cancelling the worker is its
    # graceful stop: no new jobs, JOBS_SHUTDOWN_GRACE_S for the running ones, unregistered.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        platform = app.state.platform
        worker = asyncio.create_task(
            platform.jobs.work(
                platform, concurrency=concurrency, queues=queues, name=f"worker-{os.getpid()}"
            )
        )
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({worker, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if worker.done():
            worker.result()  # a worker that ended by itself: its error ends the command
        else:
            worker.cancel()
            await asyncio.gather(worker, return_exceptions=True)
