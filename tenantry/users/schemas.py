from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict

from tenantry.kit.pagination import Page
from tenantry.kit.text import Email, text
from tenantry.tenants.schemas import TenantSummary

Role = Literal["owner", "admin", "member"]
AccountType = Literal["customer", "internal_employee"]


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    full_name: str
    role: Role
    account_type: AccountType
    is_active: bool
    last_login_at: datetime | None
    created_at: datetime


class MeOut(BaseModel):
    id: uuid.UUID
    email: str
    full_name: str
    role: Role
    account_type: AccountType
    tenant: TenantSummary


FullName = Annotated[str, text(min_length=1, max_length=200)]
NewPassword = Annotated[str, text(min_length=10, max_length=1024)]


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email
    full_name: FullName
    password: NewPassword
    role: Role = "member"


class UserPatch(BaseModel):
    """Only the fields sent are changed. Changing the role or deactivating revokes every
    token the user holds."""

    model_config = ConfigDict(extra="forbid")

    full_name: FullName | None = None
    role: Role | None = None
    is_active: bool | None = None


class UserPage(Page[UserOut]):
    pass


class InternalUserOut(UserOut):
    company: TenantSummary


class InternalUserPage(Page[InternalUserOut]):
    pass


class InternalUserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: Email
    full_name: FullName
    password: NewPassword
    role: Role = "member"
