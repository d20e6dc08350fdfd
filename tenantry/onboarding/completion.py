"""Completing onboarding: the visitor's company becomes a tenant with its settings and its
owner, in one transaction that also records the completion, the funnel step and the welcome
job. A session completes once: a second completion, even a concurrent one, waits for the
first (an advisory lock on the session) and answers with the same tenant."""

from __future__ import annotations

import re
import secrets
import unicodedata
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.kit.errors import Invalid
from tenantry.kit.platform import Service
from tenantry.kit.repository import TenantScope
from tenantry.onboarding.models import OnboardingCompletion
from tenantry.onboarding.repository import CompletionLedger, OnboardingLog, QuoteBook
from tenantry.onboarding.schemas import Completed, CompleteRequest
from tenantry.onboarding.service import OnboardingService
from tenantry.tenants.service import TenantsService
from tenantry.users.service import UsersService

SEND_WELCOME = "onboarding:send_welcome"
_SLUG_PART = re.compile(r"[^a-z0-9]+")


def slug_of(name: str) -> str:
    """A URL-safe slug of a company's name (accents dropped), at most 50 characters."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = _SLUG_PART.sub("-", ascii_name.lower()).strip("-")[:50].strip("-")
    return slug or "company"


class CompletionService(Service):
    @property
    def onboarding(self) -> OnboardingService:
        return self.platform.service(OnboardingService)

    async def complete(self, session: AsyncSession, body: CompleteRequest) -> Completed:
        state = await self.onboarding.read(body.session_id)
        ledger = CompletionLedger(session)
        await ledger.hold(body.session_id)
        done = await ledger.get(body.session_id)
        if done is not None:
            return await self._again(session, done)
        email = body.email or state["email"]
        if not email:
            raise Invalid(
                ("body", "email"), "the profile had no email: send the owner's", "missing"
            )
        profile: dict[str, Any] = state["profile"]
        quote = None
        if state.get("quote_id"):
            found = await QuoteBook(session).get(state["quote_id"])
            quote = found.body if found is not None else None
        suites = [line["suite_id"] for line in quote["lines"]] if quote else None
        tenant = await self.platform.service(TenantsService).provision(
            session,
            slug=await self._free_slug(session, profile["company_name"]),
            name=profile["company_name"],
            industry=profile["industry"],
            company_size=profile["company_size"],
            suites=suites or [s["suite_id"] for s in state["recommended_suites"]],
        )
        password = body.password or secrets.token_urlsafe(12)
        owner = await self.platform.service(UsersService).create(
            session,
            TenantScope(tenant.id),
            email=email,
            full_name=body.full_name or email.split("@", 1)[0],
            password=password,
            role="owner",
        )
        report = {
            "email": owner.email,
            "full_name": owner.full_name,
            "profile": profile,
            "recommended_suites": state["recommended_suites"],
            "quote": quote,
        }
        ledger.add(
            OnboardingCompletion(
                session_id=body.session_id, tenant_id=tenant.id, user_id=owner.id, report=report
            )
        )
        await OnboardingLog(session).record(
            body.session_id, "completed", {"tenant_id": str(tenant.id)}
        )
        await session.flush()
        jobs = self.platform.jobs
        await jobs.defer(session, jobs.task(SEND_WELCOME), session_id=body.session_id)
        self.onboarding.update_after_commit(
            session, body.session_id, step="completed", tenant_id=str(tenant.id), demo_mode=False
        )
        return self._answer(tenant.slug, owner, None if body.password else password, True)

    async def _again(self, session: AsyncSession, done: OnboardingCompletion) -> Completed:
        """The first completion's tenant and owner, with a new token (the password made then
        is not shown again)."""
        owner = await self.platform.service(UsersService).get(
            session, TenantScope(done.tenant_id), done.user_id
        )
        summary = await self.platform.service(TenantsService).summary(TenantScope(done.tenant_id))
        return self._answer(summary.slug, owner, None, False)

    def _answer(self, slug: str, owner: Any, password: str | None, created: bool) -> Completed:
        """The company and its owner (a user as the users service gives it), with a fresh
        access token for the owner."""
        token, ttl = self.platform.tokens.issue(
            user_id=owner.id,
            tenant_id=owner.tenant_id,
            role=owner.role,
            version=owner.token_version,
        )
        return Completed(
            tenant_id=owner.tenant_id,
            tenant_slug=slug,
            user_id=owner.id,
            email=owner.email,
            access_token=token,
            expires_in=ttl,
            password=password,
            created=created,
        )

    async def _free_slug(self, session: AsyncSession, name: str) -> str:
        tenants = self.platform.service(TenantsService)
        slug = slug_of(name)
        while await tenants.find_by_slug(session, slug) is not None:
            slug = f"{slug_of(name)[:43]}-{secrets.token_hex(3)}"
        return slug
