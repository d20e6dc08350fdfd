"""Demo data: two companies with an owner and a member each, and the platform's operator
tenant with its admin. Idempotent: what exists is left alone."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.kit.platform import Platform
from tenantry.kit.repository import TenantScope
from tenantry.tenants.service import TenantsService
from tenantry.users.service import UsersService


@dataclass(frozen=True)
class DemoUser:
    email: str
    full_name: str
    role: str
    account_type: str = "customer"


@dataclass(frozen=True)
class DemoTenant:
    slug: str
    name: str
    industry: str
    company_size: str
    users: tuple[DemoUser, ...]


def demo_tenants(operator_slug: str) -> tuple[DemoTenant, ...]:
    return (
        DemoTenant(
            operator_slug,
            "Tenantry Platform",
            "software",
            "small",
            (DemoUser("admin@tenantry.example", "Platform Admin", "admin", "internal_employee"),),
        ),
        DemoTenant(
            "acme",
            "Acme Corporation",
            "manufacturing",
            "medium",
            (
                DemoUser("owner@acme.example", "Ada Acme", "owner"),
                DemoUser("member@acme.example", "Max Acme", "member"),
            ),
        ),
        DemoTenant(
            "globex",
            "Globex Inc.",
            "technology",
            "small",
            (
                DemoUser("owner@globex.example", "Grace Globex", "owner"),
                DemoUser("member@globex.example", "Gus Globex", "member"),
            ),
        ),
    )


def demo_logins(operator_slug: str) -> list[str]:
    return [u.email for t in demo_tenants(operator_slug) for u in t.users]


async def seed_demo(
    platform: Platform,
    session: AsyncSession,
    *,
    password: str,
    operator_slug: str,
    advance: Callable[[str], None] = lambda _: None,
) -> int:
    """Create what is missing; returns how many rows were created. `advance` is called once per
    tenant, for a progress bar."""
    tenants, users = platform.service(TenantsService), platform.service(UsersService)
    created = 0
    for spec in demo_tenants(operator_slug):
        tenant = await tenants.find_by_slug(session, spec.slug)
        if tenant is None:
            tenant = await tenants.provision(
                session,
                slug=spec.slug,
                name=spec.name,
                industry=spec.industry,
                company_size=spec.company_size,
                suites=["crm"],
            )
            created += 1
            for user in spec.users:
                await users.create(
                    session,
                    TenantScope(tenant.id),
                    email=user.email,
                    full_name=user.full_name,
                    password=password,
                    role=user.role,
                    account_type=user.account_type,
                )
                created += 1
        advance(spec.slug)
    return created


async def has_data(platform: Platform, session: AsyncSession, operator_slug: str) -> bool:
    found = await platform.service(TenantsService).find_by_slug(session, operator_slug)
    return found is not None
