"""A revocation must not wait for the invalidation bus. Two app instances share PostgreSQL and
a Redis of this test's own, which is then killed: instance A deactivates a user and cannot tell
B; B, deaf while its bus is down, trusts its cached principals only
`CACHE_TRUST_WITHOUT_BUS_S` and so refuses the user within a few seconds, not after the
5-minute cache TTL or whenever Redis returns."""

from __future__ import annotations

import time

from tenantry.config import Settings
from tenantry.kit.db import Database
from tests.resilience.conftest import PrivateRedis
from tests.support.platform import eventually, two_instances
from tests.support.world import CommittedWorld, login

ME = "/api/v1/users/me"


async def test_a_deactivation_is_refused_everywhere_within_seconds_while_redis_is_down(
    settings: Settings,
    committed: CommittedWorld,
    committed_db: Database,
    private_redis: PrivateRedis,
) -> None:
    deaf = settings.model_copy(
        update={
            "redis_url": private_redis.url,
            "cache_trust_without_bus_s": 0.5,
            "redis_retry_s": 0.2,
        }
    )
    tenant = await committed.tenant()
    owner = await committed.user(tenant, "owner", login=False)
    member = await committed.user(tenant, login=False)
    async with two_instances(deaf, committed_db) as (a, b):
        owner_h, member_h = await login(a, owner.email), await login(b, member.email)
        assert (await b.get(ME, headers=member_h)).status_code == 200  # cached on B now
        private_redis.kill()
        r = await a.patch(f"/api/v1/users/{member.id}", json={"is_active": False}, headers=owner_h)
        assert r.status_code == 200  # the change is made; B cannot be told
        started = time.monotonic()

        async def refused_on_b() -> bool:
            return (await b.get(ME, headers=member_h)).status_code == 401

        await eventually(refused_on_b, within_s=5)
        print(f"refused on the other instance after {time.monotonic() - started:.2f} s")
