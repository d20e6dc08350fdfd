"""create_app(): routers, middleware, lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import APIRouter, FastAPI

from tenantry import __version__
from tenantry.auth.router import router as auth_router
from tenantry.config import Settings, get_settings
from tenantry.kit import errors, openapi
from tenantry.kit.db import Database
from tenantry.kit.middleware import BodyLimitMiddleware, RequestContextMiddleware
from tenantry.kit.migrations import resolve_database_url
from tenantry.kit.redis import make_client as make_redis
from tenantry.kit.security import TokenCodec, configure_password_hashing
from tenantry.ops.router import router as ops_router
from tenantry.tenants.router import router as tenants_router
from tenantry.users.router import router as users_router

API_PREFIX = "/api/v1"


def create_app(settings: Settings | None = None, *, database: Database | None = None) -> FastAPI:
    """Build the ASGI app. `database` lets tests (and the CLI) hand in an engine they own."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = database is None
        if database is None:
            url = await anyio.to_thread.run_sync(resolve_database_url, settings)
            app.state.db = Database(url, settings, settings.database_read_url)
        else:
            app.state.db = database
        app.state.redis = make_redis(settings)
        try:
            yield
        finally:
            if app.state.redis is not None:
                await app.state.redis.aclose()
            if owned:
                await app.state.db.dispose()

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
        settings.jwt_secret, settings.jwt_issuer, settings.jwt_audience, settings.access_token_ttl_s
    )
    app.state.redis = None
    if database is not None:
        app.state.db = database

    api = APIRouter(prefix=API_PREFIX)
    for router in (auth_router, users_router, tenants_router):
        api.include_router(router)
    app.include_router(api)
    app.include_router(ops_router)

    errors.install(app)
    openapi.install(app)

    # Middleware, outermost first (Starlette wraps in reverse order of add_middleware):
    #   1. request context: X-Request-ID, X-Process-Time, query counter (X-DB-Queries)
    #   2. body size limit: 413 before the body is read
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestContextMiddleware, expose_query_count=settings.expose_query_count)
    return app
