"""API keys: made by owners and admins, shown once, stored as a hash, refused at once when
revoked or expired, and as cheap as a token on a warm request."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.api_keys.models import ApiKey
from tenantry.api_keys.service import ApiKeysService
from tenantry.config import Settings
from tenantry.kit.db import Database
from tests.support.asserts import assert_problem, queries
from tests.support.platform import eventually, running, two_instances
from tests.support.world import CommittedWorld, World, login

KEYS = "/api/v1/api-keys"
ME = "/api/v1/users/me"
LOGIN = "/api/v1/auth/login"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def _make(world: World, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    r = await world.client.post(KEYS, json={"name": "sync", **body}, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def test_a_key_is_shown_once_and_stored_only_as_a_hash(
    world: World, session: AsyncSession, settings: Settings
) -> None:
    owner = await world.user(await world.tenant(), "owner")
    made = await _make(world, owner.headers, role="admin")
    key = made["key"]
    assert key.startswith("tnt_") and len(key) > 40
    assert made["prefix"] == key[:12] and made["role"] == "admin"
    stored = (await session.execute(select(ApiKey).where(ApiKey.id == made["id"]))).scalar_one()
    expected = hmac.new(settings.api_key_secret.encode(), key.encode(), hashlib.sha256)
    assert stored.key_hash == expected.hexdigest()
    assert key not in {stored.key_hash, stored.prefix, stored.name}
    listed = (await world.client.get(KEYS, headers=owner.headers)).json()
    assert listed["total"] == 1
    assert "key" not in listed["items"][0]
    assert listed["items"][0]["prefix"] == made["prefix"]


async def test_a_key_authenticates_as_its_creator_with_its_role(world: World) -> None:
    tenant = await world.tenant()
    owner = await world.user(tenant, "owner")
    key = (await _make(world, owner.headers, role="member"))["key"]
    r = await world.client.get(ME, headers=bearer(key))
    assert r.status_code == 200, r.text
    assert r.json()["id"] == str(owner.id)
    assert r.json()["role"] == "member"  # the key's role, not the owner's
    assert queries(r) == 1  # the key (its creator's principal is cached from the POST)
    warm = await world.client.get(ME, headers=bearer(key))
    assert queries(warm) == 0
    # A member key cannot do what needs an admin, though its creator could.
    assert_problem(await world.client.get("/api/v1/users", headers=bearer(key)), 403)


async def test_a_key_is_never_decoded_as_an_access_token(world: World, app: Any) -> None:
    owner = await world.user(await world.tenant(), "owner")
    key = (await _make(world, owner.headers))["key"]
    tokens = app.state.tokens.verified
    looked_up = tokens.hits + tokens.misses
    assert (await world.client.get(ME, headers=bearer(key))).status_code == 200
    assert tokens.hits + tokens.misses == looked_up


async def test_role_no_higher_than_the_creators(world: World) -> None:
    tenant = await world.tenant()
    admin = await world.user(tenant, "admin")
    r = await world.client.post(KEYS, json={"name": "x", "role": "owner"}, headers=admin.headers)
    assert "cannot create a key" in assert_problem(r, 403)["detail"]
    member = await world.user(tenant)
    r = await world.client.post(KEYS, json={"name": "x"}, headers=member.headers)
    assert_problem(r, 403)
    assert_problem(await world.client.get(KEYS, headers=member.headers), 403)


async def test_keys_cannot_manage_keys(world: World) -> None:
    owner = await world.user(await world.tenant(), "owner")
    made = await _make(world, owner.headers, role="admin")
    r = await world.client.post(KEYS, json={"name": "child"}, headers=bearer(made["key"]))
    assert_problem(r, 403)
    r = await world.client.delete(f"{KEYS}/{made['id']}", headers=bearer(made["key"]))
    assert_problem(r, 403)


async def test_revoked_key_is_refused_at_once(world: World) -> None:
    tenant = await world.tenant()
    owner = await world.user(tenant, "owner")
    made = await _make(world, owner.headers)
    assert (await world.client.get(ME, headers=bearer(made["key"]))).status_code == 200
    r = await world.client.delete(f"{KEYS}/{made['id']}", headers=owner.headers)
    assert r.status_code == 204
    r = await world.client.get(ME, headers=bearer(made["key"]))
    assert "revoked" in assert_problem(r, 401, "unauthorized")["detail"]
    assert_problem(await world.client.delete(f"{KEYS}/{made['id']}", headers=owner.headers), 404)


async def test_another_tenants_key_is_404(world: World) -> None:
    mine = await world.user(await world.tenant(), "owner")
    theirs = await world.user(await world.tenant(), "owner")
    made = await _make(world, theirs.headers)
    assert_problem(await world.client.delete(f"{KEYS}/{made['id']}", headers=mine.headers), 404)
    assert (await world.client.get(KEYS, headers=mine.headers)).json()["total"] == 0


async def test_expired_key_is_refused(world: World, session: AsyncSession, app: Any) -> None:
    owner = await world.user(await world.tenant(), "owner")
    soon = datetime.now(UTC) + timedelta(hours=1)
    made = await _make(world, owner.headers, expires_at=soon.isoformat())
    assert (await world.client.get(ME, headers=bearer(made["key"]))).status_code == 200
    # Expiry is checked on every request, cached or not: move the deadline into the past.
    past = datetime.now(UTC) - timedelta(seconds=1)
    await session.execute(update(ApiKey).where(ApiKey.id == made["id"]).values(expires_at=past))
    await session.commit()
    app.state.caches.get("api_keys").drop_local(None)  # as if its cache entry had aged out
    r = await world.client.get(ME, headers=bearer(made["key"]))
    assert "expired" in assert_problem(r, 401)["detail"]
    r = await world.client.get(ME, headers=bearer(made["key"]))  # from the cache now
    assert "expired" in assert_problem(r, 401)["detail"]
    assert queries(r) == 0
    r = await world.client.post(
        KEYS, json={"name": "x", "expires_at": past.isoformat()}, headers=owner.headers
    )
    assert_problem(r, 422)


async def test_deactivating_the_creator_stops_the_key(world: World) -> None:
    tenant = await world.tenant()
    owner = await world.user(tenant, "owner")
    admin = await world.user(tenant, "admin")
    key = (await _make(world, admin.headers))["key"]
    assert (await world.client.get(ME, headers=bearer(key))).status_code == 200
    r = await world.client.patch(
        f"/api/v1/users/{admin.id}", json={"is_active": False}, headers=owner.headers
    )
    assert r.status_code == 200
    assert_problem(await world.client.get(ME, headers=bearer(key)), 401)
    # Reactivated, the creator signs in again, but the key stays dead: a new one must be made.
    r = await world.client.patch(
        f"/api/v1/users/{admin.id}", json={"is_active": True}, headers=owner.headers
    )
    assert r.status_code == 200
    gone = assert_problem(await world.client.get(ME, headers=bearer(key)), 401)
    assert "creator's access changed" in gone["detail"]
    again = await world.login(admin.email)
    fresh = (await _make(world, again))["key"]
    assert (await world.client.get(ME, headers=bearer(fresh))).status_code == 200


async def test_a_new_role_for_the_creator_ends_their_keys(world: World) -> None:
    tenant = await world.tenant()
    owner = await world.user(tenant, "owner")
    admin = await world.user(tenant, "admin")
    key = (await _make(world, admin.headers, role="member"))["key"]
    r = await world.client.patch(
        f"/api/v1/users/{admin.id}", json={"role": "member"}, headers=owner.headers
    )
    assert r.status_code == 200
    assert_problem(await world.client.get(ME, headers=bearer(key)), 401)


async def test_a_key_hands_out_no_logins(world: World) -> None:
    """An owner's key can do an owner's work, but not make a user with a password (a login
    that would outlive the key), nor change who may sign in."""
    tenant = await world.tenant()
    owner = await world.user(tenant, "owner")
    member = await world.user(tenant, "member")
    key = bearer((await _make(world, owner.headers, role="owner"))["key"])
    user = {"email": "minted@example.com", "full_name": "Minted", "password": "x" * 16}
    for role in ("owner", "member"):
        r = await world.client.post("/api/v1/users", json={**user, "role": role}, headers=key)
        assert "cannot create logins" in assert_problem(r, 403)["detail"]
    for change in ({"role": "admin"}, {"is_active": False}):
        r = await world.client.patch(f"/api/v1/users/{member.id}", json=change, headers=key)
        assert_problem(r, 403)
    renamed = await world.client.patch(
        f"/api/v1/users/{member.id}", json={"full_name": "Renamed"}, headers=key
    )
    assert renamed.status_code == 200, renamed.text
    login = {"email": user["email"], "password": user["password"]}
    assert_problem(await world.client.post(LOGIN, json=login), 401)  # no such login was made


async def test_unknown_key_is_401(world: World) -> None:
    r = await world.client.get(ME, headers=bearer("tnt_" + "x" * 43))
    assert "unknown" in assert_problem(r, 401)["detail"]


async def test_last_used_is_buffered_not_written_per_request(
    world: World, session: AsyncSession, app: Any, database: Database
) -> None:
    owner = await world.user(await world.tenant(), "owner")
    made = await _make(world, owner.headers)
    for _ in range(5):
        r = await world.client.get(ME, headers=bearer(made["key"]))
        assert r.status_code == 200
    assert queries(r) == 0  # no write on the request path
    stored = await session.scalar(select(ApiKey.last_used_at).where(ApiKey.id == made["id"]))
    assert stored is None
    assert await app.state.platform.service(ApiKeysService).flush_usage() >= 1
    session.expire_all()
    stored = await session.scalar(select(ApiKey.last_used_at).where(ApiKey.id == made["id"]))
    assert stored is not None
    listed = (await world.client.get(KEYS, headers=owner.headers)).json()["items"]
    assert listed[0]["last_used_at"] is not None


async def test_revocation_reaches_every_instance(
    mode_settings: Settings, committed: CommittedWorld, committed_db: Database
) -> None:
    tenant = await committed.tenant()
    owner = await committed.user(tenant, "owner")
    async with two_instances(mode_settings, committed_db) as (a, b):
        owner_h = await login(a, owner.email)
        made = (await a.post(KEYS, json={"name": "k"}, headers=owner_h)).json()
        assert (await b.get(ME, headers=bearer(made["key"]))).status_code == 200
        assert queries(await b.get(ME, headers=bearer(made["key"]))) == 0
        assert (await a.delete(f"{KEYS}/{made['id']}", headers=owner_h)).status_code == 204

        async def refused_on_b() -> bool:
            return (await b.get(ME, headers=bearer(made["key"]))).status_code == 401

        await eventually(refused_on_b)


async def test_usage_is_flushed_when_the_app_stops(
    settings: Settings, committed: CommittedWorld, committed_db: Database
) -> None:
    from tenantry.app import create_app

    tenant = await committed.tenant()
    owner = await committed.user(tenant, "owner")
    app = create_app(settings, database=committed_db)
    async with running(app) as c:
        owner_h = await login(c, owner.email)
        made = (await c.post(KEYS, json={"name": "k"}, headers=owner_h)).json()
        assert (await c.get(ME, headers=bearer(made["key"]))).status_code == 200
    async with committed_db.sessionmaker() as s:
        used = await s.scalar(select(ApiKey.last_used_at).where(ApiKey.id == made["id"]))
    assert used is not None


async def test_a_keys_profile_shows_the_keys_role_not_the_cached_one(world: World) -> None:
    owner = await world.user(await world.tenant(), "owner")
    as_owner = await world.client.get(ME, headers=owner.headers)  # caches the owner's bytes
    made = await _make(world, owner.headers, role="member")
    as_key = await world.client.get(ME, headers=bearer(made["key"]))
    assert as_owner.json()["role"] == "owner" and as_key.json()["role"] == "member"
    assert as_key.headers["etag"] != as_owner.headers["etag"]
