"""Calls, messages and customer intelligence: logged and listed in the tenant, a customer's
conversation newest first, and a page of customers summed up in one query whatever its
size, cached until one of them changes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.crm.models import Call, Customer, Lead
from tenantry.kit.ids import new_id
from tests.support.asserts import assert_problem, queries
from tests.support.world import Account, World


async def _customer(world: World, session: AsyncSession) -> tuple[Account, Customer]:
    member = await world.user(await world.tenant(), "member")
    customer = Customer(
        tenant_id=member.tenant_id, id=new_id(), name="Ada", phone="+34 600 000 001"
    )
    session.add(customer)
    await session.flush()
    return member, customer


async def test_calls_are_logged_listed_by_status_and_kept_in_the_company(
    world: World, session: AsyncSession
) -> None:
    member, customer = await _customer(world, session)
    stranger, theirs = await _customer(world, session)
    for status in ("completed", "missed", "completed"):
        body: dict[str, object] = {
            "customer_id": str(customer.id),
            "direction": "outbound",
            "status": status,
        }
        r = await world.client.post(
            "/api/v1/calls", json={**body, "duration_s": 30}, headers=member.headers
        )
        assert r.status_code == 201, r.text
    r = await world.client.get("/api/v1/calls?status=completed&limit=1", headers=member.headers)
    page = r.json()
    assert len(page["items"]) == 1 and page["next_cursor"]
    r = await world.client.get(
        f"/api/v1/calls?status=completed&cursor={page['next_cursor']}", headers=member.headers
    )
    assert (len(r.json()["items"]), r.json()["next_cursor"]) == (1, None)
    assert (await world.client.get("/api/v1/calls", headers=stranger.headers)).json()["items"] == []

    other_lead = Lead(
        tenant_id=stranger.tenant_id,
        id=new_id(),
        customer_id=theirs.id,
        status="new",
        source="manual",
    )
    session.add(other_lead)
    await session.flush()
    base = {"direction": "inbound", "status": "missed"}
    r = await world.client.post(
        "/api/v1/calls", json={**base, "customer_id": str(theirs.id)}, headers=member.headers
    )
    assert_problem(r, 404)
    r = await world.client.post(
        "/api/v1/calls",
        json={**base, "customer_id": str(customer.id), "lead_id": str(other_lead.id)},
        headers=member.headers,
    )
    assert assert_problem(r, 422)["errors"][0]["loc"] == ["body", "lead_id"]
    r = await world.client.get("/api/v1/calls?status=ringing", headers=member.headers)
    assert assert_problem(r, 422)["errors"][0]["loc"] == ["query", "status"]


async def test_a_conversation_is_newest_first_by_channel(
    world: World, session: AsyncSession
) -> None:
    member, customer = await _customer(world, session)
    stranger, _ = await _customer(world, session)
    for channel, text in (("whatsapp", "hola"), ("sms", "code 1234"), ("whatsapp", "gracias")):
        body = {"customer_id": str(customer.id), "channel": channel, "body": text}
        r = await world.client.post("/api/v1/messages", json=body, headers=member.headers)
        assert r.status_code == 201, r.text
        assert r.json()["to_number"] == "+34 600 000 001"  # the customer's, unless given
    url = f"/api/v1/customers/{customer.id}/messages"
    r = await world.client.get(f"{url}?channel=whatsapp", headers=member.headers)
    assert [m["body"] for m in r.json()["items"]] == ["gracias", "hola"]
    assert_problem(await world.client.get(url, headers=stranger.headers), 404)
    bad = {"customer_id": str(customer.id), "channel": "pigeon", "body": "coo"}
    r = await world.client.post("/api/v1/messages", json=bad, headers=member.headers)
    assert assert_problem(r, 422)["errors"][0]["loc"] == ["body", "channel"]


@pytest.mark.parametrize("n", [10, 200])
async def test_intelligence_sums_up_a_page_in_one_query(
    world: World, session: AsyncSession, n: int
) -> None:
    member = await world.user(await world.tenant(), "member")
    stranger, theirs = await _customer(world, session)
    now = datetime.now(UTC)
    customers = [Customer(tenant_id=member.tenant_id, id=new_id(), name=f"C{i}") for i in range(n)]
    session.add_all(customers)
    await session.flush()
    for i, c in enumerate(customers):
        for j in range(i % 3):  # 0, 1 or 2 leads; the later one is the latest
            session.add(
                Lead(
                    tenant_id=member.tenant_id,
                    id=new_id(),
                    customer_id=c.id,
                    status="won" if j else "new",
                    source="manual",
                    created_at=now - timedelta(hours=10 - j),
                )
            )
        for _ in range(i % 2):
            session.add(
                Call(
                    tenant_id=member.tenant_id,
                    customer_id=c.id,
                    direction="inbound",
                    status="missed",
                    duration_s=0,
                )
            )
    session.add(
        Lead(tenant_id=stranger.tenant_id, customer_id=theirs.id, status="new", source="manual")
    )
    await session.flush()
    await world.client.get("/api/v1/users/me", headers=member.headers)  # the principal cached
    url = "/api/v1/intelligence/customers?limit=100"
    r = await world.client.get(url, headers=member.headers)
    assert r.status_code == 200, r.text
    assert queries(r) == 1
    pages = [r.json()]
    while pages[-1]["next_cursor"]:
        r = await world.client.get(
            f"{url}&cursor={pages[-1]['next_cursor']}", headers=member.headers
        )
        assert queries(r) == 1
        pages.append(r.json())
    by_name = {c["name"]: c for page in pages for c in page["items"]}
    assert len(by_name) == n
    two = by_name["C2"]
    assert (two["leads_count"], two["latest_lead"]["status"], two["calls_count"]) == (2, "won", 0)
    one = by_name["C1"]
    assert (one["leads_count"], one["calls_count"], one["last_call"]["status"]) == (1, 1, "missed")
    zero = by_name["C0"]
    assert (zero["leads_count"], zero["latest_lead"], zero["last_call"]) == (0, None, None)
    assert sum(c["leads_count"] for c in by_name.values()) == sum(i % 3 for i in range(n))
    assert uuid.UUID(pages[0]["items"][0]["id"]) == customers[-1].id  # newest first

    again = await world.client.get(url, headers=member.headers)
    assert (again.json(), queries(again)) == (pages[0], 0)  # the cached page
    cached = await world.client.get(
        url, headers={**member.headers, "If-None-Match": again.headers["etag"]}
    )
    assert cached.status_code == 304
    assert (await world.client.get(url, headers=stranger.headers)).json()["items"][0]["id"] == str(
        theirs.id
    )

    # A call logged through the API, then a customer deleted: each commit drops the pages.
    newest = customers[-1]
    call = {"customer_id": str(newest.id), "direction": "outbound", "status": "completed"}
    assert (
        await world.client.post("/api/v1/calls", json=call, headers=member.headers)
    ).status_code == 201
    r = await world.client.get(url, headers=member.headers)
    assert (queries(r), r.json()["items"][0]["calls_count"]) == (1, 1 + (n - 1) % 2)
    assert r.json()["items"][0]["last_call"]["status"] == "completed"
    gone = await world.client.delete(f"/api/v1/customers/{newest.id}", headers=member.headers)
    assert gone.status_code == 204
    r = await world.client.get(url, headers=member.headers)
    assert r.json()["items"][0]["id"] == str(customers[-2].id)
