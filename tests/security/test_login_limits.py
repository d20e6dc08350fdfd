"""Password guessing meets a bound however it is spread: per account across every address,
per address whatever token comes along (an address that is a proxy's only when the proxy is
trusted), and with Redis down as with it up (`tests/kit/test_ratelimit.py`)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from tenantry.config import Settings
from tenantry.kit.db import Database
from tests.support.asserts import assert_problem
from tests.support.platform import client_for, make_app
from tests.support.world import PASSWORD, World

LOGIN = "/api/v1/auth/login"


async def test_guesses_from_many_addresses_meet_the_accounts_limit(
    settings: Settings, database: Database, world: World, session: AsyncSession
) -> None:
    tenant = await world.tenant()
    victim = await world.user(tenant, "member", login=False)
    bystander = await world.user(tenant, "member", login=False)
    app = make_app(settings, database, rate_limit_login_account="3/minute")
    for i in range(3):  # three addresses, one wrong guess each
        async with client_for(app, client=(f"10.0.0.{i + 1}", 4000)) as c:
            wrong = {"email": victim.email.upper(), "password": f"guess-{i}"}
            assert_problem(await c.post(LOGIN, json=wrong), 401)
    async with client_for(app, client=("10.0.0.9", 4000)) as c:
        right = await c.post(LOGIN, json={"email": victim.email, "password": PASSWORD})
        body = assert_problem(right, 429, "too-many-requests")
        assert 1 <= int(right.headers["retry-after"]) <= 60
        assert "this account" in body["detail"] and "access_token" not in right.text
        other = await c.post(LOGIN, json={"email": bystander.email, "password": PASSWORD})
        assert other.status_code == 200, other.text  # another account's budget is its own


async def test_a_bearer_token_does_not_open_a_fresh_budget_of_guesses(
    settings: Settings, database: Database, world: World
) -> None:
    member = await world.user(await world.tenant(), "member")  # logged in: a valid token
    app = make_app(settings, database, rate_limit_auth="2/minute")
    async with client_for(app) as c:
        guess = {"email": member.email, "password": "wrong"}
        assert_problem(await c.post(LOGIN, json=guess), 401)
        assert_problem(await c.post(LOGIN, json=guess), 401)
        # the same address with a token is the same address
        assert_problem(await c.post(LOGIN, json=guess, headers=member.headers), 429)


async def _client_seen(trusted: dict[str, object], peer: str, forwarded: str) -> str:
    """The client address the app sees behind uvicorn's forwarded-header handling, configured
    as `tenantry serve` configures it."""
    seen: list[str] = []

    async def app(scope: dict[str, object], receive: object, send: object) -> None:
        seen.append(scope["client"][0])  # type: ignore[index]

    wrapped: object = app
    if trusted["proxy_headers"]:
        wrapped = ProxyHeadersMiddleware(app, trusted["forwarded_allow_ips"])  # type: ignore[arg-type]
    scope = {
        "type": "http",
        "client": (peer, 5000),
        "headers": [(b"x-forwarded-for", forwarded.encode())],
    }
    await wrapped(scope, None, None)  # type: ignore[operator]
    return seen[0]


async def test_forwarded_addresses_are_believed_only_from_trusted_proxies(
    settings: Settings,
) -> None:
    nobody = settings.model_copy(update={"trusted_proxies": []}).proxy_options()
    assert await _client_seen(nobody, "127.0.0.1", "203.0.113.7") == "127.0.0.1"
    behind = Settings(_env_file=None, trusted_proxies="10.0.0.0/8, 127.0.0.1").proxy_options()
    assert await _client_seen(behind, "10.1.2.3", "203.0.113.7") == "203.0.113.7"
    assert await _client_seen(behind, "192.0.2.1", "203.0.113.7") == "192.0.2.1"  # not a proxy
    with pytest.raises(ValidationError, match="does not appear to be an IPv4 or IPv6"):
        Settings(_env_file=None, trusted_proxies="proxy.example")


async def test_responses_holding_a_secret_are_not_stored(world: World) -> None:
    owner = await world.user(await world.tenant(), "owner")
    login = await world.client.post(LOGIN, json={"email": owner.email, "password": PASSWORD})
    key = await world.client.post("/api/v1/api-keys", json={"name": "ci"}, headers=owner.headers)
    hook = await world.client.post(
        "/api/v1/webhooks",
        json={"url": "https://93.184.215.14/hooks", "events": ["lead.created"]},
        headers=owner.headers,
    )
    for r in (login, key, hook):
        assert r.status_code in (200, 201), r.text
        assert r.headers["cache-control"] == "no-store"
    me = await world.client.get("/api/v1/users/me", headers=owner.headers)
    assert me.headers.get("cache-control") != "no-store"  # only where a secret is
