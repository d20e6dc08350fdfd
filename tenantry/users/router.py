from __future__ import annotations

import uuid

from fastapi import APIRouter, status

from tenantry.auth.dependencies import CurrentPrincipal, PlatformAdmin, TenantAdmin
from tenantry.kit.deps import SessionDep
from tenantry.kit.errors import problems
from tenantry.kit.pagination import PageNumber, PerPage
from tenantry.kit.tenancy import TenantScope
from tenantry.tenants import service as tenants
from tenantry.users import service
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

router = APIRouter(tags=["users"])


@router.get(
    "/users/me",
    summary="Your profile and company",
    response_model=MeOut,
    responses=problems(401),
)
async def get_me(principal: CurrentPrincipal) -> MeOut:
    return service.me(principal)


@router.get(
    "/users",
    summary="List your company's users (owners and admins)",
    response_model=UserPage,
    responses=problems(401, 403, 422),
)
async def list_users(
    session: SessionDep, admin: TenantAdmin, page: PageNumber = 1, per_page: PerPage = 20
) -> UserPage:
    return await service.list_users(session, admin.scope, page=page, per_page=per_page)


@router.post(
    "/users",
    summary="Add a user to your company (owners and admins)",
    response_model=UserOut,
    status_code=status.HTTP_201_CREATED,
    responses=problems(400, 401, 403, 409, 413, 422),
)
async def create_user(body: UserCreate, session: SessionDep, admin: TenantAdmin) -> UserOut:
    user = await service.create_user(
        session,
        admin.scope,
        email=body.email,
        full_name=body.full_name,
        password=body.password,
        role=body.role,
        creator=admin,
    )
    return UserOut.model_validate(user)


@router.patch(
    "/users/{user_id}",
    summary="Change a user's name, role or active flag (owners and admins)",
    response_model=UserOut,
    responses=problems(400, 401, 403, 404, 413, 422),
)
async def update_user(
    user_id: uuid.UUID, body: UserPatch, session: SessionDep, admin: TenantAdmin
) -> UserOut:
    return UserOut.model_validate(await service.update_user(session, admin, user_id, body))


@router.get(
    "/admin/users/internal",
    summary="List platform staff with their company (platform admins)",
    response_model=InternalUserPage,
    responses=problems(401, 403, 422),
    tags=["admin"],
)
async def list_internal_users(
    session: SessionDep, _: PlatformAdmin, page: PageNumber = 1, per_page: PerPage = 20
) -> InternalUserPage:
    return await service.list_internal(session, page=page, per_page=per_page)


@router.post(
    "/admin/users/internal",
    summary="Add a platform staff member (platform admins)",
    response_model=InternalUserOut,
    status_code=status.HTTP_201_CREATED,
    responses=problems(400, 401, 403, 409, 413, 422),
    tags=["admin"],
)
async def create_internal_user(
    body: InternalUserCreate, session: SessionDep, admin: PlatformAdmin
) -> InternalUserOut:
    operator = await tenants.get_tenant(session, admin.scope)
    user = await service.create_user(
        session,
        TenantScope(operator.id),
        email=body.email,
        full_name=body.full_name,
        password=body.password,
        role=body.role,
        account_type="internal_employee",
        creator=admin,
    )
    return InternalUserOut(
        **UserOut.model_validate(user).model_dump(),
        company={
            "id": operator.id,
            "slug": operator.slug,
            "name": operator.name,
            "status": operator.status,
        },
    )
