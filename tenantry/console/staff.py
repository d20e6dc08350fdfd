"""Platform staff's pages: the tenants, the onboarding funnel (a chart drawn here), the caches
and the job queues. Each reads through the service its admin API uses; to anyone but a
platform admin (`Staff`) they are 404 pages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from tenantry.admin.service import CacheAdminService
from tenantry.console.charts import percent, small_multiples
from tenantry.console.crm import when
from tenantry.console.deps import Form, Staff
from tenantry.console.sessions import after_write
from tenantry.console.web import page
from tenantry.kit.deps import SessionDep
from tenantry.kit.jobs import Jobs
from tenantry.kit.pagination import PageNumber, PerPage
from tenantry.onboarding.schemas import FunnelOut
from tenantry.onboarding.service import STEPS, OnboardingService
from tenantry.tenants.service import TenantsService
from tenantry.users.service import UsersService

router = APIRouter(prefix="/console/platform", include_in_schema=False)
Tenants = Annotated[TenantsService, Depends(TenantsService.dep)]
Users = Annotated[UsersService, Depends(UsersService.dep)]
Onboarding = Annotated[OnboardingService, Depends(OnboardingService.dep)]
CacheAdmin = Annotated[CacheAdminService, Depends(CacheAdminService.dep)]
Days = Annotated[int, Query(ge=1, le=31, description="The last N days, today included")]
RECENT_FAILURES = 10


def jobs_of(request: Request) -> Jobs:
    jobs: Jobs = request.app.state.platform.jobs
    return jobs


JobsDep = Annotated[Jobs, Depends(jobs_of)]


def age(seconds: float) -> str:
    """A duration for people: '42 s', '3 min 5 s', '2 h 10 min', '3 d 4 h'."""
    s = int(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60} min"
    return f"{s // 86400} d {s % 86400 // 3600} h"


# --- tenants -------------------------------------------------------------------------------


@router.get("/tenants")
async def tenants_page(
    request: Request,
    user: Staff,
    tenants: Tenants,
    users: Users,
    session: SessionDep,
    page_: Annotated[PageNumber, Query(alias="page")] = 1,
    per_page: PerPage = 50,
) -> Response:
    found = await tenants.directory(session, page=page_, per_page=per_page)
    counts = await users.count_by_tenant(session, [t.id for t in found.items])
    return page(
        request,
        "staff_tenants.html",
        user=user,
        found=found,
        counts=counts,
        when=when,
    )


# --- the onboarding funnel -----------------------------------------------------------------


def funnel_view(funnel: FunnelOut) -> dict[str, Any]:
    """The funnel's numbers as the page shows them: the chart's geometry, its title and
    description (what a screen reader says of it), and the table's rows."""
    given = {d.date: d for d in funnel.days}  # days with no session are left out: here, 0
    span_days = (funnel.to_date - funnel.from_date).days + 1
    dates = [funnel.from_date + timedelta(days=i) for i in range(span_days)]
    rows = [(str(d), {s: getattr(given[d], s) if d in given else 0 for s in STEPS}) for d in dates]
    labels = [day for day, _ in rows]
    series = [(step, [counts[step] for _, counts in rows]) for step in STEPS]
    chart = small_multiples(series, labels)
    totals = []
    for i, s in enumerate(funnel.steps):
        after = f" ({percent(s.rate_from_previous)} of {STEPS[i - 1]})" if i else ""
        totals.append(f"{s.step} {s.sessions}{after}")
    span = f"{funnel.from_date} to {funnel.to_date}"
    desc = (
        f"Onboarding sessions per day, {span}: one bar chart per step ({', '.join(STEPS)}),"
        f" on one scale from 0 to {chart.peak}, each step with its own fill pattern."
        f" Totals: {'; '.join(totals)}."
    )
    if chart.empty:
        desc += " No sessions in this range."
    return {
        "chart": chart,
        "rows": rows,
        "totals": {s.step: s.sessions for s in funnel.steps},
        "chart_title": f"Onboarding funnel per day, {span}",
        "chart_desc": desc,
    }


@router.get("/funnel")
async def funnel_page(
    request: Request,
    user: Staff,
    onboarding: Onboarding,
    session: SessionDep,
    days: Days = 14,
) -> Response:
    end = datetime.now(UTC).date()
    funnel = await onboarding.funnel(session, end - timedelta(days=days - 1), end)
    return page(
        request,
        "staff_funnel.html",
        user=user,
        funnel=funnel,
        days=days,
        steps=STEPS,
        percent=percent,
        **funnel_view(funnel),
    )


# --- caches --------------------------------------------------------------------------------


@router.get("/caches")
async def caches_page(
    request: Request,
    user: Staff,
    admin: CacheAdmin,
    cleared: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    stats = admin.stats()
    return page(
        request,
        "staff_caches.html",
        user=user,
        stats=stats,
        cleared=cleared,
        percent=percent,
    )


@router.post("/caches/clear")
async def clear_cache(
    request: Request, user: Staff, form: Form, admin: CacheAdmin, session: SessionDep
) -> Response:
    """One cache (`cache`), or all of them, on every instance once this request commits."""
    names = admin.clear(session, user.principal, form.get("cache") or None)
    target = "/console/platform/caches?cleared=" + (names[0] if len(names) == 1 else "all")
    return after_write(request, target)


# --- job queues ----------------------------------------------------------------------------


@router.get("/jobs")
async def jobs_page(request: Request, user: Staff, jobs: JobsDep, session: SessionDep) -> Response:
    waiting, oldest = await jobs.queue_stats(session)
    failed, recent = await jobs.failures(session, recent=RECENT_FAILURES)
    names = sorted({q for q, _ in waiting} | set(oldest) | set(failed))
    queues = [
        {
            "name": q,
            "queued": waiting.get((q, "todo"), 0),
            "running": waiting.get((q, "doing"), 0),
            "failed": failed.get(q, 0),
            "oldest": age(oldest[q]) if q in oldest else "",
            "oldest_s": round(oldest.get(q, 0.0), 1),
        }
        for q in names
    ]
    return page(
        request,
        "staff_jobs.html",
        user=user,
        queues=queues,
        recent=recent,
        when=when,
    )
