"""Onboarding: a visitor's company profile and recommended suites, their quote, and the
funnel. A visitor's progress is a session in the state store (`kit.state`, 24 h by default):
it survives a restart and is seen by every instance. Completion, which makes the company,
is `onboarding.completion`.

Each step is also an `onboarding_events` row, written with the request's own transaction
(one insert, no read): the funnel is as durable as the step it counts.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import asdict
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.kit.db import after_commit
from tenantry.kit.errors import Invalid, NotFound
from tenantry.kit.ids import new_id
from tenantry.kit.platform import Service
from tenantry.onboarding import pricing, rules
from tenantry.onboarding.models import OnboardingQuote
from tenantry.onboarding.repository import OnboardingLog, QuoteBook
from tenantry.onboarding.schemas import (
    DiscountOut,
    FunnelDay,
    FunnelOut,
    FunnelStep,
    LineOut,
    PricingRequest,
    ProfileCreate,
    ProfileCreated,
    QuoteOut,
    RecommendedSuite,
    SessionOut,
)

NAMESPACE = "onboarding"
STEPS = ("profile", "pricing_viewed", "completed")
EXPIRED = "Session expired or not found"
MAX_FUNNEL_DAYS = 366


def bypass_reason(email: str | None, domains: list[str]) -> str | None:
    """Why a company with this email is not billed, or None: its domain (or a parent domain)
    is one of BILLING_BYPASS_DOMAINS."""
    if not email or "@" not in email or not domains:
        return None
    return _bypass_for_host(email.rsplit("@", 1)[1].lower().rstrip("."), tuple(domains))


@lru_cache(maxsize=4096)
def _bypass_for_host(host: str, domains: tuple[str, ...]) -> str | None:
    """Memoised per host and setting: visitors of one company ask again and again."""
    for domain in domains:
        if host == domain or host.endswith("." + domain):
            return f"{domain} is not billed (BILLING_BYPASS_DOMAINS)"
    return None


class OnboardingService(Service):
    # --- sessions -----------------------------------------------------------------------

    @property
    def _ttl_s(self) -> int:
        return self.platform.settings.onboarding_session_ttl_s

    async def read(self, session_id: str) -> dict[str, Any]:
        """The session's state, or 404 when it expired or never was."""
        found = await self.platform.state.get(NAMESPACE, session_id)
        if not isinstance(found, dict):
            raise NotFound(EXPIRED)
        return found

    async def _write(self, session_id: str, state: dict[str, Any]) -> None:
        """Back to the state store, keeping the session's expiry."""
        expires = datetime.fromisoformat(state["expires_at"])
        left = (expires - datetime.now(UTC)).total_seconds()
        if left > 0:
            await self.platform.state.put(NAMESPACE, session_id, state, left)

    def update_after_commit(self, session: AsyncSession, session_id: str, **changes: Any) -> None:
        """Merge `changes` into the visitor's session once `session` commits (never ahead of
        the database, and not at all if it rolls back)."""

        async def update() -> None:
            state = await self.read(session_id)
            await self._write(session_id, {**state, **changes})

        after_commit(session, update)

    async def create_profile(self, session: AsyncSession, body: ProfileCreate) -> ProfileCreated:
        profile = rules.Profile(
            industry=body.industry,
            company_size=body.company_size,
            challenges=tuple(body.primary_challenges),
            tools=tuple(body.current_tools),
            goals=tuple(body.goals),
        )
        recommended = [
            RecommendedSuite(
                suite_id=r.suite_id, name=r.name, score=r.score, reasons=list(r.reasons)
            )
            for r in rules.recommend(profile)
        ]
        session_id = secrets.token_urlsafe(24)
        now = datetime.now(UTC)
        expires_at = now + timedelta(seconds=self._ttl_s)
        state = {
            "session_id": session_id,
            "step": "profile",
            "demo_mode": True,
            "email": body.user_email,
            "profile": body.model_dump(mode="json"),
            "recommended_suites": [r.model_dump(mode="json") for r in recommended],
            "quote_id": None,
            "tenant_id": None,
            "created_at": now.isoformat(),
            "expires_at": expires_at.isoformat(),
        }
        # With the request's transaction when the store is this database: the session and its
        # funnel step exist together or not at all.
        await self.platform.state.put(NAMESPACE, session_id, state, self._ttl_s, with_=session)
        await OnboardingLog(session).record(
            session_id,
            "profile",
            {"industry": body.industry, "company_size": body.company_size},
        )
        return ProfileCreated(
            session_id=session_id, recommended_suites=recommended, expires_at=expires_at
        )

    async def session_view(self, session_id: str) -> SessionOut:
        return SessionOut.model_validate(await self.read(session_id))

    # --- pricing ------------------------------------------------------------------------

    async def quote(self, session: AsyncSession, body: PricingRequest) -> QuoteOut:
        state = await self.read(body.session_id) if body.session_id else None
        size = body.company_size or (state["profile"]["company_size"] if state else None)
        if size is None:  # the schema asks for one of them; a session always has a size
            raise Invalid(("body", "company_size"), "a company size is needed", "missing")
        email = body.email or (state["email"] if state else None)
        reason = bypass_reason(email, self.platform.settings.billing_bypass_domains)
        priced = pricing.price(
            body.suites, size, body.billing_cycle, body.currency, bypass_reason=reason
        )
        quote_id, now = new_id(), datetime.now(UTC)
        out = QuoteOut(
            id=quote_id,
            session_id=body.session_id,
            catalog_version=priced.catalog_version,
            company_size=size,
            billing_cycle=priced.billing_cycle,
            currency=priced.currency,
            lines=[LineOut(**asdict(line)) for line in priced.lines],
            subtotal=priced.subtotal,
            discounts=[DiscountOut(**asdict(d)) for d in priced.discounts],
            total=priced.total,
            billing_bypass_reason=reason,
            created_at=now,
        )
        QuoteBook(session).add(
            OnboardingQuote(
                id=quote_id,
                session_id=body.session_id,
                catalog_version=priced.catalog_version,
                currency=priced.currency,
                total=priced.total,
                body=out.model_dump(mode="json"),
                created_at=now,
            )
        )
        if body.session_id is not None:
            await OnboardingLog(session).record(
                body.session_id,
                "pricing_viewed",
                {
                    "suites": list(body.suites),
                    "total": str(priced.total),
                    "currency": body.currency,
                },
            )
            step = state["step"] if state and state["step"] == "completed" else "pricing_viewed"
            self.update_after_commit(session, body.session_id, quote_id=str(quote_id), step=step)
        return out

    async def stored_quote(self, session: AsyncSession, quote_id: uuid.UUID) -> QuoteOut:
        found = await QuoteBook(session).get(quote_id)
        if found is None:
            raise NotFound("No such quote.")
        return QuoteOut.model_validate(found.body)

    # --- funnel -------------------------------------------------------------------------

    async def funnel(self, session: AsyncSession, start: date, end: date) -> FunnelOut:
        """Sessions per step over [start, end] (whole UTC days) and per day: two queries."""
        if end < start:
            raise Invalid(("query", "to"), "must not be before `from`", "range")
        if (end - start).days >= MAX_FUNNEL_DAYS:
            raise Invalid(("query", "to"), f"at most {MAX_FUNNEL_DAYS} days", "range")
        since = datetime.combine(start, time.min, UTC)
        until = datetime.combine(end + timedelta(days=1), time.min, UTC)
        log = OnboardingLog(session)
        totals = await log.by_step(since, until)
        days: dict[date, dict[str, int]] = {}
        for day, step, n in await log.by_day(since, until):
            days.setdefault(day.date(), {})[step] = n
        steps = []
        first = totals.get(STEPS[0], 0)
        previous = first
        for step in STEPS:
            n = totals.get(step, 0)
            steps.append(
                FunnelStep(
                    step=step,
                    sessions=n,
                    rate_from_start=round(n / first, 4) if first else 0.0,
                    rate_from_previous=round(n / previous, 4) if previous else 0.0,
                )
            )
            previous = n
        return FunnelOut(
            from_date=start,
            to_date=end,
            steps=steps,
            days=[
                FunnelDay(date=d, **{s: counts.get(s, 0) for s in STEPS})
                for d, counts in sorted(days.items())
            ],
        )
