"""Every CRM and territories list runs the same statements for 10 rows as for 200: no list
loads anything per row, and each pages at 100. (Customers, leads and intelligence have their
own such tests.)"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.crm.models import Call, Customer, Message
from tenantry.kit.ids import new_id
from tenantry.territories.models import Region, Team, TeamMember, Zone
from tests.support.asserts import queries
from tests.support.world import Account, World

API = "/api/v1"


def _calls(tenant_id: uuid.UUID, customer_id: uuid.UUID, n: int, _: Account) -> list[Any]:
    return [
        Call(
            tenant_id=tenant_id,
            customer_id=customer_id,
            direction="inbound",
            status="missed",
            duration_s=0,
        )
        for _ in range(n)
    ]


def _messages(tenant_id: uuid.UUID, customer_id: uuid.UUID, n: int, _: Account) -> list[Any]:
    return [
        Message(
            tenant_id=tenant_id,
            customer_id=customer_id,
            channel="sms",
            direction="outbound",
            body=f"hello {i}",
        )
        for i in range(n)
    ]


def _regions(tenant_id: uuid.UUID, _: uuid.UUID, n: int, __: Account) -> list[Any]:
    return [Region(tenant_id=tenant_id, name=f"Region {i}") for i in range(n)]


def _teams(tenant_id: uuid.UUID, _: uuid.UUID, n: int, member: Account) -> list[Any]:
    teams = [Team(tenant_id=tenant_id, id=new_id(), name=f"Team {i}") for i in range(n)]
    joined = [TeamMember(tenant_id=tenant_id, team_id=t.id, user_id=member.id) for t in teams]
    return [*teams, *joined]  # every team with a member: members load in one statement


def _zones(tenant_id: uuid.UUID, _: uuid.UUID, n: int, __: Account) -> list[Any]:
    region = Region(tenant_id=tenant_id, id=new_id(), name="Everywhere")
    zones = [
        Zone(tenant_id=tenant_id, region_id=region.id, code=f"Z{i}", postal_prefixes=[f"{i:03d}"])
        for i in range(n)
    ]
    return [region, *zones]


Rows = Callable[[uuid.UUID, uuid.UUID, int, Account], list[Any]]
LISTS: list[tuple[str, Rows, int]] = [  # (path, rows, statements expected)
    ("/calls?limit=100", _calls, 1),
    ("/customers/{customer}/messages?limit=100", _messages, 2),  # the customer, the page
    ("/regions", _regions, 1),
    ("/teams", _teams, 2),  # the teams, their members
    ("/zones", _zones, 1),
]


@pytest.mark.parametrize(("path", "rows", "expected"), LISTS, ids=[p for p, _, _ in LISTS])
async def test_a_list_runs_as_many_statements_for_ten_rows_as_for_two_hundred(
    world: World, session: AsyncSession, path: str, rows: Rows, expected: int
) -> None:
    counts = []
    for n in (10, 200):
        member = await world.user(await world.tenant(), "member")
        customer = Customer(tenant_id=member.tenant_id, id=new_id(), name="Ada")
        session.add(customer)
        await session.flush()
        session.add_all(rows(member.tenant_id, customer.id, n, member))
        await session.flush()
        url = API + path.replace("{customer}", str(customer.id))
        await world.client.get("/api/v1/users/me", headers=member.headers)  # who they are
        r = await world.client.get(url, headers=member.headers)
        assert r.status_code == 200, r.text
        assert len(r.json()["items"]) == min(n, 100)
        counts.append(queries(r))
    assert counts == [expected, expected]
