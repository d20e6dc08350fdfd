"""customer search: a trigram index on name, email and phone, within the tenant

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29 22:30:00+00:00

`GET /customers?q=` (and the leads list's `q`, which matches the lead's customer) finds a
substring of a customer's name, email or phone: `lower(name || ' ' || email || ' ' || phone)
LIKE '%q%'`. A GIN index over that expression's trigrams (pg_trgm) serves it, led by
`tenant_id` (btree_gin) so that every lookup stays in its tenant. Both extensions ship with
PostgreSQL (contrib), the embedded server included. The table may be large by now: the index is
built CONCURRENTLY, outside the migration's transaction.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEARCH = "lower(name || ' ' || coalesce(email, '') || ' ' || coalesce(phone, ''))"


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gin")
    with op.get_context().autocommit_block():
        op.execute(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_customers_search ON customers"
            f" USING gin (tenant_id, ({SEARCH}) gin_trgm_ops)"
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute("DROP INDEX CONCURRENTLY IF EXISTS ix_customers_search")
