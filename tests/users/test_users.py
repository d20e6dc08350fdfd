from __future__ import annotations

import uuid

import pytest

from tests.support.asserts import assert_max_queries, assert_problem, queries
from tests.support.world import World

# The hot routes' answers, by the fast lane and by FastAPI (`kit.lane`).
pytestmark = pytest.mark.usefixtures("both_lanes")

USERS = "/api/v1/users"


async def test_me_is_one_query_cold_and_none_warm(world: World) -> None:
    tenant = await world.tenant("acme-test")
    owner = await world.user(tenant, "owner")
    with assert_max_queries(1):
        r = await world.client.get(f"{USERS}/me", headers=owner.headers)
    assert r.status_code == 200
    assert queries(r) == 1
    warm = await world.client.get(f"{USERS}/me", headers=owner.headers)
    assert queries(warm) == 0
    assert warm.json() == r.json()
    body = r.json()
    assert body["email"] == owner.email
    assert body["role"] == "owner"
    assert body["tenant"] == {
        "id": str(tenant),
        "slug": "acme-test",
        "name": "Acme-Test",
        "status": "active",
    }


async def test_users_list_pages_with_constant_queries(world: World) -> None:
    tenant = await world.tenant()
    owner = await world.user(tenant, "owner")
    for _ in range(3):
        await world.user(tenant, login=False)
    r = await world.client.get(USERS, params={"per_page": 2}, headers=owner.headers)
    assert r.status_code == 200
    body = r.json()
    assert body["total"] == 4
    assert body["pages"] == 2
    assert len(body["items"]) == 2
    few = queries(r)
    r2 = await world.client.get(USERS, params={"per_page": 2, "page": 2}, headers=owner.headers)
    assert len(r2.json()["items"]) == 2
    assert {u["id"] for u in body["items"]}.isdisjoint({u["id"] for u in r2.json()["items"]})
    for _ in range(6):
        await world.user(tenant, login=False)
    r3 = await world.client.get(USERS, params={"per_page": 100}, headers=owner.headers)
    assert len(r3.json()["items"]) == 10
    assert few == 2  # the principal (cold) + the page with its window count
    assert queries(r2) == queries(r3) == 1  # the principal is cached now: the page alone


async def test_page_past_the_end_is_empty_with_the_total(world: World) -> None:
    tenant = await world.tenant()
    owner = await world.user(tenant, "owner")
    r = await world.client.get(USERS, params={"page": 9}, headers=owner.headers)
    assert r.status_code == 200
    assert r.json()["items"] == []
    assert r.json()["total"] == 1


async def test_users_list_shows_only_your_tenant(world: World) -> None:
    a = await world.tenant()
    b = await world.tenant()
    owner_a = await world.user(a, "owner")
    await world.user(b, "owner", login=False)
    r = await world.client.get(USERS, headers=owner_a.headers)
    assert [u["email"] for u in r.json()["items"]] == [owner_a.email]


async def test_members_cannot_list_or_create_users(world: World) -> None:
    tenant = await world.tenant()
    member = await world.user(tenant)
    assert_problem(await world.client.get(USERS, headers=member.headers), 403, "forbidden")
    r = await world.client.post(
        USERS,
        json={"email": "x@example.com", "full_name": "X", "password": "long enough pw"},
        headers=member.headers,
    )
    assert_problem(r, 403)


async def test_create_user_then_log_in(world: World) -> None:
    tenant = await world.tenant()
    admin = await world.user(tenant, "admin")
    r = await world.client.post(
        USERS,
        json={
            "email": "New@Example.com",
            "full_name": "New One",
            "password": "long enough pw",
            "role": "member",
        },
        headers=admin.headers,
    )
    assert r.status_code == 201, r.text
    assert r.json()["email"] == "new@example.com"
    assert "password" not in r.text and "password_hash" not in r.text
    assert await world.login("new@example.com", "long enough pw")


async def test_duplicate_email_is_409_even_across_tenants(world: World) -> None:
    a = await world.tenant()
    b = await world.tenant()
    taken = await world.user(a, login=False)
    owner_b = await world.user(b, "owner")
    r = await world.client.post(
        USERS,
        json={"email": taken.email, "full_name": "Dup", "password": "long enough pw"},
        headers=owner_b.headers,
    )
    body = assert_problem(r, 409, "conflict")
    assert body["field"] == "email"


async def test_admin_cannot_create_or_promote_to_owner(world: World) -> None:
    tenant = await world.tenant()
    admin = await world.user(tenant, "admin")
    member = await world.user(tenant, login=False)
    r = await world.client.post(
        USERS,
        json={
            "email": "o@example.com",
            "full_name": "O",
            "password": "long enough pw",
            "role": "owner",
        },
        headers=admin.headers,
    )
    assert_problem(r, 403)
    r = await world.client.patch(
        f"{USERS}/{member.id}", json={"role": "owner"}, headers=admin.headers
    )
    assert_problem(r, 403)


async def test_admin_cannot_touch_an_owner_nor_themself(world: World) -> None:
    tenant = await world.tenant()
    owner = await world.user(tenant, "owner", login=False)
    admin = await world.user(tenant, "admin")
    for change in ({"is_active": False}, {"full_name": "Renamed by an admin"}):
        r = await world.client.patch(f"{USERS}/{owner.id}", json=change, headers=admin.headers)
        assert_problem(r, 403)
    r = await world.client.patch(
        f"{USERS}/{admin.id}", json={"role": "member"}, headers=admin.headers
    )
    assert_problem(r, 403)
    renamed = await world.client.patch(  # their own name is theirs to change
        f"{USERS}/{admin.id}", json={"full_name": "Admin Renamed"}, headers=admin.headers
    )
    assert renamed.status_code == 200, renamed.text


async def test_another_tenants_user_id_is_404(world: World) -> None:
    a = await world.tenant()
    b = await world.tenant()
    victim = await world.user(a, login=False)
    owner_b = await world.user(b, "owner")
    r = await world.client.patch(
        f"{USERS}/{victim.id}", json={"full_name": "Pwned"}, headers=owner_b.headers
    )
    assert_problem(r, 404, "not-found")
    r = await world.client.patch(
        f"{USERS}/{uuid.uuid4()}", json={"full_name": "Ghost"}, headers=owner_b.headers
    )
    assert_problem(r, 404)


async def test_internal_users_list_with_company_in_one_query(world: World) -> None:
    operator = await world.tenant("ops-platform")
    staff_admin = await world.user(operator, "admin", account_type="internal_employee")
    r1 = await world.client.get("/api/v1/admin/users/internal", headers=staff_admin.headers)
    assert r1.status_code == 200
    for _ in range(4):
        await world.user(operator, account_type="internal_employee", login=False)
    r2 = await world.client.get("/api/v1/admin/users/internal", headers=staff_admin.headers)
    items = r2.json()["items"]
    assert len(items) == len(r1.json()["items"]) + 4
    assert all(i["company"]["slug"] for i in items)
    mine = next(i for i in items if i["id"] == str(staff_admin.id))
    assert mine["company"]["slug"] == "ops-platform"
    assert queries(r1) == 2  # the principal (cold) + the joined page
    assert queries(r2) == 1  # the joined page alone: the principal is cached


async def test_platform_admin_creates_internal_staff(world: World) -> None:
    operator = await world.tenant("ops-platform-2")
    staff_admin = await world.user(operator, "admin", account_type="internal_employee")
    r = await world.client.post(
        "/api/v1/admin/users/internal",
        json={
            "email": "staff@tenantry.example",
            "full_name": "Staff",
            "password": "long enough pw",
        },
        headers=staff_admin.headers,
    )
    assert r.status_code == 201, r.text
    assert r.json()["account_type"] == "internal_employee"
    assert r.json()["company"]["id"] == str(operator)


async def test_tenant_owners_are_not_platform_staff(world: World) -> None:
    owner = await world.user(await world.tenant(), "owner")
    r = await world.client.get("/api/v1/admin/users/internal", headers=owner.headers)
    assert_problem(r, 403)


async def test_me_is_served_with_an_etag_that_follows_the_profile(world: World) -> None:
    tenant = await world.tenant()
    owner = await world.user(tenant, "owner")
    member = await world.user(tenant)
    r = await world.client.get(f"{USERS}/me", headers=member.headers)
    etag = r.headers["etag"]
    cached = await world.client.get(
        f"{USERS}/me", headers={**member.headers, "If-None-Match": etag}
    )
    assert cached.status_code == 304 and queries(cached) == 0
    mine = await world.client.get(f"{USERS}/me", headers={**owner.headers, "If-None-Match": etag})
    assert mine.status_code == 200 and mine.json()["email"] == owner.email
    renamed = await world.client.patch(
        f"{USERS}/{member.id}", json={"full_name": "Renamed"}, headers=owner.headers
    )
    assert renamed.status_code == 200
    after = await world.client.get(f"{USERS}/me", headers={**member.headers, "If-None-Match": etag})
    assert after.status_code == 200 and after.json()["full_name"] == "Renamed"
    assert after.headers["etag"] != etag
