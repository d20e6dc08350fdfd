"""The benchmark's fixed data set: the demo companies plus `extra_users` members of acme, and
for acme one sync source with `sync_runs` finished runs (the seed's sync history list).

The extra users share one argon2 hash (computed once) and go in with one multi-row INSERT:
hashing each would make seeding take minutes and measure nothing we care about.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select

from tenantry.config import get_settings
from tenantry.crm.demo_data import seed_customers
from tenantry.crm.models import Customer
from tenantry.demo import seed_demo
from tenantry.kit.db import Database, session_scope
from tenantry.kit.ids import new_id
from tenantry.kit.platform import Platform
from tenantry.kit.security import configure_password_hashing, hash_password
from tenantry.sync.models import SyncRun, SyncSource
from tenantry.tenants.models import Tenant
from tenantry.users.models import User


async def seed(
    url: str, *, password: str, extra_users: int, sync_runs: int = 200, crm_customers: int = 0
) -> None:
    settings = get_settings()
    configure_password_hashing(settings)
    db = Database(url, settings)
    try:
        async with session_scope(db.sessionmaker) as session:
            await seed_demo(
                Platform.build(settings, db),
                session,
                password=password,
                operator_slug=settings.operator_tenant_slug,
            )
            acme = (
                await session.execute(select(Tenant.id).where(Tenant.slug == "acme"))
            ).scalar_one()
            have = (
                await session.execute(
                    select(func.count()).select_from(User).where(User.tenant_id == acme)
                )
            ).scalar_one()
            missing = extra_users + 2 - have
            if missing > 0:
                shared_hash = await hash_password(password)
                rows = [
                    {
                        "id": new_id(),
                        "tenant_id": acme,
                        "email": f"bench-{have + i}@acme.example",
                        "full_name": f"Bench User {have + i}",
                        "password_hash": shared_hash,
                        "role": "member",
                        "account_type": "customer",
                    }
                    for i in range(missing)
                ]
                await session.execute(insert(User), rows)
            await _sync_history(session, acme, sync_runs)
            have_customers = (
                await session.execute(
                    select(func.count()).select_from(Customer).where(Customer.tenant_id == acme)
                )
            ).scalar_one()
        if crm_customers > have_customers:  # the CRM scenarios' data, once
            platform = Platform.build(settings, db)
            await seed_customers(platform, "acme", crm_customers - have_customers)
    finally:
        await db.dispose()


async def _sync_history(session: Any, tenant_id: Any, runs: int) -> None:
    """A disabled source (nothing calls it) and its finished runs, once."""
    found = await session.execute(
        select(func.count()).select_from(SyncSource).where(SyncSource.tenant_id == tenant_id)
    )
    if found.scalar_one() or runs <= 0:
        return
    source_id = new_id()
    await session.execute(
        insert(SyncSource),
        [
            {
                "tenant_id": tenant_id,
                "id": source_id,
                "name": "Legacy CRM",
                "kind": "http_json",
                "base_url": "https://93.184.215.14/export",
                "auth_header": "Authorization",
                "page_size": 100,
                "schedule": "*/5 * * * *",
                "enabled": False,
            }
        ],
    )
    now = datetime.now(UTC)
    await session.execute(
        insert(SyncRun),
        [
            {
                "tenant_id": tenant_id,
                "id": new_id(),
                "source_id": source_id,
                "status": "failed" if i % 10 == 0 else "succeeded",
                "trigger": "schedule",
                "pages_done": 10,
                "records_in": 1000,
                "records_written": 998,
                "leads_written": 1000,
                "records_failed": 2,
                "record_errors": [
                    {"page": 3, "external_id": f"c-{i}", "error": "name: Field required"}
                ],
                "error": "page 7: the source answered 503" if i % 10 == 0 else None,
                "started_at": now - timedelta(minutes=5 * i, seconds=30),
                "finished_at": now - timedelta(minutes=5 * i),
                "created_at": now - timedelta(minutes=5 * i, seconds=31),
            }
            for i in range(runs)
        ],
    )
