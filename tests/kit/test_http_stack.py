"""The middleware stack through the real app: each layer's behaviour, and their order."""

from __future__ import annotations

import asyncio
import gzip
import socket
import uuid
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn
from sqlalchemy import text
from starlette.responses import StreamingResponse

from tenantry.config import Settings
from tenantry.kit import middleware
from tenantry.kit.context import inflight
from tenantry.kit.db import Database, plain_url
from tenantry.kit.deps import SessionDep
from tenantry.tenants.models import Tenant
from tests.support.asserts import assert_problem, queries
from tests.support.platform import client_for, make_app, metric_samples, sample_value

LOGIN = "/api/v1/auth/login"


# --- request id, timing, security headers ------------------------------------------------------


async def test_request_id_is_made_or_kept(client: httpx.AsyncClient) -> None:
    made = await client.get("/healthz")
    assert len(made.headers["x-request-id"]) == 32
    assert float(made.headers["x-process-time"]) >= 0
    kept = await client.get("/healthz", headers={"X-Request-ID": "trace-abc.123"})
    assert kept.headers["x-request-id"] == "trace-abc.123"
    for bad in ("has space", "x" * 129, "tab\there"):
        r = await client.get("/healthz", headers={"X-Request-ID": bad})
        assert r.headers["x-request-id"] != bad
        assert len(r.headers["x-request-id"]) == 32


async def test_security_headers_on_every_response(client: httpx.AsyncClient) -> None:
    for r in (await client.get("/healthz"), await client.get("/nope")):
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["referrer-policy"] == "strict-origin-when-cross-origin"
        assert "strict-transport-security" not in r.headers  # plain HTTP: no HSTS


async def test_hsts_only_over_tls(app: Any, session_factory: Any) -> None:
    async with client_for(app, base_url="https://test") as c:
        r = await c.get("/healthz")
    assert r.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"


async def test_cors_from_settings(settings: Settings, database: Database) -> None:
    app = make_app(
        settings, database, cors_origins=["https://app.example"], rate_limit_auth="1/minute"
    )
    async with client_for(app) as c:
        preflight = await c.options(
            LOGIN,
            headers={
                "Origin": "https://app.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "https://app.example"
        assert preflight.headers["x-request-id"]
        # The preflight spent no quota; the 429 that follows still carries CORS headers, so
        # the browser lets the page read it.
        origin = {"Origin": "https://app.example"}
        first = await c.post(LOGIN, json={"email": "a@b.example", "password": "x"}, headers=origin)
        assert first.status_code == 401
        refused = await c.post(
            LOGIN, json={"email": "a@b.example", "password": "x"}, headers=origin
        )
        assert_problem(refused, 429)
        assert refused.headers["access-control-allow-origin"] == "https://app.example"
        assert "retry-after" in refused.headers["access-control-expose-headers"].lower()
        other = await c.get("/healthz", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers


# --- gzip --------------------------------------------------------------------------------------


async def test_gzip_only_large_bodies_for_clients_that_accept_it(client: httpx.AsyncClient) -> None:
    big = await client.get("/openapi.json", headers={"Accept-Encoding": "gzip"})
    assert big.headers["content-encoding"] == "gzip"
    assert "accept-encoding" in big.headers["vary"].lower()
    assert big.json()["openapi"]  # httpx undid the gzip
    plain = await client.get("/openapi.json", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert plain.json() == big.json()
    assert int(plain.headers["content-length"]) > int(big.headers["content-length"])
    small = await client.get("/healthz", headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in small.headers


async def test_large_problem_document_is_gzipped(client: httpx.AsyncClient) -> None:
    """The gzip layer sits outside the app's error handlers: problems are compressed too."""
    body = {f"field_{i}": i for i in range(60)} | {"email": 1, "password": 2}
    r = await client.post(LOGIN, json=body, headers={"Accept-Encoding": "gzip"})
    problem = assert_problem(r, 422, "validation-error")
    assert len(problem["errors"]) > 20
    assert r.headers["content-encoding"] == "gzip"
    raw = await client.post(LOGIN, json=body, headers={"Accept-Encoding": "identity"})
    assert int(raw.headers["content-length"]) > 1024


async def test_gzip_is_valid_when_read_raw(client: httpx.AsyncClient) -> None:
    async with client.stream("GET", "/openapi.json", headers={"Accept-Encoding": "gzip"}) as r:
        compressed = b"".join([chunk async for chunk in r.aiter_raw()])
    assert gzip.decompress(compressed).startswith(b"{")
    assert int(r.headers["content-length"]) == len(compressed)


async def test_streamed_response_is_gzipped_chunk_by_chunk(
    settings: Settings, database: Database
) -> None:
    app = make_app(settings, database)
    chunks = [bytes([65 + i]) * 700 for i in range(5)]

    @app.get("/test/stream")
    async def stream() -> StreamingResponse:
        async def body() -> AsyncIterator[bytes]:
            for chunk in chunks:
                yield chunk

        return StreamingResponse(body(), media_type="text/plain")

    gzipped = {"Accept-Encoding": "gzip"}
    async with client_for(app) as c, c.stream("GET", "/test/stream", headers=gzipped) as r:
        raw = b"".join([part async for part in r.aiter_raw()])
    assert r.headers["content-encoding"] == "gzip"
    assert "content-length" not in r.headers
    assert zlib.decompress(raw, 16 + zlib.MAX_WBITS) == b"".join(chunks)


# --- request timeout ---------------------------------------------------------------------------


def _slow_writer_app(settings: Settings, database: Database, timeout_s: float) -> Any:
    app = make_app(settings, database, request_timeout_s=timeout_s)

    @app.post("/test/slow-write/{slug}")
    async def slow_write(slug: str, session: SessionDep) -> dict[str, str]:
        session.add(Tenant(slug=slug, name="Cut short"))
        await session.flush()  # the row is written, inside the request's transaction
        await session.execute(text("SELECT pg_sleep(10)"))
        return {"never": "reached"}

    return app


async def _tenant_exists(database_url: str, slug: str) -> bool:
    conn = await asyncpg.connect(plain_url(database_url))
    try:
        return bool(await conn.fetchval("SELECT count(*) FROM tenants WHERE slug = $1", slug))
    finally:
        await conn.close()


async def test_timeout_is_504_and_leaves_no_partial_write(
    settings: Settings, database: Database
) -> None:
    """Against the real sessionmaker (no test transaction around it): what the cut request
    wrote must not be in the database, and its query must not go on running there."""
    app = _slow_writer_app(settings, database, timeout_s=0.5)
    slug = f"cut-{uuid.uuid4().hex[:10]}"
    async with client_for(app) as c:
        before = await metric_samples(c)
        r = await c.post(f"/test/slow-write/{slug}", headers={"X-Request-ID": "cut-1"})
        body = assert_problem(r, 504, "request-timeout")
        assert body["request_id"] == "cut-1" == r.headers["x-request-id"]
        assert "none of its changes were saved" in body["detail"]
        after = await metric_samples(c)
        # The pool is healthy afterwards: the next request on it works.
        assert (await c.get("/readyz")).status_code == 200
    assert not await _tenant_exists(database.url, slug)
    labels = {"route": "/test/slow-write/{slug}", "method": "POST", "status": "504"}
    name = "tenantry_http_requests_total"
    assert sample_value(after, name, **labels) == sample_value(before, name, **labels) + 1

    conn = await asyncpg.connect(plain_url(database.url))
    try:
        for _ in range(50):  # the server was told to cancel; give it a moment to notice
            running = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(10)%'"
            )
            if not running:
                break
            await asyncio.sleep(0.05)
        assert running == 0
    finally:
        await conn.close()


async def test_a_response_already_started_is_cut_not_turned_into_a_504(
    settings: Settings, database: Database
) -> None:
    app = make_app(settings, database, request_timeout_s=0.3)

    @app.get("/test/slow-stream")
    async def slow_stream() -> StreamingResponse:
        async def body() -> AsyncIterator[bytes]:
            yield b"first part\n"
            await asyncio.sleep(5)
            yield b"never sent\n"

        return StreamingResponse(body(), media_type="text/plain")

    async with client_for(app) as c:
        with pytest.raises(TimeoutError, match="response had started"):
            await c.get("/test/slow-stream")


async def test_a_fast_request_is_not_cut(settings: Settings, database: Database) -> None:
    app = make_app(settings, database, request_timeout_s=0.5)

    @app.get("/test/quick")
    async def quick() -> dict[str, bool]:
        await asyncio.sleep(0.01)
        return {"ok": True}

    async with client_for(app) as c:
        for _ in range(3):
            assert (await c.get("/test/quick")).json() == {"ok": True}


async def test_an_errors_own_timeout_is_not_a_504(settings: Settings, database: Database) -> None:
    app = make_app(settings, database, request_timeout_s=5)

    @app.get("/test/own-timeout")
    async def own_timeout() -> None:
        raise TimeoutError("an upstream call timed out")

    async with client_for(app, raise_app_exceptions=False) as c:
        assert_problem(await c.get("/test/own-timeout"), 500, "internal-error")


async def test_each_app_cuts_by_its_own_deadline(settings: Settings, database: Database) -> None:
    """Two apps in one process (as in these tests) share the in-flight registry: the one with
    the short timeout cuts its own slow request, never the other app's."""
    strict = make_app(settings, database, request_timeout_s=0.2)
    patient = make_app(settings, database, request_timeout_s=30)
    for app in (strict, patient):

        @app.get("/test/nap")
        async def nap() -> dict[str, bool]:
            await asyncio.sleep(0.8)
            return {"ok": True}

    async with client_for(strict) as s, client_for(patient) as p:
        cut, kept = await asyncio.gather(s.get("/test/nap"), p.get("/test/nap"))
    assert_problem(cut, 504, "request-timeout")
    assert kept.status_code == 200 and kept.json() == {"ok": True}


async def test_concurrent_requests_count_their_own_queries(client: httpx.AsyncClient) -> None:
    """Statements are counted for the request whose task ran them, not a neighbour's."""
    paths = ("/readyz", "/healthz") * 3
    responses = await asyncio.gather(*(client.get(path) for path in paths))
    for path, response in zip(paths, responses, strict=True):
        assert response.status_code == 200
        ran = queries(response)
        assert ran >= 1 if path == "/readyz" else ran == 0


async def test_a_request_leaves_the_registry_even_when_its_log_line_fails(
    settings: Settings, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_stdout(*_: Any) -> bool:
        raise BrokenPipeError("stdout is gone")

    monkeypatch.setattr(middleware, "access_line", broken_stdout)
    app = make_app(settings, database, access_log=True)
    before = dict(inflight)
    async with client_for(app) as c:
        with pytest.raises(BrokenPipeError):
            await c.get("/healthz")
    assert inflight == before


# --- order -------------------------------------------------------------------------------------


async def test_429_carries_the_request_id_and_is_counted(
    settings: Settings, database: Database
) -> None:
    """(The 504's request id and count: `test_timeout_is_504_and_leaves_no_partial_write`.)"""
    app = make_app(settings, database, rate_limit_default="1/minute")
    async with client_for(app) as c:
        before = await metric_samples(c)
        assert (await c.get("/api/v1/users/me")).status_code == 401
        refused = await c.get("/api/v1/users/me", headers={"X-Request-ID": "limited-1"})
        body = assert_problem(refused, 429, "too-many-requests")
        assert refused.headers["x-request-id"] == "limited-1" == body["request_id"]
        assert refused.headers["x-content-type-options"] == "nosniff"
        after = await metric_samples(c)
    name = "tenantry_http_requests_total"
    labels = {"route": "/api/v1/users/me", "method": "GET", "status": "429"}
    assert sample_value(after, name, **labels) == sample_value(before, name, **labels) + 1


async def test_413_before_routing_is_labelled_by_its_route(client: httpx.AsyncClient) -> None:
    before = await metric_samples(client)
    r = await client.post(
        LOGIN, content=b"x" * (64 * 1024 + 1), headers={"content-type": "application/json"}
    )
    assert_problem(r, 413)
    after = await metric_samples(client)
    labels = {"route": LOGIN, "method": "POST", "status": "413"}
    name = "tenantry_http_requests_total"
    assert sample_value(after, name, **labels) == sample_value(before, name, **labels) + 1


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
async def test_probes_are_never_rate_limited(
    settings: Settings, database: Database, path: str
) -> None:
    app = make_app(settings, database, rate_limit_default="1/minute")
    async with client_for(app) as c:
        for _ in range(3):
            r = await c.get(path)
            assert r.status_code == 200
            assert "ratelimit" not in r.headers


# --- unhandled errors --------------------------------------------------------------------------


async def test_a_500_is_the_edges_own_counted_and_rolled_back(
    settings: Settings, database: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    """The edge answers an unhandled error itself: the 500 carries the request id, security
    and CORS headers, is counted as a 500, and what the request wrote is rolled back. Against
    the real sessionmaker (no test transaction around it). The client raises whatever escapes
    the app: nothing does."""
    app = make_app(settings, database, cors_origins=["https://app.example"])
    slug = f"boom-{uuid.uuid4().hex[:10]}"

    @app.post("/test/write-then-fail/{slug}")
    async def write_then_fail(slug: str, session: SessionDep) -> None:
        session.add(Tenant(slug=slug, name="Never saved"))
        await session.flush()  # the row is written, inside the request's transaction
        raise RuntimeError("failed after writing")

    async with client_for(app) as c:
        before = await metric_samples(c)
        r = await c.post(
            f"/test/write-then-fail/{slug}",
            headers={"X-Request-ID": "boom-1", "Origin": "https://app.example"},
        )
        after = await metric_samples(c)
        assert (await c.get("/readyz")).status_code == 200  # the pool is healthy afterwards
    body = assert_problem(r, 500, "internal-error")
    assert body["request_id"] == "boom-1" == r.headers["x-request-id"]
    assert "failed after writing" not in r.text and "RuntimeError" not in r.text
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["access-control-allow-origin"] == "https://app.example"
    labels = {"route": "/test/write-then-fail/{slug}", "method": "POST", "status": "500"}
    name = "tenantry_http_requests_total"
    assert sample_value(after, name, **labels) == sample_value(before, name, **labels) + 1
    assert not await _tenant_exists(database.url, slug)
    out = capsys.readouterr().out
    assert out.count("unhandled error") == 1 and "RuntimeError: failed after writing" in out


@asynccontextmanager
async def serving(app: Any, http: str) -> AsyncIterator[int]:
    """`app` served by a real uvicorn in this process (its HTTP/1.1 connection handling is
    the point: httpx's ASGI transport has no connections); yields the port."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, http=http, lifespan="off", log_config=None, access_log=False)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(10):
            while not server.started:
                if task.done():
                    task.result()  # it failed to start: say why
                await asyncio.sleep(0.01)
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        sock.close()


async def _get(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 request on an open connection, keep-alive (the default); its response."""
    writer.write(f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").rstrip("\r\n").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    else:  # chunked and cut short: whatever comes until the server closes the connection
        body = await reader.read()
    return int(status_line.split()[1]), headers, body


@pytest.mark.parametrize("http", ["httptools", "h11"])
async def test_a_500_does_not_reset_the_keep_alive_connection(
    settings: Settings, database: Database, capsys: pytest.CaptureFixture[str], http: str
) -> None:
    """Before: Starlette's ServerErrorMiddleware re-raised after sending the 500, uvicorn
    logged the error again and closed the connection, and the client's next request on it
    was reset. Now the same connection serves the next request, and the error is logged
    once."""
    app = make_app(settings, database)

    @app.get("/test/boom")
    async def boom() -> None:
        raise RuntimeError("boom on a keep-alive connection")

    capsys.readouterr()
    async with serving(app, http) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            status, headers, body = await _get(reader, writer, "/test/boom")
            assert status == 500 and b"internal-error" in body
            assert headers.get("connection", "").lower() != "close"
            assert headers["x-request-id"]
            # The same socket: no new connection, no reset.
            status, _, body = await _get(reader, writer, "/healthz")
            assert status == 200 and body
            status, _, _ = await _get(reader, writer, "/test/boom")
            assert status == 500
        finally:
            writer.close()
            await writer.wait_closed()

        # Through httpx too: one pooled keep-alive connection, the same local port each time.
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            ports = set()
            for path in ("/test/boom", "/healthz", "/test/boom", "/healthz"):
                r = await client.get(path)
                assert r.status_code == (500 if "boom" in path else 200)
                ports.add(r.extensions["network_stream"].get_extra_info("client_addr")[1])
            assert len(ports) == 1
    out = capsys.readouterr().out
    assert "Exception in ASGI application" not in out
    # Four failed requests, each logged once: its `error` field and its traceback's last line.
    assert out.count("unhandled error") == 4
    assert out.count("RuntimeError: boom on a keep-alive connection") == 4 * 2


@pytest.mark.parametrize("http", ["httptools", "h11"])
async def test_an_error_mid_response_is_logged_once_and_the_connection_closed(
    settings: Settings, database: Database, capsys: pytest.CaptureFixture[str], http: str
) -> None:
    """A response already started cannot become a 500: the error is logged once and the
    server closes the connection on the incomplete body (the client sees it cut short)."""
    app = make_app(settings, database)

    @app.get("/test/stream-fails")
    async def stream_fails() -> StreamingResponse:
        async def body() -> AsyncIterator[bytes]:
            yield b"first part\n"
            raise RuntimeError("failed mid-stream")

        return StreamingResponse(body(), media_type="text/plain")

    capsys.readouterr()
    async with serving(app, http) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            status, headers, body = await _get(reader, writer, "/test/stream-fails")
        finally:
            writer.close()
            await writer.wait_closed()
    assert status == 200 and headers["transfer-encoding"] == "chunked"
    assert b"first part" in body and not body.endswith(b"0\r\n\r\n")  # no last chunk
    out = capsys.readouterr().out
    assert "Exception in ASGI application" not in out
    assert out.count("unhandled error") == 1 and "response_started=True" in out
    assert "RuntimeError: failed mid-stream" in out
