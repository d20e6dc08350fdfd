"""The audit log over HTTP: owners read their company's events, platform administrators
everyone's."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from tenantry.audit.schemas import Action, AuditEventList
from tenantry.audit.service import AuditService
from tenantry.authz.dependencies import CurrentPrincipal
from tenantry.kit.cursor import Cursor, Limit
from tenantry.kit.deps import SessionDep
from tenantry.kit.errors import problems

router = APIRouter(prefix="/audit-events", tags=["audit"])
Audit = Annotated[AuditService, Depends(AuditService.dep)]


@router.get(
    "",
    summary="Security-relevant actions, newest first, paged by cursor (owners; staff: all)",
    response_model=AuditEventList,
    responses=problems(401, 403, 422),
)
async def list_audit_events(
    audit: Audit,
    session: SessionDep,
    principal: CurrentPrincipal,
    action: Annotated[Action | None, Query(description="Only events of this action")] = None,
    everyone: Annotated[
        bool, Query(alias="all", description="Every company's (platform administrators)")
    ] = False,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> AuditEventList:
    """Logins (succeeded and failed), users created, roles changed, deactivations and
    reactivations (each revokes the user's tokens), API keys made and revoked, settings,
    webhook and sync-source changes, cache clears; each with its actor, target and request
    id."""
    return await audit.page(
        session, principal, action=action, everyone=everyone, cursor=cursor, limit=limit
    )
