from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status

from tenantry.authz.dependencies import CurrentPrincipal, PlatformAdmin, TenantAdmin
from tenantry.kit.conditional import NOT_MODIFIED, cached_json, model_json
from tenantry.kit.deps import ReaderDep, SessionDep
from tenantry.kit.errors import problems
from tenantry.kit.lane import hot
from tenantry.kit.pagination import PageNumber, PerPage
from tenantry.users.schemas import (
    InternalUserCreate,
    InternalUserOut,
    InternalUserPage,
    MeOut,
    UserCreate,
    UserOut,
    UserPage,
    UserPatch,
)
from tenantry.users.service import UsersService

router = APIRouter(tags=["users"])

Users = Annotated[UsersService, Depends(UsersService.dep)]


@router.get(
    "/users/me",
    summary="Your profile and company",
    response_model=MeOut,
    responses={**NOT_MODIFIED, **problems(401)},
)
@hot
async def get_me(request: Request, users: Users, principal: CurrentPrincipal) -> Response:
    """Served from the cached principal as bytes, with an `ETag`; `If-None-Match` gets a 304."""
    return cached_json(request, users.me_json(principal))


@router.get(
    "/users",
    summary="List your company's users (owners and admins)",
    response_model=UserPage,
    responses=problems(401, 403, 422),
)
@hot
async def list_users(
    users: Users,
    reader: ReaderDep,
    admin: TenantAdmin,
    page: PageNumber = 1,
    per_page: PerPage = 20,
) -> Response:
    return model_json(await users.page(reader, admin.scope, page=page, per_page=per_page))


@router.post(
    "/users",
    summary="Add a user to your company (owners and admins)",
    response_model=UserOut,
    status_code=status.HTTP_201_CREATED,
    responses=problems(400, 401, 403, 409, 413, 422),
)
async def create_user(
    body: UserCreate, users: Users, session: SessionDep, admin: TenantAdmin
) -> UserOut:
    return UserOut.model_validate(await users.add(session, admin, body))


@router.patch(
    "/users/{user_id:uuid}",
    summary="Change a user's name, role or active flag (owners and admins)",
    response_model=UserOut,
    responses=problems(400, 401, 403, 404, 413, 422),
)
async def update_user(
    user_id: uuid.UUID, body: UserPatch, users: Users, session: SessionDep, admin: TenantAdmin
) -> UserOut:
    return UserOut.model_validate(await users.update(session, admin, user_id, body))


@router.get(
    "/admin/users/internal",
    summary="List platform staff with their company (platform admins)",
    response_model=InternalUserPage,
    responses=problems(401, 403, 422),
    tags=["admin"],
)
async def list_internal_users(
    users: Users,
    session: SessionDep,
    _: PlatformAdmin,
    page: PageNumber = 1,
    per_page: PerPage = 20,
) -> InternalUserPage:
    return await users.staff_page(session, page=page, per_page=per_page)


@router.post(
    "/admin/users/internal",
    summary="Add a platform staff member (platform admins)",
    response_model=InternalUserOut,
    status_code=status.HTTP_201_CREATED,
    responses=problems(400, 401, 403, 409, 413, 422),
    tags=["admin"],
)
async def create_internal_user(
    body: InternalUserCreate, users: Users, session: SessionDep, admin: PlatformAdmin
) -> InternalUserOut:
    return await users.create_staff(session, admin, body)
