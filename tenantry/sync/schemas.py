from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from croniter import croniter
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from tenantry.kit.pagination import Page
from tenantry.kit.text import Url, text

Kind = Literal["http_json"]
DEFAULT_SCHEDULE = "*/5 * * * *"


def _cron(value: str) -> str:
    if not croniter.is_valid(value):
        raise ValueError("not a cron expression (five fields, such as '*/5 * * * *')")
    return value


Cron = Annotated[str, text(min_length=9, max_length=100), AfterValidator(_cron)]
HeaderName = Annotated[
    str, text(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9-]*$")
]
Secret = Annotated[str, text(min_length=1, max_length=4096)]


class SourceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, text(min_length=1, max_length=100)] = Field(examples=["Legacy CRM"])
    kind: Kind = "http_json"
    base_url: Url = Field(
        description="http(s); a public address (or a host in OUTBOUND_ALLOWLIST)",
        examples=["https://crm.example.com/export/customers"],
    )
    auth_header: HeaderName = Field("Authorization", description="Header the secret is sent in")
    secret: Secret | None = Field(
        None, description="Sent as the header's value; stored encrypted, never returned"
    )
    page_size: int = Field(100, ge=1, le=1000)
    schedule: Cron = Field(DEFAULT_SCHEDULE, description="When it syncs by itself (cron, UTC)")
    enabled: bool = True


class SourcePatch(BaseModel):
    """Only the fields sent change; `secret: null` removes the secret."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, text(min_length=1, max_length=100)] | None = None
    base_url: Url | None = None
    auth_header: HeaderName | None = None
    secret: Secret | None = None
    page_size: int | None = Field(None, ge=1, le=1000)
    schedule: Cron | None = None
    enabled: bool | None = None


class SourceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    kind: Kind
    base_url: str
    auth_header: str
    has_secret: bool = Field(description="Whether a secret is stored (it is never shown)")
    page_size: int
    schedule: str
    enabled: bool
    created_at: datetime
    updated_at: datetime


class SourcePage(Page[SourceOut]):
    pass


RunStatus = Literal["pending", "running", "succeeded", "failed"]


class SyncRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source_id: uuid.UUID


class SyncAccepted(BaseModel):
    task_id: uuid.UUID = Field(description="The sync run's id")
    status_url: str = Field(description="Where to follow the run: `GET /api/v1/syncs/{id}`")
    status: RunStatus
    created: bool = Field(description="False when a pending or running run of the source exists")


class RecordError(BaseModel):
    page: int
    external_id: str | None
    error: str


class RunOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    source_id: uuid.UUID
    status: RunStatus
    trigger: Literal["manual", "schedule"]
    pages_done: int
    next_page: int | None = Field(description="Where the run goes on from (its checkpoint)")
    records_in: int
    records_written: int = Field(description="Customers inserted or updated")
    leads_written: int
    records_failed: int
    record_errors: list[RecordError] = Field(description="The first records that failed")
    error: str | None = Field(description="Why the run failed, or why its last try did")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_s: float | None = Field(description="From start to finish, once finished")


class RunPage(Page[RunOut]):
    pass
