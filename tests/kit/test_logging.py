"""Logs: one JSON line per request in production format, with request, tenant and user; the
slow-request WARNING; an unhandled error as one line with a plain, bounded traceback; nothing
secret, ever."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import Iterator
from typing import Any

import pydantic
import pytest
from fastapi import FastAPI, Request
from sqlalchemy import text

from tenantry.config import Settings
from tenantry.kit import tracebacks
from tenantry.kit.db import Database
from tenantry.kit.deps import SessionDep
from tenantry.kit.logging import configure_logging, get_logger
from tenantry.kit.security import API_KEY_PREFIX
from tenantry.kit.tracebacks import describe_exception, format_exception
from tenantry.tenants.models import Tenant
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


# --- unhandled errors --------------------------------------------------------------------------

API_KEY_SECRET = "api-key-secret-for-the-log-tests-" + "k" * 24
BODY_PASSWORD = "body-password-Tr0ub4dor&3"


class Signup(pydantic.BaseModel):
    email: str
    password: str


def _failing_app(
    settings: Settings, database: Database, log_format: str
) -> tuple[FastAPI, list[str]]:
    """The real app with routes that fail while their frames hold secrets: the request body's
    password, the settings' JWT and API key secrets, an API key just made."""
    app = make_app(
        settings, database, log_format=log_format, access_log=True, api_key_secret=API_KEY_SECRET
    )
    made: list[str] = []

    @app.post("/test/explode")
    async def explode(body: Signup, request: Request) -> None:
        config: Settings = request.app.state.settings
        jwt_secret, api_key_secret = config.jwt_secret, config.api_key_secret
        key = API_KEY_PREFIX + secrets.token_urlsafe(32)
        made.append(key)
        password = body.password
        assert jwt_secret and api_key_secret and key and password
        raise RuntimeError("the ledger is unbalanced")

    def ping(n: int, secret: str) -> int:
        return pong(n + 1, secret)

    def pong(n: int, secret: str) -> int:
        return ping(n + 1, secret)  # not one repeated line: Python cannot fold these frames

    @app.post("/test/recurse")
    async def recurse(body: Signup) -> int:
        return ping(0, body.password)

    return app, made


@pytest.fixture
def restore_logging(settings: Settings) -> Iterator[None]:
    """The test's app sets the log format; the suite's is put back after."""
    try:
        yield
    finally:
        configure_logging(settings)


def _unhandled_lines(out: str, log_format: str) -> list[str]:
    if log_format == "json":
        return [line for line in out.splitlines() if '"event":"unhandled error"' in line]
    return [line for line in out.splitlines() if "unhandled error" in line]


@pytest.mark.parametrize("log_format", ["console", "json"])
async def test_an_unhandled_error_is_logged_once_plainly_and_leaks_nothing(
    settings: Settings,
    database: Database,
    capsys: pytest.CaptureFixture[str],
    restore_logging: None,
    log_format: str,
) -> None:
    app, made = _failing_app(settings, database, log_format)
    capsys.readouterr()
    async with client_for(app) as c:  # raise_app_exceptions: nothing may escape the app
        r = await c.post(
            "/test/explode?api_key=in-the-query",
            json={"email": "a@b.example", "password": BODY_PASSWORD},
        )
    assert r.status_code == 500
    captured = capsys.readouterr()
    out = captured.out + captured.err
    (key,) = made
    for secret in (BODY_PASSWORD, settings.jwt_secret, API_KEY_SECRET, key, "in-the-query"):
        assert secret not in out, secret
    # No local variables: not rich's boxed panel of them ("╭─ locals ─╮ │ jwt_secret = ..."),
    # nor any other rendering of the endpoint's locals.
    assert "╭" not in out and "│" not in out
    assert "jwt_secret" not in out and "api_key_secret" not in out and "made =" not in out
    assert "Exception in ASGI application" not in out
    assert len(_unhandled_lines(out, log_format)) == 1  # once: not again by Starlette's layer
    assert "Traceback (most recent call last):" in out
    assert "RuntimeError: the ledger is unbalanced" in out
    assert len(out) < 16_000 + 2_000
    if log_format == "json":
        lines = [json.loads(line) for line in captured.out.splitlines() if line.startswith("{")]
        (error,) = [line for line in lines if line["event"] == "unhandled error"]
        assert error["level"] == "error" and error["logger"] == "tenantry.errors"
        assert error["request_id"] == r.headers["x-request-id"] == r.json()["request_id"]
        assert error["method"] == "POST" and error["path"] == "/test/explode"
        assert error["route"] == "/test/explode" and error["response_started"] is False
        assert error["error"] == "RuntimeError: the ledger is unbalanced"
        assert error["exception"].startswith("Traceback (most recent call last):")
        assert error["exception"].endswith("RuntimeError: the ledger is unbalanced")
        assert 'raise RuntimeError("the ledger is unbalanced")' in error["exception"]
        (access,) = [line for line in lines if line["event"] == "request"]
        assert access["status"] == 500 and access["request_id"] == error["request_id"]
    else:
        assert not any(line.startswith("{") for line in out.splitlines())
        assert 'raise RuntimeError("the ledger is unbalanced")' in out  # the failing line
        assert "error=RuntimeError: the ledger is unbalanced" in out or (
            "error='RuntimeError: the ledger is unbalanced'" in out
        )


@pytest.mark.parametrize("log_format", ["console", "json"])
async def test_a_deep_recursion_is_logged_bounded_in_size_and_time(
    settings: Settings,
    database: Database,
    capsys: pytest.CaptureFixture[str],
    restore_logging: None,
    log_format: str,
) -> None:
    app, _ = _failing_app(settings, database, log_format)
    capsys.readouterr()
    async with client_for(app) as c:
        started = time.perf_counter()
        r = await c.post("/test/recurse", json={"email": "a@b.example", "password": BODY_PASSWORD})
        elapsed = time.perf_counter() - started
    assert r.status_code == 500
    captured = capsys.readouterr()
    out = captured.out + captured.err
    assert BODY_PASSWORD not in out
    assert "RecursionError: maximum recursion depth exceeded" in out
    assert "outer frames left out]" in out
    assert out.count("in pong") <= tracebacks.TRACEBACK_FRAMES
    assert len(out) < 8_000  # about 900 frames deep; unbounded, it is 150 KB
    assert elapsed < 2  # with every frame's locals rendered by rich: 15 s and more
    assert len(_unhandled_lines(out, log_format)) == 1


@pytest.mark.parametrize(
    ("case", "origin"),
    [
        # a unique violation: asyncpg's text adds "DETAIL: Key (slug)=(<the value>) already exists"
        ("unique", "UniqueViolationError"),
        # the server refuses the value: its primary message quotes it
        ("server-cast", "InvalidTextRepresentationError"),
        # asyncpg cannot encode the parameter: its message, and its cause's, quote it
        ("client-encode", "DataError"),
    ],
)
async def test_a_database_error_logs_no_parameter_or_row_value(
    settings: Settings,
    database: Database,
    capsys: pytest.CaptureFixture[str],
    restore_logging: None,
    case: str,
    origin: str,
) -> None:
    marker = f"leaky-{secrets.token_hex(6)}"
    app = make_app(settings, database, log_format="json")

    @app.post("/test/db-error/{case}")
    async def db_error(case: str, session: SessionDep) -> None:
        if case == "unique":
            session.add(Tenant(slug=marker, name="First"))
            await session.flush()
            session.add(Tenant(slug=marker, name="Second"))
            await session.flush()
        elif case == "server-cast":
            await session.execute(text("SELECT CAST(CAST(:v AS text) AS integer)"), {"v": marker})
        else:
            await session.execute(text("SELECT CAST(:v AS uuid)"), {"v": marker})

    capsys.readouterr()
    async with client_for(app) as c:
        r = await c.post(f"/test/db-error/{case}")
    assert r.status_code == 500
    captured = capsys.readouterr()
    out = captured.out + captured.err
    assert marker not in out
    assert "[parameters:" not in out and "DETAIL" not in out
    (error,) = [
        json.loads(line) for line in captured.out.splitlines() if '"unhandled error"' in line
    ]
    assert origin in error["exception"] and error["error"].startswith("sqlalchemy.exc.")
    if case == "unique":
        assert 'duplicate key value violates unique constraint "' in error["error"]
        assert "SQLSTATE 23505" in error["error"]
    elif case == "server-cast":
        assert 'invalid input syntax for type integer: "[hidden]"' in error["error"]
    else:
        assert "invalid input for query argument $1: [value hidden]" in error["error"]
        assert "ValueError: [message withheld" in error["exception"]
    # The transaction was rolled back: nothing of the request stayed.
    async with database.engine.connect() as conn:
        left = await conn.scalar(
            text("SELECT count(*) FROM tenants WHERE slug = :s"), {"s": marker}
        )
    assert left == 0


def _fails_holding(secret: str) -> None:
    held = {"secret": secret}
    raise RuntimeError(f"boom, holding {len(held)} item")


def test_uvicorns_own_exception_line_is_plain_too(
    settings: Settings, capsys: pytest.CaptureFixture[str], restore_logging: None
) -> None:
    """What reaches uvicorn's "Exception in ASGI application" goes through the same chain."""
    configure_logging(settings.model_copy(update={"log_format": "console"}))
    capsys.readouterr()
    with pytest.raises(RuntimeError) as failure:
        _fails_holding(settings.jwt_secret)
    logging.getLogger("uvicorn.error").error(
        "Exception in ASGI application\n", exc_info=failure.value
    )
    out = capsys.readouterr().out
    assert "Exception in ASGI application" in out and "[uvicorn.error]" in out
    assert "Traceback (most recent call last):" in out
    assert "RuntimeError: boom, holding 1 item" in out
    assert settings.jwt_secret not in out and "held =" not in out


# --- the exception formatter on its own --------------------------------------------------------


def _exc_info(exc: BaseException) -> Any:
    return (type(exc), exc, exc.__traceback__)


def test_a_validation_errors_message_does_not_quote_the_input() -> None:
    class Login(pydantic.BaseModel):
        email: str
        pin: int

    data = {"email": 1, "pin": "-".join(("hunter2", "pin"))}  # not quoted by the source line
    try:
        Login.model_validate(data)
    except pydantic.ValidationError as exc:
        described = describe_exception(exc)
        rendered = format_exception(_exc_info(exc))
    assert "hunter2-pin" not in described and "hunter2-pin" not in rendered
    assert "2 validation error(s) for Login" in described
    assert "email: Input should be a valid string" in described


def test_messages_chains_and_the_whole_are_capped() -> None:
    try:
        raise ValueError("x" * 50_000)
    except ValueError as exc:
        huge = exc
    text_ = format_exception(_exc_info(huge))
    assert len(text_) < tracebacks.MESSAGE_CHARS + 500
    assert f"[{50_000 - tracebacks.MESSAGE_CHARS} more characters]" in text_

    def chain(n: int) -> BaseException:
        try:
            if n == 0:
                raise KeyError("root")
            try:
                raise chain(n - 1)
            except BaseException as inner:
                raise RuntimeError(f"level {n}") from inner
        except BaseException as exc:
            return exc

    long_chain = chain(20)
    text_ = format_exception(_exc_info(long_chain))
    assert text_.startswith("[earlier exceptions of the chain left out]")
    assert text_.count("Traceback (most recent call last):") == tracebacks.TRACEBACK_EXCEPTIONS
    assert text_.endswith("RuntimeError: level 20")

    group = ExceptionGroup("several", [ValueError(f"member {i}") for i in range(20)])
    text_ = format_exception(_exc_info(group))
    assert "ExceptionGroup: several (20 sub-exceptions)" in text_
    assert "member 1 of 20" in text_ and "more member(s) left out]" in text_
    assert len(text_) <= tracebacks.TRACEBACK_CHARS + 100


def test_the_rendering_never_captures_locals() -> None:
    secret_local = "local-" + secrets.token_hex(8)
    with pytest.raises(RuntimeError) as failure:
        _fails_holding(secret_local)
    rendered = format_exception((failure.type, failure.value, failure.tb))
    assert secret_local not in rendered and "held =" not in rendered
    assert rendered.endswith("RuntimeError: boom, holding 1 item")
