"""People rules: who may create and change whom, and what revokes a token."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.auth import service as auth
from tenantry.auth.principal import ROLE_RANK, Principal
from tenantry.kit.errors import Conflict, Forbidden, NotFound
from tenantry.kit.pagination import offset_of
from tenantry.kit.security import hash_password
from tenantry.kit.tenancy import TenantScope
from tenantry.tenants.schemas import TenantSummary
from tenantry.users.models import User
from tenantry.users.repository import UserDirectory, UserRepository
from tenantry.users.schemas import (
    InternalUserOut,
    InternalUserPage,
    MeOut,
    UserOut,
    UserPage,
    UserPatch,
)


def me(principal: Principal) -> MeOut:
    """The profile comes from the principal projection: no further query."""
    return MeOut(
        id=principal.id,
        email=principal.email,
        full_name=principal.full_name,
        role=principal.role,
        account_type=principal.account_type,
        tenant=TenantSummary(
            id=principal.tenant_id,
            slug=principal.tenant_slug,
            name=principal.tenant_name,
            status=principal.tenant_status,
        ),
    )


async def list_users(
    session: AsyncSession, scope: TenantScope, *, page: int, per_page: int
) -> UserPage:
    users, total = await UserRepository(session, scope).page(
        offset=offset_of(page, per_page), limit=per_page
    )
    items = [UserOut.model_validate(dict(u)) for u in users]
    return UserPage.of(items, total=total, page=page, per_page=per_page)


async def create_user(
    session: AsyncSession,
    scope: TenantScope,
    *,
    email: str,
    full_name: str,
    password: str | None,
    role: str,
    account_type: str = "customer",
    creator: Principal | None = None,
) -> User:
    if creator is not None and ROLE_RANK[role] > ROLE_RANK[creator.role]:
        raise Forbidden(f"A {creator.role} cannot create a user with the role {role!r}.")
    email = email.strip().lower()
    if await UserDirectory(session).email_taken(email):
        raise Conflict(f"A user with the email {email} already exists.", field="email")
    user = User(
        email=email,
        full_name=full_name.strip(),
        password_hash=await hash_password(password) if password else None,
        role=role,
        account_type=account_type,
    )
    UserRepository(session, scope).add(user)
    await session.flush()
    await session.refresh(user, ["created_at", "is_active"])
    return user


async def update_user(
    session: AsyncSession, actor: Principal, user_id: uuid.UUID, patch: UserPatch
) -> User:
    repo = UserRepository(session, actor.scope)
    user = await repo.get(user_id)
    if user is None:
        raise NotFound("No such user in your company.")
    changes = patch.model_dump(exclude_unset=True, exclude_none=True)
    touches_access = ("role" in changes and changes["role"] != user.role) or (
        changes.get("is_active") is False and user.is_active
    )
    if touches_access:
        if user.id == actor.id:
            raise Forbidden("You cannot change your own role or deactivate yourself.")
        if ROLE_RANK[user.role] > ROLE_RANK[actor.role]:
            raise Forbidden(f"A {actor.role} cannot change a {user.role}.")
        if ROLE_RANK[changes.get("role", user.role)] > ROLE_RANK[actor.role]:
            raise Forbidden(f"A {actor.role} cannot grant the role {changes['role']!r}.")
    for key, value in changes.items():
        setattr(user, key, value)
    if touches_access:
        # Every token the user holds carries the old version and is refused from now on.
        user.token_version = user.token_version + 1
    if changes:
        # Name, role and active flag are all in the cached principal (and /users/me).
        auth.forget_principal(session, user.tenant_id, user.id)
    await session.flush()
    return user


async def list_internal(session: AsyncSession, *, page: int, per_page: int) -> InternalUserPage:
    rows, total = await UserDirectory(session).internal_page(
        offset=offset_of(page, per_page), limit=per_page
    )
    items = [
        InternalUserOut(
            **UserOut.model_validate(row.User).model_dump(),
            company=TenantSummary(
                id=row.company_id,
                slug=row.company_slug,
                name=row.company_name,
                status=row.company_status,
            ),
        )
        for row in rows
    ]
    return InternalUserPage.of(items, total=total, page=page, per_page=per_page)
