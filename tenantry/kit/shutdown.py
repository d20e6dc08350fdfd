"""Graceful shutdown of a served API process: drain first, then stop.

SIGTERM does not stop the server at once:

1. it stops listening, and `/readyz` answers 503 (on a connection already open): a proxy's
   new connection is refused, and nginx passes the request to another instance, POSTs
   included, since nothing was sent;
2. for SHUTDOWN_DRAIN_S the requests that arrive on connections already open are served,
   and every response says `Connection: close`, so the proxy's kept-alive connections end
   cleanly, one answered request at a time, instead of being cut under a request the proxy
   is about to send (nginx closes the idle ones itself after 4 s, `deploy/nginx.conf`);
3. then uvicorn's own graceful shutdown: the requests in flight get SHUTDOWN_GRACE_S to
   finish, the lifespan's shutdown runs (the in-process job worker releases its jobs, pools
   close), and the process exits 0.

Behind a Kubernetes Service the pod's `preStop` hook waits while the endpoint is removed,
before the SIGTERM (`deploy/k8s/api-deployment.yaml`). A second SIGTERM, and SIGINT (Ctrl-C
at a terminal), skip the drain. Written here because uvicorn has no drain phase: we wrap its
signal handler rather than replace its server.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from tenantry.kit.logging import get_logger

log = get_logger("tenantry.shutdown")

Handler = Callable[[int, FrameType | None], Any]


class Shutdown:
    """The process's drain state: whether it is draining, and what to tell when it starts."""

    def __init__(self, drain_s: float) -> None:
        self.drain_s = drain_s
        self.draining = False
        self._hooks: list[Callable[[], None]] = []

    def on_drain(self, hook: Callable[[], None]) -> None:
        """Call `hook` when the drain begins (now, if it has)."""
        self._hooks.append(hook)
        if self.draining:
            hook()

    def begin(self) -> None:
        if self.draining:
            return
        self.draining = True
        log.info("draining before shutdown", drain_s=self.drain_s)
        for hook in self._hooks:
            hook()

    def install(self) -> bool:
        """Put the drain in front of uvicorn's SIGTERM handler. Only under a uvicorn server
        that captured the signals (`tenantry serve`), on the main thread: an app driven by
        tests or by the CLI keeps the process's handlers as they are."""
        if threading.current_thread() is not threading.main_thread():
            return False
        previous = signal.getsignal(signal.SIGTERM)
        if not _is_uvicorn_handler(previous) or not callable(previous):
            return False
        stop: Handler = previous
        loop = asyncio.get_running_loop()

        def on_sigterm(sig: int, frame: FrameType | None) -> None:
            if self.draining or self.drain_s <= 0:
                stop(sig, frame)  # a second signal, or no drain asked for: stop now
                return
            # A signal handler runs between two bytecodes of whatever the loop was doing:
            # hand the work to the loop rather than touch it from here.
            loop.call_soon_threadsafe(self._drain_then, loop, stop, sig)

        signal.signal(signal.SIGTERM, on_sigterm)
        return True

    def _drain_then(self, loop: asyncio.AbstractEventLoop, stop: Handler, sig: int) -> None:
        # No new connection from now on; those open are served through the drain.
        for server in getattr(getattr(stop, "__self__", None), "servers", ()):
            server.close()
        self.begin()
        loop.call_later(self.drain_s, stop, sig, None)


def _is_uvicorn_handler(handler: object) -> bool:
    import uvicorn

    return isinstance(getattr(handler, "__self__", None), uvicorn.Server)
