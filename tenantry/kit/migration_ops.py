"""Migration helpers. Indexes are built CONCURRENTLY (no write lock on a live table), which
PostgreSQL refuses inside a transaction, hence Alembic's autocommit block."""

from __future__ import annotations

from typing import Any

from alembic import op


def create_index_concurrently(name: str, table: str, columns: list[Any], **kw: Any) -> None:
    with op.get_context().autocommit_block():
        op.create_index(
            name, table, columns, postgresql_concurrently=True, if_not_exists=True, **kw
        )


def drop_index_concurrently(name: str, table: str) -> None:
    with op.get_context().autocommit_block():
        op.drop_index(name, table_name=table, postgresql_concurrently=True, if_exists=True)
