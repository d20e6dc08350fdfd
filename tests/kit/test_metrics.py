"""`/metrics`: what it counts, that it parses, that its label sets stay bounded, and that it
adds up every worker's numbers under `tenantry serve --workers N`."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tenantry.kit import metrics
from tests.support.platform import metric_samples, sample_value
from tests.support.world import World

REQUESTS = "tenantry_http_requests_total"


async def test_metrics_parse_and_name_what_we_promised(client: httpx.AsyncClient) -> None:
    await client.get("/healthz")
    r = await client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(r.text)}
    assert families["tenantry_http_requests"].type == "counter"
    assert families["tenantry_http_request_duration_seconds"].type == "histogram"
    assert families["tenantry_http_requests_in_flight"].type == "gauge"
    assert families["tenantry_db_queries_per_request"].type == "histogram"
    assert families["tenantry_db_pool_connections_in_use"].type == "gauge"
    for hook in ("tenantry_cache_requests", "tenantry_cache_evictions", "tenantry_jobs"):
        assert families[hook].type == "counter"


async def test_requests_counted_by_route_template_method_status(
    client: httpx.AsyncClient, world: World
) -> None:
    owner = await world.user(await world.tenant(), "owner")
    before = await metric_samples(client)
    for _ in range(3):
        r = await client.patch(f"/api/v1/users/{uuid.uuid4()}", json={}, headers=owner.headers)
        assert r.status_code == 404
    after = await metric_samples(client)
    route = "/api/v1/users/{user_id}"
    labels = {"route": route, "method": "PATCH", "status": "404"}
    assert sample_value(after, REQUESTS, **labels) - sample_value(before, REQUESTS, **labels) == 3
    count = "tenantry_http_request_duration_seconds_count"
    assert (
        sample_value(after, count, route=route, method="PATCH")
        - sample_value(before, count, route=route, method="PATCH")
        == 3
    )
    queries = "tenantry_db_queries_per_request_count"
    assert (
        sample_value(after, queries, route=route) - sample_value(before, queries, route=route) == 3
    )
    # one of those requests ran at least one query (the principal, the update's lookup)
    one_or_more = "tenantry_db_queries_per_request_bucket"
    zero_before = sample_value(before, one_or_more, route=route, le="0.0")
    assert sample_value(after, one_or_more, route=route, le="0.0") == zero_before


async def test_requests_without_queries_fill_the_zero_bucket(client: httpx.AsyncClient) -> None:
    for _ in range(2):
        assert (await client.get("/healthz")).status_code == 200
    samples = await metric_samples(client)
    count = sample_value(samples, "tenantry_db_queries_per_request_count", route="/healthz")
    zero = sample_value(
        samples, "tenantry_db_queries_per_request_bucket", route="/healthz", le="0.0"
    )
    assert count >= 2 and zero == count
    assert sample_value(samples, "tenantry_db_queries_per_request_sum", route="/healthz") == 0


async def test_in_flight_and_pool_gauges(client: httpx.AsyncClient) -> None:
    samples = await metric_samples(client)
    assert sample_value(samples, "tenantry_http_requests_in_flight") == 1  # the scrape itself
    in_use = sample_value(samples, "tenantry_db_pool_connections_in_use", pool="primary")
    assert in_use >= 1  # the test's own connection, checked out for its transaction


async def test_label_sets_stay_bounded_under_distinct_ids(
    client: httpx.AsyncClient, world: World
) -> None:
    owner = await world.user(await world.tenant(), "owner")
    await client.get("/this/does/not/exist")  # the one label unmatched requests share

    def label_sets(samples: dict[str, list[tuple[dict[str, str], float]]]) -> set[Any]:
        return {
            (name, tuple(sorted(labels.items())))
            for name, values in samples.items()
            if name.startswith("tenantry_")
            for labels, _ in values
        }

    await client.patch(f"/api/v1/users/{uuid.uuid4()}", json={}, headers=owner.headers)
    before = label_sets(await metric_samples(client))
    ids = [uuid.uuid4().hex for _ in range(1000)]
    for i, id_ in enumerate(ids):
        if i % 2:
            r = await client.patch(f"/api/v1/users/{id_}", json={}, headers=owner.headers)
        else:
            r = await client.get(f"/unknown/{id_}")
        assert r.status_code in (404, 422)
    text = (await client.get("/metrics")).text
    after = label_sets(await metric_samples(client))
    # 422 (a hex id is not a UUID) is the one new status the patches can add
    assert len(after - before) <= 6, sorted(after - before)
    assert not any(id_ in text for id_ in ids[:50])


def test_hooks_count_by_name() -> None:
    def samples() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        body, _ = metrics.render()
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for f in text_string_to_metric_families(body.decode())
            for s in f.samples
        }

    hit = ("tenantry_cache_requests_total", (("cache", "principal"), ("result", "hit")))
    miss = ("tenantry_cache_requests_total", (("cache", "principal"), ("result", "miss")))
    evictions = ("tenantry_cache_evictions_total", (("cache", "principal"),))
    jobs = ("tenantry_jobs_total", (("outcome", "succeeded"), ("task", "send_welcome")))
    before = samples()
    metrics.record_cache("principal", hit=True)
    metrics.record_cache("principal", hit=False)
    metrics.record_cache("principal", hit=True)
    metrics.record_cache_eviction("principal", 2)
    metrics.record_job("send_welcome", "succeeded")
    after = samples()
    added = {name: after[name] - before.get(name, 0) for name in (hit, miss, evictions, jobs)}
    assert added == {hit: 2, miss: 1, evictions: 2, jobs: 1}


# --- several workers ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def metrics_dir(tmp_path: Any) -> Any:
    return tmp_path / "metrics"


def _serve(cmd: list[str], env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(proc.stderr.read().decode() if proc.stderr else "exited")
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.2)
    proc.terminate()
    raise AssertionError(f"{cmd[2:5]} did not answer within 60 s")


def _env(database_url: str, metrics_dir: Any) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url,
        "JWT_SECRET": "test-secret-" + "x" * 40,
        "RATE_LIMIT_ENABLED": "false",
        "ACCESS_LOG": "false",
        "SHUTDOWN_DRAIN_S": "0",
        metrics.MULTIPROC_ENV: str(metrics_dir),
    }


def test_serve_with_workers_uses_a_fresh_metrics_directory(
    database_url: str, metrics_dir: Any
) -> None:
    metrics_dir.mkdir()
    stale = metrics_dir / "counter_999999.db"
    stale.write_bytes(b"left over from a past run")
    port = _free_port()
    cmd = [
        sys.executable,
        "-m",
        "tenantry.cli",
        "serve",
        "--workers",
        "2",
        "--port",
        str(port),
        "--no-migrate",
    ]
    proc = _serve(cmd, _env(database_url, metrics_dir), port)
    try:
        assert not stale.exists(), "a past run's metric files must not be counted"
        for _ in range(3):
            assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200
        body = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        readyz = [
            s.value
            for f in text_string_to_metric_families(body)
            for s in f.samples
            if s.name == REQUESTS and s.labels.get("route") == "/readyz"
        ]
        assert readyz == [3]
    finally:
        proc.terminate()
        proc.wait(timeout=30)


_WORKER = """
import sys
from tenantry.kit import metrics
metrics.REQUESTS.labels("/api/v1/things/{id}", "GET", "200").inc(int(sys.argv[1]))
metrics.IN_FLIGHT.inc(int(sys.argv[2]))
if sys.argv[3] == "exit":
    metrics.process_exited()
"""

_SCRAPE = """
import sys
from tenantry.kit import metrics
sys.stdout.write(metrics.render()[0].decode())
"""


def test_multiprocess_mode_sums_every_process(metrics_dir: Any) -> None:
    """Deterministically, what `tenantry serve --workers N` relies on: counters from several
    processes add up in any one's /metrics; a finished worker's live gauges drop out."""
    metrics_dir.mkdir()
    env = {**os.environ, metrics.MULTIPROC_ENV: str(metrics_dir)}

    def run(code: str, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    run(_WORKER, "3", "2", "stay")
    run(_WORKER, "4", "5", "exit")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(run(_SCRAPE))
        for s in f.samples
    }
    labels = (("method", "GET"), ("route", "/api/v1/things/{id}"), ("status", "200"))
    assert samples[(REQUESTS, labels)] == 7
    # livesum drops a worker once it is marked dead (the lifespan's shutdown does it): the
    # second process was, the first was not
    assert samples[("tenantry_http_requests_in_flight", ())] == 2


async def test_cache_lookups_reach_the_metrics(client: httpx.AsyncClient, world: World) -> None:
    """The caches report to /metrics: a cold then a warm /users/me is a principal miss, then
    a hit."""
    owner = await world.user(await world.tenant(), "owner")
    before = await metric_samples(client)
    assert (await client.get("/api/v1/users/me", headers=owner.headers)).status_code == 200
    assert (await client.get("/api/v1/users/me", headers=owner.headers)).status_code == 200
    after = await metric_samples(client)
    name = "tenantry_cache_requests_total"

    def delta(result: str) -> float:
        return sample_value(after, name, cache="principal", result=result) - sample_value(
            before, name, cache="principal", result=result
        )

    assert (delta("miss"), delta("hit")) == (1, 1)
