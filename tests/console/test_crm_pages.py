"""The CRM pages: lists with the API's filters, their cursor pages for the virtual list (a
constant number of queries), a lead's timeline, a customer's messages, and another company's
ids answered 404, as in the API."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx

from tests.support.console import sign_in
from tests.support.world import World

JSON = {"accept": "application/json"}


def browser_for(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


def first_page(html: str) -> dict[str, Any]:
    block = re.search(r'<script type="application/json" class="vlist-data">(.*?)</script>', html)
    assert block is not None
    data: dict[str, Any] = json.loads(block.group(1))
    return data


async def _leads(world: World, owner: Any, n: int, name: str) -> list[str]:
    customer = await world.client.post(
        "/api/v1/customers", json={"name": name}, headers=owner.headers
    )
    ids = []
    for _ in range(n):
        r = await world.client.post(
            "/api/v1/leads", json={"customer_id": customer.json()["id"]}, headers=owner.headers
        )
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    return ids


async def test_the_leads_list_filters_and_pages_by_cursor_in_constant_queries(
    app: Any, world: World
) -> None:
    tenant = await world.tenant()
    owner = await world.user(tenant, "owner")
    made = await _leads(world, owner, 120, "Ada </script> Lovelace")
    won = made[:3]
    for lead_id in won:
        r = await world.client.patch(
            f"/api/v1/leads/{lead_id}", json={"status": "won"}, headers=owner.headers
        )
        assert r.status_code == 200, r.text
    async with browser_for(app) as browser:
        await sign_in(browser, owner.email)
        page = await browser.get("/console/leads")
        assert page.status_code == 200
        data = first_page(page.text)  # the name's "</script>" did not end the data block
        assert len(data["rows"]) == 50 and data["next_cursor"]
        assert data["rows"][0]["cells"][0] == "Ada </script> Lovelace"
        seen = [r["href"] for r in data["rows"]]
        cursor, counts = data["next_cursor"], []
        while cursor:
            r = await browser.get(f"/console/leads/rows?cursor={cursor}", headers=JSON)
            counts.append(r.headers["x-db-queries"])
            seen += [row["href"] for row in r.json()["rows"]]
            cursor = r.json()["next_cursor"]
        assert sorted(seen) == sorted(f"/console/leads/{i}" for i in made)
        assert len(set(counts)) == 1, counts  # 50 rows or 20: the same statements
        filtered = await browser.get("/console/leads?status=won")
        rows = first_page(filtered.text)["rows"]
        assert sorted(r["href"] for r in rows) == sorted(f"/console/leads/{i}" for i in won)
        assert '<option value="won" selected>' in filtered.text
        every = await browser.get("/console/leads?status=&q=")  # a form's empty fields: any
        assert len(first_page(every.text)["rows"]) == 50
        searched = await browser.get("/console/leads/rows?q=nobody-by-this-name", headers=JSON)
        assert searched.json() == {"rows": [], "next_cursor": None}


async def test_a_lead_shows_its_timeline_and_a_customer_its_messages(
    app: Any, world: World
) -> None:
    tenant = await world.tenant()
    owner = await world.user(tenant, "owner")
    [lead_id] = await _leads(world, owner, 1, "Grace Hopper")
    await world.client.patch(
        f"/api/v1/leads/{lead_id}", json={"status": "contacted"}, headers=owner.headers
    )
    lead = (await world.client.get(f"/api/v1/leads/{lead_id}", headers=owner.headers)).json()
    r = await world.client.post(
        "/api/v1/messages",
        json={"customer_id": lead["customer_id"], "channel": "email", "body": "Hello <b>Grace</b>"},
        headers=owner.headers,
    )
    assert r.status_code == 201, r.text
    async with browser_for(app) as browser:
        await sign_in(browser, owner.email)
        page = await browser.get(f"/console/leads/{lead_id}")
        assert page.status_code == 200
        assert "contacted</strong>" in page.text and "Grace Hopper" in page.text
        customer = await browser.get(f"/console/customers/{lead['customer_id']}")
        assert "Hello &lt;b&gt;Grace&lt;/b&gt;" in customer.text  # escaped, never markup


async def test_another_company_s_ids_are_404_pages(app: Any, world: World) -> None:
    theirs = await world.user(await world.tenant(), "owner")
    [their_lead] = await _leads(world, theirs, 1, "Not Yours")
    their_customer = (
        await world.client.get(f"/api/v1/leads/{their_lead}", headers=theirs.headers)
    ).json()["customer_id"]
    mine = await world.user(await world.tenant(), "owner", login=False)
    async with browser_for(app) as browser:
        await sign_in(browser, mine.email)
        for path in (f"/console/leads/{their_lead}", f"/console/customers/{their_customer}"):
            r = await browser.get(path)
            assert r.status_code == 404, path
            assert "Not Yours" not in r.text
            assert r.headers["content-type"].startswith("text/html")
        rows = await browser.get("/console/leads/rows", headers=JSON)
        assert rows.json()["rows"] == []


async def test_bad_input_is_a_page_that_says_so_not_an_error(app: Any, world: World) -> None:
    owner = await world.user(await world.tenant(), "owner", login=False)
    async with browser_for(app) as browser:
        await sign_in(browser, owner.email)
        for path in (
            "/console/leads?cursor=not-a-cursor",
            "/console/leads?q=" + "x" * 500,
            "/console/leads?q=%00",
            "/console/leads/not-a-uuid",
            "/console/nowhere",
        ):
            r = await browser.get(path)
            assert r.status_code in (400, 404, 422), (path, r.status_code)
            assert r.headers["content-type"].startswith("text/html"), path
