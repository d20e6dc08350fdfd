"""What claims to be shared by every instance, shown with two real API processes (and through
nginx): onboarding sessions, OAuth state, rate limits, cached settings, token revocation and the
job queue. Each test talks to the instances directly where which one answers matters."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.cluster.conftest import LOGINS_PER_MINUTE, PASSWORD, Cluster, login
from tests.onboarding.test_profile import SEED_PROFILE
from tests.support.http_source import Source, serving

pytestmark = pytest.mark.cluster

OWNER = "owner@acme.example"


@asynccontextmanager
async def instances(cluster: Cluster) -> AsyncIterator[tuple[httpx.AsyncClient, ...]]:
    """A client for each API process, in the order script/cluster started them."""
    clients = [httpx.AsyncClient(base_url=url, timeout=30) for url in cluster.api]
    try:
        yield tuple(clients)
    finally:
        for c in clients:
            await c.aclose()


def address() -> str:
    """A client address of the test's own (the auth limit's key)."""
    n = uuid.uuid4().int
    return f"198.18.{n % 250}.{n // 250 % 250 + 1}"


async def test_an_onboarding_session_started_on_one_instance_completes_on_another(
    cluster: Cluster,
) -> None:
    email = f"owner-{uuid.uuid4().hex[:10]}@cluster.example"
    async with instances(cluster) as (a, b):
        r = await a.post(
            "/api/v1/onboarding/company-profile",
            json={**SEED_PROFILE, "company_name": "Cluster Co", "user_email": email},
        )
        assert r.status_code == 201, r.text
        session_id = r.json()["session_id"]
        assert (await b.get(f"/api/v1/onboarding/sessions/{session_id}")).status_code == 200
        done = await b.post(
            "/api/v1/onboarding/complete-demo-experience",
            json={"session_id": session_id, "password": PASSWORD, "full_name": "Ada Cluster"},
        )
        assert done.status_code == 201, done.text
        state = (await a.get(f"/api/v1/onboarding/sessions/{session_id}")).json()
        assert (state["step"], state["tenant_id"]) == ("completed", done.json()["tenant_id"])
        token = {"Authorization": f"Bearer {done.json()['access_token']}"}
        me = await a.get("/api/v1/users/me", headers=token)
        assert (me.status_code, me.json()["email"]) == (200, email)


async def test_an_oauth_login_started_on_one_instance_completes_on_another(
    cluster: Cluster,
) -> None:
    async with instances(cluster) as (a, b), httpx.AsyncClient() as browser:
        r = await a.get("/api/v1/auth/oauth/corp/authorize")
        assert r.status_code == 302, r.text
        at_provider = await browser.get(r.headers["location"])
        assert at_provider.status_code == 302, at_provider.text
        back = urlsplit(at_provider.headers["location"])
        r = await b.get(f"{back.path}?{back.query}")
        assert r.status_code == 200, r.text
        me = await a.get(
            "/api/v1/users/me", headers={"Authorization": f"Bearer {r.json()['access_token']}"}
        )
        assert me.json()["email"] == OWNER
        # The state was taken once: the same callback on the first instance is refused.
        again = await a.get(f"{back.path}?{back.query}")
        assert again.status_code == 400, again.text


async def test_rate_limits_count_across_instances(cluster: Cluster) -> None:
    """RATE_LIMIT_AUTH counts each address's logins in Redis: turns between the instances
    spend one allowance."""
    me = {"X-Forwarded-For": address()}
    wrong = {"email": "nobody@cluster.example", "password": "not the password"}
    async with instances(cluster) as (a, b):
        remaining = []
        for n in range(LOGINS_PER_MINUTE):
            r = await (a, b)[n % 2].post("/api/v1/auth/login", json=wrong, headers=me)
            assert r.status_code == 401, r.text
            remaining.append(int(r.headers["ratelimit"].split("r=")[1].split(";")[0]))
        assert remaining == list(range(LOGINS_PER_MINUTE - 1, -1, -1))
        for client in (a, b):
            r = await client.post("/api/v1/auth/login", json=wrong, headers=me)
            assert r.status_code == 429, r.text
            assert int(r.headers["retry-after"]) > 0


async def test_a_settings_write_reaches_every_instance_within_a_second(cluster: Cluster) -> None:
    async with instances(cluster) as (a, b):
        owner = await login(a, OWNER, address())
        before = [(await c.get("/api/v1/tenant/settings", headers=owner)).json() for c in (a, b)]
        assert before[0] == before[1]  # both cached now
        timezone = "Asia/Tokyo" if before[0]["timezone"] != "Asia/Tokyo" else "Europe/Madrid"
        r = await a.patch("/api/v1/tenant/settings", json={"timezone": timezone}, headers=owner)
        assert r.status_code == 200, r.text
        written = time.monotonic()
        while (await b.get("/api/v1/tenant/settings", headers=owner)).json()[
            "timezone"
        ] != timezone:
            assert time.monotonic() - written < 1, "the other instance still serves the old"
            await asyncio.sleep(0.01)
        print(f"settings on the other instance after {1000 * (time.monotonic() - written):.0f} ms")


async def test_a_revoked_token_is_refused_by_every_instance_at_once(cluster: Cluster) -> None:
    email = f"member-{uuid.uuid4().hex[:10]}@acme.example"
    async with instances(cluster) as (a, b):
        owner = await login(a, OWNER, address())
        made = await a.post(
            "/api/v1/users",
            json={"email": email, "full_name": "Short Lived", "password": PASSWORD},
            headers=owner,
        )
        assert made.status_code == 201, made.text
        member = await login(b, email, address())
        for c in (a, b):  # the token's claims and principal are cached on both now
            assert (await c.get("/api/v1/users/me", headers=member)).status_code == 200
        r = await b.patch(
            f"/api/v1/users/{made.json()['id']}", json={"is_active": False}, headers=owner
        )
        assert r.status_code == 200, r.text
        refused = [(await c.get("/api/v1/users/me", headers=member)).status_code for c in (a, b)]
        assert refused == [401, 401]


async def test_jobs_deferred_by_any_instance_run_once_on_the_worker(cluster: Cluster) -> None:
    """Leads made through both instances and through nginx: each `lead.created` delivery,
    queued in the request's transaction, is run by the worker exactly once."""
    secret = "whsec_" + "Cl8sTeRmKQ9r8GKYqrTwjUPD8ILPZIo2"
    receiver = Source(webhook_secret=secret)
    async with (
        instances(cluster) as (a, b),
        httpx.AsyncClient(base_url=cluster.url, timeout=30) as front,
        serving(receiver),
    ):
        owner = await login(a, OWNER, address())
        hook = await a.post(
            "/api/v1/webhooks",
            json={"url": receiver.url + "/hook", "events": ["lead.created"], "secret": secret},
            headers=owner,
        )
        assert hook.status_code == 201, hook.text
        customer = await b.post("/api/v1/customers", json={"name": "Ada"}, headers=owner)
        made = []
        for n in range(30):
            r = await (a, b, front)[n % 3].post(
                "/api/v1/leads", json={"customer_id": customer.json()["id"]}, headers=owner
            )
            assert r.status_code == 201, r.text
            made.append(r.json()["id"])

        def delivered() -> list[Any]:
            return [p["data"]["lead_id"] for _, _, p in receiver.received if p is not None]

        started = time.monotonic()
        while sorted(set(delivered())) != sorted(made):
            assert time.monotonic() - started < 30, f"{len(delivered())} of 30 arrived"
            await asyncio.sleep(0.2)
        await asyncio.sleep(1)  # nothing arrives twice
        assert sorted(delivered()) == sorted(made)
        await a.delete(f"/api/v1/webhooks/{hook.json()['id']}", headers=owner)
