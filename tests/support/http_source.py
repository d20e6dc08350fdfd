"""A real HTTP server on 127.0.0.1 for outbound tests: uvicorn serving a small Starlette app in
the test's event loop, with switches for failures, slowness and redirects."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route


@dataclass
class Switches:
    fail_next: int = 0  # answer the next N requests with `fail_status`
    fail_status: int = 500
    delay_s: float = 0.0  # before answering, for the next `delay_next` requests
    delay_next: int = 0
    calls: int = 0
    seen: list[Request] = field(default_factory=list)


class Source:
    """`GET /echo` answers `{"ok": true, "call": n}`; `/redirect` answers 302 to `/echo`."""

    def __init__(self) -> None:
        self.switches = Switches()
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = Starlette(
            routes=[
                Route("/echo", self._echo, methods=["GET", "POST"]),
                Route("/redirect", self._redirect),
            ]
        )

    async def _gate(self, request: Request) -> Response | None:
        s = self.switches
        s.calls += 1
        s.seen.append(request)
        if s.delay_next > 0:
            s.delay_next -= 1
            await asyncio.sleep(s.delay_s)
        if s.fail_next > 0:
            s.fail_next -= 1
            return JSONResponse({"error": "switched on"}, status_code=s.fail_status)
        return None

    async def _echo(self, request: Request) -> Response:
        return await self._gate(request) or JSONResponse({"ok": True, "call": self.switches.calls})

    async def _redirect(self, request: Request) -> Response:
        return await self._gate(request) or RedirectResponse(self.url + "/echo", status_code=302)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def serving(source: Source) -> AsyncIterator[Source]:
    config = uvicorn.Config(
        source.app, host="127.0.0.1", port=source.port, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:  # noqa: ASYNC110 - uvicorn offers no started event
            await asyncio.sleep(0.01)
        yield source
    finally:
        server.should_exit = True
        await task
