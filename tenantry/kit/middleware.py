"""The edge: the whole HTTP platform stack as one pure ASGI middleware (never Starlette's base
HTTP middleware class: it costs a task and a queue per request and breaks contextvars).

What it does, from the outside in (the order is written here and only here):

1. request context: `X-Request-ID` (the client's when sane, else made) and `X-Process-Time`
   (seconds) on every response, `X-DB-Queries` when `expose_query_count`; the security headers
   (nosniff, frame deny, referrer policy; HSTS over HTTPS); request id, tenant and user bound to
   every log line; the access line, or the slow-request WARNING past `slow_request_ms` (route
   template, status, tenant, duration, query count).
2. metrics (`kit.metrics`): requests, latency and queries by route template, in flight.
3. CORS (Starlette's `CORSMiddleware`, only when `cors` is given): inside the context and the
   metrics, outside everything below, so a preflight is answered without spending the caller's
   quota and a 413, 429 or 504 still carries the headers a browser needs to read it.
4. gzip (`kit.gzip`): bodies over `gzip_min_bytes` when the client accepts gzip, the edge's own
   problem documents included.
5. request timeout (`kit.timeout`): a 504 problem after `timeout_s`, the request's transaction
   rolled back.
6. size limits (`kit.limits`): 431 past the header count or bytes, 413 past a declared body
   size, before the app runs; a chunked body is counted as it streams and cut at the limit.
7. rate limit (`kit.ratelimit`): verifies the bearer token once and stashes the claims (the
   decode-once contract, `kit.security`), counts the request against its route class's policy,
   429 past it; the RateLimit-Policy and RateLimit headers on every limited response.
8. the fast lane (`kit.lane`): a hot route is served here; every other goes on to FastAPI.

An error no handler answered ends here (inside 4 to 7, so the 500 has the request id, CORS,
gzip, and is counted as a 500): logged once with the request's context and answered with the
500 problem (`kit.errors`), never re-raised. Re-raised, Starlette's ServerErrorMiddleware would
log it and raise it on to the server, which logs it again and closes the keep-alive connection.
A response already started cannot be turned into a 500: the error is logged and the edge
returns, and the server closes the connection on the incomplete response.

Why one layer and not seven: each separate layer is a coroutine in the chain every request and
every response message passes through, its own scan of the request's headers, and its own
`send` wrapper (seven wrappers, each called twice a response). Merged, the headers are read
once into a dict, and one wrapper rewrites the response start: the platform's cost per request
dropped from about 55 µs to the figure in `script/bench-stack`'s latest run (see README).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Hashable
from typing import Any

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tenantry.kit import outage
from tenantry.kit.asgi import Headers, new_request_id, security_headers, send_problem
from tenantry.kit.asgi import valid_request_id as _valid_request_id
from tenantry.kit.context import RequestContext, inflight
from tenantry.kit.errors import INTERNAL_ERROR, log_unhandled
from tenantry.kit.gzip import GzipSend, accepts_gzip
from tenantry.kit.idempotency import HEADER as IDEMPOTENCY_HEADER
from tenantry.kit.idempotency import Idempotency, applies, principal_key
from tenantry.kit.lane import Lane
from tenantry.kit.limits import SizeLimits
from tenantry.kit.logging import access_line, get_logger
from tenantry.kit.metrics import RequestMetrics
from tenantry.kit.ratelimit import RateLimiter, refuse
from tenantry.kit.routes import RouteTemplates
from tenantry.kit.security import TOKEN_CLAIMS, verify_bearer
from tenantry.kit.shutdown import Shutdown
from tenantry.kit.timeout import Watchdog

log = get_logger("tenantry.http")

_EXCHANGE = "tenantry.edge"  # the scope key of the request's `_Exchange`, for CORS's inside
_perf_counter = time.perf_counter
_time = time.time
_current_task = asyncio.current_task


class _Exchange(RequestContext):
    """One request's passage through the edge. It is the request's context (`kit.context`:
    state for the logs, statement count, deadline), and its `send` is the one wrapper of the
    server's `send`, which adds the edge's headers to the response start."""

    __slots__ = ("extra", "fixed", "headers", "request_id", "server_send", "started", "status")

    def __init__(
        self,
        server_send: Send,
        started: float,
        deadline: float,
        headers: dict[bytes, bytes],
        request_id: str,
        fixed: Headers,
        state: dict[str, Any],
    ) -> None:
        # RequestContext's fields
        self.count = 0
        self.state = state
        self.deadline = deadline
        self.cut = False
        self.server_send = server_send
        self.started = started
        self.headers = headers
        self.request_id = request_id
        self.fixed = fixed  # the security headers, and X-DB-Queries' place when exposed
        self.extra: tuple[tuple[bytes, bytes], ...] = ()  # the inner parts': the RateLimit headers
        self.status = 0  # the response's, once started

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            headers = [
                *message.get("headers", ()),
                (b"x-request-id", self.request_id.encode()),
                (b"x-process-time", b"%.6f" % (_perf_counter() - self.started)),
                *self.extra,
                *self.fixed,
            ]
            if headers[-1] is _QUERY_COUNT_SLOT:
                headers[-1] = (b"x-db-queries", b"%d" % self.count)
            message["headers"] = headers
        await self.server_send(message)


_QUERY_COUNT_SLOT = (b"x-db-queries", b"")


class EdgeMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        routes: RouteTemplates,
        limiter: RateLimiter,
        lane: Lane | None = None,
        timeout_s: float = 30,
        max_body_bytes: int = 1_048_576,
        max_header_bytes: int = 16_384,
        max_headers: int = 100,
        gzip_min_bytes: int = 1024,
        gzip_level: int = 6,
        expose_query_count: bool = False,
        slow_request_ms: int = 1000,
        access_log: bool = False,
        hsts_max_age_s: int = 0,
        cors: dict[str, Any] | None = None,
        idempotency: Idempotency | None = None,
        idempotency_exempt: tuple[str, ...] = (),
        shutdown: Shutdown | None = None,
    ) -> None:
        self.app = app
        self.routes = routes
        self.metrics = RequestMetrics(routes)
        self.limiter = limiter
        self.lane = lane
        self.watchdog = Watchdog(timeout_s)
        self.timeout_s = timeout_s
        self.sizes = SizeLimits(max_body_bytes, max_header_bytes, max_headers)
        self.idempotency = idempotency
        self.idempotency_exempt = idempotency_exempt
        self.gzip_min_bytes = gzip_min_bytes
        self.gzip_level = gzip_level
        self.slow_s = slow_request_ms / 1000 if slow_request_ms else float("inf")
        self.access_log = access_log
        plain, tls = security_headers(hsts_max_age_s=hsts_max_age_s)
        if expose_query_count:  # filled in at the response start, after the extra headers
            plain.append(_QUERY_COUNT_SLOT)
            tls.append(_QUERY_COUNT_SLOT)
        self.plain_headers, self.tls_headers = plain, tls
        if shutdown is not None:
            shutdown.on_drain(self._close_connections)
        # CORS, when configured, sits between the context and metrics and the rest.
        self.cors: ASGIApp | None = CORSMiddleware(self._from_cors, **cors) if cors else None

    def _close_connections(self) -> None:
        """Draining (`kit.shutdown`): from now on every response ends its connection. The
        header goes into the lists each response already copies, so serving pays nothing
        for it before then (X-DB-Queries' slot stays last)."""
        for headers in (self.plain_headers, self.tls_headers):
            headers.insert(0, (b"connection", b"close"))

    # --- 1 and 2: request context and metrics ---------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan and websockets go straight through
            await self.app(scope, receive, send)
            return
        started = _perf_counter()
        # The headers by name, the first of repeated ones winning (as Starlette's `Headers.get`
        # and FastAPI's `HTTPBearer` read them): one dict made in C instead of a scan each.
        headers = dict(reversed(scope["headers"]))
        raw_id = headers.get(b"x-request-id")
        request_id = None if raw_id is None else _valid_request_id(raw_id)
        if request_id is None:
            request_id = new_request_id()
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        exchange = _Exchange(
            send,
            started,
            started + self.timeout_s,
            headers,
            request_id,
            self.tls_headers if scope.get("scheme") == "https" else self.plain_headers,
            state,
        )
        task = _current_task()
        outer = None
        if task is not None:
            watchdog = self.watchdog
            if watchdog.timer is None or watchdog.loop is not task.get_loop():
                watchdog.arm(task.get_loop())
            outer = inflight.get(task)  # an app called from within a request: put back after
        gauge = self.metrics.gauge
        if gauge is not None:
            gauge.inc()
        if task is not None:  # into the in-flight registry, `kit.context`, last before `try`
            inflight[task] = exchange
        try:
            if self.cors is None:
                await self._guarded(scope, receive, exchange.send, exchange, task)
            else:
                scope[_EXCHANGE] = exchange, task
                await self.cors(scope, receive, exchange.send)
        finally:
            try:  # the log line needs the request's context: before it leaves the registry
                elapsed = _perf_counter() - started
                status = exchange.status or 500
                self.metrics.finished(scope, status, elapsed, exchange.count)
                if elapsed >= self.slow_s:
                    self._log(scope, status, elapsed, exchange.count, slow=True)
                elif self.access_log:
                    self._log(scope, status, elapsed, exchange.count, slow=False)
            finally:  # whatever failed above (stdout gone ...), the request leaves
                if gauge is not None:
                    gauge.dec()
                if task is not None:
                    if outer is None:
                        del inflight[task]
                    else:
                        inflight[task] = outer

    def _log(self, scope: Scope, status: int, elapsed: float, queries: int, *, slow: bool) -> None:
        # The path, never the query string: tokens and OAuth codes travel there.
        fields = {
            "method": scope["method"],
            "path": scope["path"],
            "route": self.routes.template(scope),
            "status": status,
            "duration_ms": round(elapsed * 1000, 2),
            "db_queries": queries,
        }
        if slow:
            log.warning("slow request", **fields)
        elif not access_line("request", fields):
            log.info("request", **fields)

    # --- 4 to 7: gzip, timeout, body limit, rate limit ---------------------------------------

    async def _from_cors(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._guarded(scope, receive, send, *scope[_EXCHANGE])

    async def _guarded(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        exchange: _Exchange,
        task: asyncio.Task[Any] | None,
    ) -> None:
        headers = exchange.headers
        accept = headers.get(b"accept-encoding")
        if accept is not None and accepts_gzip(accept):
            send = GzipSend(send, min_bytes=self.gzip_min_bytes, level=self.gzip_level)
        try:
            sizes = self.sizes
            if await sizes.refused(scope, send, headers):
                return
            if b"transfer-encoding" in headers:  # chunked: counted as it streams
                receive = sizes.counting(receive)
            auth = headers.get(b"authorization")
            claims = None if auth is None else verify_bearer(scope["app"].state.tokens, auth)
            exchange.state[TOKEN_CLAIMS] = claims  # the decode-once contract, `kit.security`
            limiter = self.limiter
            policy = limiter.policy_for(scope["path"])
            if policy is not None:
                # counted against the principal's id, else (and always on the login
                # routes) the client's address
                if claims is not None and not policy.by_address:
                    who: Hashable = claims.sub
                else:
                    client = scope.get("client")
                    who = client[0] if client else "unknown"
                local = limiter.local
                if local is not None:
                    count, reset = local.hit(policy, who, _time())
                else:
                    count, reset = await limiter.hit_shared(policy, who)
                remaining = policy.amount - count
                exchange.extra = (
                    policy.policy_header,
                    (b"ratelimit", policy.state(remaining, reset)),
                )
                if remaining < 0:
                    await refuse(scope, send, policy, reset)
                    return
            idempotency = self.idempotency
            if idempotency is not None and applies(scope, self.idempotency_exempt):
                raw_key = headers.get(IDEMPOTENCY_HEADER)
                if raw_key is not None:
                    who = principal_key(scope, claims, headers)
                    await idempotency.serve(
                        scope, receive, send, self._dispatch, who=who, raw_key=raw_key
                    )
                    return
            await self._dispatch(scope, receive, send)
        except asyncio.CancelledError:
            if task is None or not self.watchdog.claim(exchange, task):
                raise  # not ours: shutdown, the server
            await self._timed_out(scope, send, started=exchange.status != 0)
        except Exception as exc:  # no handler answered it (the module's docstring)
            await self._failed(scope, send, exchange, exc)
        finally:
            if exchange.cut and task is not None:
                self.watchdog.release(exchange, task)

    async def _dispatch(self, scope: Scope, receive: Receive, send: Send) -> None:
        lane = self.lane
        hot_route = None if lane is None else lane.match(scope)
        if hot_route is None:
            await self.app(scope, receive, send)
        else:  # served here, past FastAPI's per-route machinery (`kit.lane`)
            await lane.serve(hot_route, scope, receive, send)  # type: ignore[union-attr]

    async def _failed(self, scope: Scope, send: Send, exchange: _Exchange, exc: Exception) -> None:
        # The request's transaction is already rolled back: the session dependency's scope
        # (`kit.deps`, `kit.db.session_scope`) closed as the error passed through it.
        started = exchange.status != 0  # the response start reached the server
        if outage.database_unavailable(exc):
            outage.note(exc, scope.get("path"))
            if not started:
                retry = (b"retry-after", b"%d" % outage.RETRY_AFTER_S)
                await send_problem(scope, send, 503, *outage.PROBLEM, [retry])
            return
        log_unhandled(exc, scope, route=self.routes.template(scope), response_started=started)
        if started:
            return  # incomplete: the server closes the connection
        await send_problem(scope, send, 500, *INTERNAL_ERROR)

    async def _timed_out(self, scope: Scope, send: Send, *, started: bool) -> None:
        log.warning(
            "request timed out",
            route=self.routes.template(scope),
            timeout_s=self.timeout_s,
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
            f"The request took longer than {self.timeout_s:g} s and was stopped; "
            "none of its changes were saved.",
        )
