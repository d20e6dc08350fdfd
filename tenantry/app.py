"""create_app(): routers, middleware, lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import anyio
import httpx
from fastapi import APIRouter, FastAPI
from starlette.middleware.cors import CORSMiddleware

from tenantry import __version__
from tenantry.admin.router import router as admin_router
from tenantry.api_keys.router import router as api_keys_router
from tenantry.api_keys.service import API_KEY_CACHE, UsageBuffer, flush_usage_forever
from tenantry.auth.oidc import OidcClient
from tenantry.auth.router import router as auth_router
from tenantry.auth.service import PRINCIPAL_CACHE
from tenantry.config import Settings, get_settings
from tenantry.kit import errors, metrics, openapi
from tenantry.kit.cache import Caches
from tenantry.kit.cache_pg import PostgresBus
from tenantry.kit.cache_redis import RedisTier
from tenantry.kit.db import Database
from tenantry.kit.gzip import GZipMiddleware
from tenantry.kit.logging import configure_logging
from tenantry.kit.middleware import (
    BodyLimitMiddleware,
    RequestContextMiddleware,
    TimeoutMiddleware,
)
from tenantry.kit.migrations import resolve_database_url
from tenantry.kit.ratelimit import Policy, RateLimiter, RateLimitMiddleware
from tenantry.kit.redis import RedisHealth
from tenantry.kit.redis import make_client as make_redis
from tenantry.kit.routes import RouteTemplates
from tenantry.kit.security import TokenCodec, configure_password_hashing
from tenantry.kit.state import PostgresStateStore, RedisStateStore, sweep_forever
from tenantry.ops.router import router as ops_router
from tenantry.tenants.router import router as tenants_router
from tenantry.tenants.service import SETTINGS_CACHE, TENANT_CACHE
from tenantry.users.router import router as users_router

API_PREFIX = "/api/v1"
# Probes and the scraper are never rate limited.
UNLIMITED_PATHS = ("/healthz", "/readyz", "/metrics")


def make_rate_limiter(settings: Settings) -> RateLimiter:
    """Classes of route, matched by path prefix in order: first match wins, else `default`."""
    auth = Policy.parse("auth", settings.rate_limit_auth)
    rules: list[tuple[str, Policy | None]] = [(path, None) for path in UNLIMITED_PATHS]
    rules.append((API_PREFIX + "/auth/", auth))
    return RateLimiter(
        rules,
        Policy.parse("default", settings.rate_limit_default),
        enabled=settings.rate_limit_enabled,
        key_prefix=settings.rate_limit_key_prefix,
    )


def build_caches(settings: Settings, tokens: TokenCodec) -> Caches:
    """Every named cache of the process, sized from settings (memory only until the
    lifespan attaches Redis or the PostgreSQL bus)."""
    caches = Caches()
    caches.add(
        replace(
            PRINCIPAL_CACHE,
            ttl_s=settings.cache_principal_ttl_s,
            max_size=settings.cache_principal_size,
        )
    )
    caches.add(
        replace(
            TENANT_CACHE, ttl_s=settings.cache_tenant_ttl_s, max_size=settings.cache_tenant_size
        )
    )
    caches.add(
        replace(
            SETTINGS_CACHE,
            ttl_s=settings.cache_settings_ttl_s,
            max_size=settings.cache_settings_size,
        )
    )
    caches.add(
        replace(
            API_KEY_CACHE,
            ttl_s=settings.cache_principal_ttl_s,
            max_size=settings.cache_principal_size,
        )
    )
    caches.register(tokens.verified)
    caches.observe(metrics.record_cache, metrics.record_cache_eviction)
    return caches


def _start_shared_state(app: FastAPI, settings: Settings) -> list[Coroutine[Any, Any, None]]:
    """State store, cache L2 and invalidation bus for this mode; the background work to run."""
    caches: Caches = app.state.caches
    redis = app.state.redis
    if redis is not None:
        health = RedisHealth(retry_s=settings.redis_retry_s)
        tier = RedisTier(redis, prefix=settings.redis_prefix, health=health)
        caches.attach(tier, l2=tier)
        app.state.redis_health = health
        app.state.state_store = RedisStateStore(redis, prefix=settings.redis_prefix, health=health)
        return [caches.listen()]
    bus = PostgresBus(app.state.db.url)
    caches.attach(bus)
    store = PostgresStateStore(app.state.db)
    app.state.redis_health = None
    app.state.state_store = store
    return [caches.listen(), sweep_forever(store, settings.state_sweep_interval_s)]


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
            app.state.db = Database(url, settings, settings.database_read_url)
        else:
            app.state.db = database
        metrics.instrument_pool(app.state.db.engine, "primary")
        if app.state.db.read_engine is not app.state.db.engine:
            metrics.instrument_pool(app.state.db.read_engine, "replica")
        app.state.redis = make_redis(settings)
        work = _start_shared_state(app, settings)
        usage: UsageBuffer = app.state.api_key_usage
        work.append(flush_usage_forever(usage, app.state.db, settings.api_key_usage_flush_s))
        background = [asyncio.create_task(w) for w in work]
        # The process's pooled outbound HTTP client (OpenID Connect discovery, keys, tokens).
        app.state.http = httpx.AsyncClient(
            timeout=httpx.Timeout(10.0, connect=5.0), headers={"User-Agent": "tenantry"}
        )
        app.state.oidc.http = app.state.http
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
        try:
            yield
        finally:
            for task in background:
                task.cancel()
            for task in background:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            with contextlib.suppress(Exception):  # best effort: the last minute of key usage
                await usage.flush(app.state.db)
            await app.state.http.aclose()
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
        docs_url="/docs",
        openapi_url="/openapi.json",
    )
    app.state.settings = settings
    configure_password_hashing(settings)
    app.state.tokens = TokenCodec(
        settings.jwt_secret,
        settings.jwt_issuer,
        settings.jwt_audience,
        settings.access_token_ttl_s,
        cache_size=settings.cache_token_size,
    )
    app.state.caches = build_caches(settings, app.state.tokens)
    app.state.api_key_usage = UsageBuffer()
    app.state.oidc = OidcClient(settings.oidc_providers, app.state.caches)
    app.state.redis = None
    app.state.rate_limiter = limiter
    app.state.redis_health = None
    if database is not None:
        app.state.db = database
        metrics.instrument_pool(database.engine, "primary")

    api = APIRouter(prefix=API_PREFIX)
    for router in (auth_router, users_router, tenants_router, api_keys_router, admin_router):
        api.include_router(router)
    app.include_router(api)
    app.include_router(ops_router)

    errors.install(app)
    openapi.install(app, unlimited_paths=UNLIMITED_PATHS)
    install_middleware(app, settings, limiter)
    return app


def install_middleware(app: FastAPI, settings: Settings, limiter: RateLimiter) -> None:
    """The middleware stack, the one place its order is written. Outermost first:

    1. request context (`kit.middleware.RequestContextMiddleware`): X-Request-ID,
       X-Process-Time, the query counter (X-DB-Queries), the security headers (nosniff, frame
       deny, referrer policy; HSTS over HTTPS), request id/tenant/user bound to every log
       line, the access line or the slow-request WARNING. Outermost so that every response,
       even one cut short further in, carries the id and the security headers, and the timing
       covers everything. (Issue 4 listed security headers and CORS innermost; there a 413,
       429 or 504 would go out without them.)
    2. metrics (`kit.metrics.MetricsMiddleware`): counts 429s, 413s and 504s too.
    3. CORS (Starlette's, only when `CORS_ORIGINS` is set): outside the limiter and the
       timeout, so that a preflight is answered without spending the caller's quota and a
       429 or 504 still carries the CORS headers a browser needs to read it.
    4. gzip (`kit.gzip.GZipMiddleware`): bodies over `GZIP_MIN_BYTES` when the client
       accepts gzip, problem documents included.
    5. request timeout (`TimeoutMiddleware`): 504 after `REQUEST_TIMEOUT_S`, the request's
       transaction rolled back.
    6. body size limit (`BodyLimitMiddleware`): 413 before the body is read.
    7. rate limit (`kit.ratelimit.RateLimitMiddleware`): verifies the bearer token once and
       stashes the claims (the decode-once contract, `kit.security`), then 429 past the route
       class's limit; RateLimit-Policy and RateLimit headers on every limited response.

    Starlette wraps in reverse order of `add_middleware`, hence the reversed calls below.
    """
    routes = RouteTemplates(app)
    app.add_middleware(RateLimitMiddleware, limiter=limiter)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(TimeoutMiddleware, seconds=settings.request_timeout_s, routes=routes)
    app.add_middleware(GZipMiddleware, min_bytes=settings.gzip_min_bytes, level=settings.gzip_level)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
            expose_headers=[
                "X-Request-ID",
                "Retry-After",
                "RateLimit",
                "RateLimit-Policy",
                "Content-Encoding",
            ],
            max_age=600,
        )
    app.add_middleware(metrics.MetricsMiddleware, routes=routes)
    app.add_middleware(
        RequestContextMiddleware,
        routes=routes,
        expose_query_count=settings.expose_query_count,
        slow_request_ms=settings.slow_request_ms,
        access_log=settings.access_log,
        hsts_max_age_s=settings.hsts_max_age_s,
    )
