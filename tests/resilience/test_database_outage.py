"""PostgreSQL dies under a running server, with real processes: `tenantry serve` in embedded
mode (it started the database, and supervises it) takes a steady stream of writes; the
database's postmaster is killed with SIGKILL. Meanwhile every request gets an answer within
the request timeout: a 503 problem while the database is down, never a 500 or a hang; the
supervisor starts the database again, the pool replaces its dead connections, and writes
succeed again. Every write the API acknowledged (201) is in the database afterwards."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "outage-demo-password"
REQUEST_TIMEOUT_S = 10


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(tmp_path: Path) -> tuple[str, Path, subprocess.Popen[bytes]]:
    port = _free_port()
    pgdata = tmp_path / "pgdata"
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_URL", "TENANTRY_EMBEDDED_DATABASE_URL")
    }
    env.update(
        EMBEDDED_PGDATA=str(pgdata),
        DEMO_PASSWORD=PASSWORD,
        REQUEST_TIMEOUT_S=str(REQUEST_TIMEOUT_S),
        RATE_LIMIT_DEFAULT="100000/minute",
        RATE_LIMIT_AUTH="100000/minute",
        DB_POOL_TIMEOUT="3",
        LOG_FORMAT="console",
    )
    log = (tmp_path / "server.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "tenantry.cli", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert process.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
        time.sleep(0.5)
    else:
        raise AssertionError("the server did not come up in time")
    yield url, pgdata, process
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


async def test_a_killed_database_is_503_then_back_and_nothing_acknowledged_is_lost(
    server: tuple[str, Path, subprocess.Popen[bytes]],
) -> None:
    url, pgdata, _ = server
    async with httpx.AsyncClient(base_url=url, timeout=REQUEST_TIMEOUT_S + 5) as client:
        r = await client.post(
            "/api/v1/auth/login", json={"email": "owner@acme.example", "password": PASSWORD}
        )
        headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
        acknowledged: list[str] = []
        answers: dict[int, int] = {}
        slowest = 0.0
        stop = asyncio.Event()

        async def writer(n: int) -> None:
            nonlocal slowest
            i = 0
            while not stop.is_set():
                i += 1
                started = time.monotonic()
                try:
                    r = await client.post(
                        "/api/v1/customers", json={"name": f"w{n}-{i}"}, headers=headers
                    )
                except httpx.TransportError:  # a request cut off: not acknowledged
                    answers[0] = answers.get(0, 0) + 1
                    continue
                slowest = max(slowest, time.monotonic() - started)
                answers[r.status_code] = answers.get(r.status_code, 0) + 1
                if r.status_code == 201:
                    acknowledged.append(r.json()["id"])
                else:
                    assert r.status_code == 503, r.text
                    assert r.headers["content-type"] == "application/problem+json"
                    assert int(r.headers["retry-after"]) > 0
                    await asyncio.sleep(0.2)

        writers = [asyncio.create_task(writer(n)) for n in range(4)]
        await asyncio.sleep(2)
        before = len(acknowledged)
        postmaster = int((pgdata / "postmaster.pid").read_text().splitlines()[0])
        os.kill(postmaster, signal.SIGKILL)
        killed_at = time.monotonic()

        async def recovered() -> bool:
            seen = len(acknowledged)
            await asyncio.sleep(1)
            return answers.get(503, 0) > 0 and len(acknowledged) > seen

        deadline = killed_at + 60
        while not await recovered():
            assert time.monotonic() < deadline, f"not back within 60 s: {answers}"
        back_after = time.monotonic() - killed_at
        steady = len(acknowledged)
        await asyncio.sleep(3)
        assert len(acknowledged) - steady >= 20, answers  # writing steadily again
        stop.set()
        await asyncio.gather(*writers)

        assert answers.get(500, 0) == 0 and answers.get(0, 0) == 0, answers
        assert slowest < REQUEST_TIMEOUT_S + 1
        missing = []
        for customer_id in acknowledged:
            r = await client.get(f"/api/v1/customers/{customer_id}", headers=headers)
            if r.status_code != 200:
                missing.append(customer_id)
        print(
            f"acknowledged {before} before the kill, {len(acknowledged)} in all; back after"
            f" {back_after:.1f} s; answers {answers}; slowest {slowest:.2f} s;"
            f" missing afterwards {len(missing)}"
        )
        assert not missing
    log = (pgdata.parent / "server.log").read_text()
    assert "is running again" in log  # the supervisor started it, not luck
