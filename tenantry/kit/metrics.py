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
`record_job(task, outcome, seconds)`, `record_queues(...)`, `record_event(kind, outcome)`;
`instrument_pool(engine, name)` for connection pools, `record_replica_lag(seconds)`.
"""

from __future__ import annotations

import os
import weakref
from bisect import bisect_left
from collections.abc import Iterator
from itertools import accumulate
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
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import Scope

from tenantry.kit.context import inflight
from tenantry.kit.routes import RouteTemplates

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Decided once, at import, like prometheus-client itself decides where values live.
MULTIPROCESS = bool(os.environ.get(MULTIPROC_ENV))

REQUESTS_HELP = "HTTP requests answered, by route template, method and status."
LATENCY_HELP = "Time from the request's arrival to the end of its response, by route template."
QUERIES_HELP = "Database statements run by one request, by route template."
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
QUERY_BUCKETS = (0, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89)

# The per-request metrics as prometheus-client objects: used (and registered) with several
# workers only; in one process `HttpStats` below keeps and exposes them.
_per_request_registry = REGISTRY if MULTIPROCESS else None
REQUESTS = Counter(
    "tenantry_http_requests",
    REQUESTS_HELP,
    ["route", "method", "status"],
    registry=_per_request_registry,
)
LATENCY = Histogram(
    "tenantry_http_request_duration_seconds",
    LATENCY_HELP,
    ["route", "method"],
    buckets=LATENCY_BUCKETS,
    registry=_per_request_registry,
)
IN_FLIGHT = Gauge(
    "tenantry_http_requests_in_flight",
    "Requests being handled right now.",
    multiprocess_mode="livesum",
)
DB_QUERIES = Histogram(
    "tenantry_db_queries_per_request",
    QUERIES_HELP,
    ["route"],
    buckets=QUERY_BUCKETS,
    registry=_per_request_registry,
)
POOL_IN_USE = Gauge(
    "tenantry_db_pool_connections_in_use",
    "Database connections checked out of the pool.",
    ["pool"],
    multiprocess_mode="livesum",
)
REPLICA_LAG = Gauge(
    "tenantry_db_replica_lag_seconds",
    "How long the read replica took to replay what the primary had flushed at the last probe"
    " (while it has not: how long so far; +Inf when unreachable).",
    multiprocess_mode="livemax",
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
    "tenantry_jobs",
    "Background job runs ended, by task and outcome (succeeded, retried, failed).",
    ["task", "outcome"],
)
JOB_DURATION = Histogram(
    "tenantry_job_duration_seconds",
    "How long a background job ran, by task.",
    ["task"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800),
)
JOBS_WAITING = Gauge(
    "tenantry_jobs_waiting",
    "Background jobs by queue and status (todo, doing), read every JOBS_STATS_INTERVAL_S.",
    ["queue", "status"],
    multiprocess_mode="max",
)
JOBS_OLDEST_AGE = Gauge(
    "tenantry_jobs_oldest_queued_age_seconds",
    "Age of the oldest job waiting in each queue (0 when none waits).",
    ["queue"],
    multiprocess_mode="max",
)
DOMAIN_EVENTS = Counter(
    "tenantry_domain_events",
    "What the domains' background work did: sync runs and records, webhook tries, by kind"
    " and outcome.",
    ["kind", "outcome"],
)

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


# In one process the gauge reads the in-flight registry (`kit.context`) when scraped, so a
# request costs nothing more; with several workers each one's count must be in its metrics
# file, so the edge updates the gauge itself (`RequestMetrics.gauge`).
if not MULTIPROCESS:
    IN_FLIGHT.set_function(lambda: len(inflight))


class _Series:
    """One (route, method, status): requests, and their latency and query-count histograms as
    plain counts per bucket (not cumulative; the last bucket is +Inf)."""

    __slots__ = ("count", "latency", "latency_sum", "queries", "queries_sum")

    def __init__(self) -> None:
        self.count = 0
        self.latency = [0] * (len(LATENCY_BUCKETS) + 1)
        self.latency_sum = 0.0
        self.queries = [0] * (len(QUERY_BUCKETS) + 1)
        self.queries_sum = 0

    def observe(self, elapsed: float, queries: int) -> None:
        self.count += 1
        self.latency[bisect_left(LATENCY_BUCKETS, elapsed)] += 1
        self.latency_sum += elapsed
        if queries:  # the requests with none are counted at collection: count minus the rest
            self.queries[bisect_left(QUERY_BUCKETS, queries)] += 1
            self.queries_sum += queries

    def query_counts(self) -> list[int]:
        counts = list(self.queries)
        counts[0] = self.count - sum(counts[1:])
        return counts


def _cumulative(bounds: tuple[float, ...], counts: list[int]) -> list[tuple[str, float]]:
    edges = [*(floatToGoString(b) for b in bounds), "+Inf"]  # type: ignore[no-untyped-call]
    return list(zip(edges, accumulate(counts), strict=True))


class HttpStats:
    """The per-request metrics of one process, kept in plain Python and turned into metric
    families when scraped (a prometheus-client collector).

    Ours rather than prometheus-client's Counter and Histograms, for cost: their three updates
    a request (a lock and a few calls each) measured 8.6 µs a request under uvicorn; here it
    is a dict lookup, two bisects and a few additions. With several workers each one's numbers
    must be in its metrics files, so there the prometheus-client objects above are used."""

    def __init__(self) -> None:
        self.series: dict[tuple[str, str, int], _Series] = {}

    def get(self, key: tuple[str, str, int]) -> _Series:
        series = self.series.get(key)
        if series is None:
            series = self.series[key] = _Series()
        return series

    def describe(self) -> Iterator[Metric]:
        yield CounterMetricFamily("tenantry_http_requests", REQUESTS_HELP)
        yield HistogramMetricFamily("tenantry_http_request_duration_seconds", LATENCY_HELP)
        yield HistogramMetricFamily("tenantry_db_queries_per_request", QUERIES_HELP)

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "tenantry_http_requests", REQUESTS_HELP, labels=["route", "method", "status"]
        )
        latency: dict[tuple[str, str], tuple[list[int], float]] = {}
        queries: dict[str, tuple[list[int], int]] = {}
        for (route, method, status), series in list(self.series.items()):
            requests.add_metric([route, method, str(status)], series.count)
            counts, total = latency.get((route, method), ([0] * len(series.latency), 0.0))
            latency[route, method] = (
                [a + b for a, b in zip(counts, series.latency, strict=True)],
                total + series.latency_sum,
            )
            q_counts, q_total = queries.get(route, ([0] * len(series.queries), 0))
            queries[route] = (
                [a + b for a, b in zip(q_counts, series.query_counts(), strict=True)],
                q_total + series.queries_sum,
            )
        yield requests
        family = HistogramMetricFamily(
            "tenantry_http_request_duration_seconds", LATENCY_HELP, labels=["route", "method"]
        )
        for (route, method), (counts, total) in latency.items():
            family.add_metric([route, method], _cumulative(LATENCY_BUCKETS, counts), total)
        yield family
        family = HistogramMetricFamily(
            "tenantry_db_queries_per_request", QUERIES_HELP, labels=["route"]
        )
        for route, (counts, q_total) in queries.items():
            if sum(counts):
                family.add_metric([route], _cumulative(QUERY_BUCKETS, counts), q_total)
        yield family


http_stats = HttpStats()
if not MULTIPROCESS:
    REGISTRY.register(http_stats)


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


def record_job(task: str, outcome: str, seconds: float | None = None) -> None:
    """A background job's run ended: `outcome` is succeeded, retried or failed."""
    child = _job_children.get((task, outcome))
    if child is None:
        child = _job_children[task, outcome] = JOBS.labels(task, outcome)
    child.inc()
    if seconds is not None:
        JOB_DURATION.labels(task).observe(seconds)


def record_queues(waiting: dict[tuple[str, str], int], oldest: dict[str, float]) -> None:
    """The job queues as last read: counts by (queue, status), oldest waiting age by queue."""
    for (queue, status), count in waiting.items():
        JOBS_WAITING.labels(queue, status).set(count)
    for queue, age in oldest.items():
        JOBS_OLDEST_AGE.labels(queue).set(age)


def record_replica_lag(seconds: float) -> None:
    """The read replica's lag as last measured (`kit.replica`)."""
    REPLICA_LAG.set(seconds)


def record_event(kind: str, outcome: str, amount: int = 1) -> None:
    """Background work done: ("sync_run", "succeeded"), ("sync_records", "written", 100),
    ("webhook_try", "retried") ..."""
    if amount:
        DOMAIN_EVENTS.labels(kind, outcome).inc(amount)


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


def render() -> tuple[bytes, str]:
    """The text exposition of every metric (every worker's, in multiprocess mode). In one
    process, call it on the event loop (it reads `http_stats`, which the loop updates); with
    several, in a thread (it reads every worker's files)."""
    if MULTIPROCESS:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def process_exited(pid: int | None = None) -> None:
    """Drop a finished worker's live gauges (in-flight, pool) from the multiprocess totals."""
    if MULTIPROCESS:
        multiprocess.mark_process_dead(pid or os.getpid())  # type: ignore[no-untyped-call]


# --- per request (called by the edge middleware, `kit.middleware`) ---------------------------


class _Children:
    """One (route, method, status) as prometheus-client children: several workers."""

    __slots__ = ("latency", "queries", "requests")

    def __init__(self, route: str, method: str, status: int) -> None:
        self.requests = REQUESTS.labels(route, method, str(status))
        self.latency = LATENCY.labels(route, method)
        self.queries = DB_QUERIES.labels(route)

    def observe(self, elapsed: float, queries: int) -> None:
        self.requests.inc()
        self.latency.observe(elapsed)
        self.queries.observe(queries)


class RequestMetrics:
    """Counts, times and measures every answered request under its route template, the ones
    the edge cut short (429, 413, 504) included.

    A request finds its series by (route object, method, status) in one dict lookup; the
    template is worked out only the first time. Short-cut responses have no route object:
    those are matched by path each time."""

    def __init__(self, routes: RouteTemplates) -> None:
        self.routes = routes
        self._series: dict[tuple[int, str, int], _Series | _Children] = {}
        self._children: dict[tuple[str, str, int], _Children] = {}
        # the in-flight gauge to update per request: only with several workers
        self.gauge: Gauge | None = IN_FLIGHT if MULTIPROCESS else None

    def finished(self, scope: Scope, status: int, elapsed: float, queries: int) -> None:
        route = scope.get("route")
        series = self._series.get((id(route), scope["method"], status))
        if series is None:
            series = self._resolve(scope, route, status)
        series.observe(elapsed, queries)

    def _resolve(self, scope: Scope, route: Any, status: int) -> _Series | _Children:
        method = scope["method"]
        known = method in _METHODS
        key = (self.routes.template(scope), method if known else "OTHER", status)
        series: _Series | _Children
        if MULTIPROCESS:
            children = self._children.get(key)
            if children is None:
                children = self._children[key] = _Children(*key)
            series = children
        else:
            series = http_stats.get(key)
        if route is not None and known and self.routes.unique(route):
            self._series[id(route), method, status] = series
        return series
