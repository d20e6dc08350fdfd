"""Who is calling: a small projection of the user and their tenant, never the ORM entity, and
the ranks of the roles."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal

from tenantry.kit.repository import TenantScope

Role = Literal["owner", "admin", "member"]
ROLE_RANK: dict[str, int] = {"member": 0, "admin": 1, "owner": 2}


def rank(role: str) -> int:
    """A role's rank; an unknown role ranks below every known one."""
    return ROLE_RANK.get(role, -1)


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
        return rank(self.role) >= ROLE_RANK[role]

    def may_grant(self, role: str) -> bool:
        """Nobody hands out a role above their own."""
        return ROLE_RANK[role] <= rank(self.role)
