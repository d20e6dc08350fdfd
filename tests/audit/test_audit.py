"""The audit log: security-relevant actions written with the change they record (a change
refused or rolled back leaves none), each with its actor, target and request id; owners read
their company's, platform administrators everyone's; paged by cursor in one query."""

from __future__ import annotations

from typing import Any

from tenantry.config import Settings
from tenantry.kit.db import Database
from tests.support.asserts import assert_problem, queries
from tests.support.platform import client_for, make_app
from tests.support.world import PASSWORD, Account, CommittedWorld, World, login

AUDIT = "/api/v1/audit-events"
LOGIN = "/api/v1/auth/login"
PUBLIC = "https://93.184.215.14/hooks"


async def _events(world: World, who: Account, query: str = "") -> list[dict[str, Any]]:
    r = await world.client.get(f"{AUDIT}?limit=100{query}", headers=who.headers)
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


async def test_an_owners_security_actions_are_recorded_with_who_what_and_which_request(
    world: World,
) -> None:
    tenant = await world.tenant()
    owner = await world.user(tenant, "owner")
    member = await world.user(tenant, "member")
    key = await world.client.post("/api/v1/api-keys", json={"name": "ci"}, headers=owner.headers)
    revoked = await world.client.delete(
        f"/api/v1/api-keys/{key.json()['id']}", headers=owner.headers
    )
    assert revoked.status_code == 204
    settings = await world.client.patch(
        "/api/v1/tenant/settings", json={"timezone": "Europe/Madrid"}, headers=owner.headers
    )
    hook = await world.client.post(
        "/api/v1/webhooks", json={"url": PUBLIC, "events": ["lead.created"]}, headers=owner.headers
    )
    demoted = await world.client.patch(
        f"/api/v1/users/{member.id}", json={"is_active": False}, headers=owner.headers
    )
    assert demoted.status_code == 200
    events = await _events(world, owner)
    actions = [e["action"] for e in events]
    assert actions == [  # newest first
        "user.deactivated",
        "webhook.created",
        "settings.changed",
        "api_key.revoked",
        "api_key.created",
        "login.succeeded",  # the member's and the owner's logins
        "login.succeeded",
    ]
    by_action = {e["action"]: e for e in events}
    made = by_action["api_key.created"]
    assert made["actor_id"] == str(owner.id) and made["request_id"] == key.headers["x-request-id"]
    assert "key" not in made["details"] and made["details"]["prefix"] == key.json()["prefix"]
    assert by_action["settings.changed"]["details"] == {"fields": ["timezone"]}
    assert by_action["settings.changed"]["request_id"] == settings.headers["x-request-id"]
    assert by_action["webhook.created"]["target"] == PUBLIC
    assert "secret" not in str(by_action["webhook.created"]) and hook.status_code == 201
    gone = by_action["user.deactivated"]
    assert gone["details"] == {"user_id": str(member.id), "tokens_revoked": True}
    only = await _events(world, owner, "&action=api_key.revoked")
    assert [e["action"] for e in only] == ["api_key.revoked"]


async def test_a_failed_login_is_recorded_though_its_answer_rolls_back(
    settings: Settings, database: Database, committed: CommittedWorld
) -> None:
    """Committed for real: the 401 rolls the request back, the record stays (its own
    transaction). An unknown address belongs to no company: nothing to record it in."""
    tenant = await committed.tenant()
    owner = await committed.user(tenant, "owner", login=False)
    member = await committed.user(tenant, "member", login=False, email=None)
    async with client_for(make_app(settings, database)) as c:
        wrong = await c.post(LOGIN, json={"email": member.email.upper(), "password": "nope"})
        assert wrong.status_code == 401
        unknown = await c.post(LOGIN, json={"email": "nobody@example.com", "password": "x"})
        assert unknown.status_code == 401
        r = await c.get(f"{AUDIT}?action=login.failed", headers=await login(c, owner.email))
    (failed,) = r.json()["items"]
    assert (failed["actor_id"], failed["target"]) == (None, member.email)
    assert failed["details"] == {"reason": "wrong password"}
    assert failed["request_id"] == wrong.headers["x-request-id"]


async def test_a_refused_change_leaves_no_record(world: World) -> None:
    owner = await world.user(await world.tenant(), "owner")
    other = await world.user(await world.tenant(), "owner")
    theirs = await world.client.post(
        "/api/v1/teams", json={"name": "Theirs"}, headers=other.headers
    )
    refused = await world.client.patch(
        "/api/v1/tenant/settings",
        json={"default_team_id": theirs.json()["id"]},
        headers=owner.headers,
    )
    assert_problem(refused, 404)
    assert "settings.changed" not in [e["action"] for e in await _events(world, owner)]


async def test_who_reads_what(world: World) -> None:
    a = await world.tenant()
    owner_a = await world.user(a, "owner")
    admin_a = await world.user(a, "admin")
    member_a = await world.user(a, "member")
    owner_b = await world.user(await world.tenant(), "owner")
    staff = await world.user(await world.tenant(), "admin", account_type="internal_employee")
    assert_problem(await world.client.get(AUDIT, headers=member_a.headers), 403)
    assert_problem(await world.client.get(AUDIT, headers=admin_a.headers), 403)
    assert_problem(await world.client.get(f"{AUDIT}?all=true", headers=owner_a.headers), 403)
    mine = {e["tenant_id"] for e in await _events(world, owner_a)}
    assert mine == {str(a)}
    assert str(a) not in {e["tenant_id"] for e in await _events(world, owner_b)}
    everyone = {e["tenant_id"] for e in await _events(world, staff, "&all=true")}
    assert {str(a), str(owner_b.tenant_id)} <= everyone


async def test_the_log_pages_by_cursor_in_one_query(world: World) -> None:
    owner = await world.user(await world.tenant(), "owner")
    for i in range(5):
        r = await world.client.patch(
            "/api/v1/tenant/settings", json={"currency": f"EU{'ABCDE'[i]}"}, headers=owner.headers
        )
        assert r.status_code == 200, r.text
    await world.client.post("/api/v1/auth/login", json={"email": owner.email, "password": PASSWORD})
    seen: list[str] = []
    url: str | None = f"{AUDIT}?limit=2"
    while url is not None:
        r = await world.client.get(url, headers=owner.headers)
        assert queries(r) == 1
        page = r.json()
        seen += [e["id"] for e in page["items"]]
        url = f"{AUDIT}?limit=2&cursor={page['next_cursor']}" if page["next_cursor"] else None
    assert len(seen) == len(set(seen)) == 7  # 5 settings changes, 2 logins
