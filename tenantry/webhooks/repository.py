"""Every query of the webhooks domain."""

from __future__ import annotations

import uuid
from collections import defaultdict

from tenantry.kit.repository import TenantRepository
from tenantry.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint


class EndpointRepository(TenantRepository[WebhookEndpoint]):
    model = WebhookEndpoint

    async def subscribed(self, event_types: set[str]) -> list[WebhookEndpoint]:
        """The enabled endpoints subscribed to any of `event_types`."""
        stmt = self.select().where(
            WebhookEndpoint.enabled.is_(True),
            WebhookEndpoint.events.overlap(sorted(event_types)),  # array && ARRAY[types]
        )
        return list((await self.session.execute(stmt)).scalars())

    async def remove(self, endpoint_id: uuid.UUID) -> bool:
        stmt = self.delete().where(WebhookEndpoint.id == endpoint_id)
        return bool((await self.session.execute(stmt)).rowcount)  # type: ignore[attr-defined]


class DeliveryRepository(TenantRepository[WebhookDelivery]):
    model = WebhookDelivery

    async def page(
        self, *, status: str | None, offset: int, limit: int
    ) -> tuple[list[WebhookDelivery], int]:
        """Newest first, optionally of one status, with the total in the same statement."""
        return await self.entity_page(
            offset=offset,
            limit=limit,
            where=() if status is None else (WebhookDelivery.status == status,),
            order_by=(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc()),
        )


class AttemptRepository(TenantRepository[WebhookAttempt]):
    model = WebhookAttempt

    async def for_deliveries(
        self, delivery_ids: list[uuid.UUID]
    ) -> dict[uuid.UUID, list[WebhookAttempt]]:
        """The attempts of many deliveries in one statement, by delivery, in order."""
        if not delivery_ids:
            return {}
        stmt = (
            self.select()
            .where(WebhookAttempt.delivery_id.in_(delivery_ids))
            .order_by(WebhookAttempt.delivery_id, WebhookAttempt.number)
        )
        found: dict[uuid.UUID, list[WebhookAttempt]] = defaultdict(list)
        for attempt in (await self.session.execute(stmt)).scalars():
            found[attempt.delivery_id].append(attempt)
        return found
