"""Customers through the API: created (and told to webhooks), read, changed, deleted, searched,
and listed by cursor in one query whatever the page, never across tenants."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.crm.models import Customer
from tenantry.kit.ids import new_id
from tenantry.webhooks.models import WebhookDelivery, WebhookEndpoint
from tenantry.webhooks.service import new_secret
from tests.support.asserts import assert_problem, queries
from tests.support.world import Account, World

CUSTOMERS = "/api/v1/customers"


async def _member(world: World) -> Account:
    return await world.user(await world.tenant(), "member")


def _rows(tenant_id: uuid.UUID, n: int, prefix: str = "Customer") -> list[Customer]:
    return [
        Customer(
            tenant_id=tenant_id,
            id=new_id(),
            name=f"{prefix} {i}",
            email=f"c{i}@{prefix.lower()}.example",
            phone=f"+34 600 {i:06d}",
        )
        for i in range(n)
    ]


async def test_a_customer_is_created_told_read_changed_and_deleted(
    world: World, session: AsyncSession
) -> None:
    member = await _member(world)
    session.add(
        WebhookEndpoint(
            tenant_id=member.tenant_id,
            url="https://hooks.example.com/in",
            secret_sealed=world.platform.secrets.seal(new_secret()),
            events=["customer.created"],
            enabled=True,
        )
    )
    await session.flush()
    body = {"name": "Ada Lovelace", "email": "ada@example.com", "phone": "+44 20 7946 0000"}
    r = await world.client.post(CUSTOMERS, json=body, headers=member.headers)
    assert r.status_code == 201, r.text
    created = r.json()
    assert (created["name"], created["postal_code"], created["source_id"]) == (
        "Ada Lovelace",
        None,
        None,
    )
    [told] = (
        await session.execute(
            select(WebhookDelivery).where(WebhookDelivery.tenant_id == member.tenant_id)
        )
    ).scalars()
    assert told.event_type == "customer.created" and told.payload["data"]["id"] == created["id"]

    url = f"{CUSTOMERS}/{created['id']}"
    read = await world.client.get(url, headers=member.headers)
    assert (read.json(), queries(read)) == (created, 1)  # one lean statement
    r = await world.client.patch(
        url, json={"postal_code": "28001", "phone": None}, headers=member.headers
    )
    assert r.status_code == 200, r.text
    assert (r.json()["postal_code"], r.json()["phone"], r.json()["email"]) == (
        "28001",
        None,
        "ada@example.com",
    )
    assert_problem(await world.client.patch(url, json={"name": None}, headers=member.headers), 422)
    assert (await world.client.delete(url, headers=member.headers)).status_code == 204
    assert_problem(await world.client.get(url, headers=member.headers), 404)
    assert_problem(await world.client.delete(url, headers=member.headers), 404)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"name": "nul\x00"}, "name"),
        ({"name": "A", "email": "nope"}, "email"),
        ({"name": "A", "phone": "call me"}, "phone"),
        ({"name": "A", "postal_code": "x" * 21}, "postal_code"),
        ({"name": "A", "tenant_id": str(uuid.uuid4())}, "tenant_id"),
        ({}, "name"),
    ],
)
async def test_bad_fields_are_named(world: World, body: dict[str, Any], field: str) -> None:
    member = await _member(world)
    r = await world.client.post(CUSTOMERS, json=body, headers=member.headers)
    assert assert_problem(r, 422)["errors"][0]["loc"][:2] == ["body", field]


async def test_the_list_runs_one_query_for_ten_or_two_hundred(
    world: World, session: AsyncSession
) -> None:
    counts = []
    for n in (10, 200):
        member = await _member(world)
        session.add_all(_rows(member.tenant_id, n))
        await session.flush()
        await world.client.get(CUSTOMERS, headers=member.headers)  # who they are, cached
        r = await world.client.get(f"{CUSTOMERS}?limit=100", headers=member.headers)
        assert len(r.json()["items"]) == min(n, 100)
        counts.append(queries(r))
    assert counts == [1, 1]


async def test_a_cursor_walk_sees_every_customer_once_while_others_are_added(
    world: World, session: AsyncSession
) -> None:
    member = await _member(world)
    first = _rows(member.tenant_id, 45)
    session.add_all(first)
    await session.flush()
    seen: list[str] = []
    url: str | None = f"{CUSTOMERS}?limit=10"
    while url is not None:
        page = (await world.client.get(url, headers=member.headers)).json()
        seen += [c["id"] for c in page["items"]]
        session.add_all(_rows(member.tenant_id, 3, prefix="Later"))  # newer than every cursor
        await session.flush()
        url = f"{CUSTOMERS}?limit=10&cursor={page['next_cursor']}" if page["next_cursor"] else None
    assert seen == [str(c.id) for c in reversed(first)]  # newest first, each once


async def test_search_matches_part_of_a_name_email_or_phone_in_any_case(
    world: World, session: AsyncSession
) -> None:
    member = await _member(world)
    session.add_all(_rows(member.tenant_id, 12))
    session.add(Customer(tenant_id=member.tenant_id, name="100% Pure_Water", email=None))
    await session.flush()

    async def names(q: str) -> set[str]:
        r = await world.client.get(CUSTOMERS, params={"q": q}, headers=member.headers)
        assert r.status_code == 200, r.text
        return {c["name"] for c in r.json()["items"]}

    assert await names("CUSTOMER 11") == {"Customer 11"}
    assert await names("c3@") == {"Customer 3"}
    assert await names("600 000007") == {"Customer 7"}
    assert await names("0% p") == {"100% Pure_Water"}  # % and _ are literal
    assert await names("e_w") == {"100% Pure_Water"}
    assert await names("zzz") == set()


@pytest.mark.parametrize(
    ("query", "field"),
    [("cursor=nonsense", "cursor"), ("limit=0", "limit"), ("limit=101", "limit"), ("q=", "q")],
)
async def test_bad_list_parameters_are_named(world: World, query: str, field: str) -> None:
    member = await _member(world)
    r = await world.client.get(f"{CUSTOMERS}?{query}", headers=member.headers)
    assert assert_problem(r, 422)["errors"][0]["loc"] == ["query", field]


async def test_another_companys_customer_is_not_found_and_never_listed(
    world: World, session: AsyncSession
) -> None:
    a, b = await _member(world), await _member(world)
    theirs = _rows(a.tenant_id, 3, prefix="Theirs")
    session.add_all(theirs)
    await session.flush()
    url = f"{CUSTOMERS}/{theirs[0].id}"
    assert_problem(await world.client.get(url, headers=b.headers), 404)
    assert_problem(await world.client.patch(url, json={"name": "x"}, headers=b.headers), 404)
    assert_problem(await world.client.delete(url, headers=b.headers), 404)
    listed = (await world.client.get(f"{CUSTOMERS}?q=theirs", headers=b.headers)).json()
    assert listed["items"] == []
    assert (await world.client.get(url, headers=a.headers)).status_code == 200
    assert_problem(await world.client.get(CUSTOMERS), 401)
