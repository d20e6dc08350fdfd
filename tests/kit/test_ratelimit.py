"""Rate limits through the real app: classes of route, keys, headers, Redis, decode-once."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from tenantry.config import Settings
from tenantry.kit.db import Database
from tenantry.kit.ratelimit import Policy, WindowCounter
from tenantry.kit.security import TokenClaims, TokenCodec
from tests.support.asserts import assert_problem
from tests.support.platform import client_for, make_app
from tests.support.services import delete_redis_keys
from tests.support.world import PASSWORD, World


@pytest.fixture(autouse=True)
async def _not_at_a_window_edge() -> None:
    """The limits count in fixed windows aligned to the clock: a test's few requests must
    not straddle the end of a minute (a count reset between two of them, seen once in CI)."""
    left = 60 - time.time() % 60
    if left < 3:
        await asyncio.sleep(left + 0.05)


LOGIN = "/api/v1/auth/login"
ME = "/api/v1/users/me"
# draft-ietf-httpapi-ratelimit-headers-10, structured fields
POLICY = re.compile(r'^"(?P<name>[a-z]+)";q=(?P<q>\d+);w=(?P<w>\d+)$')
STATE = re.compile(r'^"(?P<name>[a-z]+)";r=(?P<r>\d+);t=(?P<t>\d+)$')


def _state(response: httpx.Response) -> dict[str, Any]:
    policy = POLICY.match(response.headers["ratelimit-policy"])
    state = STATE.match(response.headers["ratelimit"])
    assert policy and state, response.headers
    assert policy["name"] == state["name"]
    return {
        "name": state["name"],
        "q": int(policy["q"]),
        "w": int(policy["w"]),
        "r": int(state["r"]),
        "t": int(state["t"]),
    }


async def test_headers_count_down_then_429(settings: Settings, database: Database) -> None:
    app = make_app(settings, database, rate_limit_default="3/minute")
    async with client_for(app) as c:
        seen = [_state(await c.get(ME)) for _ in range(3)]
        assert [s["r"] for s in seen] == [2, 1, 0]
        assert all(s["name"] == "default" and s["q"] == 3 and s["w"] == 60 for s in seen)
        assert all(1 <= s["t"] <= 60 for s in seen)
        refused = await c.get(ME)
        body = assert_problem(refused, 429, "too-many-requests")
        state = _state(refused)
        assert state["r"] == 0
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert abs(int(refused.headers["retry-after"]) - state["t"]) <= 1
        assert "3 requests per 60 s" in body["detail"]
        # one style only: not the older draft's headers
        assert not any(
            h.startswith("ratelimit-") and h != "ratelimit-policy" for h in refused.headers
        )
        assert "x-ratelimit-limit" not in refused.headers


async def test_auth_endpoints_have_their_own_stricter_class(
    settings: Settings, database: Database, session_factory: Any
) -> None:
    app = make_app(settings, database, rate_limit_default="50/minute", rate_limit_auth="2/minute")
    async with client_for(app) as c:
        creds = {"email": "nobody@example.com", "password": "wrong"}
        first = await c.post(LOGIN, json=creds)
        assert first.status_code == 401
        assert _state(first)["name"] == "auth" and _state(first)["q"] == 2
        assert (await c.post(LOGIN, json=creds)).status_code == 401
        assert_problem(await c.post(LOGIN, json=creds), 429)
        # the default class is untouched by the auth attempts
        other = await c.get(ME)
        assert other.status_code == 401
        assert _state(other)["name"] == "default" and _state(other)["r"] == 49


async def test_keyed_by_principal_when_authenticated_else_by_address(
    settings: Settings, database: Database, world: World
) -> None:
    tenant = await world.tenant()
    alice = await world.user(tenant, "member")
    bob = await world.user(tenant, "member")
    app = make_app(settings, database, rate_limit_default="2/minute")
    async with client_for(app) as c:
        for account in (alice, bob):  # same address, one budget each
            assert (await c.get(ME, headers=account.headers)).status_code == 200
            assert (await c.get(ME, headers=account.headers)).status_code == 200
        assert_problem(await c.get(ME, headers=alice.headers), 429)
        # the anonymous budget of this address is another one, still whole
        anonymous = await c.get(ME)
        assert anonymous.status_code == 401 and _state(anonymous)["r"] == 1
        # a forged token does not borrow a principal's budget: it counts as the address
        forged = await c.get(ME, headers={"Authorization": "Bearer not.a.token"})
        assert forged.status_code == 401 and _state(forged)["r"] == 0
    other_address = make_app(settings, database, rate_limit_default="2/minute")
    async with client_for(other_address, client=("10.1.2.3", 4000)) as c:
        assert _state(await c.get(ME))["r"] == 1


async def test_disabled_rate_limits_add_no_headers(settings: Settings, database: Database) -> None:
    app = make_app(settings, database, rate_limit_enabled=False, rate_limit_default="1/minute")
    async with client_for(app) as c:
        for _ in range(3):
            r = await c.get(ME)
            assert r.status_code == 401
            assert "ratelimit" not in r.headers


def test_policy_parsing() -> None:
    policy = Policy.parse("auth", "20 per 5 minutes")
    assert (policy.amount, policy.window_s) == (20, 300)
    assert policy.policy_header == (b"ratelimit-policy", b'"auth";q=20;w=300')
    assert policy.state(-3, 12) == b'"auth";r=0;t=12'
    with pytest.raises(ValueError, match="one limit per class"):
        Settings(_env_file=None, rate_limit_default="10/second;100/minute")
    with pytest.raises(ValueError, match="not a rate limit"):
        Settings(_env_file=None, rate_limit_auth="lots")


def test_window_counter_turns_and_stays_bounded() -> None:
    counter = WindowCounter(max_keys=2)
    minute, second = Policy.parse("default", "3/minute"), Policy.parse("burst", "3/second")
    at = 7 * 60 + 0.5  # in window 7 of the minute policy, 59.5 s before it ends
    assert [counter.hit(minute, "a", at) for _ in range(3)] == [(1, 60), (2, 60), (3, 60)]
    assert counter.hit(minute, "b", at)[0] == 1
    assert counter.hit(minute, "c", at)[0] == 1  # full: not counted
    assert counter.hit(minute, "c", at)[0] == 1
    assert counter.hit(minute, "a", 8 * 60)[0] == 1  # next window: everything starts again
    assert counter.hit(second, "a", 8 * 60)[0] == 1  # another policy counts apart


# --- Redis: counts shared by every instance ----------------------------------------------------


@pytest.fixture
def redis_prefix(redis_available: str) -> Iterator[str]:
    prefix = f"test-rl-{uuid.uuid4().hex[:12]}"
    yield prefix
    delete_redis_keys(redis_available, prefix + ":")


async def test_two_instances_share_counts_in_redis(
    settings: Settings, database: Database, redis_available: str, redis_prefix: str
) -> None:
    shared = {
        "redis_url": redis_available,
        "rate_limit_key_prefix": redis_prefix,
        "rate_limit_default": "3/minute",
    }
    one = make_app(settings, database, **shared)
    two = make_app(settings, database, **shared)
    async with client_for(one, lifespan=True) as a, client_for(two, lifespan=True) as b:
        assert _state(await a.get(ME))["r"] == 2
        assert _state(await b.get(ME))["r"] == 1
        assert _state(await a.get(ME))["r"] == 0
        refused = await b.get(ME)
        assert_problem(refused, 429)
        assert int(refused.headers["retry-after"]) >= 1
    client = Redis.from_url(redis_available)
    try:
        keys = [key async for key in client.scan_iter(match=f"{redis_prefix}:*")]
        assert len(keys) == 1 and b"default:a:127.0.0.1" in keys[0]
        assert 0 < await client.ttl(keys[0]) <= 60
    finally:
        await client.aclose()


async def test_concurrent_requests_share_one_round_trip_and_count_exactly(
    settings: Settings, database: Database, redis_available: str, redis_prefix: str
) -> None:
    app = make_app(
        settings,
        database,
        redis_url=redis_available,
        rate_limit_key_prefix=redis_prefix,
        rate_limit_default="5/minute",
    )
    async with client_for(app, lifespan=True) as c:
        responses = await asyncio.gather(*(c.get(ME) for _ in range(8)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [401] * 5 + [429] * 3
    remaining = sorted(_state(r)["r"] for r in responses if r.status_code == 401)
    assert remaining == [0, 1, 2, 3, 4]  # each request got its own place in the count


async def test_unreachable_redis_limits_each_instance_on_its_own(
    settings: Settings, database: Database
) -> None:
    """No Redis, no shared counts: each process counts for itself, so a limit still holds (at
    most N instances' quota), and nothing answers 500."""
    app = make_app(
        settings,
        database,
        redis_url="redis://127.0.0.1:1/0",
        redis_pool_timeout_s=0.2,
        rate_limit_default="2/minute",
    )
    async with client_for(app, lifespan=True) as c:
        seen = [await c.get(ME) for _ in range(3)]
    assert [r.status_code for r in seen] == [401, 401, 429]
    assert [_state(r)["r"] for r in seen] == [1, 0, 0]


# --- the decode-once contract ------------------------------------------------------------------


class CountingCodec(TokenCodec):
    def __init__(self, inner: TokenCodec) -> None:
        super().__init__(inner._secret, inner.issuer, inner.audience, inner.ttl_s)
        self.decodes = 0

    def decode(self, token: str) -> TokenClaims:
        self.decodes += 1
        return super().decode(token)


async def test_token_is_decoded_once_per_request(
    settings: Settings, database: Database, world: World
) -> None:
    account = await world.user(await world.tenant(), "member")
    app = make_app(settings, database)
    codec = app.state.tokens = app.state.platform.tokens = CountingCodec(app.state.tokens)
    async with client_for(app) as c:
        assert (await c.get(ME, headers=account.headers)).status_code == 200
        assert codec.decodes == 1
        assert (await c.get(ME, headers={"Authorization": "Bearer forged"})).status_code == 401
        assert codec.decodes == 2
        assert (await c.get(ME)).status_code == 401
        assert (await c.get("/healthz", headers=account.headers)).status_code == 200
        assert codec.decodes == 3  # verified for the logs even where no route needs it
        r = await c.post(LOGIN, json={"email": account.email, "password": PASSWORD})
        assert r.status_code == 200 and codec.decodes == 3


async def test_without_the_middleware_the_dependency_decodes(
    settings: Settings, database: Database, world: World
) -> None:
    account = await world.user(await world.tenant(), "member")
    app = make_app(settings, database)
    app.user_middleware.clear()  # no edge: nothing stashes the claims
    codec = app.state.tokens = app.state.platform.tokens = CountingCodec(app.state.tokens)
    async with client_for(app) as c:
        r = await c.get(ME, headers=account.headers)
        assert r.status_code == 200 and r.json()["email"] == account.email
        assert codec.decodes == 1
        assert (await c.get(ME, headers={"Authorization": "Bearer forged"})).status_code == 401
