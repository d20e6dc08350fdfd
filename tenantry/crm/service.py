"""Customers and leads. For now: what a sync writes (`import_batch`); the CRM endpoints come
with the CRM issue and use the same tables."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.crm.repository import CustomerRepository, LeadRepository
from tenantry.crm.schemas import ImportedCustomer
from tenantry.kit.platform import Service
from tenantry.kit.repository import TenantScope


@dataclass(frozen=True, slots=True)
class Imported:
    customers: int
    leads: int


class CrmService(Service):
    async def import_batch(
        self,
        session: AsyncSession,
        scope: TenantScope,
        source_id: uuid.UUID,
        customers: list[ImportedCustomer],
    ) -> Imported:
        """Upsert a page of a source's customers and their leads: two statements whatever the
        page's size; a record seen twice in one page counts once (the last one wins)."""
        by_id = {c.external_id: c for c in customers}
        ids = await CustomerRepository(session, scope).upsert_imported(
            source_id,
            [
                {
                    "external_id": c.external_id,
                    "name": c.name,
                    "email": c.email,
                    "phone": c.phone,
                    "postal_code": c.postal_code,
                }
                for c in by_id.values()
            ],
        )
        leads = {
            lead.external_id: {
                "external_id": lead.external_id,
                "customer_id": ids[c.external_id],
                "status": lead.status,
                "value": lead.value,
            }
            for c in by_id.values()
            for lead in c.leads
        }
        written = await LeadRepository(session, scope).upsert_imported(
            source_id, list(leads.values())
        )
        return Imported(customers=len(ids), leads=written)
