"""create_app(): routers, middleware, lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
from fastapi import FastAPI

from tenantry import __version__
from tenantry.admin.router import router as admin_router
from tenantry.api_keys.router import router as api_keys_router
from tenantry.api_keys.service import API_KEY_CACHE, ApiKeysService
from tenantry.audit.router import router as audit_router
from tenantry.auth.router import router as auth_router
from tenantry.auth.service import AuthService
from tenantry.authz.dependencies import Authenticators
from tenantry.authz.service import PRINCIPAL_CACHE
from tenantry.config import Settings, get_settings
from tenantry.console import crm as console_crm
from tenantry.console import integrations as console_integrations
from tenantry.console import router as console
from tenantry.console import staff as console_staff
from tenantry.crm.router import activity_router, insights_router, leads_router
from tenantry.crm.router import router as crm_router
from tenantry.kit import docs, errors, metrics, openapi
from tenantry.kit import jobs as jobs_kit
from tenantry.kit.cache_pg import PostgresBus
from tenantry.kit.cache_redis import RedisTier
from tenantry.kit.caches import Caches, unknown_overrides
from tenantry.kit.db import Database
from tenantry.kit.http import Outbound
from tenantry.kit.idempotency import Idempotency
from tenantry.kit.lane import Lane
from tenantry.kit.logging import configure_logging
from tenantry.kit.middleware import EdgeMiddleware
from tenantry.kit.migrations import resolve_database_url
from tenantry.kit.platform import Platform
from tenantry.kit.ratelimit import Policy, RateLimiter
from tenantry.kit.redis import RedisHealth
from tenantry.kit.redis import make_client as make_redis
from tenantry.kit.routes import RouteIndex, RouteTemplates, include_flat
from tenantry.kit.security import TOKEN_CLAIMS_CACHE, configure_password_hashing
from tenantry.kit.shutdown import Shutdown
from tenantry.kit.state import PostgresStateStore, RedisStateStore, sweep_forever
from tenantry.onboarding import tasks as onboarding_tasks
from tenantry.onboarding.router import admin_router as onboarding_admin_router
from tenantry.onboarding.router import router as onboarding_router
from tenantry.ops.router import router as ops_router
from tenantry.sync import tasks as sync_tasks
from tenantry.sync.router import router as sync_router
from tenantry.tenants.router import router as tenants_router
from tenantry.territories.router import router as territories_router
from tenantry.territories.service import TerritoriesService
from tenantry.users.router import router as users_router
from tenantry.webhooks import tasks as webhook_tasks
from tenantry.webhooks.router import router as webhooks_router

API_PREFIX = "/api/v1"
# Every domain's API routes, served under API_PREFIX in this order.
API_ROUTERS = (
    auth_router,
    users_router,
    tenants_router,
    api_keys_router,
    onboarding_router,
    crm_router,
    leads_router,
    activity_router,
    insights_router,
    territories_router,
    sync_router,
    webhooks_router,
    admin_router,
    onboarding_admin_router,
    audit_router,
)
# The console's pages beyond sign-in (`console.router`): HTML over the same services.
CONSOLE_ROUTERS = (console_crm.router, console_integrations.router, console_staff.router)
# Every domain's background tasks (`kit.jobs`), registered as `<namespace>:<task>`.
JOB_TASKS = {
    "kit": jobs_kit.maintenance,
    "sync": sync_tasks.tasks,
    "webhooks": webhook_tasks.tasks,
    "onboarding": onboarding_tasks.tasks,
}
# Probes and the scraper are never rate limited.
UNLIMITED_PATHS = ("/healthz", "/readyz", "/metrics")
# POSTs that take no Idempotency-Key: a login creates nothing, and its answer (a token) is not
# to be kept anywhere.
IDEMPOTENCY_EXEMPT = (API_PREFIX + "/auth/",)
# OpenAPI links beyond "a POST's 201 feeds the id of the operations under its path"
# (`kit.openapi.add_links`): (POST path, target operation, parameter, runtime expression).
OPENAPI_LINKS = (
    (API_PREFIX + "/sync", "get_sync_run", "run_id", "$response.body#/task_id"),
    (
        API_PREFIX + "/onboarding/company-profile",
        "get_onboarding_session",
        "session_id",
        "$response.body#/session_id",
    ),
)


def make_rate_limiter(settings: Settings) -> RateLimiter:
    """Classes of route, matched by path prefix in order: first match wins, else `default`."""
    auth = Policy.parse("auth", settings.rate_limit_auth, by_address=True)
    rules: list[tuple[str, Policy | None]] = [(path, None) for path in UNLIMITED_PATHS]
    rules.append((API_PREFIX + "/auth/", auth))
    rules.append(("/console/sign-in", auth))  # the console's password and provider sign-in
    return RateLimiter(
        rules,
        Policy.parse("default", settings.rate_limit_default),
        login_account=Policy.parse("login_account", settings.rate_limit_login_account),
        enabled=settings.rate_limit_enabled,
        key_prefix=settings.rate_limit_key_prefix,
    )


def _start_shared_state(app: FastAPI, settings: Settings) -> list[Coroutine[Any, Any, None]]:
    """State store, cache L2 and invalidation bus for this mode; the background work to run."""
    platform: Platform = app.state.platform
    caches = platform.caches
    redis = app.state.redis
    if redis is not None:
        health = RedisHealth(retry_s=settings.redis_retry_s)
        tier = RedisTier(redis, prefix=settings.redis_prefix, health=health)
        caches.attach(tier, l2=tier)
        platform.redis_health = health
        platform.state = RedisStateStore(redis, prefix=settings.redis_prefix, health=health)
        app.state.state_store = platform.state
        return [caches.listen(), _distrust_while_deaf(caches, settings)]
    bus = PostgresBus(platform.db.url)
    caches.attach(bus)
    store = PostgresStateStore(platform.db)
    platform.redis_health = None
    platform.state = app.state.state_store = store
    return [
        caches.listen(),
        sweep_forever(store, settings.state_sweep_interval_s),
        _distrust_while_deaf(caches, settings),
    ]


# Who may act: a revocation elsewhere must reach these within CACHE_TRUST_WITHOUT_BUS_S even
# while the invalidation bus is down.
ACCESS_CACHES = (PRINCIPAL_CACHE.name, API_KEY_CACHE.name, TOKEN_CLAIMS_CACHE.name)


def _distrust_while_deaf(caches: Caches, settings: Settings) -> Coroutine[Any, Any, None]:
    return caches.distrust_while_deaf(ACCESS_CACHES, settings.cache_trust_without_bus_s)


async def _preload_zones(platform: Platform) -> None:
    """Every tenant's zones into the cache, in the background once started (`territories`)."""
    try:
        await platform.service(TerritoriesService).preload()
    except Exception:
        # The cache loads a tenant's zones on first use all the same.
        logging.getLogger("tenantry.territories").exception("zone preload failed")


def create_app(settings: Settings | None = None, *, database: Database | None = None) -> FastAPI:
    """Build the ASGI app. `database` lets tests (and the CLI) hand in an engine they own."""
    settings = settings or get_settings()
    configure_logging(settings)
    limiter = make_rate_limiter(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = database is None
        if database is None:
            url = await anyio.to_thread.run_sync(resolve_database_url, settings)
            platform.db = app.state.db = Database(url, settings)
        metrics.instrument_pool(platform.db.engine, "primary")
        app.state.redis = make_redis(settings)
        work = _start_shared_state(app, settings)
        api_keys = platform.service(ApiKeysService)
        work.append(api_keys.flush_usage_forever())
        if owned:  # a warm-up; an app handed its engine (tests) would race its own requests
            work.append(_preload_zones(platform))
        if (replica := platform.db.replica) is not None:  # DATABASE_READ_URL (`kit.replica`)
            metrics.instrument_pool(replica.engine, "replica")
            work.append(replica.track(metrics.record_replica_lag))
        platform.jobs = app.state.jobs = jobs_kit.Jobs(platform.db.url, settings, JOB_TASKS)
        await platform.jobs.open()
        work.append(platform.jobs.report_forever())
        if settings.worker_in_process:  # embedded: the jobs run here (`tenantry worker` else)
            work.append(platform.jobs.work(platform, name="in-process"))
        background = [asyncio.create_task(w) for w in work]
        # The process's pooled outbound HTTP client (OpenID Connect discovery, keys, tokens).
        platform.http = app.state.http = httpx.AsyncClient(
            timeout=httpx.Timeout(10.0, connect=5.0), headers={"User-Agent": "tenantry"}
        )
        platform.outbound = Outbound(settings)  # tenant-given URLs, guarded (`kit.http`)
        if app.state.redis is not None:
            limiter.use_redis(app.state.redis)
        if owned:
            # Serving (not a test handing in its engine): everything made so far (modules,
            # models, routes, engines) lives as long as the process, so move it out of the
            # garbage collector's reach. Otherwise each full collection walks those ~140k
            # objects again (70 ms a time, measured), and request churn triggers one every
            # few thousand requests.
            gc.collect()
            gc.freeze()
            app.state.shutdown.install()  # SIGTERM drains first (`kit.shutdown`)
        try:
            yield
        finally:
            for task in background:
                task.cancel()
            for task in background:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            with contextlib.suppress(Exception):  # best effort: the last minute of key usage
                await api_keys.flush_usage()
            await platform.jobs.close()
            await app.state.http.aclose()
            await platform.outbound.aclose()
            if app.state.redis is not None:
                await app.state.redis.aclose()
            if owned:
                await app.state.db.dispose()
            metrics.process_exited()

    app = FastAPI(
        title="Tenantry",
        version=__version__,
        description="Multi-tenant business backend: onboarding, CRM, territories, sync, webhooks.",
        lifespan=lifespan,
        generate_unique_id_function=openapi.operation_id,
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json" if settings.serves_docs else None,
        # FastAPI's native OpenTelemetry asks the OpenTelemetry API on every request whether a
        # provider is configured (environment reads included): ~25 us a request, measured, for
        # nothing unless an SDK is installed. Our metrics and logs are our own (kit/metrics.py,
        # kit/logging.py); OTEL_ENABLED turns FastAPI's on for those who run a collector.
        telemetry=None
        if settings.otel_enabled
        else {"tracing": False, "metrics": False, "logs": False},
    )
    configure_password_hashing(settings)
    # Every cache the imported modules declared (`kit.cache.declare`), sized by the settings.
    platform = Platform.build(settings)
    platform.limiter = limiter
    unknown = unknown_overrides(settings.cache_overrides)
    if unknown:  # a warning, not a refusal: the variables may belong to something else
        logging.getLogger("tenantry.cache").warning(
            "CACHE_<NAME>_TTL_S / CACHE_<NAME>_SIZE name no cache: %s (the caches are: %s)",
            ", ".join(unknown),
            ", ".join(sorted(c.name for c in platform.caches)),
        )
    # The platform is the services' way in; kit-level code (middleware, the session
    # dependency, probes) reads these few attributes directly.
    app.state.platform = platform
    app.state.settings, app.state.caches = settings, platform.caches
    app.state.tokens = platform.tokens
    app.state.redis = None
    app.state.rate_limiter = limiter
    app.state.shutdown = Shutdown(settings.shutdown_drain_s)
    # authz knows no domain: the domains that own credentials plug in here.
    auth = platform.service(AuthService)
    app.state.authenticators = Authenticators(
        claims=auth.principal_for,
        token=auth.authenticate,
        api_key=platform.service(ApiKeysService).authenticate,
    )
    if database is not None:
        platform.db = app.state.db = database
        metrics.instrument_pool(database.engine, "primary")

    # One flat route table (kit.routes.include_flat), in the order the routers are listed.
    for router in API_ROUTERS:
        include_flat(app, router, prefix=API_PREFIX)
    include_flat(app, ops_router)

    errors.install(app)
    console.install(app, *CONSOLE_ROUTERS)  # the web pages, with HTML error pages
    openapi.install(
        app,
        unlimited_paths=UNLIMITED_PATHS,
        idempotency_exempt=IDEMPOTENCY_EXEMPT,
        links=OPENAPI_LINKS,
    )
    if settings.serves_docs:
        docs.install(app)
    # The hot routes, once every route is in the table (`kit.lane`).
    app.state.lane = lane = Lane(app, active=settings.fast_lane)
    install_middleware(app, settings, limiter, lane)
    RouteIndex(app.router).install()
    return app


def install_middleware(app: FastAPI, settings: Settings, limiter: RateLimiter, lane: Lane) -> None:
    """The HTTP platform stack: one pure ASGI layer, `kit.middleware.EdgeMiddleware`, whose
    docstring holds the order of its parts (request context, metrics, CORS, gzip, timeout,
    body limit, rate limit) and why it is one layer."""
    cors = None
    if settings.cors_origins:
        cors = {
            "allow_origins": settings.cors_origins,
            "allow_methods": ["GET", "POST", "PUT", "PATCH", "DELETE"],
            "allow_headers": ["Authorization", "Content-Type", "X-Request-ID"],
            "expose_headers": [
                "X-Request-ID",
                "Retry-After",
                "RateLimit",
                "RateLimit-Policy",
                "Content-Encoding",
            ],
            "max_age": 600,
        }
    app.add_middleware(
        EdgeMiddleware,
        routes=RouteTemplates(app),
        limiter=limiter,
        lane=lane,
        timeout_s=settings.request_timeout_s,
        max_body_bytes=settings.max_body_bytes,
        max_header_bytes=settings.max_header_bytes,
        max_headers=settings.max_headers,
        gzip_min_bytes=settings.gzip_min_bytes,
        gzip_level=settings.gzip_level,
        expose_query_count=settings.expose_query_count,
        slow_request_ms=settings.slow_request_ms,
        access_log=settings.access_log,
        hsts_max_age_s=settings.hsts_max_age_s,
        cors=cors,
        idempotency=Idempotency(
            ttl_s=settings.idempotency_ttl_s, running_ttl_s=settings.request_timeout_s + 30
        ),
        idempotency_exempt=IDEMPOTENCY_EXEMPT,
        shutdown=app.state.shutdown,
    )
