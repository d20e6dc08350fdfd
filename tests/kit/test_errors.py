from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tenantry.app import create_app
from tenantry.config import Settings
from tenantry.kit import errors
from tenantry.kit.errors import INTERNAL_ERROR
from tenantry.kit.logging import configure_logging
from tests.support.asserts import assert_problem
from tests.support.world import World

LOGIN = "/api/v1/auth/login"


async def test_malformed_json_is_400(client: httpx.AsyncClient) -> None:
    r = await client.post(
        LOGIN, content=b'{"email": "a@b.c", ', headers={"content-type": "application/json"}
    )
    body = assert_problem(r, 400, "malformed-json")
    assert "not valid JSON" in body["detail"]
    assert body["instance"] == LOGIN
    assert body["request_id"] == r.headers["x-request-id"]


async def test_wrong_types_are_422_with_each_field(client: httpx.AsyncClient) -> None:
    r = await client.post(LOGIN, json={"email": 42, "password": ["x"], "extra": 1})
    body = assert_problem(r, 422, "validation-error")
    locs = {tuple(e["loc"]) for e in body["errors"]}
    assert locs == {("body", "email"), ("body", "password"), ("body", "extra")}
    assert all(e["message"] and e["type"] for e in body["errors"])


async def test_oversized_declared_body_is_413_before_reading(client: httpx.AsyncClient) -> None:
    r = await client.post(
        LOGIN, content=b"x" * (64 * 1024 + 1), headers={"content-type": "application/json"}
    )
    assert_problem(r, 413, "payload-too-large")
    assert r.headers["x-request-id"]


async def test_oversized_streamed_body_is_413(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(100):
            yield b"y" * 1024

    r = await client.post(LOGIN, content=chunks(), headers={"content-type": "application/json"})
    assert "content-length" not in r.request.headers
    assert_problem(r, 413, "payload-too-large")


async def test_oversized_patch_changes_nothing(world: World) -> None:
    admin = await world.user(await world.tenant(), "admin")
    big = {"timezone": "Europe/Paris", "branding": {"logo": "x" * (70 * 1024)}}
    r = await world.client.patch("/api/v1/tenant/settings", json=big, headers=admin.headers)
    assert_problem(r, 413)
    r = await world.client.get("/api/v1/tenant/settings", headers=admin.headers)
    assert r.json()["timezone"] == "UTC"


async def test_unknown_route_and_method(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/api/v1/nope"), 404, "not-found")
    assert_problem(await client.delete(LOGIN), 405, "method-not-allowed")


async def test_bad_path_parameter_is_422(world: World) -> None:
    owner = await world.user(await world.tenant(), "owner")
    r = await world.client.patch("/api/v1/customers/not-a-uuid", json={}, headers=owner.headers)
    body = assert_problem(r, 422)
    assert body["errors"][0]["loc"] == ["path", "customer_id"]
    # The users' id route routes by UUID only (so `/users/me` is never taken for an id).
    r = await world.client.patch("/api/v1/users/not-a-uuid", json={}, headers=owner.headers)
    assert_problem(r, 404)


async def test_500_leaks_nothing(settings: Any, database: Any) -> None:
    app = create_app(settings, database=database)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals: password=hunter2")

    # The transport raises what escapes the app: the edge answers the error, nothing escapes.
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        r = await c.get("/boom")
    body = assert_problem(r, 500, "internal-error")
    assert "hunter2" not in r.text and "RuntimeError" not in r.text
    assert body["request_id"] == r.headers["x-request-id"]
    assert body["detail"] == INTERNAL_ERROR[2]


async def test_the_fallback_handler_logs_the_same_way(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without the edge (or for what escapes it), Starlette's ServerErrorMiddleware calls our
    `Exception` handler: the same problem, the same plain log line."""
    configure_logging(settings.model_copy(update={"log_format": "json"}))
    try:
        app = FastAPI()
        errors.install(app)

        @app.get("/boom")
        async def boom() -> None:
            password = "hunter2-in-a-local"
            raise RuntimeError(f"failed with a {len(password)}-character password")

        capsys.readouterr()
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            r = await c.get("/boom?token=in-the-query")
        assert_problem(r, 500, "internal-error")
        out = capsys.readouterr().out
    finally:
        configure_logging(settings)
    assert "hunter2-in-a-local" not in out and "in-the-query" not in out
    (line,) = [json.loads(raw) for raw in out.splitlines() if '"unhandled error"' in raw]
    assert line["logger"] == "tenantry.errors" and line["path"] == "/boom"
    assert line["error"] == "RuntimeError: failed with a 18-character password"
    assert line["exception"].startswith("Traceback (most recent call last):")


@pytest.mark.parametrize("rid", ["abc-123", "x" * 128])
async def test_request_id_is_echoed_when_sane(client: httpx.AsyncClient, rid: str) -> None:
    r = await client.get("/healthz", headers={"x-request-id": rid})
    assert r.headers["x-request-id"] == rid
    assert float(r.headers["x-process-time"]) >= 0


async def test_insane_request_id_is_replaced(client: httpx.AsyncClient) -> None:
    r = await client.get("/healthz", headers={"x-request-id": "x" * 500})
    assert len(r.headers["x-request-id"]) == 32
