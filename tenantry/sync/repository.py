"""Every query of the sync domain."""

from __future__ import annotations

from tenantry.kit.repository import TenantRepository
from tenantry.sync.models import SyncSource


class SourceRepository(TenantRepository[SyncSource]):
    model = SyncSource
