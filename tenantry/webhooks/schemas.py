from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from standardwebhooks import Webhook

from tenantry.kit.pagination import Page
from tenantry.kit.text import DISTINCT, Url, text

EventType = Literal["sync.completed", "customer.created", "lead.created", "lead.status_changed"]
DeliveryStatus = Literal["pending", "succeeded", "failed"]


def _whsec(value: str) -> str:
    try:
        Webhook(value)
    except Exception:
        raise ValueError(
            "a Standard Webhooks secret: `whsec_` and base64 (24 to 64 bytes)"
        ) from None
    return value


Secret = Annotated[
    str,
    text(min_length=32, max_length=120, pattern=r"^whsec_[A-Za-z0-9+/=]+$"),
    AfterValidator(_whsec),
]


class EndpointCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Url = Field(examples=["https://hooks.example.com/tenantry"])
    events: Annotated[list[EventType], Field(min_length=1, max_length=4), DISTINCT]
    secret: Secret | None = Field(
        None, description="Unset: one is made; either way it is in this response only"
    )


class EndpointOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    url: str
    events: list[EventType]
    enabled: bool
    disabled_reason: str | None = Field(description="Why deliveries stopped (a 410 answer)")
    created_at: datetime


class EndpointCreated(EndpointOut):
    secret: str = Field(description="The signing secret: shown this once, never again")


class EndpointPage(Page[EndpointOut]):
    pass


class AttemptOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    number: int
    status_code: int | None
    error: str | None
    duration_ms: int
    created_at: datetime


class DeliveryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    endpoint_id: uuid.UUID
    event_type: EventType
    message_id: str = Field(description="The `webhook-id` header: the same on every try")
    payload: dict[str, Any]
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    created_at: datetime
    attempt_log: list[AttemptOut]


class DeliveryPage(Page[DeliveryOut]):
    pass
