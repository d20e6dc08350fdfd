"""accounts: a user with their company, the read model beneath the domains (a view)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 16:00:00+00:00

The principal is one statement on a cold authenticated request: a user joined to their
tenant, and the platform staff list shows each person with their company in one statement.
`authz`, beneath every domain, reads this view rather than importing the users' and tenants'
models (`tenantry/authz/models.py` declares its columns). The password hash is not in it.
PostgreSQL inlines the view: the plan is the join's. A later migration that changes the type
of a column the view selects must drop and recreate the view around the change.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "CREATE OR REPLACE VIEW accounts AS"
        " SELECT u.id, u.tenant_id, u.role, u.account_type, u.is_active, u.token_version,"
        " u.email, u.full_name, u.last_login_at, u.created_at,"
        " t.slug AS tenant_slug, t.name AS tenant_name, t.status AS tenant_status"
        " FROM users AS u JOIN tenants AS t ON t.id = u.tenant_id"
    )


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS accounts")
