from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from tenantry.kit.cursor import CursorPage
from tenantry.kit.text import DISTINCT, text

Name = Annotated[str, text(min_length=1, max_length=100)]
PostalCode = Annotated[str, text(min_length=1, max_length=20)]
Prefix = Annotated[str, text(min_length=1, max_length=20, pattern=r"^[A-Za-z0-9][A-Za-z0-9 -]*$")]


class RegionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name


class RegionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    created_at: datetime


class TeamCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    members: Annotated[list[uuid.UUID], Field(max_length=100), DISTINCT] = Field(
        default_factory=list, description="Active users of your company, in order"
    )


class MemberOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    user_id: uuid.UUID
    slot: int


class TeamOut(BaseModel):
    id: uuid.UUID
    name: str
    members: list[MemberOut]
    created_at: datetime


class ZoneCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    region_id: uuid.UUID
    code: Annotated[str, text(min_length=1, max_length=32)] = Field(examples=["MAD-CENTRO"])
    postal_prefixes: Annotated[list[Prefix], Field(min_length=1, max_length=50), DISTINCT] = Field(
        examples=[["280", "281"]]
    )
    team_id: uuid.UUID | None = Field(None, description="The team that owns its leads")


class ZoneOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    region_id: uuid.UUID
    code: str
    postal_prefixes: list[str]
    team_id: uuid.UUID | None
    created_at: datetime


class Resolved(BaseModel):
    zone_id: uuid.UUID
    code: str
    region_id: uuid.UUID
    team_id: uuid.UUID | None
    matched_prefix: str = Field(description="The longest prefix of the postal code that matched")


class Named(BaseModel):
    id: uuid.UUID
    name: str


class ContextTenant(BaseModel):
    id: uuid.UUID
    slug: str
    name: str


class ContextZone(BaseModel):
    id: uuid.UUID
    code: str
    region_id: uuid.UUID


class UserContext(BaseModel):
    """Who the caller is in their company: its tenant, their role, and their territory."""

    user_id: uuid.UUID
    tenant: ContextTenant
    role: str
    teams: list[Named]
    regions: list[Named]
    zones: list[ContextZone]


class DemoZone(BaseModel):
    """A zone as demo data spreads customers over it: its prefixes, team and members."""

    prefixes: list[str]
    team_id: uuid.UUID | None
    members: list[uuid.UUID]


class RegionList(CursorPage[RegionOut]):
    pass


class TeamList(CursorPage[TeamOut]):
    pass


class ZoneList(CursorPage[ZoneOut]):
    pass
