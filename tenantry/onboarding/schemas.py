"""Onboarding's requests and answers. Every answer of a profile is checked against the
catalog's vocabulary (`catalog.json`), and the OpenAPI document lists the allowed values."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tenantry.kit.text import DISTINCT, Email, one_of, text
from tenantry.onboarding.catalog import CATALOG, SIZES
from tenantry.onboarding.models import SESSION_ID_LENGTH
from tenantry.users.schemas import NewPassword

Industry = Annotated[str, one_of("industry", CATALOG.industries)]
CompanySize = Annotated[str, one_of("company size", SIZES)]
Challenge = Annotated[str, one_of("challenge", CATALOG.challenges)]
Tool = Annotated[str, one_of("tool", CATALOG.tools)]
Goal = Annotated[str, one_of("goal", CATALOG.goals)]
SuiteId = Annotated[str, one_of("suite", CATALOG.by_id)]
CurrencyCode = Annotated[str, one_of("currency", CATALOG.currencies)]
SessionId = Annotated[
    str,
    text(min_length=SESSION_ID_LENGTH, max_length=SESSION_ID_LENGTH, pattern=r"^[A-Za-z0-9_-]+$"),
]
Cycle = Literal["monthly", "annual"]
Step = Literal["profile", "pricing_viewed", "completed"]


class ProfileCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    company_name: Annotated[str, text(min_length=1, max_length=200)] = Field(examples=["Test Corp"])
    industry: Industry = Field(examples=["technology"])
    company_size: CompanySize = Field(examples=["startup"])
    primary_challenges: Annotated[list[Challenge], Field(min_length=1, max_length=10), DISTINCT] = (
        Field(examples=[["marketing_optimization"]])
    )
    current_tools: Annotated[list[Tool], Field(max_length=10), DISTINCT] = []
    goals: Annotated[list[Goal], Field(min_length=1, max_length=7), DISTINCT] = Field(
        examples=[["increase_roi"]]
    )
    user_email: Email | None = Field(None, description="Where the welcome report goes")


class RecommendedSuite(BaseModel):
    suite_id: str
    name: str
    score: int = Field(ge=0, le=100)
    reasons: list[str]


class ProfileCreated(BaseModel):
    session_id: str = Field(description="Keep it: it is the key to this visitor's progress")
    recommended_suites: list[RecommendedSuite]
    expires_at: datetime


class SessionOut(BaseModel):
    session_id: str
    step: Step = Field(description="The furthest step reached")
    demo_mode: bool = Field(description="Exploring with demo data: true until completed")
    email: str | None
    profile: ProfileCreate
    recommended_suites: list[RecommendedSuite]
    quote_id: uuid.UUID | None = Field(description="The latest quote priced in this session")
    tenant_id: uuid.UUID | None = Field(description="The company made when it completed")
    created_at: datetime
    expires_at: datetime


class PricingRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        # what `_sized` checks, in the schema for generated clients and fuzzers
        json_schema_extra={"anyOf": [{"required": ["session_id"]}, {"required": ["company_size"]}]},
    )

    session_id: SessionId | None = Field(None, description="Prices for the session's company")
    company_size: CompanySize | None = Field(None, description="Or for this size, without one")
    suites: Annotated[
        list[SuiteId],
        Field(min_length=1, max_length=len(CATALOG.suites)),
        DISTINCT,
    ] = Field(examples=[["marketing_optimization", "analytics"]])
    billing_cycle: Cycle = "monthly"
    currency: CurrencyCode = CATALOG.base_currency
    email: Email | None = Field(None, description="Checked for billing bypass (else the session's)")

    @model_validator(mode="after")
    def _sized(self) -> PricingRequest:
        if self.session_id is None and self.company_size is None:
            raise ValueError("send a session_id or a company_size")
        return self


class LineOut(BaseModel):
    suite_id: str
    name: str
    monthly_price: Decimal = Field(description="Per month, in the quote's currency")
    months: int
    amount: Decimal


class DiscountOut(BaseModel):
    kind: Literal["bundle", "annual", "billing_bypass"]
    label: str
    amount: Decimal


class QuoteOut(BaseModel):
    id: uuid.UUID
    session_id: str | None
    catalog_version: str
    company_size: str
    billing_cycle: Cycle
    currency: str
    lines: list[LineOut]
    subtotal: Decimal
    discounts: list[DiscountOut]
    total: Decimal = Field(description="subtotal minus the discounts, exactly; never negative")
    billing_bypass_reason: str | None
    created_at: datetime


class CompleteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    session_id: SessionId
    password: NewPassword | None = Field(
        None, description="The owner's password; unset, one is made and returned once"
    )
    full_name: Annotated[str, text(min_length=1, max_length=200)] | None = None
    email: Email | None = Field(None, description="The owner's email, if the profile had none")


class Completed(BaseModel):
    tenant_id: uuid.UUID
    tenant_slug: str
    user_id: uuid.UUID
    email: str
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int
    password: str | None = Field(description="The password made for the owner: shown once")
    created: bool = Field(description="False: this session was completed before")


class FunnelStep(BaseModel):
    step: Step
    sessions: int
    rate_from_start: float = Field(description="Share of the sessions that made a profile")
    rate_from_previous: float = Field(description="Share of the previous step's sessions")


class FunnelDay(BaseModel):
    date: date
    profile: int
    pricing_viewed: int
    completed: int


class FunnelOut(BaseModel):
    from_date: date
    to_date: date
    steps: list[FunnelStep]
    days: list[FunnelDay]
