"""One try of one delivery (the `webhooks:deliver` job's body).

Signed by the Standard Webhooks scheme (`webhook-id`, `webhook-timestamp`,
`webhook-signature`; the `standardwebhooks` package), so any receiver's stock verifier accepts
it. The `webhook-id` is the delivery's own, the same on every try, so a receiver can drop a
message it already has; the timestamp and signature are made afresh for each try.

A 2xx within OUTBOUND_READ_TIMEOUT_S (15 s) is success. Anything else is a failed try, recorded:
a 3xx (redirects are not followed), a 4xx or 5xx, a timeout, a refused address. An open
circuit (a breaker per endpoint: the receiver failed often just now) sends nothing and spends
no try: the try waits for the circuit's cool-down instead. A 410 disables the endpoint. A
429 comes back after its `Retry-After`. Otherwise the next try follows Svix's schedule
(immediately, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h, each with jitter); after the last,
the delivery has failed. A retry asked for by hand is one try.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import httpx
from sqlalchemy.ext.asyncio import AsyncSession
from standardwebhooks import Webhook

from tenantry.kit import metrics
from tenantry.kit.http import CircuitOpen, UpstreamError
from tenantry.kit.jobs import unit_of_work
from tenantry.kit.logging import get_logger
from tenantry.kit.platform import Platform
from tenantry.kit.repository import TenantScope
from tenantry.kit.retries import RetryIn, Schedule
from tenantry.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from tenantry.webhooks.repository import (
    AttemptRepository,
    DeliveryRepository,
    EndpointRepository,
)

log = get_logger("tenantry.webhooks")

# The waits after the 1st, 2nd ... failed try: Svix's schedule (its first try is immediate).
SVIX = Schedule((5, 300, 1800, 7200, 18000, 36000, 36000), jitter=0.1)
MAX_RETRY_AFTER_S = 36000


def retry_after_s(value: str | None, default: float) -> float:
    """A `Retry-After` header (seconds, or an HTTP date) as seconds from now."""
    if not value:
        return default
    try:
        return min(float(value), MAX_RETRY_AFTER_S)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    return min(max(0.0, (when - datetime.now(UTC)).total_seconds()), MAX_RETRY_AFTER_S)


class Deliverer:
    def __init__(self, platform: Platform, scope: TenantScope, delivery_id: uuid.UUID) -> None:
        self.platform, self.scope, self.delivery_id = platform, scope, delivery_id

    async def run(self, *, manual: bool) -> str:
        """One try; the delivery's status after it. Raises `RetryIn` for the next try."""
        async with unit_of_work(self.platform) as session:
            delivery = await DeliveryRepository(session, self.scope).get(self.delivery_id)
            if delivery is None or delivery.status != "pending":
                return "skipped"
            endpoint = await EndpointRepository(session, self.scope).get(delivery.endpoint_id)
            if endpoint is None or not endpoint.enabled:
                delivery.status, delivery.last_error = "failed", "the endpoint is disabled"
                delivery.next_attempt_at = None
                return "failed"
            secret = self.platform.secrets.open(endpoint.secret_sealed)
            number = delivery.attempts + 1
            url, endpoint_id = endpoint.url, endpoint.id
            message_id, payload = delivery.message_id, delivery.payload

        started = time.monotonic()
        try:
            status_code, error, retry_after = await self._send(
                url, endpoint_id, secret, message_id, payload
            )
        except CircuitOpen as exc:
            if not manual:  # nothing was sent: no try spent, wait for the circuit instead
                await self._postpone(str(exc))
            status_code, error, retry_after = None, str(exc), None
        took_ms = int((time.monotonic() - started) * 1000)
        return await self._record(number, status_code, error, retry_after, took_ms, manual=manual)

    async def _send(
        self,
        url: str,
        endpoint_id: uuid.UUID,
        secret: str,
        message_id: str,
        payload: dict[str, object],
    ) -> tuple[int | None, str | None, str | None]:
        body = json.dumps(payload, separators=(",", ":"))
        now = datetime.now(UTC)
        headers = {
            "content-type": "application/json",
            "webhook-id": message_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook(secret).sign(message_id, now, body),
        }
        try:
            response = await self.platform.outbound.request(
                "POST",
                url,
                attempts=1,
                circuit=f"webhook:{endpoint_id}",
                content=body,
                headers=headers,
            )
        except UpstreamError as exc:
            return exc.response.status_code, f"answered {exc.response.status_code}", None
        except httpx.TimeoutException:
            return None, "no answer in time", None
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}"[:500], None
        if 200 <= response.status_code < 300:
            return response.status_code, None, None
        return (
            response.status_code,
            f"answered {response.status_code}",
            response.headers.get("retry-after"),
        )

    async def _postpone(self, reason: str) -> None:
        """The endpoint's circuit is open (it failed often just now): this try waits until the
        circuit may close, and is not counted (a receiver down for a moment would otherwise
        push every delivery to the schedule's 5-minute slot). Jittered, so the deliveries
        waiting on one endpoint do not all come back at once."""
        jitter = 1 + random.random() * 0.2  # noqa: S311 - spreading, not a secret
        wait = self.platform.settings.outbound_breaker_cooldown_s * jitter
        async with unit_of_work(self.platform) as session:
            delivery = await DeliveryRepository(session, self.scope).get(self.delivery_id)
            assert delivery is not None
            delivery.last_error = reason
            delivery.next_attempt_at = datetime.now(UTC) + timedelta(seconds=wait)
        metrics.record_event("webhook_try", "postponed")
        raise RetryIn(wait, reason)

    async def _record(
        self,
        number: int,
        status_code: int | None,
        error: str | None,
        retry_after: str | None,
        took_ms: int,
        *,
        manual: bool,
    ) -> str:
        retry_in: float | None = None
        async with unit_of_work(self.platform) as session:
            delivery = await DeliveryRepository(session, self.scope).get(self.delivery_id)
            assert delivery is not None  # deleted only with its endpoint, which sent it
            AttemptRepository(session, self.scope).add(
                WebhookAttempt(
                    delivery_id=delivery.id,
                    number=number,
                    status_code=status_code,
                    error=error,
                    duration_ms=took_ms,
                )
            )
            delivery.attempts = number
            delivery.last_status_code, delivery.last_error = status_code, error
            if error is None:
                delivery.status, delivery.next_attempt_at = "succeeded", None
            elif status_code == 410:
                await self._disable(session, delivery)
            elif not manual:
                default = SVIX.delay_s(number)
                if status_code == 429 and default is not None:
                    retry_in = retry_after_s(retry_after, default)
                else:
                    retry_in = default
            if error is not None and retry_in is None and delivery.status == "pending":
                delivery.status, delivery.next_attempt_at = "failed", None
            elif retry_in is not None:
                delivery.next_attempt_at = datetime.now(UTC) + timedelta(seconds=retry_in)
            status = delivery.status
        outcome = "retried" if retry_in is not None else status
        metrics.record_event("webhook_try", outcome)
        log.info(
            "webhook try",
            tenant_id=str(self.scope.tenant_id),
            delivery_id=str(self.delivery_id),
            number=number,
            status_code=status_code,
            outcome=outcome,
        )
        if retry_in is not None:
            raise RetryIn(retry_in, error or "failed")
        return status

    async def _disable(self, session: AsyncSession, delivery: WebhookDelivery) -> None:
        """A 410: the receiver says the endpoint is gone for good; no more deliveries."""
        endpoint: WebhookEndpoint | None = await EndpointRepository(session, self.scope).get(
            delivery.endpoint_id
        )
        if endpoint is not None:
            endpoint.enabled = False
            endpoint.disabled_reason = f"answered 410 Gone at {datetime.now(UTC).isoformat()}"
        delivery.status, delivery.next_attempt_at = "failed", None
