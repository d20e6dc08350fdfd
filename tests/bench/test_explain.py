"""`bench/explain.py` on a small seeded database, sequential scans priced out: every list's
statements can be served by an index (the seeded run, `python -m bench.explain`, judges the
plans the planner really picks at 100,000 customers)."""

from __future__ import annotations

import asyncio
import uuid

from bench.explain import LISTS, explain_lists, table
from bench.seed import seed
from tenantry.app import create_app
from tenantry.config import Settings
from tenantry.kit.db import Database
from tenantry.kit.migrations import upgrade
from tests.support.services import create_database, drop_database

PASSWORD = "explain-demo-password"


async def test_every_list_can_use_an_index(admin_url: str, settings: Settings) -> None:
    name = f"tenantry_explain_{uuid.uuid4().hex[:8]}"
    url = await create_database(admin_url, name)
    try:
        await asyncio.to_thread(upgrade, url)
        await seed(url, password=PASSWORD, extra_users=0, sync_runs=0, crm_customers=300)
        own = settings.model_copy(update={"database_url": url})
        database = Database(url, own)
        app = create_app(own, database=database)
        try:
            async with app.router.lifespan_context(app):
                dsn = url.replace("postgresql+asyncpg://", "postgresql://")
                found = await explain_lists(app, dsn, password=PASSWORD, price_out_seqscan=True)
        finally:
            await database.dispose()
    finally:
        await drop_database(admin_url, name)
    print(table(found, "small set, sequential scans priced out"))
    assert [e.name for e in found] == [name for name, _ in LISTS]
    for e in found:
        assert e.statements >= 1 and e.indexes, e
        assert e.ok, f"{e.name} reads {e.scans} whole: {e.path}"
