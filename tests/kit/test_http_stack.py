"""The middleware stack through the real app: each layer's behaviour, and their order."""

from __future__ import annotations

import asyncio
import gzip
import uuid
import zlib
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import text
from starlette.responses import StreamingResponse

from tenantry.config import Settings
from tenantry.kit import middleware
from tenantry.kit.context import inflight
from tenantry.kit.db import Database, plain_url
from tenantry.kit.deps import SessionDep
from tenantry.tenants import service as tenants
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
        await tenants.provision(session, slug=slug, name="Cut short")
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
