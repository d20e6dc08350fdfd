"""What one company may keep is bounded, each bound a setting, each refusal a problem: webhook
endpoints and sync sources (bodies, pages, headers, strings and logins have their own tests:
`tests/kit/test_http_stack.py`, `tests/kit/test_text.py`, `test_headers.py`,
`test_login_limits.py`)."""

from __future__ import annotations

import asyncio

from tenantry.config import Settings
from tenantry.kit.db import Database
from tests.support.asserts import assert_problem
from tests.support.platform import client_for, make_app
from tests.support.world import CommittedWorld, login

PUBLIC = "https://93.184.215.14/"


async def test_webhooks_and_sources_per_company_are_bounded(
    settings: Settings, database: Database, committed: CommittedWorld
) -> None:
    """Committed, each request on its own connection: the additions really race."""
    owner = await committed.user(await committed.tenant(), "owner", login=False)
    other = await committed.user(await committed.tenant(), "owner", login=False)
    app = make_app(settings, database, max_webhooks_per_tenant=2, max_sync_sources_per_tenant=2)
    kinds = (
        ("/api/v1/webhooks", {"url": PUBLIC, "events": ["lead.created"]}, "MAX_WEBHOOKS"),
        ("/api/v1/sync-sources", {"name": "crm", "base_url": PUBLIC}, "MAX_SYNC_SOURCES"),
    )
    async with client_for(app) as c:
        owner.headers = await login(c, owner.email)
        other.headers = await login(c, other.email)
        for path, body, setting in kinds:
            made = await asyncio.gather(
                *(c.post(path, json=body, headers=owner.headers) for _ in range(3))
            )
            codes = sorted(r.status_code for r in made)
            assert codes == [201, 201, 409], [r.text for r in made]  # even all at once
            refused = next(r for r in made if r.status_code == 409)
            assert setting in assert_problem(refused, 409, "conflict")["detail"]
            listed = (await c.get(path, headers=owner.headers)).json()
            assert listed["total"] == 2
            # another company's budget is its own
            assert (await c.post(path, json=body, headers=other.headers)).status_code == 201
