"""CRM demo data at scale: customers with leads (and histories), calls and messages copied
into one company, in its zones, in batches."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from tenantry.crm import demo_data
from tenantry.crm.models import Call, Customer, Lead, LeadStatusHistory, Message
from tenantry.kit.db import session_scope
from tenantry.tenants.models import Tenant
from tests.support.world import CommittedWorld


async def test_customers_and_their_activity_land_in_one_company(
    committed: CommittedWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(demo_data, "BATCH", 120)  # several batches, each its own transaction
    tenant_id = await committed.tenant()
    async with session_scope(committed.db.sessionmaker) as session:
        slug = await session.scalar(select(Tenant.slug).where(Tenant.id == tenant_id))
    advanced: list[int] = []
    written = await demo_data.seed_customers(
        committed.db.sessionmaker, str(slug), 300, advance=advanced.append
    )
    assert advanced == [120, 120, 60]
    counts = {}
    async with session_scope(committed.db.sessionmaker) as session:
        for model in (Customer, Lead, LeadStatusHistory, Call, Message):
            stmt = select(func.count()).select_from(model).where(model.tenant_id == tenant_id)
            counts[model.__tablename__] = await session.scalar(stmt)
        statuses = set(
            (await session.execute(select(Lead.status).where(Lead.tenant_id == tenant_id)))
            .scalars()
            .all()
        )
        postal = await session.scalar(
            select(func.count())
            .select_from(Customer)
            .where(Customer.tenant_id == tenant_id, Customer.postal_code.regexp_match("^[0-9]{5}$"))
        )
    assert counts == written and counts["customers"] == 300
    assert 300 <= counts["leads"] <= 900 and counts["lead_status_history"] >= counts["leads"]
    assert statuses <= {"new", "contacted", "qualified", "proposal", "won", "lost"}
    assert postal == 300

    with pytest.raises(LookupError, match="nope"):
        await demo_data.seed_customers(committed.db.sessionmaker, "nope", 1)
