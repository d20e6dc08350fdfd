from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from tenantry.kit.pagination import Page
from tenantry.kit.text import text
from tenantry.users.schemas import Role


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, text(min_length=1, max_length=100)] = Field(examples=["CRM sync"])
    role: Role = Field("member", description="At most your own role")
    expires_at: AwareDatetime | None = Field(None, description="Unset: never expires")

    @field_validator("expires_at")
    @classmethod
    def _in_the_future(cls, value: datetime | None) -> datetime | None:
        if value is not None and value <= datetime.now(UTC):
            raise ValueError("expires_at must be in the future")
        return value


class ApiKeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    role: Role
    prefix: str = Field(description="The key's first characters, to recognise it")
    created_by: uuid.UUID
    expires_at: datetime | None
    last_used_at: datetime | None = Field(description="Recorded at most about once a minute")
    created_at: datetime


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="The key itself: shown this once, never again")


class ApiKeyPage(Page[ApiKeyOut]):
    pass
