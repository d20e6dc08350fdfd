"""Read models of `authz`: SQL views that migrations define over the domains' tables.

`authz` sits beneath every domain and imports none of their models; what it reads of them it
reads through a view. The views live in their own `MetaData`, so neither `create_all` nor
Alembic's autogenerate takes them for tables.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, DateTime, Integer, MetaData, String, Table, Uuid

VIEWS = MetaData()

# A user with their company (migration 0005); no password hash. The principal's columns, and
# what the platform staff list shows.
accounts = Table(
    "accounts",
    VIEWS,
    Column("id", Uuid, primary_key=True),
    Column("tenant_id", Uuid, nullable=False),
    Column("role", String),
    Column("account_type", String),
    Column("is_active", Boolean),
    Column("token_version", Integer),
    Column("email", String),
    Column("full_name", String),
    Column("last_login_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True)),
    Column("tenant_slug", String),
    Column("tenant_name", String),
    Column("tenant_status", String),
)

PRINCIPAL_COLUMNS = (
    accounts.c.id,
    accounts.c.tenant_id,
    accounts.c.role,
    accounts.c.account_type,
    accounts.c.is_active,
    accounts.c.token_version,
    accounts.c.email,
    accounts.c.full_name,
    accounts.c.tenant_slug,
    accounts.c.tenant_name,
    accounts.c.tenant_status,
)
