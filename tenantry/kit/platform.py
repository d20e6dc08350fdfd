"""The process's shared collaborators, and the one shape every domain service takes.

`Platform` holds what lives as long as the app: settings, the database, the caches, the token
codec, and what the lifespan starts (the state store, the outbound HTTP client, the jobs,
Redis health).
`create_app` makes one per app (`app.state.platform`).

A domain's service is a `Service`: one instance per platform, made on first use
(`platform.service(UsersService)`), holding the collaborators it needs from the platform.
Its methods take the request's unit of work first when they read or write through it
(`session`), then who acts (`actor: Principal`) or whose data (`scope: TenantScope`), then
their inputs by keyword. A router gets its service with `Depends(UsersService.dep)`; another
domain's service reaches it the same way, `self.platform.service(UsersService)`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Self, TypeVar

import httpx
from starlette.requests import Request

from tenantry.config import Settings
from tenantry.kit.caches import Caches
from tenantry.kit.db import Database
from tenantry.kit.http import Outbound
from tenantry.kit.jobs import Jobs
from tenantry.kit.ratelimit import RateLimiter
from tenantry.kit.redis import RedisHealth
from tenantry.kit.secrets import SecretBox
from tenantry.kit.security import TOKEN_CLAIMS_CACHE, TokenCodec
from tenantry.kit.state import StateStore

S = TypeVar("S", bound="Service")


@dataclass(eq=False)
class Platform:
    settings: Settings
    caches: Caches
    tokens: TokenCodec
    secrets: SecretBox
    # Set when the app is given its database, or by the lifespan.
    db: Database = field(init=False)
    # Set by the lifespan.
    state: StateStore = field(init=False)
    http: httpx.AsyncClient = field(init=False)  # configured, trusted endpoints (OIDC)
    outbound: Outbound = field(init=False)  # tenant-given URLs (`kit.http`)
    jobs: Jobs = field(init=False)
    redis_health: RedisHealth | None = None
    # Set by `create_app`: the edge's limiter, for limits a service keeps (login attempts).
    limiter: RateLimiter | None = None
    _services: dict[type[Any], Any] = field(default_factory=dict, repr=False)

    @classmethod
    def build(cls, settings: Settings, db: Database | None = None) -> Platform:
        """A platform with every declared cache (`kit.cache.declare`, bounds from the settings)
        and the token codec; `create_app` uses it, and so can a command or a script that
        calls services outside the app (then the caches stay in this process's memory)."""
        caches = Caches.build(settings.cache_overrides)
        tokens = TokenCodec(
            settings.jwt_secret,
            settings.jwt_issuer,
            settings.jwt_audience,
            settings.access_token_ttl_s,
            verified=caches.cache(TOKEN_CLAIMS_CACHE),
        )
        platform = cls(
            settings=settings,
            caches=caches,
            tokens=tokens,
            secrets=SecretBox(settings.secrets_keys),
        )
        if db is not None:
            platform.db = db
        return platform

    def service(self, cls: type[S]) -> S:
        """The platform's one instance of a domain service."""
        found = self._services.get(cls)
        if found is None:
            found = self._services[cls] = cls(self)
        return found


class Service:
    """Base of every domain service; see the module docstring for the shape."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform

    @classmethod
    async def dep(cls, request: Request) -> Self:
        """The FastAPI dependency: `Annotated[UsersService, Depends(UsersService.dep)]`."""
        platform: Platform = request.app.state.platform
        return platform.service(cls)
