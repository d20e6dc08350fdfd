"""Webhook endpoints, events and deliveries.

`emit` is how a domain tells the outside world: in the caller's transaction it writes one
delivery per subscribed endpoint and queues its job, so an event exists exactly when the change
it reports does. Each delivery is signed by the Standard Webhooks scheme and retried on Svix's
schedule (`webhooks.delivery`).
"""

from __future__ import annotations

import base64
import secrets
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.audit.service import AuditService
from tenantry.authz.principal import Principal
from tenantry.kit.errors import Conflict, Invalid, NotFound
from tenantry.kit.http import OutboundRefused, check_url
from tenantry.kit.ids import new_id
from tenantry.kit.pagination import offset_of
from tenantry.kit.platform import Service
from tenantry.kit.repository import TenantScope
from tenantry.webhooks.models import WebhookDelivery, WebhookEndpoint
from tenantry.webhooks.repository import (
    AttemptRepository,
    DeliveryRepository,
    EndpointRepository,
)
from tenantry.webhooks.schemas import (
    AttemptOut,
    DeliveryOut,
    DeliveryPage,
    EndpointCreate,
    EndpointCreated,
    EndpointOut,
    EndpointPage,
)

DELIVER = "webhooks:deliver"


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


class WebhooksService(Service):
    async def create_endpoint(
        self, session: AsyncSession, admin: Principal, body: EndpointCreate
    ) -> EndpointCreated:
        try:
            url = await check_url(body.url, self.platform.settings.outbound_allowlist)
        except OutboundRefused as exc:
            raise Invalid(("body", "url"), str(exc), "url_refused") from None
        most = self.platform.settings.max_webhooks_per_tenant
        if await EndpointRepository(session, admin.scope).count_for_adding() >= most:
            raise Conflict(
                f"Your company has {most} webhook endpoints, the most it may have; remove one"
                " first (MAX_WEBHOOKS_PER_TENANT)."
            )
        secret = body.secret or new_secret()
        endpoint = WebhookEndpoint(
            url=url,
            secret_sealed=self.platform.secrets.seal(secret),
            events=list(body.events),
            enabled=True,
        )
        EndpointRepository(session, admin.scope).add(endpoint)
        await session.flush()
        await session.refresh(endpoint, ["created_at"])
        out = EndpointOut.model_validate(endpoint)
        self.platform.service(AuditService).record(
            session,
            admin.scope,
            "webhook.created",
            actor=admin,
            target=url,
            details={"endpoint_id": str(endpoint.id), "events": list(body.events)},
        )
        return EndpointCreated(**out.model_dump(), secret=secret)

    async def endpoints(
        self, session: AsyncSession, admin: Principal, *, page: int, per_page: int
    ) -> EndpointPage:
        found, total = await EndpointRepository(session, admin.scope).entity_page(
            offset=offset_of(page, per_page), limit=per_page
        )
        items = [EndpointOut.model_validate(e) for e in found]
        return EndpointPage.of(items, total=total, page=page, per_page=per_page)

    async def delete_endpoint(
        self, session: AsyncSession, admin: Principal, endpoint_id: uuid.UUID
    ) -> None:
        if not await EndpointRepository(session, admin.scope).remove(endpoint_id):
            raise NotFound("No such webhook endpoint in your company.")
        self.platform.service(AuditService).record(
            session, admin.scope, "webhook.deleted", actor=admin, target=str(endpoint_id)
        )

    async def emit(
        self, session: AsyncSession, scope: TenantScope, event_type: str, data: dict[str, Any]
    ) -> int:
        """The event, to every enabled endpoint subscribed to its type, in the caller's
        transaction; how many deliveries."""
        return await self.emit_many(session, scope, [(event_type, data)])

    async def emit_many(
        self, session: AsyncSession, scope: TenantScope, events: Sequence[tuple[str, Any]]
    ) -> int:
        """Each (type, data) event to every enabled endpoint subscribed to its type, once, in
        the caller's transaction: three statements however many events and endpoints (one
        when nobody listens); how many deliveries."""
        if not events:
            return 0
        endpoints = await EndpointRepository(session, scope).subscribed({t for t, _ in events})
        if not endpoints:
            return 0
        now = datetime.now(UTC)
        timestamp = now.isoformat()
        rows = [
            {
                "id": new_id(),
                "endpoint_id": endpoint.id,
                "event_type": event_type,
                "message_id": f"msg_{uuid.uuid4().hex}",
                "payload": {"type": event_type, "timestamp": timestamp, "data": data},
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
            }
            for event_type, data in events
            for endpoint in endpoints
            if event_type in endpoint.events
        ]
        if not rows:
            return 0
        jobs = self.platform.jobs
        job_ids = await jobs.defer_many(
            session,
            jobs.task(DELIVER),
            [
                {"tenant_id": str(scope.tenant_id), "delivery_id": str(row["id"]), "manual": False}
                for row in rows
            ],
        )
        for row, job_id in zip(rows, job_ids, strict=True):
            row["job_id"] = job_id
        await DeliveryRepository(session, scope).insert_many(rows)
        return len(rows)

    async def _queue(
        self, session: AsyncSession, scope: TenantScope, delivery: WebhookDelivery, *, manual: bool
    ) -> None:
        jobs = self.platform.jobs
        delivery.job_id = await jobs.defer(
            session,
            jobs.task(DELIVER),
            tenant_id=str(scope.tenant_id),
            delivery_id=str(delivery.id),
            manual=manual,
        )

    async def deliveries(
        self,
        session: AsyncSession,
        admin: Principal,
        *,
        status: str | None,
        page: int,
        per_page: int,
    ) -> DeliveryPage:
        """A page of deliveries with every attempt of each: two statements."""
        found, total = await DeliveryRepository(session, admin.scope).page(
            status=status, offset=offset_of(page, per_page), limit=per_page
        )
        attempts = await AttemptRepository(session, admin.scope).for_deliveries(
            [d.id for d in found]
        )
        items = [self._delivery_out(d, attempts.get(d.id, [])) for d in found]
        return DeliveryPage.of(items, total=total, page=page, per_page=per_page)

    def _delivery_out(self, delivery: WebhookDelivery, attempts: list[Any]) -> DeliveryOut:
        log = [AttemptOut.model_validate(a) for a in attempts]
        return DeliveryOut.model_validate({**delivery.__dict__, "attempt_log": log})

    async def retry(
        self, session: AsyncSession, admin: Principal, delivery_id: uuid.UUID
    ) -> DeliveryOut:
        """Send a failed delivery again, once, with the same `webhook-id`."""
        delivery = await DeliveryRepository(session, admin.scope).get(delivery_id)
        if delivery is None:
            raise NotFound("No such webhook delivery in your company.")
        if delivery.status != "failed":
            raise Conflict(f"Only a failed delivery can be retried; this one is {delivery.status}.")
        delivery.status = "pending"
        delivery.next_attempt_at = datetime.now(UTC)
        await self._queue(session, admin.scope, delivery, manual=True)
        await session.flush()
        attempts = await AttemptRepository(session, admin.scope).for_deliveries([delivery.id])
        return self._delivery_out(delivery, attempts.get(delivery.id, []))
