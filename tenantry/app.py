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
from tenantry.kit.logging import configure_logging
from tenantry.kit.middleware import EdgeMiddleware
from tenantry.kit.migrations import resolve_database_url
from tenantry.kit.ratelimit import Policy, RateLimiter
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
        timeout_s=settings.request_timeout_s,
        max_body_bytes=settings.max_body_bytes,
        gzip_min_bytes=settings.gzip_min_bytes,
        gzip_level=settings.gzip_level,
        expose_query_count=settings.expose_query_count,
        slow_request_ms=settings.slow_request_ms,
        access_log=settings.access_log,
        hsts_max_age_s=settings.hsts_max_age_s,
        cors=cors,
    )
