"""Customer intelligence: a page of customers, each with its numbers of leads and calls, its
newest lead and its last call, read in one lean statement and served as cached bytes.

The page is a dashboard read that many of a company's users load at once and that changes
only when a customer, lead or call does: each rendered page is cached per tenant
(`kit.cache_lists`) until an ORM write of one of those rows commits, on every instance. Core
writes (a sync's upserts, a customer's delete) invalidate by themselves
(`INSIGHTS_LIST.invalidate`); rows copied in by `tenantry seed` from another process show
within the pages' TTL.
"""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from tenantry.crm.models import Call, Customer, Lead
from tenantry.crm.repository import InsightRepository
from tenantry.crm.schemas import CustomerInsight, InsightList
from tenantry.kit import cursor as cursor_kit
from tenantry.kit.cache import Rendered
from tenantry.kit.cache_lists import declare_list, invalidated_by
from tenantry.kit.db import Reader
from tenantry.kit.platform import Service
from tenantry.kit.repository import TenantScope

INSIGHTS_LIST = declare_list("customer_insights", ttl_s=60, max_pages=4_000, max_owners=1_000)
for _model in (Customer, Lead, Call):
    invalidated_by(_model, INSIGHTS_LIST, lambda row: str(row.tenant_id))

_INSIGHTS = TypeAdapter(list[CustomerInsight])


def _insight(row: Any) -> dict[str, Any]:
    lead = None
    if row["lead_id"] is not None:
        lead = {
            "id": row["lead_id"],
            "status": row["lead_status"],
            "value": row["lead_value"],
            "created_at": row["lead_created_at"],
        }
    call = None
    if row["call_id"] is not None:
        call = {
            "id": row["call_id"],
            "status": row["call_status"],
            "direction": row["call_direction"],
            "duration_s": row["call_duration_s"],
            "created_at": row["call_created_at"],
        }
    return {
        "id": row["id"],
        "name": row["name"],
        "email": row["email"],
        "phone": row["phone"],
        "leads_count": row["leads_count"],
        "calls_count": row["calls_count"],
        "latest_lead": lead,
        "last_call": call,
    }


class InsightsService(Service):
    async def page(
        self, reader: Reader, scope: TenantScope, *, cursor: str | None, limit: int
    ) -> Rendered:
        """The page after `cursor` as JSON: from the tenant's cache, else one statement
        whatever the page's size, validated in one call."""
        after = cursor_kit.decode(cursor)

        async def render() -> bytes:
            rows = await InsightRepository(reader, scope).page(after=after, limit=limit + 1)
            items = _INSIGHTS.validate_python([_insight(row) for row in rows[:limit]])
            page = InsightList.of(rows, items, limit=limit)
            return page.__pydantic_serializer__.to_json(page)

        lists = INSIGHTS_LIST.on(self.platform.caches)
        return await lists.page(str(scope.tenant_id), f"{after}:{limit}", render)
