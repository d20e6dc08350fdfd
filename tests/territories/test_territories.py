"""Territories: regions, teams and zones made by admins and read by members; a postal code
resolved to its zone by the longest prefix from the cached table; and a new lead routed to
the zone's team and its active member with the fewest open leads."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.crm.models import Customer, Lead
from tenantry.kit.context import count_queries
from tenantry.kit.ids import new_id
from tenantry.kit.repository import TenantScope
from tenantry.territories.service import TerritoriesService
from tenantry.users.models import User
from tests.support.asserts import assert_problem, queries
from tests.support.world import Account, World

API = "/api/v1"


async def _post(world: World, who: Account, path: str, body: dict[str, Any]) -> Any:
    r = await world.client.post(f"{API}{path}", json=body, headers=who.headers)
    assert r.status_code == 201, r.text
    return r.json()


async def _zones(world: World) -> tuple[Account, Account, dict[str, Any]]:
    tenant = await world.tenant()
    admin = await world.user(tenant, "admin")
    member = await world.user(tenant, "member")
    region = await _post(world, admin, "/regions", {"name": "Madrid"})
    team = await _post(world, admin, "/teams", {"name": "Centro", "members": [str(member.id)]})
    wide = {"region_id": region["id"], "code": "MAD", "postal_prefixes": ["28"]}
    await _post(world, admin, "/zones", wide)
    narrow = {**wide, "code": "MAD-C", "postal_prefixes": ["280", "281"], "team_id": team["id"]}
    await _post(world, admin, "/zones", narrow)
    return admin, member, team


async def test_admins_shape_territories_and_members_read_them(world: World) -> None:
    admin, member, _ = await _zones(world)
    teams = (await world.client.get(f"{API}/teams", headers=member.headers)).json()["items"]
    assert [(t["name"], [m["user_id"] for m in t["members"]]) for t in teams] == [
        ("Centro", [str(member.id)])
    ]
    assert (
        len((await world.client.get(f"{API}/zones", headers=member.headers)).json()["items"]) == 2
    )
    r = await world.client.post(f"{API}/regions", json={"name": "Norte"}, headers=member.headers)
    assert_problem(r, 403)
    r = await world.client.post(f"{API}/teams", json={"name": "Centro"}, headers=admin.headers)
    assert_problem(r, 409)
    bad = {"region_id": str(uuid.uuid4()), "code": "X", "postal_prefixes": ["1"]}
    assert_problem(await world.client.post(f"{API}/zones", json=bad, headers=admin.headers), 404)
    r = await world.client.post(
        f"{API}/zones",
        json={**bad, "postal_prefixes": ["28", "28"]},
        headers=admin.headers,
    )
    assert assert_problem(r, 422)["errors"][0]["loc"][:2] == ["body", "postal_prefixes"]
    r = await world.client.post(
        f"{API}/teams",
        json={"name": "Ghosts", "members": [str(uuid.uuid4())]},
        headers=admin.headers,
    )
    assert assert_problem(r, 422)["errors"][0]["loc"] == ["body", "members", 0]


async def test_a_postal_code_resolves_by_its_longest_prefix_from_the_cache(world: World) -> None:
    _, member, team = await _zones(world)

    async def resolve(code: str) -> Any:
        return await world.client.get(
            f"{API}/zones/resolve", params={"postal_code": code}, headers=member.headers
        )

    r = await resolve("28001")
    assert (r.json()["code"], r.json()["matched_prefix"], r.json()["team_id"]) == (
        "MAD-C",
        "280",
        team["id"],
    )
    again = await resolve("28500")
    assert (again.json()["code"], queries(again)) == ("MAD", 0)  # the cached table
    assert_problem(await resolve("08001"), 404)


async def test_preload_fills_every_tenants_table(world: World) -> None:
    _, member, _ = await _zones(world)
    territories = world.platform.service(TerritoriesService)
    world.platform.caches.clear_local()
    assert await territories.preload() >= 1
    with count_queries() as counter:
        found = await territories.resolve(TenantScope(member.tenant_id), "28100")
    assert found is not None and found.code == "MAD-C" and counter.count == 0


async def test_a_new_lead_goes_to_the_zones_team_member_with_fewest_open_leads(
    world: World, session: AsyncSession
) -> None:
    admin, busy, _ = await _zones(world)
    free = await world.user(busy.tenant_id, "member")
    gone = await world.user(busy.tenant_id, "member")
    team = await _post(
        world,
        admin,
        "/teams",
        {"name": "Sur", "members": [str(busy.id), str(gone.id), str(free.id)]},
    )
    region = (await world.client.get(f"{API}/regions", headers=admin.headers)).json()["items"][0]
    zone = {
        "region_id": region["id"],
        "code": "SUR",
        "postal_prefixes": ["29"],
        "team_id": team["id"],
    }
    await _post(world, admin, "/zones", zone)
    customer = Customer(tenant_id=busy.tenant_id, id=new_id(), name="Ada", postal_code="29001")
    elsewhere = Customer(tenant_id=busy.tenant_id, id=new_id(), name="Bo", postal_code="08001")
    session.add_all([customer, elsewhere])
    await session.flush()
    for status in ("new", "contacted", "won"):  # two open leads for `busy`, one closed
        lead = Lead(tenant_id=busy.tenant_id, customer_id=customer.id, status=status)
        lead.source, lead.assigned_user_id = "manual", busy.id
        session.add(lead)
    user = await session.get(User, gone.id)
    assert user is not None
    user.is_active = False  # inactive users never receive leads
    await session.flush()

    r = await world.client.post(
        f"{API}/leads", json={"customer_id": str(customer.id)}, headers=admin.headers
    )
    assert r.status_code == 201, r.text
    routed = r.json()
    assert (routed["team_id"], routed["assigned_user_id"]) == (team["id"], str(free.id))
    stored = await session.get(Lead, (busy.tenant_id, uuid.UUID(routed["id"])))
    assert stored is not None and stored.routing is not None
    assert (stored.routing["zone"], stored.routing["assignee"]) == ("SUR", "fewest open leads")

    r = await world.client.post(
        f"{API}/leads", json={"customer_id": str(elsewhere.id)}, headers=admin.headers
    )
    assert (r.json()["team_id"], r.json()["assigned_user_id"]) == (None, None)


async def test_my_context_is_one_query_then_cached_until_my_teams_change(world: World) -> None:
    admin, member, team = await _zones(world)
    url = f"{API}/users/me/context"
    await world.client.get("/api/v1/users/me", headers=member.headers)  # who they are, cached
    r = await world.client.get(url, headers=member.headers)
    assert (r.status_code, queries(r)) == (200, 1)
    context = r.json()
    assert (context["role"], context["tenant"]["id"]) == ("member", str(member.tenant_id))
    assert [t["name"] for t in context["teams"]] == ["Centro"]
    assert [z["code"] for z in context["zones"]] == ["MAD-C"]  # the team's zone, not MAD
    assert [r["name"] for r in context["regions"]] == ["Madrid"]
    again = await world.client.get(url, headers=member.headers)
    assert (again.json(), queries(again)) == (context, 0)

    await _post(world, admin, "/teams", {"name": "Norte", "members": [str(member.id)]})
    changed = (await world.client.get(url, headers=member.headers)).json()
    assert [t["name"] for t in changed["teams"]] == ["Centro", "Norte"]

    r = await world.client.post(
        f"{API}/admin/cache/invalidate/{member.email}",
        headers=(
            await world.user(await world.tenant(), "admin", account_type="internal_employee")
        ).headers,
    )
    assert r.status_code == 200, r.text
    assert "user_context" in r.json()["invalidated"]
    assert queries(await world.client.get(url, headers=member.headers)) >= 1  # loaded again
    assert team["id"] in {t["id"] for t in changed["teams"]}


async def test_members_join_and_leave_a_team_and_their_context_follows(world: World) -> None:
    admin, member, team = await _zones(world)
    newcomer = await world.user(admin.tenant_id, "member")
    context = f"{API}/users/me/context"
    await world.client.get("/api/v1/users/me", headers=newcomer.headers)
    assert (await world.client.get(context, headers=newcomer.headers)).json()["teams"] == []

    url = f"{API}/teams/{team['id']}/members/{newcomer.id}"
    for _ in range(2):  # idempotent: the second call changes nothing
        r = await world.client.put(url, headers=admin.headers)
        assert r.status_code == 200, r.text
        assert [(m["user_id"], m["slot"]) for m in r.json()["members"]] == [
            (str(member.id), 0),
            (str(newcomer.id), 1),
        ]
    joined = (await world.client.get(context, headers=newcomer.headers)).json()
    assert [t["name"] for t in joined["teams"]] == ["Centro"]  # the cached context was dropped
    one = await world.client.get(f"{API}/teams/{team['id']}", headers=newcomer.headers)
    assert len(one.json()["members"]) == 2

    assert_problem(await world.client.put(url, headers=member.headers), 403)
    assert_problem(await world.client.delete(url, headers=member.headers), 403)
    assert (await world.client.delete(url, headers=admin.headers)).status_code == 204
    assert_problem(await world.client.delete(url, headers=admin.headers), 404)
    assert (await world.client.get(context, headers=newcomer.headers)).json()["teams"] == []

    # Users and teams of another company, and unknown ones, are not found.
    stranger = await world.user(await world.tenant(), "member")
    for path in (
        f"/teams/{team['id']}/members/{stranger.id}",
        f"/teams/{uuid.uuid4()}/members/{newcomer.id}",
    ):
        assert_problem(await world.client.put(f"{API}{path}", headers=admin.headers), 404)
    outsider = await world.user(await world.tenant(), "admin")
    assert_problem(await world.client.put(url, headers=outsider.headers), 404)
    assert_problem(
        await world.client.get(f"{API}/teams/{team['id']}", headers=outsider.headers), 404
    )
