from __future__ import annotations

from unittest.mock import ANY

import pytest

from tests.support.asserts import assert_problem, queries
from tests.support.world import World

# The hot routes' answers, by the fast lane and by FastAPI (`kit.lane`).
pytestmark = pytest.mark.usefixtures("both_lanes")


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


async def test_settings_are_served_with_an_etag_and_a_304(world: World) -> None:
    tenant = await world.tenant()
    admin = await world.user(tenant, "admin")
    member = await world.user(tenant)
    first = await world.client.get("/api/v1/tenant/settings", headers=member.headers)
    etag = first.headers["etag"]
    assert etag.startswith('"') and first.headers["cache-control"] == "private, no-cache"
    again = await world.client.get(
        "/api/v1/tenant/settings", headers={**member.headers, "If-None-Match": etag}
    )
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag and queries(again) == 0
    weak = await world.client.get(
        "/api/v1/tenant/settings", headers={**member.headers, "If-None-Match": f'"x", W/{etag}'}
    )
    assert weak.status_code == 304
    # A write makes new bytes and a new ETag: the old one gets the new body.
    r = await world.client.patch(
        "/api/v1/tenant/settings", json={"currency": "EUR"}, headers=admin.headers
    )
    assert r.status_code == 200
    changed = await world.client.get(
        "/api/v1/tenant/settings", headers={**member.headers, "If-None-Match": etag}
    )
    assert changed.status_code == 200 and changed.json()["currency"] == "EUR"
    assert changed.headers["etag"] != etag
    assert changed.json() == {**first.json(), "currency": "EUR", "updated_at": ANY}


async def test_the_tenant_is_served_with_an_etag(world: World) -> None:
    member = await world.user(await world.tenant("etag-co"))
    r = await world.client.get("/api/v1/tenant", headers=member.headers)
    assert r.json()["slug"] == "etag-co"
    r2 = await world.client.get(
        "/api/v1/tenant", headers={**member.headers, "If-None-Match": r.headers["etag"]}
    )
    assert r2.status_code == 304
    other = await world.user(await world.tenant(), "owner")  # another tenant: another body
    r3 = await world.client.get(
        "/api/v1/tenant", headers={**other.headers, "If-None-Match": r.headers["etag"]}
    )
    assert r3.status_code == 200 and r3.json()["slug"] != "etag-co"
