"""A company's integrations: its sync sources and runs (a running sync's progress live), and its
webhook endpoints and deliveries (every attempt, a retry by hand). Owners and admins only, as
in the API; every read and write goes through the sync and webhooks services the API's routers
call, with the same pages.

Live progress is polled, not pushed: the run page's progress block asks for a small fragment
(`/console/syncs/{id}/progress`) once a second until the fragment says the run is done
(`data-done`; `static/console.js`, `[data-poll]`). Server-sent events would hold a connection,
and a database poll of its own, per open page for the whole run, and need every proxy on the way
(the cluster's nginx included) told not to buffer or time them out; one cheap read a second goes
through any proxy as any request does, and costs nothing once the viewer leaves.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import Response

from tenantry.authz.principal import Principal
from tenantry.console import web
from tenantry.console.crm import when
from tenantry.console.deps import ConsoleUser, Form, SignedIn, forbid_unless
from tenantry.console.sessions import after_write
from tenantry.kit.deps import ReaderDep, SessionDep
from tenantry.kit.errors import NotFound
from tenantry.kit.pagination import PageNumber, PerPage
from tenantry.sync.schemas import RunOut, RunPage, RunStatus, SourcePage
from tenantry.sync.service import SyncService
from tenantry.webhooks.schemas import DeliveryStatus, EndpointPage
from tenantry.webhooks.service import WebhooksService

router = APIRouter(prefix="/console", include_in_schema=False)
Sync = Annotated[SyncService, Depends(SyncService.dep)]
Webhooks = Annotated[WebhooksService, Depends(WebhooksService.dep)]
RunStatusFilter = Annotated[RunStatus | None, Query(alias="status")]
DeliveryStatusFilter = Annotated[DeliveryStatus | None, Query(alias="status")]
# Sources and endpoints: a company has at most MAX_SYNC_SOURCES_PER_TENANT and
# MAX_WEBHOOKS_PER_TENANT (20 unless raised): the API's largest page holds them all.
ALL = 100
POLL_MS = 1000
PER_PAGE = 20  # the API's default page size


def admin_of(user: ConsoleUser) -> Principal:
    """The API's rule (`TenantAdmin`): integrations are for the company's owners and admins."""
    forbid_unless(
        user.principal.at_least("admin"), "Only the company's owners and admins can do this."
    )
    return user.principal


def running(run: RunOut) -> bool:
    return run.status in ("pending", "running")


def elapsed(run: RunOut) -> str:
    """How long the run took, or has taken so far."""
    if run.duration_s is not None:
        seconds = run.duration_s
    elif run.started_at is not None:
        seconds = (datetime.now(UTC) - run.started_at).total_seconds()
    else:
        return ""
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes} min {rest} s" if minutes else f"{seconds:.1f} s"


def _pages(
    base: str, current: int, pages: int, *, status: str | None, per_page: int
) -> dict[str, str | None]:
    """Links to the previous and next numbered page, keeping the filter and the page size."""

    def link(number: int) -> str:
        given = {"status": status, "per_page": per_page if per_page != PER_PAGE else None}
        return f"{base}?{urlencode({**{k: v for k, v in given.items() if v}, 'page': number})}"

    return {
        "prev": link(current - 1) if current > 1 else None,
        "next": link(current + 1) if current < pages else None,
    }


# --- syncs -----------------------------------------------------------------------------------


@router.get("/syncs")
async def syncs_page(
    request: Request,
    user: SignedIn,
    sync: Sync,
    session: SessionDep,
    reader: ReaderDep,
    page: PageNumber = 1,
    per_page: PerPage = PER_PAGE,
    status: RunStatusFilter = None,
) -> Response:
    admin = admin_of(user)
    sources: SourcePage = await sync.page(session, admin, page=1, per_page=ALL)
    rendered = await sync.runs(reader, admin.scope, status=status, page=page, per_page=per_page)
    runs = RunPage.model_validate_json(rendered.body)  # the API's very page (cached alike)
    names = {s.id: s.name for s in sources.items}
    return web.page(
        request,
        "syncs.html",
        user=user,
        sources=sources,
        runs=runs,
        names=names,
        chosen=status,
        statuses=["pending", "running", "succeeded", "failed"],
        paging=_pages("/console/syncs", runs.page, runs.pages, status=status, per_page=per_page),
        when=when,
        elapsed=elapsed,
    )


@router.post("/syncs/sources/{source_id}/sync")
async def sync_now(
    source_id: uuid.UUID,
    request: Request,
    user: SignedIn,
    form: Form,
    sync: Sync,
    session: SessionDep,
) -> Response:
    """The API's `POST /sync`: a new run, or the source's run already under way."""
    run, _ = await sync.trigger(session, admin_of(user), source_id)
    return after_write(request, f"/console/syncs/{run.id}")


@router.get("/syncs/{run_id}")
async def sync_run_page(
    run_id: uuid.UUID, request: Request, user: SignedIn, sync: Sync, session: SessionDep
) -> Response:
    admin = admin_of(user)
    run = await sync.run(session, admin, run_id)  # another company's run: 404
    try:
        source_name = (await sync.source(session, admin, run.source_id)).name
    except NotFound:
        source_name = str(run.source_id)
    return web.page(
        request,
        "sync_run.html",
        user=user,
        run=run,
        source_name=source_name,
        live=running(run),
        every=POLL_MS,
        **_progress(run),
    )


@router.get("/syncs/{run_id}/progress")
async def sync_run_progress(
    run_id: uuid.UUID, request: Request, user: SignedIn, sync: Sync, session: SessionDep
) -> Response:
    """The run page's live block, on its own: polled once a second while the run runs."""
    run = await sync.run(session, admin_of(user), run_id)
    return web.page(request, "_sync_progress.html", run=run, **_progress(run))


def _progress(run: RunOut) -> dict[str, Any]:
    return {"done": not running(run), "took": elapsed(run), "when": when}


# --- webhooks --------------------------------------------------------------------------------


@router.get("/webhooks")
async def webhooks_page(
    request: Request,
    user: SignedIn,
    hooks: Webhooks,
    session: SessionDep,
    page: PageNumber = 1,
    per_page: PerPage = PER_PAGE,
    status: DeliveryStatusFilter = None,
    retried: Annotated[uuid.UUID | None, Query()] = None,
) -> Response:
    admin = admin_of(user)
    endpoints: EndpointPage = await hooks.endpoints(session, admin, page=1, per_page=ALL)
    deliveries = await hooks.deliveries(session, admin, status=status, page=page, per_page=per_page)
    urls = {e.id: e.url for e in endpoints.items}
    return web.page(
        request,
        "webhooks.html",
        user=user,
        endpoints=endpoints,
        deliveries=deliveries,
        urls=urls,
        chosen=status,
        statuses=["pending", "succeeded", "failed"],
        retried=retried,
        paging=_pages(
            "/console/webhooks", deliveries.page, deliveries.pages, status=status, per_page=per_page
        ),
        when=when,
    )


@router.post("/webhooks/deliveries/{delivery_id}/retry")
async def retry_delivery(
    delivery_id: uuid.UUID,
    request: Request,
    user: SignedIn,
    form: Form,
    hooks: Webhooks,
    session: SessionDep,
) -> Response:
    """The API's `POST /webhooks/deliveries/{id}/retry`: a failed delivery queued again."""
    await hooks.retry(session, admin_of(user), delivery_id)  # not failed: 409; not ours: 404
    return after_write(request, f"/console/webhooks?retried={delivery_id}")
