"""Redis goes away mid-test and comes back: requests keep succeeding (L1 and the database
serve), the state store answers 503, a gauge and one log line say so, and the caches and the
bus reconnect by themselves. Runs a Redis of its own on a free port."""

from __future__ import annotations

import logging
import random
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tenantry.app import create_app
from tenantry.config import OidcProvider, Settings
from tenantry.kit.db import Database
from tenantry.kit.redis import REDIS_UP
from tests.support.asserts import assert_problem, queries
from tests.support.oidc_provider import CLIENT_ID, CLIENT_SECRET, running_provider
from tests.support.platform import eventually, running
from tests.support.services import IN_CI
from tests.support.world import CommittedWorld, login

ME = "/api/v1/users/me"
SETTINGS = "/api/v1/tenant/settings"


def _port_outside_the_ephemeral_range() -> int:
    """A free port below the kernel's ephemeral range. A port from bind(0) lies inside it, and
    once the server is stopped a client reconnecting to it can be handed that very port as its
    own source port: TCP then connects the socket to itself, the PING comes back as its own
    echo, and a stopped Redis looks reachable (seen here as a flaky outage test)."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for port in random.sample(range(max(1024, low - 12_000), low - 1), 200):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port below the ephemeral range")


class SpareRedis:
    def __init__(self) -> None:
        self.port = _port_outside_the_ephemeral_range()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                shutil.which("redis-server") or "redis-server",
                "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the spare Redis did not start") from None
                time.sleep(0.02)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


@pytest.fixture
def spare_redis() -> Iterator[SpareRedis]:
    if shutil.which("redis-server") is None:
        if IN_CI:
            pytest.fail("CI=true and no redis-server to start a spare Redis with")
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    server = SpareRedis()
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def test_requests_survive_a_redis_outage_and_caches_reconnect(
    spare_redis: SpareRedis,
    settings: Settings,
    committed: CommittedWorld,
    committed_db: Database,
    caplog: pytest.LogCaptureFixture,
) -> None:
    tenant = await committed.tenant()
    admin = await committed.user(tenant, "admin")
    member = await committed.user(tenant)
    late = await committed.user(tenant)
    other_db = Database(settings.database_url or "", settings)
    with running_provider() as provider:
        configured = settings.model_copy(
            update={
                "redis_url": spare_redis.url,
                "redis_prefix": "outage-test:",
                "redis_retry_s": 0.1,
                "oidc_providers": {
                    "corp": OidcProvider(
                        issuer=provider.issuer, client_id=CLIENT_ID, client_secret=CLIENT_SECRET
                    )
                },
            }
        )
        app_a = create_app(configured, database=committed_db)
        app_b = create_app(configured, database=other_db)
        try:
            async with running(app_a) as a, running(app_b) as b:
                admin_h, member_h = await login(a, admin.email), await login(a, member.email)
                late_h = await login(a, late.email)
                for client in (a, b):
                    assert (await client.get(ME, headers=member_h)).status_code == 200
                    assert (await client.get(SETTINGS, headers=member_h)).status_code == 200

                spare_redis.stop()
                caplog.set_level(logging.WARNING, logger="tenantry.redis")

                # Warm requests: served from memory, no query.
                r = await b.get(ME, headers=member_h)
                assert r.status_code == 200 and queries(r) == 0
                # Cold requests: the L2 is skipped, the database answers.
                r = await b.get(ME, headers=late_h)
                assert r.status_code == 200 and queries(r) == 1
                # Writes still succeed (their invalidation is kept for later).
                r = await a.patch(SETTINGS, json={"currency": "EUR"}, headers=admin_h)
                assert r.status_code == 200, r.text
                # The state store lives in Redis: a clear 503, never a 500.
                r = await a.get("/api/v1/auth/oauth/corp/authorize")
                assert_problem(r, 503, "state-store-unavailable")

                async def down_everywhere() -> bool:
                    await b.get(SETTINGS, headers=admin_h)
                    apps = (app_a, app_b)
                    return not any(
                        app.state.platform.redis_health.up or app.state.caches.bus.ready.is_set()
                        for app in apps
                    )

                await eventually(down_everywhere)
                assert REDIS_UP._value.get() == 0
                staff = await committed.user(
                    await committed.tenant(), "admin", account_type="internal_employee"
                )
                staff_h = await login(a, staff.email)
                stats = (await a.get("/api/v1/admin/cache/stats", headers=staff_h)).json()
                assert stats["redis"]["up"] is False and stats["redis"]["errors"] >= 1
                assert stats["bus_connected"] is False
                for _ in range(20):  # many failures, still few log lines
                    await b.get(ME, headers=late_h)
                    app_b.state.caches.get("principal").drop_local(None)
                lines = [r for r in caplog.records if "Redis unavailable" in r.getMessage()]
                assert 1 <= len(lines) <= 2  # one per instance, rate-limited

                spare_redis.start()  # an empty Redis on the same port

                async def reconnected() -> bool:
                    return bool(app_a.state.caches.bus.ready.is_set()) and bool(
                        app_b.state.caches.bus.ready.is_set()
                    )

                await eventually(reconnected, within_s=10)
                assert app_a.state.platform.redis_health.up and app_b.state.platform.redis_health.up
                assert REDIS_UP._value.get() == 1
                # B missed A's invalidation while the bus was down; it starts over from the
                # database, so it sees the change made during the outage.
                r = await b.get(SETTINGS, headers=member_h)
                assert r.json()["currency"] == "EUR"
                # The L2 works again: what A loads, B finds in Redis.
                fresh = await committed.user(tenant)
                fresh_h = await login(a, fresh.email)
                assert queries(await a.get(ME, headers=fresh_h)) == 1
                assert queries(await b.get(ME, headers=fresh_h)) == 0
                # And invalidation crosses instances again.
                r = await a.patch(
                    f"/api/v1/users/{fresh.id}", json={"is_active": False}, headers=admin_h
                )
                assert r.status_code == 200

                async def refused_on_b() -> bool:
                    return (await b.get(ME, headers=fresh_h)).status_code == 401

                await eventually(refused_on_b)
                # The state store is back too.
                assert (await a.get("/api/v1/auth/oauth/corp/authorize")).status_code == 302
        finally:
            await other_db.dispose()
