"""Sync sources: made and changed by owners and admins, their URL checked against where we will
call, their secret stored sealed and never shown, another tenant's a 404."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.kit.secrets import SecretBox
from tenantry.sync.models import SyncSource
from tests.support.asserts import assert_problem, queries
from tests.support.world import World

SOURCES = "/api/v1/sync-sources"
PUBLIC = "https://93.184.215.14/export/customers"  # a public address: no DNS needed


async def _make(world: World, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    r = await world.client.post(
        SOURCES, json={"name": "Legacy CRM", "base_url": PUBLIC, **body}, headers=headers
    )
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def test_a_source_keeps_its_secret_sealed_and_never_shows_it(
    world: World, session: AsyncSession
) -> None:
    owner = await world.user(await world.tenant(), "owner")
    made = await _make(world, owner.headers, secret="s3cret-token", page_size=250)
    assert made["has_secret"] is True and "secret" not in made
    assert (made["kind"], made["schedule"], made["page_size"]) == ("http_json", "*/5 * * * *", 250)
    assert made["auth_header"] == "Authorization" and made["enabled"] is True

    stored = (
        await session.execute(select(SyncSource).where(SyncSource.id == uuid.UUID(made["id"])))
    ).scalar_one()
    assert stored.secret_sealed is not None and "s3cret" not in stored.secret_sealed
    assert world.platform.secrets.open(stored.secret_sealed) == "s3cret-token"

    r = await world.client.get(f"{SOURCES}/{made['id']}", headers=owner.headers)
    assert r.status_code == 200 and r.json() == made
    assert "s3cret" not in r.text


async def test_a_patch_changes_only_what_it_sends(world: World) -> None:
    admin = await world.user(await world.tenant(), "admin")
    made = await _make(world, admin.headers, secret="one")
    r = await world.client.patch(
        f"{SOURCES}/{made['id']}",
        json={"schedule": "0 * * * *", "enabled": False},
        headers=admin.headers,
    )
    assert r.status_code == 200, r.text
    changed = r.json()
    assert (changed["schedule"], changed["enabled"], changed["has_secret"]) == (
        "0 * * * *",
        False,
        True,
    )
    assert changed["name"] == made["name"] and changed["base_url"] == made["base_url"]
    r = await world.client.patch(
        f"{SOURCES}/{made['id']}", json={"secret": None}, headers=admin.headers
    )
    assert r.json()["has_secret"] is False


async def test_the_list_pages_in_one_query(world: World) -> None:
    owner = await world.user(await world.tenant(), "owner")
    for n in range(3):
        await _make(world, owner.headers, name=f"source {n}")
    r = await world.client.get(f"{SOURCES}?per_page=2", headers=owner.headers)
    body = r.json()
    assert (body["total"], body["pages"], len(body["items"])) == (3, 2, 2)
    assert queries(r) == 1
    r = await world.client.get(f"{SOURCES}?page=3&per_page=2", headers=owner.headers)
    assert r.json()["items"] == [] and r.json()["total"] == 3


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/export",
        "http://10.0.0.1/export",
        "http://169.254.169.254/latest/meta-data/",
        "http://localhost/export",
        "ftp://93.184.215.14/export",
    ],
)
async def test_a_url_into_our_network_is_refused_naming_the_field(world: World, url: str) -> None:
    owner = await world.user(await world.tenant(), "owner")
    r = await world.client.post(SOURCES, json={"name": "x", "base_url": url}, headers=owner.headers)
    body = assert_problem(r, 422, "validation-error")
    assert [e["loc"] for e in body["errors"]] == [["body", "base_url"]]
    r = await world.client.get(SOURCES, headers=owner.headers)
    assert r.json()["total"] == 0  # nothing was made


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"schedule": "every five minutes"}, "schedule"),
        ({"page_size": 0}, "page_size"),
        ({"page_size": 1001}, "page_size"),
        ({"auth_header": "Bad Header:"}, "auth_header"),
        ({"name": "nul\u0000byte"}, "name"),
        ({"kind": "ftp_csv"}, "kind"),
        ({"surprise": 1}, "surprise"),
    ],
)
async def test_bad_fields_are_named(world: World, body: dict[str, Any], field: str) -> None:
    owner = await world.user(await world.tenant(), "owner")
    r = await world.client.post(
        SOURCES, json={"name": "x", "base_url": PUBLIC, **body}, headers=owner.headers
    )
    problem = assert_problem(r, 422, "validation-error")
    assert ["body", field] in [e["loc"] for e in problem["errors"]]


async def test_members_cannot_and_another_tenants_source_is_not_found(world: World) -> None:
    owner = await world.user(await world.tenant(), "owner")
    made = await _make(world, owner.headers)
    member = await world.user(owner.tenant_id, "member")
    assert_problem(await world.client.get(SOURCES, headers=member.headers), 403)
    stranger = await world.user(await world.tenant(), "owner")
    for r in (
        await world.client.get(f"{SOURCES}/{made['id']}", headers=stranger.headers),
        await world.client.patch(
            f"{SOURCES}/{made['id']}", json={"enabled": False}, headers=stranger.headers
        ),
    ):
        assert_problem(r, 404)
    r = await world.client.get(f"{SOURCES}/{uuid.uuid4()}", headers=owner.headers)
    assert_problem(r, 404)


def test_a_secret_survives_a_key_rotation_and_refuses_tampering() -> None:
    old = SecretBox(["old-passphrase-" + "x" * 32])
    sealed = old.seal("token")
    rotated = SecretBox(["new-passphrase-" + "y" * 32, "old-passphrase-" + "x" * 32])
    assert rotated.open(sealed) == "token"
    resealed = rotated.reseal(sealed)
    assert SecretBox(["new-passphrase-" + "y" * 32]).open(resealed) == "token"
    with pytest.raises(ValueError, match="cannot be decrypted"):
        SecretBox(["another-" + "z" * 32]).open(sealed)
    with pytest.raises(ValueError, match="cannot be decrypted"):
        old.open(sealed[:-4] + "AAAA")
