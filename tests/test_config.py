from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from tenantry.app import create_app
from tenantry.config import DEV_JWT_SECRET, InsecureSettingsError, Settings
from tenantry.kit.caches import unknown_overrides
from tenantry.kit.platform import Platform


def test_development_accepts_defaults() -> None:
    s = Settings(_env_file=None)
    assert s.embedded
    # 20 + 0 rather than DESIGN.md's 10 + 10: overflow churns under sustained load (config.py)
    assert (s.db_pool_size, s.db_max_overflow, s.db_pool_timeout, s.db_pool_recycle) == (
        20,
        0,
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
        secrets_keys="new-" + "n" * 40 + ",old-" + "o" * 40,  # type: ignore[arg-type]
        demo_password="pw",
        database_url="postgresql://db/tenantry",
    )
    assert len(s.secrets_keys) == 2
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


def test_production_refuses_the_default_or_a_short_secrets_key() -> None:
    real = {"jwt_secret": "s" * 40, "api_key_secret": "k" * 40, "demo_password": "x"}
    with pytest.raises(InsecureSettingsError, match="SECRETS_KEYS holds the development default"):
        Settings(_env_file=None, tenantry_env="production", **real)  # type: ignore[arg-type]
    with pytest.raises(InsecureSettingsError, match="shorter than 32"):
        Settings(
            _env_file=None,
            tenantry_env="production",
            secrets_keys="short",  # type: ignore[arg-type]
            **real,  # type: ignore[arg-type]
        )


def test_oidc_providers_are_read_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "OIDC_PROVIDERS",
        '{"corp": {"issuer": "https://id.example", "client_id": "c", "client_secret": "s"}}',
    )
    s = Settings(_env_file=None)
    assert s.oidc_providers["corp"].issuer == "https://id.example"
    assert s.oidc_providers["corp"].scopes == ["openid", "email", "profile"]


def test_caches_are_sized_by_name_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("CACHE_TENANT_SETTINGS_TTL_S=5\nCACHE_PRINCIPAL_SIZE=3\n")
    monkeypatch.setenv("CACHE_PRINCIPAL_SIZE", "7")  # the environment wins over .env
    monkeypatch.setenv("cache_api_keys_ttl_s", "9")
    settings = Settings(_env_file=env_file)
    caches = Platform.build(settings).caches
    by_name = {c.name: c.spec for c in caches}
    assert by_name["tenant_settings"].ttl_s == 5
    assert by_name["tenant_settings"].max_size == 1_000  # as declared
    assert by_name["principal"].max_size == 7
    assert by_name["principal"].ttl_s == 300
    assert by_name["api_keys"].ttl_s == 9
    # Every declared cache is built, the token verifier's included, and it is the codec's.
    assert {"principal", "api_keys", "token_claims", "tenant", "tenant_settings"} <= set(by_name)
    assert "tenant_settings" not in Settings(_env_file=None).cache_overrides  # no .env read


def test_a_cache_override_naming_no_cache_is_reported_not_fatal(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CACHE_PRINCIPL_TTL_S", "5")  # a typo
    monkeypatch.setenv("CACHE_SETTINGS_TTL_S", "7")  # the name an earlier release used
    settings = Settings(_env_file=None, database_url="postgresql://unused/db")
    assert unknown_overrides(settings.cache_overrides) == ["principl"]
    create_app(settings)  # starts, and says which name matched nothing
    out = capsys.readouterr().out
    assert "name no cache: principl (the caches are:" in out and "principal" in out
    caches = Platform.build(settings).caches
    assert {c.name: c.spec for c in caches}["tenant_settings"].ttl_s == 7


def test_a_cache_override_is_validated() -> None:
    with pytest.raises(ValidationError):
        Settings(_env_file=None, cache_overrides={"principal": {"ttl_s": 0}})
