"""Webhooks: endpoints made by owners and admins with a secret shown once; events delivered to
the endpoints subscribed to them, signed so that the stock Standard Webhooks verifier accepts
them, retried on Svix's schedule with the same webhook-id, a 429's Retry-After honoured, a 410
disabling the endpoint, every attempt recorded."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select

from tenantry.app import JOB_TASKS
from tenantry.config import Settings
from tenantry.kit.db import Database, session_scope
from tenantry.kit.http import Outbound
from tenantry.kit.jobs import Jobs
from tenantry.kit.platform import Platform
from tenantry.kit.repository import TenantScope
from tenantry.kit.retries import RetryIn
from tenantry.webhooks.delivery import Deliverer, retry_after_s
from tenantry.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from tenantry.webhooks.service import WebhooksService, new_secret
from tests.support.asserts import assert_problem, queries
from tests.support.http_source import Source, serving
from tests.support.world import CommittedWorld, World

HOOKS = "/api/v1/webhooks"
PUBLIC = "https://93.184.215.14/hooks"


# --- through the API ------------------------------------------------------------------------


async def test_an_endpoint_shows_its_secret_once(world: World) -> None:
    owner = await world.user(await world.tenant(), "owner")
    r = await world.client.post(
        HOOKS, json={"url": PUBLIC, "events": ["sync.completed"]}, headers=owner.headers
    )
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["secret"].startswith("whsec_") and made["enabled"] is True
    listed = await world.client.get(HOOKS, headers=owner.headers)
    assert "secret" not in listed.json()["items"][0] and made["secret"] not in listed.text
    assert queries(listed) == 1
    stored = (
        await world.session.execute(
            select(WebhookEndpoint.secret_sealed).where(WebhookEndpoint.id == uuid.UUID(made["id"]))
        )
    ).scalar_one()
    assert world.platform.secrets.open(stored) == made["secret"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "http://127.0.0.1:9/hook"}, "url"),
        ({"url": "http://10.0.0.1/hook"}, "url"),
        ({"url": "http://169.254.169.254/latest/meta-data/"}, "url"),
        ({"url": "ftp://93.184.215.14/hook"}, "url"),
        ({"events": []}, "events"),
        ({"events": ["order.shipped"]}, "events"),
        ({"events": ["lead.created", "lead.created"]}, "events"),
        ({"secret": "not-a-standard-webhooks-secret-at-all"}, "secret"),
    ],
)
async def test_bad_endpoints_are_refused_naming_the_field(
    world: World, body: dict[str, Any], field: str
) -> None:
    owner = await world.user(await world.tenant(), "owner")
    r = await world.client.post(
        HOOKS, json={"url": PUBLIC, "events": ["lead.created"], **body}, headers=owner.headers
    )
    problem = assert_problem(r, 422, "validation-error")
    assert ["body", field] == problem["errors"][0]["loc"][:2]


async def test_another_tenants_endpoint_and_delivery_are_not_found(world: World) -> None:
    owner = await world.user(await world.tenant(), "owner")
    stranger = await world.user(await world.tenant(), "owner")
    r = await world.client.post(
        HOOKS, json={"url": PUBLIC, "events": ["lead.created"]}, headers=stranger.headers
    )
    theirs = r.json()["id"]
    assert_problem(await world.client.delete(f"{HOOKS}/{theirs}", headers=owner.headers), 404)
    r = await world.client.post(f"{HOOKS}/deliveries/{uuid.uuid4()}/retry", headers=owner.headers)
    assert_problem(r, 404)
    r = await world.client.get(f"{HOOKS}/deliveries?status=lost", headers=owner.headers)
    assert_problem(r, 422)
    assert (
        await world.client.delete(f"{HOOKS}/{theirs}", headers=stranger.headers)
    ).status_code == 204


# --- deliveries, against a real receiver -----------------------------------------------------


@pytest.fixture
async def platform(committed_db: Database, settings: Settings) -> AsyncIterator[Platform]:
    quick = settings.model_copy(update={"outbound_allowlist": ["127.0.0.1"]})
    made = Platform.build(quick, committed_db)
    made.outbound = Outbound(quick)
    made.jobs = Jobs(settings.database_url or "", quick, JOB_TASKS)
    await made.jobs.open()
    try:
        yield made
    finally:
        await made.jobs.close()
        await made.outbound.aclose()


async def _endpoint(
    committed: CommittedWorld, platform: Platform, url: str, secret: str, events: list[str]
) -> tuple[TenantScope, uuid.UUID]:
    tenant_id = await committed.tenant()
    async with session_scope(committed.db.sessionmaker) as session:
        endpoint = WebhookEndpoint(
            tenant_id=tenant_id,
            url=url,
            secret_sealed=platform.secrets.seal(secret),
            events=events,
            enabled=True,
        )
        session.add(endpoint)
    return TenantScope(tenant_id), endpoint.id


async def _emit(committed: CommittedWorld, platform: Platform, scope: TenantScope) -> list[Any]:
    async with session_scope(committed.db.sessionmaker) as session:
        await platform.service(WebhooksService).emit(
            session, scope, "sync.completed", {"run_id": "r-1", "records_written": 3}
        )
    return await _deliveries(committed, scope)


async def _deliveries(committed: CommittedWorld, scope: TenantScope) -> list[WebhookDelivery]:
    async with session_scope(committed.db.sessionmaker) as session:
        found = await session.execute(
            select(WebhookDelivery).where(WebhookDelivery.tenant_id == scope.tenant_id)
        )
        return list(found.scalars())


async def _attempts(committed: CommittedWorld, scope: TenantScope) -> list[WebhookAttempt]:
    async with session_scope(committed.db.sessionmaker) as session:
        found = await session.execute(
            select(WebhookAttempt)
            .where(WebhookAttempt.tenant_id == scope.tenant_id)
            .order_by(WebhookAttempt.number)
        )
        return list(found.scalars())


async def test_a_subscribed_endpoint_gets_the_event_signed_and_the_worker_delivers_it(
    committed: CommittedWorld, platform: Platform
) -> None:
    secret = new_secret()
    receiver = Source(webhook_secret=secret)
    async with serving(receiver):
        scope, _ = await _endpoint(
            committed, platform, receiver.url + "/hook", secret, ["sync.completed"]
        )
        async with session_scope(committed.db.sessionmaker) as session:
            other = WebhookEndpoint(
                tenant_id=scope.tenant_id,
                url=receiver.url + "/hook",
                secret_sealed=platform.secrets.seal(secret),
                events=["lead.created"],  # not subscribed to this event
                enabled=True,
            )
            session.add(other)
        [delivery] = await _emit(committed, platform, scope)
        await platform.jobs.work(platform, queues=["webhooks"], wait=False)
    [(headers, _, payload)] = receiver.received
    assert payload is not None  # the stock verifier accepted the signature
    assert payload["type"] == "sync.completed" and payload["data"]["records_written"] == 3
    assert set(payload) == {"type", "timestamp", "data"}
    assert headers["webhook-id"] == delivery.message_id
    [done] = await _deliveries(committed, scope)
    assert (done.status, done.attempts, done.last_status_code) == ("succeeded", 1, 200)


async def test_failed_tries_follow_the_schedule_with_the_same_webhook_id(
    committed: CommittedWorld, platform: Platform
) -> None:
    secret = new_secret()
    receiver = Source(webhook_secret=secret)
    receiver.switches.fail_next = 2
    async with serving(receiver):
        scope, _ = await _endpoint(
            committed, platform, receiver.url + "/hook", secret, ["sync.completed"]
        )
        [delivery] = await _emit(committed, platform, scope)
        deliverer = Deliverer(platform, scope, delivery.id)
        with pytest.raises(RetryIn) as first:
            await deliverer.run(manual=False)
        assert 4.5 <= first.value.seconds <= 5.5  # Svix: 5 s after the first failure
        with pytest.raises(RetryIn) as second:
            await deliverer.run(manual=False)
        assert 270 <= second.value.seconds <= 330  # then 5 min
        assert await deliverer.run(manual=False) == "succeeded"
    ids = {headers["webhook-id"] for headers, _, _ in receiver.received}
    assert ids == {delivery.message_id} and len(receiver.received) == 3
    attempts = await _attempts(committed, scope)
    assert [(a.number, a.status_code) for a in attempts] == [(1, 500), (2, 500), (3, 200)]


async def test_a_429_is_retried_after_its_retry_after_and_a_410_disables_the_endpoint(
    committed: CommittedWorld, platform: Platform
) -> None:
    secret = new_secret()
    receiver = Source(webhook_secret=secret)
    async with serving(receiver):
        scope, endpoint_id = await _endpoint(
            committed, platform, receiver.url + "/hook", secret, ["sync.completed"]
        )
        receiver.switches.fail_next, receiver.switches.fail_status = 1, 429
        receiver.switches.retry_after = "7"
        [delivery] = await _emit(committed, platform, scope)
        with pytest.raises(RetryIn) as later:
            await Deliverer(platform, scope, delivery.id).run(manual=False)
        assert later.value.seconds == 7

        receiver.switches.fail_next, receiver.switches.fail_status = 1, 410
        receiver.switches.retry_after = None
        assert await Deliverer(platform, scope, delivery.id).run(manual=False) == "failed"
    async with session_scope(committed.db.sessionmaker) as session:
        endpoint = await session.get(WebhookEndpoint, (scope.tenant_id, endpoint_id))
        assert endpoint is not None and endpoint.enabled is False
        assert "410" in (endpoint.disabled_reason or "")
    assert len(await _emit(committed, platform, scope)) == 1  # no new delivery for it


async def test_after_the_last_try_it_fails_and_a_retry_by_hand_sends_it_again(
    committed: CommittedWorld, platform: Platform
) -> None:
    secret = new_secret()
    receiver = Source(webhook_secret=secret)
    async with serving(receiver):
        scope, _ = await _endpoint(
            committed, platform, receiver.url + "/hook", secret, ["sync.completed"]
        )
        [delivery] = await _emit(committed, platform, scope)
        async with session_scope(committed.db.sessionmaker) as session:
            row = await session.get(WebhookDelivery, (scope.tenant_id, delivery.id))
            assert row is not None
            row.attempts = 7  # seven tries failed already: this is the eighth and last
        receiver.switches.fail_next = 1
        assert await Deliverer(platform, scope, delivery.id).run(manual=False) == "failed"

        service = platform.service(WebhooksService)
        admin = await committed.user(scope.tenant_id, "owner", login=False)
        principal = await _principal(platform, admin.id, scope)
        async with session_scope(committed.db.sessionmaker) as session:
            out = await service.retry(session, principal, delivery.id)
        assert out.status == "pending" and out.message_id == delivery.message_id
        assert await Deliverer(platform, scope, delivery.id).run(manual=True) == "succeeded"
    assert [h["webhook-id"] for h, _, _ in receiver.received] == [delivery.message_id] * 2


async def _principal(platform: Platform, user_id: uuid.UUID, scope: TenantScope) -> Any:
    from tenantry.authz.service import PrincipalService

    found = await platform.service(PrincipalService).cached(scope.tenant_id, user_id)
    assert found is not None
    return found


def test_retry_after_reads_seconds_and_dates() -> None:
    assert retry_after_s("120", 5) == 120
    assert retry_after_s(None, 5) == 5
    assert retry_after_s("soon", 5) == 5
    assert retry_after_s("Wed, 21 Oct 2015 07:28:00 GMT", 5) == 0  # in the past: now
    assert retry_after_s("999999999", 5) == 36000  # capped
