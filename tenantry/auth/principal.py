"""Who is calling: a small projection of the user and their tenant, never the ORM entity."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from tenantry.kit.tenancy import TenantScope

ROLE_RANK = {"member": 0, "admin": 1, "owner": 2}


@dataclass(frozen=True, slots=True)
class Principal:
    id: uuid.UUID
    tenant_id: uuid.UUID
    role: str
    account_type: str
    is_active: bool
    token_version: int
    email: str
    full_name: str
    tenant_slug: str
    tenant_name: str
    tenant_status: str
    # Set when the caller authenticated with an API key (acting for the key's creator).
    api_key_id: uuid.UUID | None = None

    @property
    def scope(self) -> TenantScope:
        return TenantScope(self.tenant_id)

    @property
    def via_api_key(self) -> bool:
        return self.api_key_id is not None

    @property
    def is_platform_staff(self) -> bool:
        return self.account_type == "internal_employee"

    def at_least(self, role: str) -> bool:
        return ROLE_RANK.get(self.role, -1) >= ROLE_RANK[role]
