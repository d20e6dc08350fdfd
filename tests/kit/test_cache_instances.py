"""Two app instances on one PostgreSQL (and one Redis): what one changes, the other sees at
once. Each test runs twice: embedded (LISTEN/NOTIFY) and with Redis (L2 + pub/sub). The data
is really committed here, and deleted after (`committed`)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tenantry.config import Settings
from tenantry.kit.db import Database
from tests.support.asserts import queries
from tests.support.platform import eventually, two_instances
from tests.support.world import CommittedWorld, World, login

ME = "/api/v1/users/me"
SETTINGS = "/api/v1/tenant/settings"


async def _status(client: httpx.AsyncClient, headers: dict[str, str]) -> int:
    return (await client.get(ME, headers=headers)).status_code


async def test_deactivation_on_one_instance_is_refused_at_once_on_the_other(
    mode_settings: Settings, committed: CommittedWorld, committed_db: Database
) -> None:
    tenant = await committed.tenant()
    owner = await committed.user(tenant, "owner")
    member = await committed.user(tenant)
    async with two_instances(mode_settings, committed_db) as (a, b):
        owner_h, member_h = await login(a, owner.email), await login(a, member.email)
        assert await _status(b, member_h) == 200
        warm = await b.get(ME, headers=member_h)
        assert queries(warm) == 0
        r = await a.patch(f"/api/v1/users/{member.id}", json={"is_active": False}, headers=owner_h)
        assert r.status_code == 200
        assert await _status(a, member_h) == 401  # the writer's own instance: immediately

        async def refused_on_b() -> bool:
            return await _status(b, member_h) == 401

        await eventually(refused_on_b)


async def test_a_bumped_token_version_revokes_on_every_instance(
    mode_settings: Settings, committed: CommittedWorld, committed_db: Database
) -> None:
    tenant = await committed.tenant()
    owner = await committed.user(tenant, "owner")
    member = await committed.user(tenant)
    async with two_instances(mode_settings, committed_db) as (a, b):
        owner_h, member_h = await login(a, owner.email), await login(b, member.email)
        assert await _status(b, member_h) == 200
        r = await a.patch(f"/api/v1/users/{member.id}", json={"role": "admin"}, headers=owner_h)
        assert r.status_code == 200

        async def revoked_on_b() -> bool:
            r = await b.get(ME, headers=member_h)
            return r.status_code == 401 and "revoked" in r.json()["detail"]

        await eventually(revoked_on_b)
        fresh = await login(b, member.email)
        assert (await b.get(ME, headers=fresh)).json()["role"] == "admin"


async def test_renaming_shows_on_the_other_instance(
    mode_settings: Settings, committed: CommittedWorld, committed_db: Database
) -> None:
    tenant = await committed.tenant()
    owner = await committed.user(tenant, "owner")
    member = await committed.user(tenant)
    async with two_instances(mode_settings, committed_db) as (a, b):
        owner_h, member_h = await login(a, owner.email), await login(a, member.email)
        assert (await b.get(ME, headers=member_h)).json()["full_name"] == "Member User"
        r = await a.patch(
            f"/api/v1/users/{member.id}", json={"full_name": "Renamed"}, headers=owner_h
        )
        assert r.status_code == 200

        async def renamed() -> bool:
            return bool((await b.get(ME, headers=member_h)).json()["full_name"] == "Renamed")

        await eventually(renamed)


async def test_settings_patch_invalidates_everywhere_and_tenants_stay_apart(
    mode_settings: Settings, committed: CommittedWorld, committed_db: Database
) -> None:
    first, second = await committed.tenant(), await committed.tenant()
    admin = await committed.user(first, "admin")
    member = await committed.user(first)
    stranger = await committed.user(second)
    async with two_instances(mode_settings, committed_db) as (a, b):
        admin_h = await login(a, admin.email)
        member_h, stranger_h = await login(b, member.email), await login(b, stranger.email)
        assert (await b.get(SETTINGS, headers=member_h)).json()["timezone"] == "UTC"
        assert (await b.get(SETTINGS, headers=stranger_h)).json()["timezone"] == "UTC"
        warm = await b.get(SETTINGS, headers=member_h)
        assert queries(warm) == 0
        r = await a.patch(SETTINGS, json={"timezone": "Europe/Berlin"}, headers=admin_h)
        assert r.status_code == 200, r.text

        async def seen_on_b() -> bool:
            body = (await b.get(SETTINGS, headers=member_h)).json()
            return bool(body["timezone"] == "Europe/Berlin")

        await eventually(seen_on_b)
        # The other tenant's cached settings are untouched and never the first tenant's.
        other = await b.get(SETTINGS, headers=stranger_h)
        assert other.json()["timezone"] == "UTC"
        assert queries(other) == 0


async def test_with_redis_a_second_instance_is_warm_from_the_l2(
    redis_settings: Settings, committed: CommittedWorld, committed_db: Database
) -> None:
    tenant = await committed.tenant()
    member = await committed.user(tenant)
    async with two_instances(redis_settings, committed_db) as (a, b):
        headers = await login(a, member.email)
        cold = await a.get(ME, headers=headers)
        assert queries(cold) == 1
        from_l2 = await b.get(ME, headers=headers)  # B never loaded it: Redis had it
        assert from_l2.status_code == 200
        assert queries(from_l2) == 0
        assert from_l2.json() == cold.json()


class GatedReader:
    """The app's lean reader, holding every read until the test opens the gate."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.gate = asyncio.Event()
        self.calls = 0

    async def one(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        await self.gate.wait()
        return await self.inner.one(*args, **kwargs)


async def test_a_hundred_concurrent_cold_requests_make_one_principal_query(
    world: World, app: Any, database: Database
) -> None:
    member = await world.user(await world.tenant())
    principal = app.state.caches.get("principal")
    before = principal.stats()
    gated = GatedReader(database.reader)
    database.reader = gated  # type: ignore[assignment]
    try:
        requests = asyncio.gather(
            *(world.client.get(ME, headers=member.headers) for _ in range(100))
        )

        async def all_waiting() -> bool:
            return bool(principal.stats().misses - before.misses == 100)

        await eventually(all_waiting)  # every request missed while the one load is held
        gated.gate.set()
        responses = await requests
    finally:
        database.reader = gated.inner
    assert {r.status_code for r in responses} == {200}
    assert gated.calls == 1
    assert principal.stats().loads - before.loads == 1
    assert sum(queries(r) for r in responses) == 1
