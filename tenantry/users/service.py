"""People rules: who may create and change whom, what revokes a token, and the lookups a login
needs."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.audit.service import AuditService
from tenantry.authz import service as principals
from tenantry.authz.principal import Principal, rank
from tenantry.kit.cache import Rendered
from tenantry.kit.db import Reader
from tenantry.kit.errors import Conflict, Forbidden, NotFound
from tenantry.kit.pagination import offset_of
from tenantry.kit.platform import Service
from tenantry.kit.repository import TenantScope
from tenantry.kit.security import hash_password
from tenantry.tenants.schemas import TenantSummary
from tenantry.tenants.service import TenantsService
from tenantry.users.models import User
from tenantry.users.repository import StaffDirectory, UserDirectory, UserRepository
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


def _me_json(principal: Principal) -> bytes:
    return _ME.dump_json(UsersService.me(principal))


_ME = TypeAdapter(MeOut)
# A page's rows, validated in one call rather than one model at a time.
_USER_ROWS = TypeAdapter(list[UserOut])


class UsersService(Service):
    @staticmethod
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

    def me_json(self, principal: Principal) -> Rendered:
        """`me`, serialised once per cached principal (with its ETag). A key's caller acts with
        a role of its own, so its profile is made for each request."""
        if principal.via_api_key:
            return Rendered.of(_me_json(principal))
        cache = self.platform.caches.cache(principals.PRINCIPAL_CACHE)
        key = principals.principal_key(principal.tenant_id, principal.id)
        return cache.rendered(key, principal, _me_json)

    async def page(
        self, source: AsyncSession | Reader, scope: TenantScope, *, page: int, per_page: int
    ) -> UserPage:
        users, total = await UserRepository(source, scope).page(
            offset=offset_of(page, per_page), limit=per_page
        )
        items = _USER_ROWS.validate_python([dict(u) for u in users])
        return UserPage.of(items, total=total, page=page, per_page=per_page)

    async def create(
        self,
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
        """A user of the scope's tenant; `creator` (when a person asks) may not grant a role
        above their own."""
        if creator is not None and not creator.may_grant(role):
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

    async def get(self, session: AsyncSession, scope: TenantScope, user_id: uuid.UUID) -> User:
        """One user of the scope's tenant, or 404."""
        user = await UserRepository(session, scope).get(user_id)
        if user is None:
            raise NotFound("No such user in your company.")
        return user

    async def active_among(
        self, session: AsyncSession, scope: TenantScope, user_ids: list[uuid.UUID]
    ) -> set[uuid.UUID]:
        """Which of these users of the scope's tenant are active: one query."""
        return await UserRepository(session, scope).active_among(user_ids)

    async def add(
        self,
        session: AsyncSession,
        creator: Principal,
        body: UserCreate | InternalUserCreate,
        *,
        account_type: str = "customer",
    ) -> User:
        """A user of the creator's tenant, as a person asked for it. Not by an API key: a
        login made with a key would outlive the key's revocation (and a key may not hand out
        credentials any more than it may create keys)."""
        if creator.via_api_key:
            raise Forbidden("An API key cannot create logins; a person signed in must.")
        user = await self.create(
            session,
            creator.scope,
            email=body.email,
            full_name=body.full_name,
            password=body.password,
            role=body.role,
            account_type=account_type,
            creator=creator,
        )
        self.platform.service(AuditService).record(
            session,
            creator.scope,
            "user.created",
            actor=creator,
            target=user.email,
            details={"user_id": str(user.id), "role": user.role, "account_type": account_type},
        )
        return user

    async def update(
        self, session: AsyncSession, actor: Principal, user_id: uuid.UUID, patch: UserPatch
    ) -> User:
        user = await UserRepository(session, actor.scope).get(user_id)
        if user is None:
            raise NotFound("No such user in your company.")
        changes = patch.model_dump(exclude_unset=True, exclude_none=True)
        if rank(user.role) > rank(actor.role):  # their name included
            raise Forbidden(f"A {actor.role} cannot change a {user.role}.")
        touches_access = ("role" in changes and changes["role"] != user.role) or (
            "is_active" in changes and changes["is_active"] != user.is_active
        )
        if touches_access:
            if actor.via_api_key:
                raise Forbidden("An API key cannot change who may sign in; a person must.")
            if user.id == actor.id:
                raise Forbidden("You cannot change your own role or deactivate yourself.")
            if not actor.may_grant(changes.get("role", user.role)):
                raise Forbidden(f"A {actor.role} cannot grant the role {changes['role']!r}.")
        audit = self.platform.service(AuditService)
        if "role" in changes and changes["role"] != user.role:
            moved = {"user_id": str(user.id), "from": user.role, "to": changes["role"]}
            audit.record(
                session,
                actor.scope,
                "user.role_changed",
                actor=actor,
                target=user.email,
                details={**moved, "tokens_revoked": True},
            )
        if "is_active" in changes and changes["is_active"] != user.is_active:
            audit.record(
                session,
                actor.scope,
                "user.reactivated" if changes["is_active"] else "user.deactivated",
                actor=actor,
                target=user.email,
                details={"user_id": str(user.id), "tokens_revoked": True},
            )
        for key, value in changes.items():
            setattr(user, key, value)
        if touches_access:
            # Every token the user holds carries the old version and is refused from now on.
            user.token_version = user.token_version + 1
        if changes:
            # Name, role and active flag are all in the cached principal (and /users/me).
            principals.forget(session, user.tenant_id, user.id)
        await session.flush()
        return user

    async def count_by_tenant(
        self, session: AsyncSession, tenant_ids: list[uuid.UUID]
    ) -> dict[uuid.UUID, int]:
        """Users per company, for these companies (platform staff's list of tenants)."""
        counts = await UserDirectory(session).count_by_tenant(tenant_ids)
        return {tid: counts.get(tid, 0) for tid in tenant_ids}

    async def staff_page(
        self, session: AsyncSession, *, page: int, per_page: int
    ) -> InternalUserPage:
        rows, total = await StaffDirectory(session).page(
            offset=offset_of(page, per_page), limit=per_page
        )
        items = [
            InternalUserOut(
                **UserOut.model_validate(dict(row)).model_dump(),
                company=TenantSummary(
                    id=row["tenant_id"],
                    slug=row["tenant_slug"],
                    name=row["tenant_name"],
                    status=row["tenant_status"],
                ),
            )
            for row in rows
        ]
        return InternalUserPage.of(items, total=total, page=page, per_page=per_page)

    async def create_staff(
        self, session: AsyncSession, admin: Principal, body: InternalUserCreate
    ) -> InternalUserOut:
        """A platform staff member, in the operator tenant (the admin's own)."""
        company = await self.platform.service(TenantsService).summary(admin.scope)
        user = await self.add(session, admin, body, account_type="internal_employee")
        return InternalUserOut(**UserOut.model_validate(user).model_dump(), company=company)

    # --- what a login needs (the auth domain asks) ----------------------------------------------

    async def login_row(self, session: AsyncSession, email: str) -> Any | None:
        """The login columns of the user with this email (normalised here), or None."""
        return await UserDirectory(session).login_row(email.strip().lower())

    async def record_login(
        self, session: AsyncSession, row: Any, password_hash: str | None = None
    ) -> None:
        """Stamp `last_login_at` (and store a rehashed password) for `login_row`'s row."""
        repo = UserRepository(session, TenantScope(row.tenant_id))
        await repo.record_login(row.id, password_hash)

    async def forget_by_email(
        self, session: AsyncSession, email: str
    ) -> tuple[uuid.UUID, uuid.UUID] | None:
        """Drop the user's cached principal on every instance once this commits; the user's
        (tenant id, id), or None when nobody has the email."""
        row = await self.login_row(session, email)
        if row is None:
            return None
        principals.forget(session, row.tenant_id, row.id)
        return row.tenant_id, row.id
