from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from zoneinfo import available_timezones

from pydantic import BaseModel, ConfigDict, Field, field_validator

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

    timezone: str | None = Field(None, max_length=64, examples=["Europe/Berlin"])
    locale: str | None = Field(None, pattern=r"^[a-z]{2,3}(-[A-Z]{2})?$", examples=["de-DE"])
    currency: str | None = Field(None, pattern=r"^[A-Z]{3}$", examples=["EUR"])
    business_hours: dict[str, Any] | None = None
    lead_statuses: list[str] | None = Field(None, min_length=1, max_length=32)
    default_team_id: uuid.UUID | None = None
    branding: dict[str, Any] | None = None
    feature_flags: dict[str, bool] | None = None

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
