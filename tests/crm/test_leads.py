"""Leads through the API: made for a customer in the company's first status, moved through its
statuses with each move in the history once (and none when the request fails), told to
webhooks, filtered and listed by cursor in one query, never across tenants."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.crm.models import Customer, Lead, LeadStatusHistory
from tenantry.kit.ids import new_id
from tenantry.webhooks.models import WebhookDelivery, WebhookEndpoint
from tenantry.webhooks.service import new_secret
from tests.support.asserts import assert_problem, queries
from tests.support.world import Account, World

LEADS = "/api/v1/leads"


async def _setup(world: World, session: AsyncSession) -> tuple[Account, Customer]:
    member = await world.user(await world.tenant(), "member")
    customer = Customer(tenant_id=member.tenant_id, id=new_id(), name="Ada Lovelace")
    session.add(customer)
    await session.flush()
    return member, customer


async def _history(session: AsyncSession, lead_id: str) -> list[tuple[str | None, str]]:
    rows = await session.execute(
        select(LeadStatusHistory.from_status, LeadStatusHistory.to_status)
        .where(LeadStatusHistory.lead_id == uuid.UUID(lead_id))
        .order_by(LeadStatusHistory.created_at, LeadStatusHistory.id)
    )
    return [(a, b) for a, b in rows.all()]


async def test_a_lead_moves_through_statuses_each_move_recorded_and_told(
    world: World, session: AsyncSession
) -> None:
    member, customer = await _setup(world, session)
    session.add(
        WebhookEndpoint(
            tenant_id=member.tenant_id,
            url="https://hooks.example.com/in",
            secret_sealed=world.platform.secrets.seal(new_secret()),
            events=["lead.created", "lead.status_changed"],
            enabled=True,
        )
    )
    await session.flush()
    r = await world.client.post(
        LEADS, json={"customer_id": str(customer.id), "value": "1200.50"}, headers=member.headers
    )
    assert r.status_code == 201, r.text
    lead = r.json()
    assert (lead["status"], lead["customer_name"], lead["source"], lead["value"]) == (
        "new",
        "Ada Lovelace",
        "manual",
        "1200.50",
    )
    url = f"{LEADS}/{lead['id']}"
    for status in ("contacted", "contacted", "qualified"):
        r = await world.client.patch(url, json={"status": status}, headers=member.headers)
        assert (r.status_code, r.json()["status"]) == (200, status)
    assert await _history(session, lead["id"]) == [
        (None, "new"),
        ("new", "contacted"),
        ("contacted", "qualified"),
    ]  # the same status twice is no move
    events = (
        await session.execute(
            select(WebhookDelivery.event_type, WebhookDelivery.payload)
            .where(WebhookDelivery.tenant_id == member.tenant_id)
            .order_by(WebhookDelivery.created_at, WebhookDelivery.id)
        )
    ).all()
    assert [e for e, _ in events] == ["lead.created", "lead.status_changed", "lead.status_changed"]
    last = events[-1][1]["data"]
    assert (last["lead_id"], last["previous_status"], last["status"]) == (
        lead["id"],
        "contacted",
        "qualified",
    )
    timeline = (await world.client.get(f"{url}/timeline", headers=member.headers)).json()
    assert [s["to_status"] for s in timeline["statuses"]] == ["qualified", "contacted", "new"]
    assert timeline["statuses"][0]["changed_by"] == str(member.id)


async def test_a_failed_change_leaves_no_history(world: World, session: AsyncSession) -> None:
    member, customer = await _setup(world, session)
    lead = (
        await world.client.post(
            LEADS, json={"customer_id": str(customer.id)}, headers=member.headers
        )
    ).json()
    body = {"status": "won", "assigned_user_id": str(uuid.uuid4())}  # nobody: the request fails
    r = await world.client.patch(f"{LEADS}/{lead['id']}", json=body, headers=member.headers)
    assert assert_problem(r, 422)["errors"][0]["loc"] == ["body", "assigned_user_id"]
    assert await _history(session, lead["id"]) == [(None, "new")]
    assert (await world.client.get(f"{LEADS}/{lead['id']}", headers=member.headers)).json()[
        "status"
    ] == "new"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"status": "bogus"}, "status"),
        ({"value": "-1"}, "value"),
        ({"value": "1.234"}, "value"),
        ({"assigned_user_id": "missing"}, "assigned_user_id"),
        ({"surprise": 1}, "surprise"),
    ],
)
async def test_bad_fields_are_named(
    world: World, session: AsyncSession, body: dict[str, Any], field: str
) -> None:
    member, customer = await _setup(world, session)
    _, theirs = await _setup(world, session)
    ids = {"other": str(theirs.id), "missing": str(uuid.uuid4())}
    sent = {"customer_id": str(customer.id), **{k: ids.get(v, v) for k, v in body.items()}}
    r = await world.client.post(LEADS, json=sent, headers=member.headers)
    assert assert_problem(r, 422)["errors"][0]["loc"][:2] == ["body", field]


async def test_the_list_filters_and_runs_one_query_for_ten_or_two_hundred(
    world: World, session: AsyncSession
) -> None:
    counts = []
    for n in (10, 200):
        member, customer = await _setup(world, session)
        other = Customer(tenant_id=member.tenant_id, id=new_id(), name="Grace Hopper")
        session.add(other)
        await session.flush()
        session.add_all(
            Lead(
                tenant_id=member.tenant_id,
                id=new_id(),
                customer_id=(customer if i % 2 else other).id,
                status="won" if i % 5 == 0 else "new",
                source="manual",
                assigned_user_id=member.id if i % 3 == 0 else None,
            )
            for i in range(n)
        )
        await session.flush()
        await world.client.get(LEADS, headers=member.headers)  # who they are, cached
        r = await world.client.get(f"{LEADS}?limit=100", headers=member.headers)
        assert len(r.json()["items"]) == min(n, 100)
        counts.append(queries(r))

    async def count(query: str) -> int:
        r = await world.client.get(f"{LEADS}?limit=100&{query}", headers=member.headers)
        assert r.status_code == 200, r.text
        return len(r.json()["items"])

    assert await count("status=won") == 40
    assert await count(f"assignee={member.id}") == 67
    assert await count("q=grace") == 100  # a full page of 100 of Grace's leads
    assert await count("q=LOVELACE&status=won") == 20
    assert await count(f"team={uuid.uuid4()}") == 0
    assert counts == [1, 1]


async def test_another_companys_lead_is_not_found(world: World, session: AsyncSession) -> None:
    member, customer = await _setup(world, session)
    stranger, _ = await _setup(world, session)
    for customer_id in (str(customer.id), str(uuid.uuid4())):  # theirs, or nobody's
        r = await world.client.post(
            LEADS, json={"customer_id": customer_id}, headers=stranger.headers
        )
        assert_problem(r, 404)
    lead = (
        await world.client.post(
            LEADS, json={"customer_id": str(customer.id)}, headers=member.headers
        )
    ).json()
    url = f"{LEADS}/{lead['id']}"
    assert_problem(await world.client.get(url, headers=stranger.headers), 404)
    assert_problem(
        await world.client.patch(url, json={"status": "won"}, headers=stranger.headers), 404
    )
    assert_problem(await world.client.get(f"{url}/timeline", headers=stranger.headers), 404)
    assert (await world.client.get(LEADS, headers=stranger.headers)).json()["items"] == []
