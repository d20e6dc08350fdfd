from __future__ import annotations

from tests.support.asserts import assert_problem
from tests.support.world import World


async def test_tenant_and_settings(world: World) -> None:
    tenant = await world.tenant("settings-co")
    member = await world.user(tenant)
    r = await world.client.get("/api/v1/tenant", headers=member.headers)
    assert r.status_code == 200
    assert r.json()["slug"] == "settings-co"
    r = await world.client.get("/api/v1/tenant/settings", headers=member.headers)
    assert r.status_code == 200
    assert r.json()["timezone"] == "UTC"
    assert "new" in r.json()["lead_statuses"]


async def test_admin_patches_settings_and_others_see_it(world: World) -> None:
    tenant = await world.tenant()
    admin = await world.user(tenant, "admin")
    member = await world.user(tenant)
    other = await world.user(await world.tenant(), "owner")
    r = await world.client.patch(
        "/api/v1/tenant/settings",
        json={"timezone": "Europe/Berlin", "currency": "EUR", "feature_flags": {"beta": True}},
        headers=admin.headers,
    )
    assert r.status_code == 200, r.text
    assert r.json()["timezone"] == "Europe/Berlin"
    seen = (await world.client.get("/api/v1/tenant/settings", headers=member.headers)).json()
    assert (seen["timezone"], seen["currency"], seen["feature_flags"]) == (
        "Europe/Berlin",
        "EUR",
        {"beta": True},
    )
    untouched = (await world.client.get("/api/v1/tenant/settings", headers=other.headers)).json()
    assert untouched["timezone"] == "UTC"


async def test_member_cannot_patch_settings(world: World) -> None:
    member = await world.user(await world.tenant())
    r = await world.client.patch(
        "/api/v1/tenant/settings", json={"currency": "EUR"}, headers=member.headers
    )
    assert_problem(r, 403)


async def test_bad_settings_are_422_and_change_nothing(world: World) -> None:
    admin = await world.user(await world.tenant(), "admin")
    r = await world.client.patch(
        "/api/v1/tenant/settings",
        json={"timezone": "Mars/Olympus", "currency": "euro", "lead_statuses": ["a", "a"]},
        headers=admin.headers,
    )
    body = assert_problem(r, 422, "validation-error")
    fields = {tuple(e["loc"]) for e in body["errors"]}
    assert fields == {("body", "timezone"), ("body", "currency"), ("body", "lead_statuses")}
    r = await world.client.get("/api/v1/tenant/settings", headers=admin.headers)
    assert r.json()["timezone"] == "UTC"
    assert r.json()["currency"] == "USD"
