from __future__ import annotations

import time
import uuid

import jwt
import pytest

from tests.support.asserts import assert_problem
from tests.support.world import PASSWORD, World

LOGIN = "/api/v1/auth/login"
ME = "/api/v1/users/me"


def _claims(world: World, headers: dict[str, str]) -> dict[str, object]:
    token = headers["Authorization"].split()[1]
    return jwt.decode(token, options={"verify_signature": False})


async def test_login_returns_a_token_with_every_claim(world: World) -> None:
    tenant = await world.tenant()
    acct = await world.user(tenant, "owner")
    claims = _claims(world, acct.headers)
    assert set(claims) >= {"sub", "tid", "role", "ver", "iat", "exp", "iss", "aud"}
    assert claims["sub"] == str(acct.id)
    assert claims["tid"] == str(tenant)
    assert claims["role"] == "owner"
    assert claims["ver"] == 0
    r = await world.client.get(ME, headers=acct.headers)
    assert r.status_code == 200
    assert r.json()["email"] == acct.email


async def test_login_is_case_insensitive_on_email(world: World) -> None:
    acct = await world.user(await world.tenant(), login=False)
    r = await world.client.post(LOGIN, json={"email": acct.email.upper(), "password": PASSWORD})
    assert r.status_code == 200


async def test_wrong_password_and_unknown_email_answer_the_same(world: World) -> None:
    acct = await world.user(await world.tenant(), login=False)
    wrong = await world.client.post(LOGIN, json={"email": acct.email, "password": "nope"})
    unknown = await world.client.post(
        LOGIN, json={"email": "nobody@example.com", "password": PASSWORD}
    )
    a = assert_problem(wrong, 401, "unauthorized")
    b = assert_problem(unknown, 401, "unauthorized")
    assert a["detail"] == b["detail"]
    assert wrong.headers["www-authenticate"] == "Bearer"


async def test_inactive_user_cannot_log_in(world: World) -> None:
    tenant = await world.tenant()
    owner = await world.user(tenant, "owner")
    member = await world.user(tenant, "member", login=False)
    r = await world.client.patch(
        f"/api/v1/users/{member.id}", json={"is_active": False}, headers=owner.headers
    )
    assert r.status_code == 200
    r = await world.client.post(LOGIN, json={"email": member.email, "password": PASSWORD})
    assert_problem(r, 401)


def _forge(claims: dict[str, object], secret: str, **changes: object) -> dict[str, str]:
    payload = {**claims, **changes}
    return {"Authorization": f"Bearer {jwt.encode(payload, secret, algorithm='HS256')}"}


@pytest.mark.parametrize(
    "case",
    [
        "expired",
        "tampered",
        "other_audience",
        "other_issuer",
        "wrong_secret",
        "alg_none",
        "garbage",
        "missing_claim",
        "wrong_scheme",
        "no_header",
        "unknown_user",
        "other_tenant",
    ],
)
async def test_bad_tokens_get_401(world: World, settings, case: str) -> None:  # type: ignore[no-untyped-def]
    tenant = await world.tenant()
    acct = await world.user(tenant)
    claims = _claims(world, acct.headers)
    secret = settings.jwt_secret
    token = acct.headers["Authorization"].split()[1]
    headers: dict[str, str]
    if case == "expired":
        headers = _forge(claims, secret, iat=int(time.time()) - 7200, exp=int(time.time()) - 60)
    elif case == "tampered":
        head, _body, sig = token.split(".")
        forged = jwt.encode({**claims, "role": "owner"}, "x" * 32, algorithm="HS256").split(".")[1]
        headers = {"Authorization": f"Bearer {head}.{forged}.{sig}"}
    elif case == "other_audience":
        headers = _forge(claims, secret, aud="someone-else")
    elif case == "other_issuer":
        headers = _forge(claims, secret, iss="evil")
    elif case == "wrong_secret":
        headers = _forge(claims, "another-secret-" + "y" * 40)
    elif case == "alg_none":
        unsigned = jwt.encode(claims, None, algorithm="none")
        headers = {"Authorization": f"Bearer {unsigned}"}
    elif case == "garbage":
        headers = {"Authorization": "Bearer not.a.jwt"}
    elif case == "missing_claim":
        headers = _forge({k: v for k, v in claims.items() if k != "ver"}, secret)
    elif case == "wrong_scheme":
        headers = {"Authorization": f"Basic {token}"}
    elif case == "no_header":
        headers = {}
    elif case == "unknown_user":
        headers = _forge(claims, secret, sub=str(uuid.uuid4()))
    else:  # a real user id presented under another tenant id
        other = await world.tenant()
        headers = _forge(claims, secret, tid=str(other))
    r = await world.client.get(ME, headers=headers)
    assert_problem(r, 401, "unauthorized")
    assert r.headers["www-authenticate"] == "Bearer"


async def test_role_change_revokes_existing_tokens(world: World) -> None:
    tenant = await world.tenant()
    owner = await world.user(tenant, "owner")
    member = await world.user(tenant, "member")
    assert (await world.client.get(ME, headers=member.headers)).status_code == 200
    r = await world.client.patch(
        f"/api/v1/users/{member.id}", json={"role": "admin"}, headers=owner.headers
    )
    assert r.status_code == 200
    r = await world.client.get(ME, headers=member.headers)
    assert_problem(r, 401)
    assert "revoked" in r.json()["detail"]
    fresh = await world.login(member.email)
    r = await world.client.get(ME, headers=fresh)
    assert r.status_code == 200
    assert r.json()["role"] == "admin"


async def test_renaming_does_not_revoke(world: World) -> None:
    tenant = await world.tenant()
    owner = await world.user(tenant, "owner")
    member = await world.user(tenant, "member")
    r = await world.client.patch(
        f"/api/v1/users/{member.id}", json={"full_name": "New Name"}, headers=owner.headers
    )
    assert r.status_code == 200
    assert (await world.client.get(ME, headers=member.headers)).status_code == 200


async def test_deactivation_revokes_at_once(world: World) -> None:
    tenant = await world.tenant()
    owner = await world.user(tenant, "owner")
    member = await world.user(tenant, "member")
    r = await world.client.patch(
        f"/api/v1/users/{member.id}", json={"is_active": False}, headers=owner.headers
    )
    assert r.status_code == 200
    assert_problem(await world.client.get(ME, headers=member.headers), 401)


async def test_login_records_last_login(world: World) -> None:
    tenant = await world.tenant()
    owner = await world.user(tenant, "owner")
    r = await world.client.get("/api/v1/users", headers=owner.headers)
    me = next(u for u in r.json()["items"] if u["id"] == str(owner.id))
    assert me["last_login_at"] is not None


async def test_old_hash_parameters_are_upgraded_at_login(world: World) -> None:
    from argon2 import PasswordHasher
    from sqlalchemy import select, update

    from tenantry.users.models import User

    acct = await world.user(await world.tenant(), login=False)
    heavy = PasswordHasher(time_cost=3, memory_cost=65_536, parallelism=4).hash(PASSWORD)
    await world.session.execute(update(User).where(User.id == acct.id).values(password_hash=heavy))
    await world.session.commit()
    await world.login(acct.email)
    stored = (
        await world.session.execute(select(User.password_hash).where(User.id == acct.id))
    ).scalar_one()
    assert stored != heavy
    assert "m=19456,t=2,p=1" in stored
    await world.login(acct.email)  # and the new hash verifies
