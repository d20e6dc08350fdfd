"""The drain before a graceful shutdown (`kit.shutdown`), in process: what changes the moment
it begins. The real signal, under a real server, is in tests/resilience/test_graceful_shutdown.py
and, through nginx under load, in tests/cluster/test_shutdown.py."""

from __future__ import annotations

import signal

from tenantry.config import Settings
from tenantry.kit.db import Database
from tenantry.kit.shutdown import Shutdown
from tests.support.asserts import assert_problem
from tests.support.platform import client_for, make_app


async def test_draining_fails_readiness_and_closes_every_connection(
    settings: Settings, database: Database
) -> None:
    app = make_app(settings, database)
    async with client_for(app) as client:
        before = await client.get("/healthz")
        assert "connection" not in before.headers
        assert (await client.get("/readyz")).status_code == 200
        app.state.shutdown.begin()
        body = assert_problem(await client.get("/readyz"), 503, "not-ready")
        assert body["checks"] == {"shutdown": "draining: this instance is stopping"}
        assert (await client.head("/readyz")).status_code == 503
        after = await client.get("/healthz")  # still served, but its connection ends
        assert (after.status_code, after.headers["connection"]) == (200, "close")
        # the headers' order is kept: the query count is still filled in
        assert after.headers["x-db-queries"] == "0"


async def test_a_drain_begun_before_the_first_request_still_closes_connections(
    settings: Settings, database: Database
) -> None:
    app = make_app(settings, database)
    app.state.shutdown.begin()  # the middleware stack is built on the first request, later
    async with client_for(app) as client:
        assert (await client.get("/healthz")).headers["connection"] == "close"


async def test_only_a_uvicorn_server_s_handler_is_wrapped() -> None:
    """Apps driven by tests or the CLI keep the process's SIGTERM handler as it is."""
    previous = signal.getsignal(signal.SIGTERM)
    assert Shutdown(5).install() is False
    assert signal.getsignal(signal.SIGTERM) is previous


def test_the_drain_begins_once_and_tells_each_listener() -> None:
    shutdown, told = Shutdown(5), []
    shutdown.on_drain(lambda: told.append("a"))
    shutdown.begin()
    shutdown.begin()
    shutdown.on_drain(lambda: told.append("b"))  # late: told at once
    assert told == ["a", "b"] and shutdown.draining
