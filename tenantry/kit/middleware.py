"""Pure ASGI middleware (never Starlette's base HTTP middleware class: it costs a task and a
queue per request and breaks contextvars). Order, outermost first, is set in one place:
`tenantry.app.install_middleware`.

Every layer here runs on every request, so each is written to allocate as little as it can:
headers are scanned in the raw ASGI list, fixed header values are bytes made once, and a layer
that has nothing to do for a request passes the original `send` through.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import Iterable
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tenantry.kit.db import start_counting, stop_counting
from tenantry.kit.errors import PROBLEM_BASE, PROBLEM_MEDIA_TYPE, PayloadTooLarge
from tenantry.kit.logging import access_line, bind_request, get_logger, unbind_request
from tenantry.kit.routes import RouteTemplates

_MAX_REQUEST_ID = 128
_PROBLEM_CONTENT_TYPE = (b"content-type", PROBLEM_MEDIA_TYPE.encode())

log = get_logger("tenantry.http")


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value  # type: ignore[no-any-return]
    return None


def _valid_request_id(raw: bytes | None) -> str | None:
    if not raw or len(raw) > _MAX_REQUEST_ID:
        return None
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        return None
    return text if text.isprintable() and " " not in text else None


# A request id must be unique, not secret: 16 random hex digits for the process, then a counter
# (32 hex digits in all). A tenth of uuid4's cost, which reads the OS's random source each time.
_ID_PREFIX = f"{random.SystemRandom().getrandbits(64):016x}"
_id_counter = itertools.count(1)


def _new_request_id() -> str:
    return f"{_ID_PREFIX}{next(_id_counter):016x}"


async def send_problem(
    scope: Scope,
    send: Send,
    status: int,
    slug: str,
    title: str,
    detail: str,
    headers: Iterable[tuple[bytes, bytes]] = (),
) -> None:
    """An RFC 9457 problem response sent by a middleware (the app's handlers are not reached)."""
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": scope.get("path", ""),
    }
    request_id = scope.get("state", {}).get("request_id")
    if request_id:
        body["request_id"] = request_id
    payload = orjson.dumps(body)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                _PROBLEM_CONTENT_TYPE,
                (b"content-length", str(len(payload)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


Headers = list[tuple[bytes, bytes]]


def security_headers(*, hsts_max_age_s: int) -> tuple[Headers, Headers]:
    """The headers every response carries: (over plain HTTP, over HTTPS). HSTS only over HTTPS
    (`scope["scheme"]`, which uvicorn sets from X-Forwarded-Proto behind a trusted proxy)."""
    plain = [
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"strict-origin-when-cross-origin"),
    ]
    tls = list(plain)
    if hsts_max_age_s:
        hsts = b"max-age=%d; includeSubDomains" % hsts_max_age_s
        tls.append((b"strict-transport-security", hsts))
    return plain, tls


class RequestContextMiddleware:
    """The outermost layer: request id, timing, query counter, security headers and the log line.

    - `X-Request-ID` (accepted from the client when sane, else made) and `X-Process-Time`
      (seconds) on every response, and `X-DB-Queries` when `expose_query_count`;
    - the security headers (`security_headers`) on every response, short-cut ones included;
    - binds the request's state to the logs (request id, tenant and user on every line);
    - one line per request: a WARNING `slow request` (route template, status, tenant,
      duration, query count) past `slow_request_ms`, else the access line when `access_log`.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        routes: RouteTemplates,
        expose_query_count: bool = False,
        slow_request_ms: int = 1000,
        access_log: bool = False,
        hsts_max_age_s: int = 0,
    ) -> None:
        self.app = app
        self.routes = routes
        self.expose_query_count = expose_query_count
        self.slow_s = slow_request_ms / 1000 if slow_request_ms else float("inf")
        self.access_log = access_log
        self.plain_headers, self.tls_headers = security_headers(hsts_max_age_s=hsts_max_age_s)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _valid_request_id(_header(scope, b"x-request-id")) or _new_request_id()
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        fixed = self.tls_headers if scope.get("scheme") == "https" else self.plain_headers
        started = time.perf_counter()
        status = 0
        binding = bind_request(state)
        counter, counting = start_counting()

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [
                    *message.get("headers", ()),
                    (b"x-request-id", request_id.encode()),
                    (b"x-process-time", b"%.6f" % (time.perf_counter() - started)),
                    *fixed,
                ]
                if self.expose_query_count:
                    headers.append((b"x-db-queries", b"%d" % counter.count))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            elapsed = time.perf_counter() - started
            if elapsed >= self.slow_s:
                self._log(log.warning, "slow request", scope, status, elapsed, counter.count)
            elif self.access_log:
                self._access(scope, status, elapsed, counter.count)
            stop_counting(counting)
            unbind_request(binding)

    def _access(self, scope: Scope, status: int, elapsed: float, queries: int) -> None:
        fields = {
            "method": scope["method"],
            "path": scope["path"],
            "route": self.routes.template(scope),
            "status": status or 500,
            "duration_ms": round(elapsed * 1000, 2),
            "db_queries": queries,
        }
        if not access_line("request", fields):
            log.info("request", **fields)

    def _log(
        self, method: Any, event: str, scope: Scope, status: int, elapsed: float, queries: int
    ) -> None:
        # The path, never the query string: tokens and OAuth codes travel there.
        method(
            event,
            method=scope["method"],
            path=scope["path"],
            route=self.routes.template(scope),
            status=status or 500,
            duration_ms=round(elapsed * 1000, 2),
            db_queries=queries,
        )


class TimeoutMiddleware:
    """Cuts a request still running after `seconds`: 504 problem document.

    The cut is a cancellation of the request's task, so the request's session scope sees it
    like any error and rolls back: nothing of the request is committed. (Cut during COMMIT
    itself, the transaction is whole either way: PostgreSQL commits all of it or none.) A
    response already started cannot become a 504; the connection is then closed mid-body.

    Ours rather than `asyncio.timeout` per request, for cost: that arms and cancels a loop timer
    for every request (measured +15 µs a request under uvloop, most of the stack's budget).
    Here a request only enters and leaves a dict; one watchdog timer, armed while requests are
    in flight, ticks `seconds / 8` (at most once a second) and cancels the overdue ones. A
    request is therefore cut between `seconds` and `seconds` + one tick.
    """

    def __init__(self, app: ASGIApp, *, seconds: float, routes: RouteTemplates) -> None:
        self.app = app
        self.seconds = seconds
        self.routes = routes
        self.tick = min(1.0, seconds / 8)
        self._deadlines: dict[asyncio.Task[Any], float] = {}
        self._cut: set[asyncio.Task[Any]] = set()
        self._watchdog: asyncio.TimerHandle | None = None
        self._watchdog_loop: asyncio.AbstractEventLoop | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        task = asyncio.current_task()
        if task is None or task in self._deadlines:  # not in a task, or re-entered: no watch
            await self.app(scope, receive, send)
            return
        loop = asyncio.get_running_loop()
        self._deadlines[task] = loop.time() + self.seconds
        if self._watchdog is None or self._watchdog_loop is not loop:
            self._arm(loop)
        cancelling = task.cancelling()
        started = False

        async def watch_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watch_send)
        except asyncio.CancelledError:
            if task not in self._cut:
                raise  # not ours: shutdown, the server
            self._cut.discard(task)
            if task.uncancel() > cancelling:
                raise  # ours, but someone else cancelled it too
            await self._answer(scope, send, started)
        finally:
            del self._deadlines[task]
            if task in self._cut:  # cut, but the app swallowed the cancellation and finished
                self._cut.discard(task)
                task.uncancel()

    def _arm(self, loop: asyncio.AbstractEventLoop) -> None:
        self._watchdog_loop = loop
        self._watchdog = loop.call_later(self.tick, self._check)

    def _check(self) -> None:
        loop = self._watchdog_loop
        self._watchdog = None
        if loop is None or not self._deadlines:
            return  # idle: the next request arms it again
        now = loop.time()
        for task, deadline in self._deadlines.items():
            if deadline <= now and task not in self._cut and not task.done():
                self._cut.add(task)
                task.cancel()
        self._arm(loop)

    async def _answer(self, scope: Scope, send: Send, started: bool) -> None:
        log.warning(
            "request timed out",
            route=self.routes.template(scope),
            timeout_s=self.seconds,
            response_started=started,
        )
        if started:
            raise TimeoutError("the response had started when the request timed out")
        await send_problem(
            scope,
            send,
            504,
            "request-timeout",
            "Request timed out",
            f"The request took longer than {self.seconds:g} s and was stopped; "
            "none of its changes were saved.",
        )


class BodyLimitMiddleware:
    """Refuses bodies over `max_bytes` with 413, without reading them whole.

    A declared `Content-Length` over the limit is refused before the app runs; a chunked body
    is counted as it streams and cut at the limit (the app's error handler renders the 413).
    Any other request needs no counting (HTTP/1.1: a body has a Content-Length, which the server
    holds it to, or is chunked; without either there is none), so it keeps the server's own
    `receive`.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = chunked = None
        for key, value in scope["headers"]:
            if key == b"content-length":
                declared = value
            elif key == b"transfer-encoding":
                chunked = value
        if declared is not None and chunked is None:
            try:
                too_big = int(declared) > self.max_bytes
            except ValueError:
                too_big = False
            if too_big:
                await send_problem(
                    scope,
                    send,
                    413,
                    PayloadTooLarge.slug,
                    PayloadTooLarge.title,
                    self._detail(),
                    [(b"connection", b"close")],
                )
                return
        if chunked is None:
            await self.app(scope, receive, send)
            return

        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise PayloadTooLarge(self._detail())
            return message

        await self.app(scope, limited_receive, send)

    def _detail(self) -> str:
        return f"The request body is larger than the limit of {self.max_bytes} bytes."
