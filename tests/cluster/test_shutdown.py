"""SIGTERM to an API process under load through nginx: it stops listening at once (nginx
passes new connections to the other instance), serves what arrives on the connections already
open with `Connection: close` and `/readyz` 503, finishes what is in flight and exits 0. No
request fails, GET or POST."""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import time

import httpx
import pytest

from tests.cluster.conftest import Cluster, login

pytestmark = pytest.mark.cluster


async def test_sigterm_under_load_through_nginx_fails_no_request(cluster: Cluster) -> None:
    victim = cluster.state()["processes"]["api-1"]
    answers: collections.Counter[tuple[str, int | str]] = collections.Counter()
    failures: list[str] = []
    stop = asyncio.Event()
    limits = httpx.Limits(max_connections=64)
    async with (
        httpx.AsyncClient(base_url=cluster.url, timeout=30, limits=limits) as front,
        httpx.AsyncClient(base_url=cluster.api[0], timeout=5) as direct,
    ):
        owner = await login(front, "owner@acme.example", "198.18.251.1")
        assert (await direct.get("/healthz")).status_code == 200  # a connection open before

        async def read() -> None:
            while not stop.is_set():
                try:
                    r = await front.get("/api/v1/users/me", headers=owner)
                except httpx.TransportError as exc:
                    answers["GET", "cut"] += 1
                    failures.append(f"GET cut: {exc!r}")
                    continue
                answers["GET", r.status_code] += 1
                if r.status_code != 200:
                    failures.append(f"GET {r.status_code}: {r.text[:200]}")

        async def write(n: int) -> None:
            i = 0
            while not stop.is_set():
                i += 1
                body = {"name": f"drain-{n}-{i}"}
                try:
                    r = await front.post("/api/v1/customers", json=body, headers=owner)
                except httpx.TransportError as exc:
                    answers["POST", "cut"] += 1
                    failures.append(f"POST cut: {exc!r}")
                    continue
                answers["POST", r.status_code] += 1
                if r.status_code != 201:
                    failures.append(f"POST {r.status_code}: {r.text[:200]}")

        load = [asyncio.create_task(read()) for _ in range(24)]
        load += [asyncio.create_task(write(n)) for n in range(8)]
        await asyncio.sleep(2)
        os.kill(victim, signal.SIGTERM)
        sent = time.monotonic()
        await asyncio.sleep(0.2)
        ready = await direct.get("/readyz")  # on the open connection: draining at once
        assert ready.status_code == 503, ready.text
        assert ready.json()["checks"] == {"shutdown": "draining: this instance is stopping"}
        assert ready.headers["connection"] == "close"  # and that connection ends with it
        assert time.monotonic() - sent < 1
        with pytest.raises(httpx.ConnectError):  # no new connection is taken
            await direct.get("/healthz")
        deadline = time.monotonic() + 30
        while cluster.state()["processes"]["api-1"] == victim:  # script/cluster restarts it
            assert time.monotonic() < deadline, "api-1 did not stop"
            await asyncio.sleep(0.2)
        await asyncio.sleep(1)  # and on through the restart
        stop.set()
        await asyncio.gather(*load)
    print(dict(answers))
    assert not failures, failures[:5]
    assert answers["GET", 200] > 100 and answers["POST", 201] > 20
    log = cluster.log("api-1")
    assert "draining before shutdown" in log and "Finished server process" in log
    assert "api-1 exited (0)" in (cluster.state_dir / "cluster.out").read_text()
