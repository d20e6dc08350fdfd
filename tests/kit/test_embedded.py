"""The embedded PostgreSQL: starts from the wheel, keeps its data, stops cleanly."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from tenantry.kit import embedded
from tenantry.kit.db import plain_url

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def pgdata() -> Iterator[Path]:
    path = ROOT / "var" / "test-embedded-lifecycle"
    shutil.rmtree(path, ignore_errors=True)
    yield path
    embedded.stop(path)
    shutil.rmtree(path, ignore_errors=True)


async def _query(url: str, sql: str) -> object:
    conn = await asyncpg.connect(plain_url(url))
    try:
        if sql.startswith("SELECT"):
            return await conn.fetchval(sql)
        return await conn.execute(sql)
    finally:
        await conn.close()


async def test_start_stop_and_restart_keeps_data(pgdata: Path) -> None:
    url = embedded.start(pgdata, database="lifecycle")
    assert embedded.start(pgdata, database="lifecycle") == url  # idempotent in a process
    await _query(url, "CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)")
    pid_file = pgdata / "postmaster.pid"
    assert pid_file.exists()
    embedded.stop(pgdata)
    assert not pid_file.exists(), "the server should be stopped"
    url = embedded.start(pgdata, database="lifecycle")
    assert await _query(url, "SELECT v FROM kept") == 42
