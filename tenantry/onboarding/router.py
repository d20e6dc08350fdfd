"""Onboarding's HTTP surface: no login is needed until the company exists. The visitor's
`session_id` is the key to their progress (unguessable, 24 h)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status

from tenantry.authz.dependencies import PlatformAdmin
from tenantry.kit.conditional import NOT_MODIFIED, cached_json
from tenantry.kit.deps import SessionDep
from tenantry.kit.errors import problems
from tenantry.kit.lane import hot
from tenantry.onboarding import catalog
from tenantry.onboarding.completion import CompletionService
from tenantry.onboarding.schemas import (
    Completed,
    CompleteRequest,
    FunnelOut,
    PricingRequest,
    ProfileCreate,
    ProfileCreated,
    QuoteOut,
    SessionId,
    SessionOut,
)
from tenantry.onboarding.service import OnboardingService

router = APIRouter(prefix="/onboarding", tags=["onboarding"])
admin_router = APIRouter(prefix="/admin/onboarding", tags=["admin"])

Onboarding = Annotated[OnboardingService, Depends(OnboardingService.dep)]
Completion = Annotated[CompletionService, Depends(CompletionService.dep)]


@router.get(
    "/suite-catalog",
    summary="The product suites, their modules, features and prices, and the profile's vocabulary",
    response_model=catalog.CatalogOut,
    responses=NOT_MODIFIED,
)
@hot
async def get_suite_catalog(request: Request) -> Response:
    """The same for every visitor: served from memory with a strong ETag (`If-None-Match`
    gets a 304) and `Cache-Control: public`."""
    return cached_json(request, catalog.RENDERED, cache_control=catalog.PUBLIC)


@router.post(
    "/company-profile",
    summary="Start onboarding: the company's profile in, recommended suites and a session out",
    response_model=ProfileCreated,
    status_code=status.HTTP_201_CREATED,
    responses=problems(400, 413, 422, 503),
)
async def create_company_profile(
    body: ProfileCreate, onboarding: Onboarding, session: SessionDep
) -> ProfileCreated:
    """Each recommended suite comes with its score (0-100) and the reasons for it; the rules
    are documented in the catalog (`rules`). The session lasts 24 hours."""
    return await onboarding.create_profile(session, body)


@router.get(
    "/sessions/{session_id}",
    summary="A visitor's onboarding session: profile, recommendations, quote, step",
    response_model=SessionOut,
    responses=problems(404, 422, 503),
)
async def get_onboarding_session(
    session_id: Annotated[SessionId, Path()], onboarding: Onboarding
) -> SessionOut:
    return await onboarding.session_view(session_id)


@router.post(
    "/pricing",
    summary="Price the chosen suites for a company size and billing cycle: a stored quote",
    response_model=QuoteOut,
    status_code=status.HTTP_201_CREATED,
    responses=problems(400, 404, 413, 422, 503),
)
async def price_suites(
    body: PricingRequest, onboarding: Onboarding, session: SessionDep
) -> QuoteOut:
    """Bundle discounts (the second suite, by price, 10% off; the third and later 15%), an
    annual discount, and billing bypass for configured email domains; money in the currency's
    minor unit, rounded half-even once. The quote is kept, unchanged, at its URL."""
    return await onboarding.quote(session, body)


@router.get(
    "/quotes/{quote_id}",
    summary="A quote as it was given, naming the catalog version it was priced from",
    response_model=QuoteOut,
    responses=problems(404, 422),
)
async def get_quote(quote_id: uuid.UUID, onboarding: Onboarding, session: SessionDep) -> QuoteOut:
    return await onboarding.stored_quote(session, quote_id)


@router.post(
    "/complete-demo-experience",
    summary="Finish onboarding: the company, its settings and its owner, and a token",
    response_model=Completed,
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"model": Completed, "description": "Completed before: the same company"},
        **problems(400, 404, 409, 413, 422, 503),
    },
)
async def complete_demo_experience(
    body: CompleteRequest, response: Response, completion: Completion, session: SessionDep
) -> Completed:
    """Queues the welcome mail (a PDF report of the profile, recommendations and quote).
    Completing a session again answers with the same company (200), never a second one."""
    done = await completion.complete(session, body)
    if not done.created:
        response.status_code = status.HTTP_200_OK
    return done


def _default_from() -> date:
    return datetime.now(UTC).date() - timedelta(days=29)


@admin_router.get(
    "/funnel",
    summary="The onboarding funnel: sessions per step and conversion, in total and per day",
    response_model=FunnelOut,
    responses=problems(401, 403, 422),
)
async def get_onboarding_funnel(
    onboarding: Onboarding,
    session: SessionDep,
    _: PlatformAdmin,
    from_: Annotated[
        date | None, Query(alias="from", description="First day (UTC); default 29 days ago")
    ] = None,
    to: Annotated[date | None, Query(description="Last day (UTC), included; default today")] = None,
) -> FunnelOut:
    start = from_ or _default_from()
    end = to or datetime.now(UTC).date()
    return await onboarding.funnel(session, start, end)
