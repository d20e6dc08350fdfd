"""Real processes for the fault tests: `tenantry serve` in embedded mode (its own PostgreSQL,
which it supervises) on a free port, and a Redis of the test's own that it may kill."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "outage-demo-password"
REQUEST_TIMEOUT_S = 10
# No demo CRM rows: the tests count what they write themselves.
SERVE = [sys.executable, "-m", "tenantry.cli", "serve", "--demo-customers", "0"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, url: str, pgdata: Path, process: subprocess.Popen[bytes], log: Path):
        self.url, self.pgdata, self.process, self.log = url, pgdata, process, log


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """`serve(**env)`: a running `tenantry serve`, with these settings added."""
    started: list[Server] = []

    def start(**extra: str) -> Server:
        port = free_port()
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
        # No balancer in front: stop at once (test_graceful_shutdown asks for its drain).
        env.update({"SHUTDOWN_DRAIN_S": "0", **extra})
        log = tmp_path / "server.log"
        process = subprocess.Popen(
            [*SERVE, "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        server = Server(f"http://127.0.0.1:{port}", pgdata, process, log)
        started.append(server)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{server.url}/readyz", timeout=2).status_code == 200:
                    return server
            except httpx.HTTPError:
                pass
            assert process.poll() is None, log.read_text()[-3000:]
            time.sleep(0.5)
        raise AssertionError("the server did not come up in time")

    yield start
    for server in started:
        server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.process.kill()


class PrivateRedis:
    """A redis-server of the test's own, on a spare port, that it may kill and start again."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise AssertionError("redis-server did not start")

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed: the Redis outage needs a Redis to kill")
    redis = PrivateRedis(binary)
    redis.start()
    yield redis
    redis.kill()


class Writes:
    """A steady load of writes (customers created by `writers` clients in a loop) against a
    server, counting every answer, keeping the id of every write the API acknowledged (201),
    and checking each refusal is a 503 problem with Retry-After (then backing off a little)."""

    def __init__(self, client: httpx.AsyncClient, headers: dict[str, str], writers: int = 4):
        self.client, self.headers, self.writers = client, headers, writers
        self.acknowledged: list[str] = []
        self.answers: dict[int, int] = {}  # 0: the request was cut off
        self.slowest = 0.0
        self.unexpected: list[str] = []  # answers neither 201 nor a 503 problem
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    @classmethod
    async def as_demo_owner(cls, client: httpx.AsyncClient) -> Writes:
        creds = {"email": "owner@acme.example", "password": PASSWORD}
        r = await client.post("/api/v1/auth/login", json=creds)
        return cls(client, {"Authorization": f"Bearer {r.json()['access_token']}"})

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._write(n)) for n in range(self.writers)]

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)

    async def _write(self, n: int) -> None:
        i = 0
        while not self._stop.is_set():
            i += 1
            started = time.monotonic()
            try:
                r = await self.client.post(
                    "/api/v1/customers", json={"name": f"w{n}-{i}"}, headers=self.headers
                )
            except httpx.TransportError:  # cut off: not acknowledged
                self.answers[0] = self.answers.get(0, 0) + 1
                continue
            self.slowest = max(self.slowest, time.monotonic() - started)
            self.answers[r.status_code] = self.answers.get(r.status_code, 0) + 1
            if r.status_code == 201:
                self.acknowledged.append(r.json()["id"])
                continue
            problem = r.headers.get("content-type") == "application/problem+json"
            if r.status_code != 503 or not problem or not r.headers.get("retry-after"):
                self.unexpected.append(f"{r.status_code}: {r.text[:300]}")
            await asyncio.sleep(0.2)

    async def missing(self) -> list[str]:
        """Acknowledged writes the database does not have (read back through the API)."""
        gone = []
        for customer_id in self.acknowledged:
            r = await self.client.get(f"/api/v1/customers/{customer_id}", headers=self.headers)
            if r.status_code != 200:
                gone.append(customer_id)
        return gone


def embedded_url(pgdata: Path, database: str = "tenantry") -> str:
    """The URL of the embedded server `tenantry serve` started (its postmaster.pid says where
    its socket is), for another process to share it."""
    lines = (pgdata / "postmaster.pid").read_text().splitlines()
    return f"postgresql://postgres:@/{database}?host={lines[4]}"


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """`start(server, **env)`: a `tenantry worker` process on the server's database."""
    started: list[subprocess.Popen[bytes]] = []

    def start(server: Server, **extra: str) -> subprocess.Popen[bytes]:
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("REDIS_URL", "TENANTRY_EMBEDDED_DATABASE_URL")
        }
        env.update(DATABASE_URL=embedded_url(server.pgdata), LOG_FORMAT="console", **extra)
        log = (tmp_path / f"worker-{len(started)}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "tenantry.cli", "worker"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()
