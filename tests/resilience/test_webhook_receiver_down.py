"""A webhook receiver that is down for a while, with real processes: `tenantry serve` (its
worker in process) delivers `lead.created` for every lead the API acknowledged; the receiver
refuses connections while the leads are made, and comes back. The failed tries are retried on
their schedule (the second 5 s after the first); once the endpoint's circuit opens, the other
deliveries wait for its cool-down without spending a try; every acknowledged lead's event
arrives, signed, exactly once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx

from tests.resilience.conftest import REQUEST_TIMEOUT_S, Server, Writes
from tests.support.http_source import Source, serving

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


async def test_deliveries_missed_while_the_receiver_was_down_arrive_once_it_is_back(
    serve: Callable[..., Server],
) -> None:
    server = serve(OUTBOUND_ALLOWLIST="127.0.0.1", OUTBOUND_BREAKER_COOLDOWN_S="3")
    receiver = Source(webhook_secret=SECRET)
    async with httpx.AsyncClient(base_url=server.url, timeout=REQUEST_TIMEOUT_S + 5) as client:
        owner = (await Writes.as_demo_owner(client)).headers
        r = await client.post(
            "/api/v1/webhooks",
            json={"url": receiver.url + "/hook", "events": ["lead.created"], "secret": SECRET},
            headers=owner,
        )
        assert r.status_code == 201, r.text
        customer = await client.post("/api/v1/customers", json={"name": "Ada"}, headers=owner)
        acknowledged = []
        for _ in range(20):  # the receiver is down: nothing listens on its port
            r = await client.post(
                "/api/v1/leads", json={"customer_id": customer.json()["id"]}, headers=owner
            )
            assert r.status_code == 201, r.text
            acknowledged.append(r.json()["id"])
        await asyncio.sleep(1)  # the first tries fail meanwhile
        async with serving(receiver):
            started = time.monotonic()

            def delivered() -> list[Any]:
                return [p["data"]["lead_id"] for _, _, p in receiver.received if p is not None]

            while sorted(set(delivered())) != sorted(acknowledged):
                assert time.monotonic() - started < 60, f"{len(delivered())} of 20 arrived"
                await asyncio.sleep(0.5)
            arrived_after = time.monotonic() - started
            await asyncio.sleep(1)  # nothing more comes
            events = delivered()
        deliveries = (await client.get("/api/v1/webhooks/deliveries", headers=owner)).json()
    print(
        f"20 leads acknowledged while the receiver was down; all arrived {arrived_after:.1f} s"
        f" after it came back; {len(events)} deliveries"
    )
    assert sorted(events) == sorted(acknowledged)  # each once
    assert all(d["status"] == "succeeded" for d in deliveries["items"])
    # The first tries found nothing listening; then the endpoint's circuit opened, and the
    # rest waited for it without spending a try (so none was pushed to the 5-minute slot).
    failed_first = [d for d in deliveries["items"] if d["attempts"] >= 2]
    assert failed_first and all(d["attempt_log"][0]["status_code"] is None for d in failed_first)
