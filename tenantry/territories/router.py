"""Territories over HTTP: members read them, owners and admins shape them."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from tenantry.authz.dependencies import CurrentPrincipal, TenantAdmin
from tenantry.kit.cursor import Cursor, Limit
from tenantry.kit.deps import SessionDep
from tenantry.kit.errors import NotFound, problems
from tenantry.territories.schemas import (
    PostalCode,
    RegionCreate,
    RegionList,
    RegionOut,
    Resolved,
    TeamCreate,
    TeamList,
    TeamOut,
    UserContext,
    ZoneCreate,
    ZoneList,
    ZoneOut,
)
from tenantry.territories.service import TerritoriesService

router = APIRouter(tags=["territories"])

Territories = Annotated[TerritoriesService, Depends(TerritoriesService.dep)]


@router.get(
    "/teams",
    summary="Your company's teams with their members, newest first, paged by cursor",
    response_model=TeamList,
    responses=problems(401, 422),
)
async def list_teams(
    territories: Territories,
    session: SessionDep,
    principal: CurrentPrincipal,
    cursor: Cursor = None,
    limit: Limit = 100,
) -> TeamList:
    return await territories.team_page(session, principal.scope, cursor=cursor, limit=limit)


@router.post(
    "/teams",
    summary="Add a team with its members (owners and admins)",
    response_model=TeamOut,
    status_code=status.HTTP_201_CREATED,
    responses=problems(400, 401, 403, 409, 413, 422),
)
async def create_team(
    body: TeamCreate, territories: Territories, session: SessionDep, admin: TenantAdmin
) -> TeamOut:
    return await territories.create_team(session, admin.scope, body)


@router.get(
    "/teams/{team_id}",
    summary="One team with its members",
    response_model=TeamOut,
    responses=problems(401, 404, 422),
)
async def get_team(
    team_id: uuid.UUID, territories: Territories, session: SessionDep, principal: CurrentPrincipal
) -> TeamOut:
    return await territories.team(session, principal.scope, team_id)


@router.put(
    "/teams/{team_id}/members/{user_id}",
    summary="Put an active user in a team, last (idempotent; owners and admins)",
    response_model=TeamOut,
    responses=problems(401, 403, 404, 409, 422),
)
async def add_team_member(
    team_id: uuid.UUID,
    user_id: uuid.UUID,
    territories: Territories,
    session: SessionDep,
    admin: TenantAdmin,
) -> TeamOut:
    """The user's cached context (`/users/me/context`) is dropped on every instance."""
    return await territories.add_member(session, admin.scope, team_id, user_id)


@router.delete(
    "/teams/{team_id}/members/{user_id}",
    summary="Take a user out of a team (owners and admins)",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problems(401, 403, 404, 422),
)
async def remove_team_member(
    team_id: uuid.UUID,
    user_id: uuid.UUID,
    territories: Territories,
    session: SessionDep,
    admin: TenantAdmin,
) -> Response:
    """Their open leads stay assigned to them; the user's cached context is dropped."""
    await territories.remove_member(session, admin.scope, team_id, user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/regions",
    summary="Your company's regions, newest first, paged by cursor",
    response_model=RegionList,
    responses=problems(401, 422),
)
async def list_regions(
    territories: Territories,
    session: SessionDep,
    principal: CurrentPrincipal,
    cursor: Cursor = None,
    limit: Limit = 100,
) -> RegionList:
    return await territories.region_page(session, principal.scope, cursor=cursor, limit=limit)


@router.post(
    "/regions",
    summary="Add a region (owners and admins)",
    response_model=RegionOut,
    status_code=status.HTTP_201_CREATED,
    responses=problems(400, 401, 403, 409, 413, 422),
)
async def create_region(
    body: RegionCreate, territories: Territories, session: SessionDep, admin: TenantAdmin
) -> RegionOut:
    return await territories.create_region(session, admin.scope, body)


@router.get(
    "/zones",
    summary="Your company's zones, newest first, paged by cursor",
    response_model=ZoneList,
    responses=problems(401, 422),
)
async def list_zones(
    territories: Territories,
    session: SessionDep,
    principal: CurrentPrincipal,
    cursor: Cursor = None,
    limit: Limit = 100,
) -> ZoneList:
    return await territories.zone_page(session, principal.scope, cursor=cursor, limit=limit)


@router.post(
    "/zones",
    summary="Add a zone: postal-code prefixes in a region, owned by a team (owners and admins)",
    response_model=ZoneOut,
    status_code=status.HTTP_201_CREATED,
    responses=problems(400, 401, 403, 404, 409, 413, 422),
)
async def create_zone(
    body: ZoneCreate, territories: Territories, session: SessionDep, admin: TenantAdmin
) -> ZoneOut:
    return await territories.create_zone(session, admin.scope, body)


@router.get(
    "/zones/resolve",
    summary="The zone a postal code is in (its longest matching prefix)",
    response_model=Resolved,
    responses=problems(401, 404, 422),
)
async def resolve_zone(
    territories: Territories,
    principal: CurrentPrincipal,
    postal_code: Annotated[PostalCode, Query()],
) -> Resolved:
    found = await territories.resolve(principal.scope, postal_code)
    if found is None:
        raise NotFound("No zone of your company covers this postal code.")
    return found


@router.get(
    "/users/me/context",
    summary="Who you are in your company: tenant, role, teams, regions and zones",
    response_model=UserContext,
    responses=problems(401),
)
async def get_my_context(
    territories: Territories, session: SessionDep, principal: CurrentPrincipal
) -> UserContext:
    """One query when not cached; cached 15 minutes, dropped when your teams change."""
    return await territories.context(session, principal)
