"""Mass assignment: no request body sets what its caller may not. Every body the API takes
(found in the OpenAPI document, so a new one is covered) refuses fields it does not declare,
each named in the 422, and changes nothing; the fields a client might try to smuggle in
(`tenant_id`, `id`, `created_at`, `token_version`, ...) are declared by none of them."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from tests.support.openapi import json_bodies, minimal_body
from tests.support.world import World

SMUGGLED = (
    "tenant_id",
    "id",
    "created_at",
    "updated_at",
    "token_version",
    "password_hash",
    "key_hash",
    "created_by",
    "account_type",
    "is_platform_staff",
)


def _bodies(app: FastAPI) -> list[tuple[str, str, dict[str, Any], set[str]]]:
    """(method, path, a minimal valid body, its declared fields) of every JSON body."""
    spec = app.openapi()
    components = spec["components"]["schemas"]
    found = []
    for method, path, op, model in json_bodies(spec):
        body = minimal_body(op, components)
        assert body is not None
        found.append((method, path, body, set(model.get("properties", {}))))
    return found


def test_no_body_declares_a_field_its_caller_may_not_set(app: FastAPI) -> None:
    bodies = _bodies(app)
    assert len(bodies) >= 20
    for method, path, _, declared in bodies:
        assert not declared & set(SMUGGLED), f"{method} {path} takes {declared & set(SMUGGLED)}"


async def test_an_undeclared_field_is_refused_by_name(world: World, app: FastAPI) -> None:
    owner = await world.user(await world.tenant(), "owner")
    staff = await world.user(await world.tenant(), "admin", account_type="internal_employee")
    tried = 0
    for method, path, body, _ in _bodies(app):
        who = staff if path.startswith("/api/v1/admin") else owner
        url = path
        for name in ("customer_id", "lead_id", "team_id", "user_id", "source_id", "key_id"):
            url = url.replace(f"{{{name}}}", "01a229e6-1dd7-7103-9f46-87f2072edb90")
        url = url.replace("{provider}", "corp").replace("{session_id}", "x" * 32)
        smuggled = {**body, **dict.fromkeys(SMUGGLED, "01a229e6-1dd7-7103-9f46-87f2072edb90")}
        r = await world.client.request(method, url, json=smuggled, headers=who.headers)
        assert r.status_code == 422, (method, path, r.status_code, r.text)
        named = {tuple(e["loc"]) for e in r.json()["errors"]}
        assert {("body", field) for field in SMUGGLED} <= named, (method, path, named)
        tried += 1
    assert tried >= 20
