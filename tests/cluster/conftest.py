"""One real cluster for these tests: `script/cluster`'s code (`tenantry.cluster`) running two
API processes, a worker and nginx on this machine, against a database of their own and the
tests' Redis (under a key prefix of their own). Needs nginx and Redis: skipped, with the
reason, without them; under CI=true nginx is installed when missing and a missing Redis fails.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from tenantry.cluster import free_port, nginx_binary
from tests.support.oidc_provider import CLIENT_ID, CLIENT_SECRET, Provider, running_provider
from tests.support.services import (
    IN_CI,
    create_database,
    delete_redis_keys,
    drop_database,
    redis_url,
)

T = TypeVar("T")
CLUSTER = [sys.executable, "-m", "tenantry.cluster", "--no-install-nginx"]
ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "cluster-demo-password"
LOGINS_PER_MINUTE = 40  # RATE_LIMIT_AUTH: per client address, shared by the instances


@dataclass
class Cluster:
    url: str  # nginx
    api: list[str]  # each API process, directly
    state_dir: Path
    process: subprocess.Popen[bytes]
    provider: Provider

    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = json.loads((self.state_dir / "cluster.json").read_text())
        return state

    def log(self, name: str) -> str:
        return (self.state_dir / "logs" / f"{name}.log").read_text(errors="replace")


def _in_thread(work: Coroutine[Any, Any, T]) -> T:
    """Run `work` on a loop of its own, off the tests' session loop."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, work).result()


def _nginx() -> None:
    try:
        nginx_binary(install=IN_CI)
    except SystemExit as exc:
        if IN_CI:
            raise
        pytest.skip(f"no nginx for the cluster tests: {exc}")


@pytest.fixture(scope="session")
def cluster(admin_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    _nginx()
    redis = redis_url()  # under CI=true a missing Redis raises here: the run fails
    if redis is None:
        pytest.skip("no Redis on 127.0.0.1:6379 and TEST_REDIS_URL unset: the cluster shares it")
    name = f"tenantry_cluster_{uuid.uuid4().hex[:8]}"
    database = _in_thread(create_database(admin_url, name))
    prefix = f"tenantry-cluster-{uuid.uuid4().hex[:12]}:"
    state_dir = tmp_path_factory.mktemp("cluster")
    with running_provider() as provider:
        provider.email = "owner@acme.example"
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("TENANTRY_EMBEDDED")},
            "DATABASE_URL": database,
            "REDIS_URL": redis,
            "REDIS_PREFIX": prefix,
            "RATE_LIMIT_KEY_PREFIX": prefix + "ratelimit",
            "DEMO_PASSWORD": PASSWORD,
            "RATE_LIMIT_DEFAULT": "1000000/minute",
            "RATE_LIMIT_AUTH": f"{LOGINS_PER_MINUTE}/minute",
            "RATE_LIMIT_LOGIN_ACCOUNT": "1000000/minute",
            "OUTBOUND_ALLOWLIST": "127.0.0.1",
            "OIDC_PROVIDERS": json.dumps(
                {
                    "corp": {
                        "issuer": provider.issuer,
                        "client_id": CLIENT_ID,
                        "client_secret": CLIENT_SECRET,
                    }
                }
            ),
            "SHUTDOWN_DRAIN_S": "5",  # past nginx's 4 s keepalive_timeout, as by default
            "LOG_FORMAT": "console",
        }
        port = free_port()
        out = (state_dir / "cluster.out").open("wb")
        process = subprocess.Popen(
            [*CLUSTER, "--port", str(port), "--state-dir", str(state_dir)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 180
            while not (state_dir / "cluster.json").exists():
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(
                        "the cluster did not start:\n" + (state_dir / "cluster.out").read_text()
                    )
                time.sleep(0.3)
            state = json.loads((state_dir / "cluster.json").read_text())
            yield Cluster(state["url"], state["api"], state_dir, process, provider)
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=90)
            except subprocess.TimeoutExpired:
                process.kill()
            delete_redis_keys(redis, prefix)
            _in_thread(drop_database(admin_url, name))


async def login(client: httpx.AsyncClient, email: str, address: str) -> dict[str, str]:
    """Log in as `email` from `address` (X-Forwarded-For: the rate limits' key), so that the
    tests' logins do not count against the one that measures the limit."""
    r = await client.post(
        "/api/v1/auth/login",
        json={"email": email, "password": PASSWORD},
        headers={"X-Forwarded-For": address},
    )
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}
