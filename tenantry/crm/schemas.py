from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import Query
from pydantic import BaseModel, ConfigDict, Field

from tenantry.kit.cursor import CursorPage
from tenantry.kit.text import Email, text

ExternalId = Annotated[str, text(min_length=1, max_length=200)]


class ImportedLead(BaseModel):
    """A lead as an outside system sends it (the sync contract)."""

    model_config = ConfigDict(extra="ignore")

    external_id: ExternalId
    status: Annotated[str, text(min_length=1, max_length=32)]
    value: Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=2)] | None = None


class ImportedCustomer(BaseModel):
    """A customer as an outside system sends it, with its leads (the sync contract)."""

    model_config = ConfigDict(extra="ignore")

    external_id: ExternalId
    name: Annotated[str, text(min_length=1, max_length=200)]
    email: Email | None = None
    phone: Annotated[str, text(max_length=50)] | None = None
    postal_code: Annotated[str, text(max_length=20)] | None = None
    leads: list[ImportedLead] = Field(default_factory=list, max_length=1000)


Name = Annotated[str, text(min_length=1, max_length=200)]
Search = Annotated[
    str | None,
    Query(description="Part of the name, email or phone (any case)"),
    text(min_length=1, max_length=100),
]
Phone = Annotated[str, text(min_length=1, max_length=50, pattern=r"^[0-9+()./ -]+$")]
PostalCode = Annotated[str, text(min_length=1, max_length=20)]


class CustomerCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name = Field(examples=["Ada Lovelace"])
    email: Email | None = None
    phone: Phone | None = Field(None, examples=["+34 600 000 001"])
    postal_code: PostalCode | None = Field(None, examples=["28001"])


class CustomerPatch(BaseModel):
    """Only the fields sent change; `null` clears an optional one."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    email: Email | None = None
    phone: Phone | None = None
    postal_code: PostalCode | None = None


class CustomerOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    email: str | None
    phone: str | None
    postal_code: str | None
    zone_id: uuid.UUID | None
    source_id: uuid.UUID | None = Field(description="The sync source it came from, if any")
    external_id: str | None
    created_at: datetime
    updated_at: datetime


class CustomerList(CursorPage[CustomerOut]):
    pass


Status = Annotated[str, text(min_length=1, max_length=32)]
StatusFilter = Annotated[str | None, text(min_length=1, max_length=32)]
Money = Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=2)]


class LeadCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: uuid.UUID
    status: Status | None = Field(
        None, description="One of the company's statuses; unset: its first"
    )
    value: Money | None = Field(None, examples=["1200.00"])
    assigned_user_id: uuid.UUID | None = Field(None, description="An active user of the company")


class LeadPatch(BaseModel):
    """Only the fields sent change; a new `status` is recorded in the lead's history."""

    model_config = ConfigDict(extra="forbid")

    status: Status | None = None
    value: Money | None = None
    assigned_user_id: uuid.UUID | None = None


class LeadOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    customer_id: uuid.UUID
    customer_name: str
    status: str
    source: str = Field(description="How it came: manual, sync or api")
    team_id: uuid.UUID | None
    assigned_user_id: uuid.UUID | None
    value: Decimal | None
    created_at: datetime
    updated_at: datetime


class LeadList(CursorPage[LeadOut]):
    pass


class StatusChange(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    from_status: str | None
    to_status: str
    changed_by: uuid.UUID | None
    created_at: datetime


class Timeline(BaseModel):
    lead_id: uuid.UUID
    statuses: list[StatusChange] = Field(description="Newest first")


Direction = Literal["inbound", "outbound"]
CallStatus = Literal["completed", "missed", "voicemail", "failed"]
Channel = Literal["whatsapp", "sms", "email"]


class CallCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: uuid.UUID
    lead_id: uuid.UUID | None = Field(None, description="The lead the call was about")
    direction: Direction
    status: CallStatus
    duration_s: int = Field(0, ge=0, le=86_400)


class CallOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    customer_id: uuid.UUID
    lead_id: uuid.UUID | None
    direction: str
    status: str
    duration_s: int
    created_at: datetime


class CallList(CursorPage[CallOut]):
    pass


class MessageCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: uuid.UUID
    channel: Channel
    to_number: Annotated[str, text(min_length=1, max_length=320)] | None = Field(
        None, description="The number (or address) it went to; unset: the customer's"
    )
    direction: Direction = "outbound"
    body: Annotated[str, text(min_length=1, max_length=4096)]


class MessageOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    customer_id: uuid.UUID
    channel: str
    to_number: str | None
    direction: str
    body: str
    created_at: datetime


class MessageList(CursorPage[MessageOut]):
    pass


class LatestLead(BaseModel):
    id: uuid.UUID
    status: str
    value: Decimal | None
    created_at: datetime


class LastCall(BaseModel):
    id: uuid.UUID
    status: str
    direction: str
    duration_s: int
    created_at: datetime


class CustomerInsight(BaseModel):
    id: uuid.UUID
    name: str
    email: str | None
    phone: str | None
    leads_count: int
    calls_count: int
    latest_lead: LatestLead | None
    last_call: LastCall | None


class InsightList(CursorPage[CustomerInsight]):
    pass
