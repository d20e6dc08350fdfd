"""tenant-owned tables key on the tenant: api_keys (tenant_id, id), users unique (tenant_id, id)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 10:00:00+00:00

On a live database: every index is built CONCURRENTLY (no write lock) and then attached as a
constraint (`USING INDEX`, a catalog change); the composite foreign key is added NOT VALID and
validated in its own transaction (rows stay writable while it is checked). The autocommit
blocks commit as they go, so each step first looks at whether it is already done: a run that
stopped part way can simply be run again.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from tenantry.kit.migration_ops import create_index_concurrently, drop_index_concurrently

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

USERS_UQ = "uq_users_tenant_id_id"
API_KEYS_PK = "pk_api_keys"
API_KEYS_PK_BUILD = "pk_api_keys_build"  # the index being built; the constraint renames it
CREATOR_FK_OLD = "fk_api_keys_created_by_users"
CREATOR_FK_NEW = "fk_api_keys_tenant_id_created_by_users"


def _constraint_exists(table: str, name: str) -> bool:
    row = op.get_bind().execute(
        sa.text(
            "SELECT 1 FROM pg_constraint"
            " WHERE conrelid = CAST(:table AS regclass) AND conname = :name"
        ),
        {"table": table, "name": name},
    )
    return row.first() is not None


def _primary_key(table: str) -> list[str]:
    columns: list[str] = sa.inspect(op.get_bind()).get_pk_constraint(table)["constrained_columns"]
    return columns


def _build_unique_index(name: str, table: str, columns: list[str]) -> None:
    """A unique index built concurrently. A build that was interrupted leaves an INVALID index
    behind, which `IF NOT EXISTS` would keep and `USING INDEX` refuse: drop that one first."""
    invalid = op.get_bind().execute(
        sa.text("SELECT 1 FROM pg_index WHERE indexrelid = to_regclass(:name) AND NOT indisvalid"),
        {"name": name},
    )
    if invalid.first() is not None:
        drop_index_concurrently(name, table)
    create_index_concurrently(name, table, columns, unique=True)


def _set_api_keys_primary_key(columns: list[str]) -> None:
    """Swap api_keys' primary key for one on `columns`: the unique index is built concurrently,
    then one ALTER TABLE drops the old key and adopts the index (no moment without a key)."""
    if _primary_key("api_keys") == columns:
        return
    _build_unique_index(API_KEYS_PK_BUILD, "api_keys", columns)
    with op.get_context().autocommit_block():
        op.execute(
            f"ALTER TABLE api_keys DROP CONSTRAINT {API_KEYS_PK},"
            f" ADD CONSTRAINT {API_KEYS_PK} PRIMARY KEY USING INDEX {API_KEYS_PK_BUILD}"
        )


def _add_foreign_key(name: str, columns: list[str], referred: str, remote: list[str]) -> None:
    """Added NOT VALID (a brief lock, no scan), then validated in a transaction of its own,
    which lets writes go on while the existing rows are checked."""
    if _constraint_exists("api_keys", name):
        return
    with op.get_context().autocommit_block():
        op.create_foreign_key(
            name,
            "api_keys",
            referred,
            columns,
            remote,
            ondelete="CASCADE",
            postgresql_not_valid=True,
        )
        op.execute(f"ALTER TABLE api_keys VALIDATE CONSTRAINT {name}")


def upgrade() -> None:
    # users: UNIQUE (tenant_id, id), which tenant-owned tables reference; it replaces the plain
    # index on the same columns.
    if not _constraint_exists("users", USERS_UQ):
        _build_unique_index(USERS_UQ, "users", ["tenant_id", "id"])
        op.execute(f"ALTER TABLE users ADD CONSTRAINT {USERS_UQ} UNIQUE USING INDEX {USERS_UQ}")
    drop_index_concurrently("ix_users_tenant_id_id", "users")

    # api_keys: the primary key (tenant_id, id), which makes ix_api_keys_tenant_id_id redundant.
    _set_api_keys_primary_key(["tenant_id", "id"])
    drop_index_concurrently("ix_api_keys_tenant_id_id", "api_keys")

    # api_keys.created_by: a user of the key's own tenant.
    _add_foreign_key(CREATOR_FK_NEW, ["tenant_id", "created_by"], "users", ["tenant_id", "id"])
    op.execute(f"ALTER TABLE api_keys DROP CONSTRAINT IF EXISTS {CREATOR_FK_OLD}")


def downgrade() -> None:
    _add_foreign_key(CREATOR_FK_OLD, ["created_by"], "users", ["id"])
    op.execute(f"ALTER TABLE api_keys DROP CONSTRAINT IF EXISTS {CREATOR_FK_NEW}")

    create_index_concurrently("ix_api_keys_tenant_id_id", "api_keys", ["tenant_id", "id"])
    _set_api_keys_primary_key(["id"])

    create_index_concurrently("ix_users_tenant_id_id", "users", ["tenant_id", "id"])
    op.execute(f"ALTER TABLE users DROP CONSTRAINT IF EXISTS {USERS_UQ}")
