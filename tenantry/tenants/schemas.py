from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any
from zoneinfo import available_timezones

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tenantry.kit.pagination import Page
from tenantry.kit.text import JSON_OBJECT_BOUNDS, CheckedKeys, JsonObject, text

_TIMEZONES = frozenset(available_timezones()) | {"UTC"}


class TenantOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    slug: str
    name: str
    industry: str | None
    company_size: str | None
    status: str
    suites: list[str]
    created_at: datetime


class TenantPage(Page[TenantOut]):
    pass


class TenantSummary(BaseModel):
    id: uuid.UUID
    slug: str
    name: str
    status: str


class TenantSettingsOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    timezone: str
    locale: str
    currency: str
    business_hours: dict[str, Any]
    lead_statuses: list[str]
    default_team_id: uuid.UUID | None
    branding: dict[str, Any]
    feature_flags: dict[str, bool]
    updated_at: datetime


class TenantSettingsPatch(BaseModel):
    """Only the fields sent are changed."""

    model_config = ConfigDict(extra="forbid")

    timezone: Annotated[str, text(max_length=64)] | None = Field(None, examples=["Europe/Berlin"])
    locale: Annotated[str, text(pattern=r"^[a-z]{2,3}(-[A-Z]{2})?$")] | None = Field(
        None, examples=["de-DE"]
    )
    currency: Annotated[str, text(pattern=r"^[A-Z]{3}$")] | None = Field(None, examples=["EUR"])
    business_hours: JsonObject | None = Field(None, description=JSON_OBJECT_BOUNDS)
    lead_statuses: list[Annotated[str, text(min_length=1, max_length=32)]] | None = Field(
        None, min_length=1, max_length=32, description="Each 1 to 32 characters once trimmed"
    )
    default_team_id: uuid.UUID | None = None
    branding: JsonObject | None = Field(None, description=JSON_OBJECT_BOUNDS)
    feature_flags: Annotated[dict[str, bool], Field(max_length=100), CheckedKeys] | None = Field(
        None, description="At most 100 flags: name (at most 128 characters), on or off"
    )

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str | None) -> str | None:
        if value is not None and value not in _TIMEZONES:
            raise ValueError(f"unknown time zone {value!r}; use an IANA name such as Europe/Berlin")
        return value

    @field_validator("lead_statuses")
    @classmethod
    def _distinct_statuses(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return value
        cleaned = [s.strip().lower() for s in value]
        if any(not s or len(s) > 32 for s in cleaned):
            raise ValueError("each lead status is 1 to 32 characters")
        if len(set(cleaned)) != len(cleaned):
            raise ValueError("lead statuses must be distinct")
        return cleaned
