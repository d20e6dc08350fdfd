"""Logs: one JSON line per request in production format, with request, tenant and user; the
slow-request WARNING; nothing secret, ever."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from tenantry.config import Settings
from tenantry.kit.db import Database
from tenantry.kit.logging import configure_logging, get_logger
from tests.support.platform import client_for, make_app
from tests.support.world import PASSWORD, World


class _Logs:
    """Calling it returns the JSON lines written since the last call; `raw` keeps everything
    written to stdout and stderr, JSON or not."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self.capsys = capsys
        self.raw = ""

    def __call__(self) -> list[dict[str, Any]]:
        captured = self.capsys.readouterr()
        self.raw += captured.out + captured.err
        return [json.loads(line) for line in captured.out.splitlines() if line.startswith("{")]


@pytest.fixture
def json_logs(settings: Settings, capsys: pytest.CaptureFixture[str]) -> Iterator[_Logs]:
    """Logs in the production format for this test; back to the suite's format after."""
    configure_logging(settings.model_copy(update={"log_format": "json"}))
    capsys.readouterr()
    try:
        yield _Logs(capsys)
    finally:
        configure_logging(settings)


async def test_access_line_names_request_tenant_and_user(
    settings: Settings, database: Database, world: World, json_logs: _Logs
) -> None:
    account = await world.user(await world.tenant(), "member")
    app = make_app(settings, database, log_format="json", access_log=True)
    json_logs()
    async with client_for(app) as c:
        r = await c.get("/api/v1/users/me?token=leaky", headers=account.headers)
        assert r.status_code == 200
        anonymous = await c.get("/healthz")
    lines = [line for line in json_logs() if line["event"] == "request"]
    assert len(lines) == 2
    me, probe = lines
    assert me["level"] == "info" and me["logger"] == "tenantry.http"
    assert me["request_id"] == r.headers["x-request-id"]
    assert me["tenant_id"] == str(account.tenant_id)
    assert me["user_id"] == str(account.id)
    assert me["route"] == "/api/v1/users/me" and me["path"] == "/api/v1/users/me"
    assert me["status"] == 200 and me["method"] == "GET"
    assert me["db_queries"] >= 1 and me["duration_ms"] >= 0
    assert me["timestamp"].endswith("Z")
    assert "tenant_id" not in probe and "user_id" not in probe
    assert probe["request_id"] == anonymous.headers["x-request-id"]


async def test_no_access_line_when_turned_off(
    settings: Settings, database: Database, json_logs: _Logs
) -> None:
    app = make_app(settings, database, log_format="json", access_log=False)
    json_logs()
    async with client_for(app) as c:
        await c.get("/healthz")
    assert [line for line in json_logs() if line["event"] == "request"] == []


async def test_slow_request_is_one_structured_warning(
    settings: Settings, database: Database, json_logs: _Logs
) -> None:
    app = make_app(settings, database, log_format="json", access_log=True, slow_request_ms=1)

    @app.get("/test/slow/{n}")
    async def slow(n: int) -> dict[str, int]:
        await asyncio.sleep(0.02)
        return {"n": n}

    json_logs()
    async with client_for(app) as c:
        r = await c.get("/test/slow/7")
    lines = [line for line in json_logs() if line.get("request_id") == r.headers["x-request-id"]]
    assert len(lines) == 1  # the warning replaces the access line
    (warning,) = lines
    assert warning["event"] == "slow request" and warning["level"] == "warning"
    assert warning["route"] == "/test/slow/{n}"
    assert warning["status"] == 200 and warning["duration_ms"] >= 20
    assert warning["db_queries"] == 0


async def test_secrets_are_never_logged(
    settings: Settings, database: Database, world: World, json_logs: _Logs
) -> None:
    account = await world.user(await world.tenant(), "member")
    app = make_app(settings, database, log_format="json", access_log=True)
    json_logs()
    async with client_for(app) as c:
        r = await c.post(
            "/api/v1/auth/login?api_key=qs-secret",
            json={"email": account.email, "password": PASSWORD},
        )
        token = r.json()["access_token"]
        await c.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})
    log = get_logger("tenantry.test")
    log.info(
        "calling out",
        password="hunter2",
        client_secret="s3cr3t",
        headers={"Authorization": f"Bearer {token}", "Accept": "json"},
        api_key="k",
        refresh_token="r",
        count=3,
    )
    logging.getLogger("tenantry.stdlib").warning("from the standard library")
    lines = json_logs()
    for secret in (PASSWORD, token, "hunter2", "s3cr3t", "qs-secret"):
        assert secret not in json_logs.raw  # every line written, JSON or not
    calling = next(line for line in lines if line["event"] == "calling out")
    assert calling["password"] == calling["client_secret"] == "[redacted]"
    assert calling["api_key"] == calling["refresh_token"] == "[redacted]"
    assert calling["headers"] == {"Authorization": "[redacted]", "Accept": "json"}
    assert calling["count"] == 3
    stdlib = next(line for line in lines if line["event"] == "from the standard library")
    assert stdlib["logger"] == "tenantry.stdlib" and stdlib["level"] == "warning"


async def test_development_logs_are_readable(
    settings: Settings, database: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    app = make_app(settings, database, log_format="console", access_log=True)
    try:
        async with client_for(app) as c:
            await c.get("/healthz")
        out = capsys.readouterr().out
        line = next(line for line in out.splitlines() if "/healthz" in line)
        assert not line.startswith("{")
        assert "request" in line and "status=200" in line and "route=/healthz" in line
    finally:
        configure_logging(settings)
