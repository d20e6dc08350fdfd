"""What the audit log records and answers."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from tenantry.kit.cursor import CursorPage

Action = Literal[
    "login.succeeded",
    "login.failed",
    "user.created",
    "user.role_changed",
    "user.deactivated",
    "user.reactivated",
    "api_key.created",
    "api_key.revoked",
    "settings.changed",
    "webhook.created",
    "webhook.deleted",
    "sync_source.created",
    "sync_source.changed",
    "cache.cleared",
    "cache.invalidated",
]


class AuditEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    tenant_id: uuid.UUID
    actor_id: uuid.UUID | None
    action: Action
    target: str | None
    request_id: str | None
    details: dict[str, Any]
    created_at: datetime


class AuditEventList(CursorPage[AuditEventOut]):
    pass
