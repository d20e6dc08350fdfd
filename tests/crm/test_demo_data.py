"""CRM demo data at scale: customers with leads (and histories), calls and messages copied
into one company, spread over its territories (a demo set made when it has none), in
batches."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from tenantry.crm import demo_data
from tenantry.crm.models import Call, Customer, Lead, LeadStatusHistory, Message
from tenantry.kit.db import session_scope
from tenantry.tenants.models import Tenant
from tenantry.territories.models import TeamMember, Zone
from tests.support.world import CommittedWorld


async def test_customers_and_their_activity_land_in_one_company(
    committed: CommittedWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(demo_data, "BATCH", 120)  # several batches, each its own transaction
    tenant_id = await committed.tenant()
    people = [(await committed.user(tenant_id, "member", login=False)).id for _ in range(5)]
    async with session_scope(committed.db.sessionmaker) as session:
        slug = await session.scalar(select(Tenant.slug).where(Tenant.id == tenant_id))
    advanced: list[int] = []
    written = await demo_data.seed_customers(
        committed.platform, str(slug), 300, advance=advanced.append
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
        routed = (
            await session.execute(
                select(Lead.team_id, Lead.assigned_user_id).where(Lead.tenant_id == tenant_id)
            )
        ).all()
        zones = (
            await session.execute(
                select(Zone.postal_prefixes, Zone.team_id).where(Zone.tenant_id == tenant_id)
            )
        ).all()
        members = {
            (m.team_id, m.user_id)
            for m in (
                await session.execute(select(TeamMember).where(TeamMember.tenant_id == tenant_id))
            ).scalars()
        }
        codes = (
            await session.execute(
                select(Customer.postal_code).where(Customer.tenant_id == tenant_id)
            )
        ).scalars()
        postal = await session.scalar(
            select(func.count())
            .select_from(Customer)
            .where(Customer.tenant_id == tenant_id, Customer.postal_code.regexp_match("^[0-9]{5}$"))
        )
    assert counts == written and counts["customers"] == 300
    assert 300 <= counts["leads"] <= 900 and counts["lead_status_history"] >= counts["leads"]
    assert statuses <= {"new", "contacted", "qualified", "proposal", "won", "lost"}
    assert postal == 300
    # Four demo zones, each owned by a team of the company's people; every customer in a zone,
    # every lead with the zone's team and one of its members.
    assert len(zones) == 4 and {u for _, u in members} == set(people)
    prefixes = [p for ps, _ in zones for p in ps]
    assert all(any(code.startswith(p) for p in prefixes) for code in codes)
    assert all(team is not None and (team, user) in members for team, user in routed)
    assert len({team for team, _ in routed}) == 4

    with pytest.raises(LookupError, match="nope"):
        await demo_data.seed_customers(committed.platform, "nope", 1)
