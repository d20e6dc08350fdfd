"""Every query of onboarding. All are unscoped by nature: a visitor onboarding has no tenant
yet, and the funnel is read by platform staff across every session."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, text

from tenantry.kit.ids import new_id
from tenantry.kit.repository import PlatformRepository
from tenantry.onboarding.models import OnboardingCompletion, OnboardingEvent, OnboardingQuote

_WHY = "onboarding runs before its company (the tenant) exists"


class OnboardingLog(PlatformRepository[OnboardingEvent]):
    unscoped_because = f"{_WHY}, and the funnel counts every visitor's steps"
    model = OnboardingEvent

    async def record(self, session_id: str, step: str, properties: dict[str, Any]) -> None:
        """Written with the request's transaction: one row, no read (Core: an append-only
        row needs none of the ORM's bookkeeping, which was a tenth of a profile's CPU)."""
        row = {"id": new_id(), "session_id": session_id, "step": step, "properties": properties}
        await self.session.execute(insert(OnboardingEvent).values(row))

    async def by_day(self, start: datetime, end: datetime) -> list[tuple[Any, str, int]]:
        """(day, step, distinct sessions) in [start, end)."""
        day = func.date_trunc("day", OnboardingEvent.created_at).label("day")
        stmt = (
            select(day, OnboardingEvent.step, func.count(OnboardingEvent.session_id.distinct()))
            .where(OnboardingEvent.created_at >= start, OnboardingEvent.created_at < end)
            .group_by(day, OnboardingEvent.step)
            .order_by(day)
        )
        return [(d, s, int(n)) for d, s, n in (await self.session.execute(stmt)).all()]

    async def by_step(self, start: datetime, end: datetime) -> dict[str, int]:
        """Distinct sessions per step in [start, end) (a session seen on two days counts once)."""
        stmt = (
            select(OnboardingEvent.step, func.count(OnboardingEvent.session_id.distinct()))
            .where(OnboardingEvent.created_at >= start, OnboardingEvent.created_at < end)
            .group_by(OnboardingEvent.step)
        )
        return {s: int(n) for s, n in (await self.session.execute(stmt)).all()}


class QuoteBook(PlatformRepository[OnboardingQuote]):
    unscoped_because = f"{_WHY}: a quote is found by its own id, which is its capability"
    model = OnboardingQuote

    def add(self, quote: OnboardingQuote) -> None:
        self.session.add(quote)

    async def get(self, quote_id: uuid.UUID) -> OnboardingQuote | None:
        found: OnboardingQuote | None = await self.session.get(OnboardingQuote, quote_id)
        return found


class CompletionLedger(PlatformRepository[OnboardingCompletion]):
    unscoped_because = f"{_WHY}: a completion is found by the session that made it"
    model = OnboardingCompletion

    async def hold(self, session_id: str) -> None:
        """Serialise completions of one session until this transaction ends: a second
        completion waits here, then finds the first's row."""
        lock = text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))")
        await self.session.execute(lock, {"key": f"onboarding:{session_id}"})

    async def get(self, session_id: str, *, lock: bool = False) -> OnboardingCompletion | None:
        stmt = select(OnboardingCompletion).where(OnboardingCompletion.session_id == session_id)
        if lock:
            stmt = stmt.with_for_update()
        found: OnboardingCompletion | None = (await self.session.execute(stmt)).scalar_one_or_none()
        return found

    def add(self, completion: OnboardingCompletion) -> None:
        self.session.add(completion)
