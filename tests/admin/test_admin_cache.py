"""Cache administration: platform admins only."""

from __future__ import annotations

import pytest

from tests.support.asserts import assert_problem, queries
from tests.support.world import World

STATS = "/api/v1/admin/cache/stats"
CLEAR = "/api/v1/admin/cache/clear"
ME = "/api/v1/users/me"


async def _platform_admin(world: World) -> dict[str, str]:
    operator = await world.tenant()
    return (await world.user(operator, "admin", account_type="internal_employee")).headers


async def test_stats_list_every_cache_with_counters(world: World) -> None:
    admin = await _platform_admin(world)
    await world.client.get(ME, headers=admin)  # the principal is cached now
    before = {c["name"]: c for c in (await world.client.get(STATS, headers=admin)).json()["caches"]}
    await world.client.get(ME, headers=admin)
    await world.client.get(ME, headers=admin)
    r = await world.client.get(STATS, headers=admin)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["invalidation_bus"] == "postgres"
    assert body["bus_connected"] is True
    assert body["redis"] is None
    caches = {c["name"]: c for c in body["caches"]}
    assert {"principal", "tenant", "tenant_settings", "token_claims"} <= set(caches)
    principal = caches["principal"]
    assert principal["backend"] == "memory"
    assert principal["ttl_s"] == 300
    # the app is shared by the session: what these requests added, not the totals
    assert principal["hits"] - before["principal"]["hits"] == 3  # two /me and the stats call
    assert principal["misses"] == before["principal"]["misses"]
    assert principal["size"] >= 1
    assert 0 < principal["hit_rate"] <= 1
    assert caches["tenant_settings"]["max_size"] == 1000


@pytest.mark.parametrize(
    ("role", "account_type"),
    [("owner", "customer"), ("member", "customer"), ("member", "internal_employee")],
)
async def test_everyone_else_gets_403(world: World, role: str, account_type: str) -> None:
    user = await world.user(await world.tenant(), role, account_type=account_type)
    for method, path in (("GET", STATS), ("POST", CLEAR), ("POST", f"{CLEAR[:-5]}invalidate/x")):
        r = await world.client.request(method, path, headers=user.headers)
        assert_problem(r, 403, "forbidden")


async def test_clear_all_then_requests_load_again(world: World) -> None:
    admin = await _platform_admin(world)
    assert queries(await world.client.get(ME, headers=admin)) == 1  # cold
    assert queries(await world.client.get(ME, headers=admin)) == 0  # warm
    r = await world.client.post(CLEAR, headers=admin)
    assert r.status_code == 200
    assert "principal" in r.json()["cleared"]
    assert queries(await world.client.get(ME, headers=admin)) == 1


async def test_clear_one_cache_by_name(world: World) -> None:
    admin = await _platform_admin(world)
    await world.client.get(ME, headers=admin)
    await world.client.get("/api/v1/tenant/settings", headers=admin)
    r = await world.client.post(CLEAR, json={"cache": "tenant_settings"}, headers=admin)
    assert r.json() == {"cleared": ["tenant_settings"]}
    assert queries(await world.client.get(ME, headers=admin)) == 0  # principal untouched
    r = await world.client.get("/api/v1/tenant/settings", headers=admin)
    assert queries(r) == 1
    r = await world.client.post(CLEAR, json={"cache": "nope"}, headers=admin)
    assert "tenant_settings" in assert_problem(r, 404)["detail"]


async def test_invalidate_one_users_principal(world: World) -> None:
    admin = await _platform_admin(world)
    member = await world.user(await world.tenant())
    await world.client.get(ME, headers=member.headers)
    assert queries(await world.client.get(ME, headers=member.headers)) == 0
    r = await world.client.post(f"/api/v1/admin/cache/invalidate/{member.email}", headers=admin)
    assert r.status_code == 200
    assert r.json() == {
        "email": member.email,
        "user_id": str(member.id),
        "invalidated": ["principal", "user_context"],
    }
    assert queries(await world.client.get(ME, headers=member.headers)) == 1
    r = await world.client.post("/api/v1/admin/cache/invalidate/nobody@example.com", headers=admin)
    assert_problem(r, 404)
