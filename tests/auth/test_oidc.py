"""OpenID Connect login against a real local provider, on two app instances, in both modes."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tenantry.app import create_app
from tenantry.config import OidcProvider, Settings
from tenantry.kit.db import Database
from tests.support.asserts import assert_problem
from tests.support.oidc_provider import CLIENT_ID, CLIENT_SECRET, Provider, running_provider
from tests.support.platform import running
from tests.support.world import World

AUTHORIZE = "/api/v1/auth/oauth/corp/authorize"


@pytest.fixture
def provider() -> Iterator[Provider]:
    with running_provider() as p:
        yield p


@asynccontextmanager
async def instances(
    settings: Settings, database: Database, provider: Provider
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient, Any]]:
    """Two instances on the same database (this test's transaction) and state store."""
    configured = settings.model_copy(
        update={
            "oidc_providers": {
                "corp": OidcProvider(
                    issuer=provider.issuer, client_id=CLIENT_ID, client_secret=CLIENT_SECRET
                )
            }
        }
    )
    first = create_app(configured, database=database)
    async with running(first) as a, running(create_app(configured, database=database)) as b:
        yield a, b, first


async def start(client: httpx.AsyncClient) -> tuple[str, dict[str, str]]:
    """GET authorize on our API, then let the provider log the user in; the callback URL."""
    r = await client.get(AUTHORIZE)
    assert r.status_code == 302, r.text
    assert r.headers["cache-control"] == "no-store"
    async with httpx.AsyncClient() as browser:
        at_provider = await browser.get(r.headers["location"])
    assert at_provider.status_code == 302, at_provider.text
    back = urlsplit(at_provider.headers["location"])
    assert back.path == "/api/v1/auth/oauth/corp/callback"
    return f"{back.path}?{back.query}", {k: v[0] for k, v in parse_qs(back.query).items()}


async def test_a_login_started_on_one_instance_completes_on_another(
    mode_settings: Settings, database: Database, provider: Provider, world: World
) -> None:
    member = await world.user(await world.tenant(), login=False)
    provider.email = member.email.upper()  # emails match case-insensitively
    async with instances(mode_settings, database, provider) as (a, b, _):
        callback, _ = await start(a)
        asked = provider.authorize_requests[-1]
        assert asked["code_challenge_method"] == "S256"
        assert len(asked["code_challenge"]) == 43 and asked["nonce"] and asked["state"]
        assert "openid" in asked["scope"].split()
        r = await b.get(callback)
        assert r.status_code == 200, r.text
        token = r.json()["access_token"]
        me = await b.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
        assert me.json()["id"] == str(member.id)
        # The provider got the PKCE verifier that matches the challenge (it checks).
        assert provider.token_requests[-1]["code_verifier"]


async def test_a_replayed_state_is_refused(
    mode_settings: Settings, database: Database, provider: Provider, world: World
) -> None:
    provider.email = (await world.user(await world.tenant(), login=False)).email
    async with instances(mode_settings, database, provider) as (a, b, _):
        callback, _ = await start(a)
        assert (await b.get(callback)).status_code == 200
        again = await a.get(callback)
        assert "already used" in assert_problem(again, 400, "oauth-state-invalid")["detail"]


async def test_a_forged_or_foreign_state_is_refused(
    mode_settings: Settings, database: Database, provider: Provider
) -> None:
    async with instances(mode_settings, database, provider) as (a, _, _):
        r = await a.get("/api/v1/auth/oauth/corp/callback?code=x&state=forged-state")
        assert_problem(r, 400, "oauth-state-invalid")
        r = await a.get("/api/v1/auth/oauth/corp/callback?code=x")
        assert_problem(r, 400, "oauth-state-invalid")
        assert provider.token_requests == []  # refused before the code was ever used


async def test_an_expired_state_is_refused(
    settings: Settings, database: Database, provider: Provider, world: World
) -> None:
    provider.email = (await world.user(await world.tenant(), login=False)).email
    async with instances(settings, database, provider) as (a, _, first):
        callback, _ = await start(a)
        store = first.state.state_store
        real = store.clock
        store.clock = lambda: real() + timedelta(minutes=10, seconds=1)
        try:
            assert_problem(await a.get(callback), 400, "oauth-state-invalid")
        finally:
            store.clock = real


async def test_with_redis_the_state_lives_ten_minutes(
    redis_settings: Settings, database: Database, provider: Provider
) -> None:
    from redis.asyncio import Redis

    async with instances(redis_settings, database, provider) as (a, _, _):
        _, params = await start(a)
        client = Redis.from_url(redis_settings.redis_url or "")
        try:
            ttl = await client.pttl(f"{redis_settings.redis_prefix}state:oauth:{params['state']}")
        finally:
            await client.aclose()
        assert 595_000 < ttl <= 600_000


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"nonce": "not-the-one-we-sent"}, "nonce"),
        ({"aud": "someone-else"}, "aud"),
        ({"aud": [CLIENT_ID, "someone-else"]}, "several audiences"),
        ({"iss": "https://evil.example"}, "iss"),
        ({"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200}, "exp"),
        ({"email_verified": False}, "email_verified"),
        ({"email": "nobody-here@example.com"}, "No active Tenantry account"),
        ("stranger", "verification"),
    ],
)
async def test_a_bad_id_token_is_refused_with_the_reason(
    mode_settings: Settings,
    database: Database,
    provider: Provider,
    world: World,
    change: dict[str, Any] | str,
    reason: str,
) -> None:
    provider.email = (await world.user(await world.tenant(), login=False)).email
    if change == "stranger":
        provider.sign_with_stranger = True  # same kid, key not in the JWKS: a forgery
    else:
        assert isinstance(change, dict)
        provider.tamper = change
    async with instances(mode_settings, database, provider) as (a, b, _):
        callback, _ = await start(a)
        body = assert_problem(await b.get(callback), 401, "oidc-login-refused")
        assert reason in body["detail"], body["detail"]


async def test_the_provider_saying_no_is_explained(
    settings: Settings, database: Database, provider: Provider
) -> None:
    async with instances(settings, database, provider) as (a, _, _):
        _, params = await start(a)
        r = await a.get(
            f"/api/v1/auth/oauth/corp/callback?error=access_denied&state={params['state']}"
        )
        assert "access_denied" in assert_problem(r, 401, "oidc-login-refused")["detail"]


async def test_unknown_provider_is_404(
    settings: Settings, database: Database, provider: Provider
) -> None:
    async with instances(settings, database, provider) as (a, _, _):
        r = await a.get("/api/v1/auth/oauth/nope/authorize")
        assert "corp" in assert_problem(r, 404, "unknown-oidc-provider")["detail"]


async def test_an_unreachable_provider_is_a_502(settings: Settings, database: Database) -> None:
    with running_provider() as gone:
        pass  # started and stopped: nothing listens on its port any more
    async with instances(settings, database, gone) as (a, _, _):
        assert_problem(await a.get(AUTHORIZE), 502, "oidc-provider-unavailable")
