"""The tenant-isolation matrix, generated from the app's route table and its OpenAPI document,
so a new endpoint is covered without a test of its own.

Two companies are built the same way, through the API, with one of everything. Then, as the
owner of company B (the most a tenant's token can do):
- every route that takes an id, with every method, given company A's ids answers 404 and
  changes none of A's rows;
- every request body field that references a row (`customer_id`, `members`, ...), given A's
  row in an otherwise valid body of B's, is refused (404 or 422) and changes none of A's rows;
- every list and read without an id shows none of A's ids.
A route or field the matrix cannot exercise fails the test until it is listed here with why.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.models import Base
from tests.support.asserts import assert_problem
from tests.support.openapi import json_bodies, minimal, minimal_body, resolve
from tests.support.world import Account, World

API = "/api/v1"
PUBLIC = "https://93.184.215.14/hooks"  # a public address, known without DNS

# Path parameters that are not a tenant's rows, and why the matrix leaves them out.
NOT_TENANT_ROWS = {
    "provider": "names a configured sign-in provider, the same for every company",
    "session_id": "a visitor's onboarding session, before any company exists; its random id"
    " is its only key (tests/onboarding)",
    "quote_id": "a quote of such a session, keyed the same way (tests/onboarding)",
}
# Routes only platform staff may call: a tenant's token is refused whatever the id.
STAFF_ONLY = {f"{API}/admin/cache/invalidate/{{email}}"}
# What kind of row each id names, in paths and in bodies.
KINDS = {
    "user_id": "user",
    "assigned_user_id": "user",
    "members": "user",
    "key_id": "key",
    "customer_id": "customer",
    "lead_id": "lead",
    "team_id": "team",
    "default_team_id": "team",
    "region_id": "region",
    "zone_id": "zone",
    "source_id": "source",
    "run_id": "run",
    "endpoint_id": "endpoint",
    "delivery_id": "delivery",
    "email": "email",
}


async def _made(world: World, who: Account, path: str, body: dict[str, Any]) -> dict[str, Any]:
    r = await world.client.post(f"{API}{path}", json=body, headers=who.headers)
    assert r.status_code in (200, 201, 202), (path, r.text)
    found: dict[str, Any] = r.json()
    return found


async def company(world: World) -> tuple[Account, dict[str, str]]:
    """A company's owner and one id of each kind of its rows, all made through the API."""
    tenant = await world.tenant()
    owner = await world.user(tenant, "owner")
    member = await world.user(tenant, "member")
    endpoint = await _made(world, owner, "/webhooks", {"url": PUBLIC, "events": ["lead.created"]})
    key = await _made(world, owner, "/api-keys", {"name": "ci"})
    customer = await _made(world, owner, "/customers", {"name": "Ada", "postal_code": "28001"})
    lead = await _made(world, owner, "/leads", {"customer_id": customer["id"]})
    team = await _made(world, owner, "/teams", {"name": "Centro", "members": [str(member.id)]})
    region = await _made(world, owner, "/regions", {"name": "Madrid"})
    zone = await _made(
        world,
        owner,
        "/zones",
        {"region_id": region["id"], "code": "M", "postal_prefixes": ["28"], "team_id": team["id"]},
    )
    source = await _made(world, owner, "/sync-sources", {"name": "crm", "base_url": PUBLIC})
    run = await _made(world, owner, "/sync", {"source_id": source["id"]})
    r = await world.client.get(f"{API}/webhooks/deliveries", headers=owner.headers)
    (delivery,) = r.json()["items"]  # the lead's `lead.created`
    return owner, {
        "user": str(member.id),
        "key": key["id"],
        "customer": customer["id"],
        "lead": lead["id"],
        "team": team["id"],
        "region": region["id"],
        "zone": zone["id"],
        "source": source["id"],
        "run": run["task_id"],
        "endpoint": endpoint["id"],
        "delivery": delivery["id"],
        "email": member.email,
    }


async def rows_of(session: AsyncSession, tenant_id: uuid.UUID) -> dict[str, list[Any]]:
    """Every row of every tenant-keyed table that belongs to the tenant, as read now."""
    found = {}
    for table in Base.metadata.sorted_tables:
        if "tenant_id" in table.c:
            result = await session.execute(select(table).where(table.c.tenant_id == tenant_id))
            found[table.name] = sorted(map(tuple, result.all()), key=repr)
    return found


def _routes_with_ids(app: FastAPI) -> list[tuple[str, str]]:
    return sorted(
        (method, route.path_format)  # `{user_id}`, not the `{user_id:uuid}` it routes by
        for route in app.routes
        # The API's routes; the console's pages (signed in by cookie, sending forms) show
        # another company's ids as 404 pages in tests/console.
        if isinstance(route, APIRoute) and "{" in route.path and route.include_in_schema
        for method in route.methods
    )


def _params(path: str) -> list[str]:
    return re.findall(r"\{(\w+)\}", path)


def _operation(app: FastAPI, method: str, path: str) -> dict[str, Any]:
    operation: dict[str, Any] = app.openapi()["paths"][path][method.lower()]
    return operation


def _body(app: FastAPI, method: str, path: str, ids: dict[str, str]) -> dict[str, Any] | None:
    """A minimal valid body of the operation, its required references to the caller's rows."""
    components = app.openapi()["components"]["schemas"]
    body = minimal_body(_operation(app, method, path), components)
    if body is None:
        return None
    for field in body:
        if field in KINDS:
            body[field] = (
                [ids[KINDS[field]]] if isinstance(body[field], list) else ids[KINDS[field]]
            )
    return body


async def _request(world: World, method: str, url: str, body: Any, who: Account) -> Any:
    return await world.client.request(method, url, json=body, headers=who.headers)


async def test_every_id_in_every_path_is_named_or_explained(app: FastAPI) -> None:
    for _, path in _routes_with_ids(app):
        for name in _params(path):
            assert name in KINDS or name in NOT_TENANT_ROWS, (
                f"{path}: what does {{{name}}} name? Add it to KINDS, or to NOT_TENANT_ROWS"
                " with the reason the isolation matrix cannot try it"
            )


def _declared_routes_with_ids() -> list[tuple[str, str]]:
    """The same list, from the routers (parametrize runs before any app exists)."""
    from tenantry.app import API_ROUTERS

    return sorted(
        (method, API + route.path_format)
        for router in API_ROUTERS
        for route in router.routes
        # The API's routes; the console's pages (signed in by cookie, sending forms) show
        # another company's ids as 404 pages in tests/console.
        if isinstance(route, APIRoute) and "{" in route.path and route.include_in_schema
        for method in route.methods
    )


def test_the_matrix_sees_every_route_of_the_app(app: FastAPI) -> None:
    assert _declared_routes_with_ids() == _routes_with_ids(app)


def _cases() -> list[Any]:
    return [
        pytest.param(method, path, id=f"{method} {path.removeprefix(API)}")
        for method, path in _declared_routes_with_ids()
        if not any(name in NOT_TENANT_ROWS for name in _params(path))
    ]


@pytest.mark.parametrize(("method", "path"), _cases())
async def test_another_companys_id_is_not_found_and_nothing_changes(
    world: World, session: AsyncSession, app: FastAPI, method: str, path: str
) -> None:
    them, theirs = await company(world)
    me, mine = await company(world)
    url = path
    for name in _params(path):
        url = url.replace(f"{{{name}}}", theirs[KINDS[name]])
    before = await rows_of(session, them.tenant_id)
    assert sum(map(len, before.values())) > 10  # the company has rows to lose
    r = await _request(world, method, url, _body(app, method, path, mine), me)
    assert_problem(r, 403 if path in STAFF_ONLY else 404)
    assert await rows_of(session, them.tenant_id) == before


def _references(app: FastAPI) -> list[tuple[str, str, str]]:
    """(method, path, field) of every body field that holds the id of a row."""
    spec = app.openapi()
    components = spec["components"]["schemas"]
    found = []
    for method, path, _, model in json_bodies(spec):
        for field, prop in model.get("properties", {}).items():
            prop = resolve(prop, components)
            item_schema = resolve(prop.get("items", {}), components)
            if "uuid" in (prop.get("format"), item_schema.get("format")):
                found.append((method, path, field))
    return found


async def test_a_body_naming_another_companys_row_is_refused_and_changes_nothing(
    world: World, session: AsyncSession, app: FastAPI
) -> None:
    them, theirs = await company(world)
    me, mine = await company(world)
    references = _references(app)
    assert len(references) >= 10  # customer_id, lead_id, members, region_id, team_id, ...
    for method, path, field in references:
        assert field in KINDS, f"{method} {path}: what does the body's {field!r} name?"
        url = path
        for name in _params(path):
            url = url.replace(f"{{{name}}}", mine[KINDS[name]])
        body = _body(app, method, path, mine) or {}
        value = theirs[KINDS[field]]
        body[field] = [value] if field == "members" else value
        before = await rows_of(session, them.tenant_id)
        r = await _request(world, method, url, body, me)
        assert r.status_code in (403, 404, 422), (method, path, field, r.status_code, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert await rows_of(session, them.tenant_id) == before, (method, path, field)


async def test_no_list_or_read_shows_another_companys_rows(world: World, app: FastAPI) -> None:
    _, theirs = await company(world)
    me, _ = await company(world)
    spec = app.openapi()
    components = spec["components"]["schemas"]
    read = 0
    for path, item in spec["paths"].items():
        if "get" not in item or "{" in path:
            continue
        query = {
            p["name"]: minimal(resolve(p["schema"], components))
            for p in item["get"].get("parameters", [])
            if p["in"] == "query" and p.get("required")
        }
        r = await world.client.get(path, params=query, headers=me.headers)
        leaked = [kind for kind, value in theirs.items() if value in r.text]
        assert not leaked, f"GET {path} shows the other company's {leaked}"
        read += r.status_code == 200
    assert read >= 15  # the lists answered, not only refusals
