"""What a sync run does, page by page (the `sync:run_sync` job's body).

The `http_json` contract (README, "Sync sources"): `GET {base_url}?page=N&per_page=M`, with the
source's secret in its header, answers `{"items": [...], "next_page": N+1 or null}`; each item
is a customer (`external_id`, `name`, `email`, `phone`, `postal_code`, optional `leads`, each
with `external_id`, `status`, `value`).

Each page is one transaction: its customers and leads are upserted on the source's ids (so a
page imported twice changes nothing) together with the run's checkpoint (`next_page`, the
counts, the first record errors). A run cut short (a worker killed, a deploy) resumes from the
page after its last committed one. A record that does not fit the contract (a missing field, a
wrong type, a lead status the tenant does not use) is counted and kept with its error, and the
run goes on. A page that cannot be read (the source down past the outbound retries, its
circuit open, not JSON) fails the job's try: the job is retried with backoff from the
checkpoint, and the run fails, with the error, only when its last try does. A finished run
emits `sync.completed` to the company's webhooks.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.crm.schemas import ImportedCustomer
from tenantry.crm.service import CrmService
from tenantry.kit import metrics
from tenantry.kit.http import CircuitOpen, UpstreamError
from tenantry.kit.jobs import unit_of_work
from tenantry.kit.logging import get_logger
from tenantry.kit.platform import Platform
from tenantry.kit.repository import TenantScope
from tenantry.sync.models import SyncRun, SyncSource
from tenantry.sync.repository import RunRepository, SourceRepository
from tenantry.tenants.service import TenantsService
from tenantry.webhooks.service import WebhooksService

log = get_logger("tenantry.sync")

MAX_RECORD_ERRORS = 20
MAX_PAGES = 100_000  # a source that never ends is a broken source
_CUSTOMER = TypeAdapter(ImportedCustomer)


class SourceFailed(Exception):
    """The source could not be read; the job's try fails (and is retried)."""


def _describe(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "record"
    return f"{where}: {first['msg']}"


def parse_page(
    items: list[Any], page: int, statuses: set[str]
) -> tuple[list[ImportedCustomer], list[dict[str, Any]]]:
    """The page's valid records, and an error for each of the others."""
    good: list[ImportedCustomer] = []
    bad: list[dict[str, Any]] = []
    for item in items:
        external_id = item.get("external_id") if isinstance(item, dict) else None
        reference = str(external_id)[:200] if external_id is not None else None
        try:
            customer = _CUSTOMER.validate_python(item)
        except ValidationError as exc:
            bad.append({"page": page, "external_id": reference, "error": _describe(exc)})
            continue
        unknown = sorted({lead.status for lead in customer.leads} - statuses)
        if unknown:
            bad.append(
                {
                    "page": page,
                    "external_id": reference,
                    "error": f"lead status {unknown[0]!r} is not one of the company's statuses",
                }
            )
            continue
        good.append(customer)
    return good, bad


class SyncRunner:
    def __init__(self, platform: Platform, scope: TenantScope, run_id: uuid.UUID) -> None:
        self.platform, self.scope, self.run_id = platform, scope, run_id

    async def run(self, *, last_try: bool) -> str:
        """Run (or resume) the sync; its final status, or "skipped" for a finished run."""
        begun = await self._begin()
        if begun is None:
            return "skipped"
        source, page = begun
        headers = {}
        if source.secret_sealed:
            headers[source.auth_header] = self.platform.secrets.open(source.secret_sealed)
        statuses = await self._statuses()
        try:
            pages = 0
            while page is not None:
                pages += 1
                if pages > MAX_PAGES:
                    raise SourceFailed(f"more than {MAX_PAGES} pages: the source never ends")
                items, next_page = await self._fetch(source, page, headers)
                good, bad = parse_page(items, page, statuses)
                await self._commit_page(source, page, next_page, len(items), good, bad)
                page = next_page
        except (SourceFailed, UpstreamError, CircuitOpen, httpx.HTTPError) as exc:
            await self._record_failure(str(exc) or type(exc).__name__, final=last_try)
            raise
        await self._finish()
        return "succeeded"

    async def _begin(self) -> tuple[SyncSource, int | None] | None:
        async with unit_of_work(self.platform) as session:
            run = await RunRepository(session, self.scope).get(self.run_id)
            if run is None or run.status in ("succeeded", "failed"):
                return None
            source = await SourceRepository(session, self.scope).get(run.source_id)
            if source is None:  # deleted with its runs; nothing to do
                return None
            run.status = "running"
            run.started_at = run.started_at or datetime.now(UTC)
            log.info(
                "sync started",
                tenant_id=str(self.scope.tenant_id),
                run_id=str(run.id),
                page=run.next_page,
            )
            return source, run.next_page

    async def _statuses(self) -> set[str]:
        settings = await self.platform.service(TenantsService).settings_view(self.scope)
        return set(settings.lead_statuses)

    async def _fetch(
        self, source: SyncSource, page: int, headers: dict[str, str]
    ) -> tuple[list[Any], int | None]:
        response = await self.platform.outbound.request(
            "GET",
            source.base_url,
            params={"page": page, "per_page": source.page_size},
            headers=headers,
        )
        if response.status_code != 200:
            raise SourceFailed(f"page {page}: the source answered {response.status_code}")
        try:
            body = response.json()
        except ValueError:
            raise SourceFailed(f"page {page}: the answer is not JSON") from None
        items = body.get("items") if isinstance(body, dict) else None
        next_page = body.get("next_page") if isinstance(body, dict) else None
        if not isinstance(items, list):
            raise SourceFailed(f"page {page}: the answer has no `items` list")
        if next_page is not None and (not isinstance(next_page, int) or next_page <= page):
            raise SourceFailed(f"page {page}: `next_page` must be a later page number or null")
        return items, next_page

    async def _commit_page(
        self,
        source: SyncSource,
        page: int,
        next_page: int | None,
        received: int,
        good: list[ImportedCustomer],
        bad: list[dict[str, Any]],
    ) -> None:
        """The page's records and the run's checkpoint, in one transaction."""
        async with unit_of_work(self.platform) as session:
            imported = await self.platform.service(CrmService).import_batch(
                session, self.scope, source.id, good
            )
            run = await self._run(session)
            run.pages_done += 1
            run.next_page = next_page
            run.records_in += received
            run.records_written += imported.customers
            run.leads_written += imported.leads
            run.records_failed += len(bad)
            metrics.record_event("sync_records", "written", imported.customers)
            metrics.record_event("sync_records", "failed", len(bad))
            room = MAX_RECORD_ERRORS - len(run.record_errors)
            if bad and room > 0:
                run.record_errors = [*run.record_errors, *bad[:room]]

    async def _run(self, session: AsyncSession) -> SyncRun:
        run = await RunRepository(session, self.scope).get(self.run_id)
        if run is None:
            raise SourceFailed("the run was deleted while it ran")
        return run

    async def _finish(self) -> None:
        async with unit_of_work(self.platform) as session:
            run = await self._run(session)
            run.status = "succeeded"
            run.error = None
            run.finished_at = datetime.now(UTC)
            await self._tell_completed(session, run)
            metrics.record_event("sync_run", "succeeded")
            log.info(
                "sync finished",
                tenant_id=str(self.scope.tenant_id),
                run_id=str(run.id),
                pages=run.pages_done,
                written=run.records_written,
                failed=run.records_failed,
            )

    async def _tell_completed(self, session: AsyncSession, run: SyncRun) -> None:
        """`sync.completed`, succeeded or failed, to the subscribed endpoints: in the
        transaction that ends the run."""
        assert run.finished_at is not None
        await self.platform.service(WebhooksService).emit(
            session,
            self.scope,
            "sync.completed",
            {
                "run_id": str(run.id),
                "source_id": str(run.source_id),
                "status": run.status,
                "pages": run.pages_done,
                "records_in": run.records_in,
                "records_written": run.records_written,
                "leads_written": run.leads_written,
                "records_failed": run.records_failed,
                "error": run.error,
                "finished_at": run.finished_at.isoformat(),
            },
        )

    async def _record_failure(self, error: str, *, final: bool) -> None:
        async with unit_of_work(self.platform) as session:
            run = await self._run(session)
            run.error = error[:2000]
            if final:
                run.status = "failed"
                run.finished_at = datetime.now(UTC)
                await self._tell_completed(session, run)
            metrics.record_event("sync_run", "failed" if final else "retried")
            log.warning(
                "sync page failed",
                tenant_id=str(self.scope.tenant_id),
                run_id=str(run.id),
                error=error,
                final=final,
            )
