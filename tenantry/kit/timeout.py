"""Request deadlines: the part of the edge middleware that cuts a request still running after
`REQUEST_TIMEOUT_S`.

The cut is a cancellation of the request's task, so the request's session scope sees it like
any error and rolls back: nothing of the request is committed. (Cut during COMMIT itself, the
transaction is whole either way: PostgreSQL commits all of it or none.)

Ours rather than `asyncio.timeout` per request, for cost: that arms and cancels a loop timer
for every request (measured +15 µs a request under uvloop). Here a request costs nothing
more than its entry in the in-flight registry (`kit.context`), which it has anyway; one timer,
armed while requests are in flight, ticks `seconds / 8` (at most once a second) and cancels
the overdue ones. A request is therefore cut between `seconds`
and `seconds` + one tick.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from tenantry.kit.context import RequestContext, inflight


class Watchdog:
    """Cuts the in-flight requests (`kit.context.inflight`) past their deadline. Each app has
    one; whichever ticks first cuts an overdue request, and the request itself records the cut,
    so several apps in one process (tests) stay right."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.tick = min(1.0, seconds / 8)
        # The timer, while armed, and its loop. A request arriving finds it armed on its own
        # loop or arms it (`arm`): checked inline by the edge, a call less a request.
        self.timer: asyncio.TimerHandle | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    @staticmethod
    def claim(request: RequestContext, task: asyncio.Task[Any]) -> bool:
        """On a CancelledError: True when the cancellation was ours alone (answer 504), False
        when it was someone else's too (shutdown, the server, a client gone): it propagates."""
        if not request.cut:
            return False
        request.cut = False
        request.deadline = float("inf")  # answering the 504 is not cut again
        return task.uncancel() == 0

    @staticmethod
    def release(request: RequestContext, task: asyncio.Task[Any]) -> None:
        """The request is over: if it was cut but the app swallowed the cancellation and
        finished, the task's cancellation is taken back."""
        if request.cut:
            request.cut = False
            task.uncancel()

    def arm(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.timer = loop.call_later(self.tick, self._check)

    def _check(self) -> None:
        loop = self.loop
        self.timer = None
        if loop is None or not inflight:
            return  # idle: the next request arms it again
        now = time.perf_counter()
        for task, request in list(inflight.items()):
            if request.deadline > now or request.cut or task.done() or task.get_loop() is not loop:
                continue
            if task.cancelling() == 0:  # one some other party is cancelling is left to it
                request.cut = True
                task.cancel()
        self.arm(loop)
