"""Every query of the CRM domain."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func

from tenantry.crm.models import Customer, Lead
from tenantry.kit.ids import new_id
from tenantry.kit.repository import TenantRepository


class CustomerRepository(TenantRepository[Customer]):
    model = Customer

    async def upsert_imported(
        self, source_id: uuid.UUID, rows: list[dict[str, Any]]
    ) -> dict[str, uuid.UUID]:
        """Insert or update the source's customers in one statement, keyed on the source's
        ids; each external id's customer id."""
        if not rows:
            return {}
        stmt = self.insert([{**row, "id": new_id(), "source_id": source_id} for row in rows])
        upsert = stmt.on_conflict_do_update(
            index_elements=[Customer.tenant_id, Customer.source_id, Customer.external_id],
            set_={
                "name": stmt.excluded.name,
                "email": stmt.excluded.email,
                "phone": stmt.excluded.phone,
                "postal_code": stmt.excluded.postal_code,
                "updated_at": func.now(),
            },
        ).returning(Customer.external_id, Customer.id)
        result = await self.session.execute(upsert)
        return {str(external_id): id_ for external_id, id_ in result.all()}


class LeadRepository(TenantRepository[Lead]):
    model = Lead

    async def upsert_imported(self, source_id: uuid.UUID, rows: list[dict[str, Any]]) -> int:
        """Insert or update the source's leads in one statement; how many."""
        if not rows:
            return 0
        stmt = self.insert(
            [{**row, "id": new_id(), "source_id": source_id, "source": "sync"} for row in rows]
        )
        stmt = stmt.on_conflict_do_update(
            index_elements=[Lead.tenant_id, Lead.source_id, Lead.external_id],
            set_={
                "customer_id": stmt.excluded.customer_id,
                "status": stmt.excluded.status,
                "value": stmt.excluded.value,
                "updated_at": func.now(),
            },
        )
        result = await self.session.execute(stmt)
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
