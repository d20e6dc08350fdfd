"""A real HTTP server on 127.0.0.1 for outbound tests: uvicorn serving a small Starlette app in
the test's event loop, with switches for failures, slowness and redirects."""

from __future__ import annotations

import asyncio
import random
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import uvicorn
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError
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
    fail_rate: float = 0.0  # and each request fails with this probability (seeded)
    fail_from_page: int | None = None  # customer pages from this one on answer 503
    retry_after: str | None = None  # sent with a switched-on failure of /hook
    calls: int = 0
    seen: list[Request] = field(default_factory=list)
    pages: list[int] = field(default_factory=list)  # the customer pages asked for, in order


class Source:
    """`GET /echo` answers `{"ok": true, "call": n}`; `/redirect` answers 302 to `/echo`;
    `GET /customers?page=&per_page=` pages through `records` in the sync contract
    (`{"items", "next_page"}`), and wants `secret` in `Authorization` when one is set."""

    def __init__(
        self,
        records: list[dict[str, object]] | None = None,
        secret: str = "",
        webhook_secret: str = "",
    ) -> None:
        self.switches = Switches()
        self.records = records or []
        self.secret = secret
        self.webhook_secret = webhook_secret
        # `POST /hook`: (headers, body, verified payload or None) of each webhook received
        self.received: list[tuple[dict[str, str], bytes, object]] = []
        self._random = random.Random(42)
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = Starlette(
            routes=[
                Route("/echo", self._echo, methods=["GET", "POST"]),
                Route("/redirect", self._redirect),
                Route("/customers", self._customers),
                Route("/hook", self._hook, methods=["POST"]),
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
        if s.fail_rate and self._random.random() < s.fail_rate:
            return JSONResponse({"error": "unlucky"}, status_code=503)
        return None

    async def _echo(self, request: Request) -> Response:
        return await self._gate(request) or JSONResponse({"ok": True, "call": self.switches.calls})

    async def _customers(self, request: Request) -> Response:
        if self.secret and request.headers.get("authorization") != self.secret:
            return JSONResponse({"error": "who are you"}, status_code=401)
        page = int(request.query_params.get("page", "1"))
        per_page = int(request.query_params.get("per_page", "100"))
        self.switches.pages.append(page)
        broken_from = self.switches.fail_from_page
        if broken_from is not None and page >= broken_from:
            return JSONResponse({"error": "down"}, status_code=503)
        failed = await self._gate(request)
        if failed is not None:
            return failed
        start = (page - 1) * per_page
        items = self.records[start : start + per_page]
        more = start + per_page < len(self.records)
        return JSONResponse({"items": items, "next_page": page + 1 if more else None})

    async def _hook(self, request: Request) -> Response:
        """A webhook receiver that checks signatures with the stock Standard Webhooks
        verifier; 400 when one does not verify."""
        body = await request.body()
        headers = dict(request.headers)
        try:
            payload = Webhook(self.webhook_secret).verify(body, headers)
        except WebhookVerificationError:
            payload = None
        self.received.append((headers, body, payload))
        failed = await self._gate(request)
        if failed is not None:
            if self.switches.retry_after is not None:
                failed.headers["retry-after"] = self.switches.retry_after
            return failed
        return JSONResponse({"ok": payload is not None}, status_code=200 if payload else 400)

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


def customers(n: int, *, leads_each: int = 1, prefix: str = "c") -> list[dict[str, object]]:
    """`n` customers in the sync contract, each with `leads_each` leads."""
    return [
        {
            "external_id": f"{prefix}-{i}",
            "name": f"Customer {i}",
            "email": f"customer{i}@example.com",
            "phone": f"+34 600 {i:06d}",
            "postal_code": f"{28000 + i % 50}",
            "leads": [
                {"external_id": f"{prefix}-{i}-lead-{j}", "status": "new", "value": "100.50"}
                for j in range(leads_each)
            ],
        }
        for i in range(n)
    ]
