"""jobs: Procrastinate's schema (its tables, types, functions and triggers)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-29 19:00:00+00:00

The schema of the pinned Procrastinate (3.10, `tenantry/kit/jobs.py`), as Procrastinate ships
it. It is many statements with dollar-quoted function bodies, which asyncpg cannot prepare as
one statement: it goes through the driver's plain `execute` (the simple query protocol). A
later Procrastinate upgrade is a new revision running that release's migration files, in
order, the same way. `migrations/env.py` leaves the `procrastinate_*` objects out of
autogenerate: our models do not declare them.
"""

from collections.abc import Sequence

from alembic import op
from procrastinate.schema import SchemaManager
from sqlalchemy.util import await_only

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _run_script(sql: str) -> None:
    raw = op.get_bind().connection.dbapi_connection
    await_only(raw.driver_connection.execute(sql))  # type: ignore[union-attr]


def upgrade() -> None:
    _run_script(SchemaManager.get_schema())


def downgrade() -> None:
    # Everything the schema created is named procrastinate_*: tables (their triggers and
    # indexes go with them), then functions, then types.
    _run_script(
        """
        DO $$
        DECLARE r record;
        BEGIN
          FOR r IN SELECT tablename FROM pg_tables
                   WHERE schemaname = current_schema() AND tablename LIKE 'procrastinate\\_%'
          LOOP EXECUTE format('DROP TABLE IF EXISTS %I CASCADE', r.tablename); END LOOP;
          FOR r IN SELECT p.oid::regprocedure AS sig FROM pg_proc p
                   WHERE p.pronamespace = current_schema()::regnamespace
                     AND p.proname LIKE 'procrastinate\\_%'
          LOOP EXECUTE format('DROP FUNCTION IF EXISTS %s CASCADE', r.sig); END LOOP;
          FOR r IN SELECT t.typname FROM pg_type t
                   WHERE t.typnamespace = current_schema()::regnamespace
                     AND t.typname LIKE 'procrastinate\\_%' AND t.typtype IN ('e', 'c')
          LOOP EXECUTE format('DROP TYPE IF EXISTS %I CASCADE', r.typname); END LOOP;
        END $$;
        """
    )
