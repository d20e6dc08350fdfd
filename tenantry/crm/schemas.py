from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

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
