"""Keeps the benchmark harness working: every scenario for a second, one round, one short locust
run, against a fresh database. Asserts that the harness ran and reported, not speeds."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

from bench.scenarios import SCENARIOS
from tests.support.services import create_database, drop_database

ROOT = Path(__file__).resolve().parents[2]


async def test_bench_runs_every_scenario_and_reports(admin_url: str, tmp_path: Path) -> None:
    name = f"tenantry_bench_{uuid.uuid4().hex[:8]}"
    url = await create_database(admin_url, name)
    try:
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
        proc = await asyncio.to_thread(
            subprocess.run,
            [
                sys.executable,
                "-m",
                "tenantry.cli",
                "bench",
                "--duration",
                "1",
                "--warmup",
                "1",
                "--repeat",
                "1",
                "--locust-duration",
                "5",
                "--locust-users",
                "5",
                "--crm-customers",
                "40",
                "--sync-duration",
                "5",
                "--database-url",
                url,
                "--out",
                str(tmp_path),
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    finally:
        await drop_database(admin_url, name)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    data = json.loads((tmp_path / "latest-server.json").read_text())
    assert [s["name"] for s in data["scenarios"]] == [s.name for s in SCENARIOS]
    for s in data["scenarios"]:
        assert s["rps"] > 0, s["name"]
        assert s["runs"][0]["requests"] > 0
        assert not s["failed"], s
    assert data["floor_fastapi_rps"] > 0
    assert [u["name"] for u in data["locust"]] == [
        "locust-teamuser-5",
        "locust-syncuser-5",
        "locust-onboardinguser-5",
    ]
    for user in data["locust"]:
        assert user["runs"][0]["requests"] > 0 and not user["failed"], user
    sync = data["sync"]  # whole syncs by a worker process, from real faulty sources
    assert sync["syncs"] > 0 and sync["succeeded"] > 0 and sync["source_calls"] > 0
    table = (tmp_path / "latest-server.md").read_text()
    assert "| floor-fastapi |" in table and "| mixed-100 |" in table
    assert "| sync-throughput |" in table
    assert (tmp_path / "latest-server.png").stat().st_size > 1000
    assert "pinned" in proc.stderr or "one CPU" in proc.stderr
