"""Test data built through the services, and logins through the API.

`World` writes in the test's rolled-back transaction; `CommittedWorld` really commits (for
tests with several app instances) and deletes every tenant it made, with its users, at the
end. Both build the same way; they differ only in the unit of work they write in.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass

import httpx
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.kit.db import Database, session_scope
from tenantry.kit.platform import Platform
from tenantry.kit.repository import TenantScope
from tenantry.tenants.models import Tenant
from tenantry.tenants.service import TenantsService
from tenantry.users.service import UsersService

PASSWORD = "correct horse battery staple"


@dataclass
class Account:
    id: uuid.UUID
    tenant_id: uuid.UUID
    email: str
    role: str
    headers: dict[str, str]


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> dict[str, str]:
    """Log in through the API; the bearer header for the account."""
    r = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


class _Builder:
    platform: Platform
    client: httpx.AsyncClient | None = None

    def unit(self) -> AbstractAsyncContextManager[AsyncSession]:
        raise NotImplementedError

    async def tenant(self, slug: str | None = None) -> uuid.UUID:
        slug = slug or f"t-{uuid.uuid4().hex[:10]}"
        async with self.unit() as session:
            tenants = self.platform.service(TenantsService)
            tenant = await tenants.provision(session, slug=slug, name=slug.title())
        self.made(tenant.id)
        return tenant.id

    def made(self, tenant_id: uuid.UUID) -> None:
        """A tenant was made (CommittedWorld remembers it for the clean-up)."""

    async def user(
        self,
        tenant_id: uuid.UUID,
        role: str = "member",
        *,
        account_type: str = "customer",
        login: bool = True,
        email: str | None = None,
    ) -> Account:
        """A user of the tenant with `PASSWORD`; logged in (headers set) when `login` and the
        builder has a client."""
        email = email or f"{role}-{uuid.uuid4().hex[:10]}@example.com"
        async with self.unit() as session:
            user = await self.platform.service(UsersService).create(
                session,
                TenantScope(tenant_id),
                email=email,
                full_name=f"{role.title()} User",
                password=PASSWORD,
                role=role,
                account_type=account_type,
            )
        headers = await self.login(email) if login and self.client is not None else {}
        return Account(user.id, tenant_id, email, role, headers)

    async def login(self, email: str, password: str = PASSWORD) -> dict[str, str]:
        assert self.client is not None, "this builder has no client to log in with"
        return await login(self.client, email, password)


class World(_Builder):
    """In the test's own transaction (rolled back at the end), logged in through `client`."""

    def __init__(
        self, session: AsyncSession, client: httpx.AsyncClient, platform: Platform
    ) -> None:
        self.session = session
        self.client = client
        self.platform = platform

    @asynccontextmanager
    async def unit(self) -> AsyncIterator[AsyncSession]:
        yield self.session
        await self.session.commit()


class CommittedWorld(_Builder):
    """Really committed; every tenant made here is deleted, with its users, by `cleanup`."""

    def __init__(self, db: Database, platform: Platform) -> None:
        self.db = db
        self.platform = platform
        self.tenants: list[uuid.UUID] = []

    @asynccontextmanager
    async def unit(self) -> AsyncIterator[AsyncSession]:
        async with session_scope(self.db.sessionmaker) as session:
            yield session

    def made(self, tenant_id: uuid.UUID) -> None:
        self.tenants.append(tenant_id)

    async def cleanup(self) -> None:
        if self.tenants:
            async with session_scope(self.db.sessionmaker) as s:
                await s.execute(delete(Tenant).where(Tenant.id.in_(self.tenants)))
