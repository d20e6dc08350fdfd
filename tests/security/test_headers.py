"""Headers are bounded: too many, or too many bytes in all, is a 431 problem before any work
(no token verified, no database touched)."""

from __future__ import annotations

import httpx

from tenantry.config import Settings
from tenantry.kit.db import Database
from tests.support.asserts import assert_problem
from tests.support.platform import client_for, make_app


async def test_oversized_or_too_many_headers_are_431(
    settings: Settings, database: Database
) -> None:
    app = make_app(settings, database, max_header_bytes=4096, max_headers=20)
    async with client_for(app) as c:
        ok = await c.get("/healthz", headers={"X-Junk": "x" * 1000})
        assert ok.status_code == 200
        big = await c.get("/healthz", headers={"X-Junk": "x" * 5000})
        body = assert_problem(big, 431, "request-header-fields-too-large")
        assert "4096 bytes" in body["detail"] and big.headers["connection"] == "close"
        huge_token = {"Authorization": "Bearer " + "a" * 100_000}
        assert_problem(await c.get("/api/v1/users/me", headers=huge_token), 431)
        many = {f"X-H{i}": "1" for i in range(25)}
        assert_problem(await c.get("/healthz", headers=many), 431)


async def test_a_405_names_every_method_of_the_path(client: httpx.AsyncClient) -> None:
    r = await client.options("/api/v1/users")
    assert_problem(r, 405)
    assert r.headers["allow"] == "GET, POST"  # two routes share the path
    me = await client.patch("/api/v1/users/me", json={"full_name": "x"})
    assert_problem(me, 405)  # not the id route's 422: `me` is not an id
    assert me.headers["allow"] == "GET"
    assert (await client.delete("/healthz")).headers["allow"] == "GET, HEAD"
