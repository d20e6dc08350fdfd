"""The benchmark's fixed data set: the demo companies plus `extra_users` members of acme.

The extra users share one argon2 hash (computed once) and go in with one multi-row INSERT:
hashing each would make seeding take minutes and measure nothing we care about.
"""

from __future__ import annotations

from sqlalchemy import func, insert, select

from tenantry.config import get_settings
from tenantry.demo import seed_demo
from tenantry.kit.db import Database, session_scope
from tenantry.kit.ids import new_id
from tenantry.kit.platform import Platform
from tenantry.kit.security import configure_password_hashing, hash_password
from tenantry.tenants.models import Tenant
from tenantry.users.models import User


async def seed(url: str, *, password: str, extra_users: int) -> None:
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
    finally:
        await db.dispose()
