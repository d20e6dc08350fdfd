from __future__ import annotations

import pytest

from tenantry.config import DEV_JWT_SECRET, InsecureSettingsError, Settings


def test_development_accepts_defaults() -> None:
    s = Settings(_env_file=None)
    assert s.embedded
    assert (s.db_pool_size, s.db_max_overflow, s.db_pool_timeout, s.db_pool_recycle) == (
        10,
        10,
        30,
        3600,
    )
    assert s.expose_query_count is False


def test_production_refuses_default_secret_and_names_it() -> None:
    with pytest.raises(InsecureSettingsError, match="JWT_SECRET is the development default"):
        Settings(_env_file=None, tenantry_env="production", demo_password="a real one")


def test_production_refuses_short_secret() -> None:
    with pytest.raises(InsecureSettingsError, match="shorter than 32"):
        Settings(_env_file=None, tenantry_env="production", jwt_secret="short", demo_password="x")


def test_production_with_real_secrets_starts() -> None:
    s = Settings(
        _env_file=None,
        tenantry_env="production",
        jwt_secret="s" * 40,
        api_key_secret="k" * 40,
        demo_password="pw",
        database_url="postgresql://db/tenantry",
    )
    assert s.is_production and not s.embedded and s.jwt_secret != DEV_JWT_SECRET


def test_environment_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgres://u@h/db")
    monkeypatch.setenv("DB_POOL_SIZE", "25")
    monkeypatch.setenv("EXPOSE_QUERY_COUNT", "true")
    s = Settings(_env_file=None)
    assert s.database_url == "postgres://u@h/db" and s.db_pool_size == 25 and s.expose_query_count


def test_blank_database_url_means_embedded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "  ")
    assert Settings(_env_file=None).embedded


def test_pool_settings_reach_the_engine() -> None:
    from tenantry.kit.db import make_engine

    s = Settings(_env_file=None, db_pool_size=7, db_max_overflow=3, db_pool_timeout=12)
    engine = make_engine("postgresql://u@127.0.0.1/x", s)
    pool = engine.pool
    assert pool.size() == 7  # type: ignore[attr-defined]
    assert pool._max_overflow == 3  # type: ignore[attr-defined]
    assert pool._timeout == 12  # type: ignore[attr-defined]


def test_production_refuses_the_default_api_key_secret() -> None:
    with pytest.raises(InsecureSettingsError, match="API_KEY_SECRET is the development default"):
        Settings(_env_file=None, tenantry_env="production", jwt_secret="s" * 40, demo_password="x")


def test_oidc_providers_are_read_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "OIDC_PROVIDERS",
        '{"corp": {"issuer": "https://id.example", "client_id": "c", "client_secret": "s"}}',
    )
    s = Settings(_env_file=None)
    assert s.oidc_providers["corp"].issuer == "https://id.example"
    assert s.oidc_providers["corp"].scopes == ["openid", "email", "profile"]
