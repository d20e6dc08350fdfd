"""Prometheus metrics, served at `/metrics`.

Labels are bounded by construction: route templates (never raw paths; an unmatched request is
the one label `<unmatched>`), a fixed set of methods, the status code, and names that come from
our code (pool, cache, task). Never an id, an email, a tenant or a secret.

Several worker processes (`tenantry serve --workers N`): prometheus-client's multiprocess mode.
`tenantry serve` points `PROMETHEUS_MULTIPROC_DIR` at an empty directory before the workers
start; each worker then keeps its values in files there, `/metrics` (answered by any worker)
adds up every worker's, and a worker's live gauges leave with it (`mark_process_dead`). The
variable must be set before this module is imported, which is why the CLI sets it and the
workers are fresh processes.

Hooks for the rest of the code: `record_cache(cache, hit)`, `record_cache_eviction(cache)`,
`record_job(task, outcome)`; `instrument_pool(engine, name)` for connection pools.
"""

from __future__ import annotations

import os
import time
import weakref
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tenantry.kit.db import current_query_counter
from tenantry.kit.routes import RouteTemplates

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

REQUESTS = Counter(
    "tenantry_http_requests",
    "HTTP requests answered, by route template, method and status.",
    ["route", "method", "status"],
)
LATENCY = Histogram(
    "tenantry_http_request_duration_seconds",
    "Time from the request's arrival to the end of its response, by route template.",
    ["route", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
IN_FLIGHT = Gauge(
    "tenantry_http_requests_in_flight",
    "Requests being handled right now.",
    multiprocess_mode="livesum",
)
DB_QUERIES = Histogram(
    "tenantry_db_queries_per_request",
    "Database statements run by one request, by route template.",
    ["route"],
    buckets=(0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89),
)
POOL_IN_USE = Gauge(
    "tenantry_db_pool_connections_in_use",
    "Database connections checked out of the pool.",
    ["pool"],
    multiprocess_mode="livesum",
)
CACHE_REQUESTS = Counter(
    "tenantry_cache_requests",
    "Cache lookups by cache and result (hit, miss).",
    ["cache", "result"],
)
CACHE_EVICTIONS = Counter(
    "tenantry_cache_evictions", "Entries evicted to keep a cache in bounds.", ["cache"]
)
JOBS = Counter(
    "tenantry_jobs", "Background jobs finished, by task and outcome.", ["task", "outcome"]
)

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class _InFlight:
    """Requests in flight in this process. In one process the gauge reads this count when
    scraped, so a request costs two integer additions instead of two locked gauge updates;
    with several workers each one's count must be in its metrics file, so the gauge itself
    is updated."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0


_in_flight = _InFlight()
if not os.environ.get(MULTIPROC_ENV):
    IN_FLIGHT.set_function(lambda: _in_flight.count)


# --- hooks -----------------------------------------------------------------------------------
# Label children are cached: `metric.labels(...)` takes a lock and builds a key on every call.

_cache_children: dict[tuple[str, bool], Any] = {}
_eviction_children: dict[str, Any] = {}
_job_children: dict[tuple[str, str], Any] = {}


def record_cache(cache: str, hit: bool) -> None:
    """One lookup in the named cache (a name from code, never a key)."""
    child = _cache_children.get((cache, hit))
    if child is None:
        child = _cache_children[cache, hit] = CACHE_REQUESTS.labels(cache, "hit" if hit else "miss")
    child.inc()


def record_cache_eviction(cache: str, count: int = 1) -> None:
    child = _eviction_children.get(cache)
    if child is None:
        child = _eviction_children[cache] = CACHE_EVICTIONS.labels(cache)
    child.inc(count)


def record_job(task: str, outcome: str) -> None:
    """A background job ended: `outcome` is succeeded, failed, retried, cancelled ..."""
    child = _job_children.get((task, outcome))
    if child is None:
        child = _job_children[task, outcome] = JOBS.labels(task, outcome)
    child.inc()


_pools: weakref.WeakSet[Any] = weakref.WeakSet()


def instrument_pool(engine: AsyncEngine, name: str) -> None:
    """Track the engine's checked-out connections in `tenantry_db_pool_connections_in_use`.

    Counted by pool events rather than read from the pool at scrape time, so that with several
    workers each one's connections are counted (a scrape runs in one worker only)."""
    sync_engine = engine.sync_engine
    if sync_engine in _pools:
        return
    _pools.add(sync_engine)
    gauge = POOL_IN_USE.labels(name)
    event.listen(sync_engine, "checkout", lambda *_: gauge.inc())
    event.listen(sync_engine, "checkin", lambda *_: gauge.dec())


# --- exposition ------------------------------------------------------------------------------


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def render() -> tuple[bytes, str]:
    """The text exposition of every metric (every worker's, in multiprocess mode)."""
    if multiprocess_dir():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def process_exited(pid: int | None = None) -> None:
    """Drop a finished worker's live gauges (in-flight, pool) from the multiprocess totals."""
    if multiprocess_dir():
        multiprocess.mark_process_dead(pid or os.getpid())  # type: ignore[no-untyped-call]


# --- middleware ------------------------------------------------------------------------------


class MetricsMiddleware:
    """Counts, times and measures every HTTP request, including the ones an inner layer cut
    short (429, 413, 504): they are labelled by the route they were meant for."""

    def __init__(self, app: ASGIApp, *, routes: RouteTemplates) -> None:
        self.app = app
        self.routes = routes
        # (route, method, status) -> (requests child, latency child, queries child)
        self._children: dict[tuple[str, str, int], tuple[Any, Any, Any]] = {}
        self._gauge = IN_FLIGHT if multiprocess_dir() else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        started = time.perf_counter()
        gauge = self._gauge
        if gauge is None:
            _in_flight.count += 1
        else:
            gauge.inc()
        try:
            await self.app(scope, receive, send_with_status)
        finally:
            elapsed = time.perf_counter() - started
            if gauge is None:
                _in_flight.count -= 1
            else:
                gauge.dec()
            method = scope["method"]
            key = (self.routes.template(scope), method if method in _METHODS else "OTHER", status)
            children = self._children.get(key)
            if children is None:
                children = self._children[key] = self._make_children(*key)
            requests, latency, queries = children
            requests.inc()
            latency.observe(elapsed)
            counter = current_query_counter()
            if counter is not None:
                queries.observe(counter.count)

    @staticmethod
    def _make_children(route: str, method: str, status: int) -> tuple[Any, Any, Any]:
        return (
            REQUESTS.labels(route, method, str(status)),
            LATENCY.labels(route, method),
            DB_QUERIES.labels(route),
        )
