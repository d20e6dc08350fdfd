from __future__ import annotations

import asyncio
import uuid

import asyncpg
from alembic import command

from tenantry.kit.db import plain_url
from tenantry.kit.migrations import alembic_config, downgrade, upgrade
from tests.support.services import create_database, drop_database


async def _tables(url: str) -> set[str]:
    conn = await asyncpg.connect(plain_url(url))
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {r["tablename"] for r in rows}
    finally:
        await conn.close()


async def _indexes(url: str) -> dict[str, bool]:
    conn = await asyncpg.connect(plain_url(url))
    try:
        rows = await conn.fetch(
            "SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
            " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'"
        )
        return {r["relname"]: r["indisvalid"] for r in rows}
    finally:
        await conn.close()


async def test_upgrade_from_empty_and_downgrade_back(admin_url: str) -> None:
    name = f"tenantry_migr_{uuid.uuid4().hex[:8]}"
    url = await create_database(admin_url, name)
    try:
        await asyncio.to_thread(upgrade, url)
        tables = await _tables(url)
        expected = {"tenants", "tenant_settings", "users", "state_entries", "api_keys"}
        assert expected | {"alembic_version"} <= tables
        indexes = await _indexes(url)
        assert indexes["ix_users_tenant_id_id"] is True  # built concurrently, and valid
        # The models and the migrations agree: autogenerate finds nothing to do.
        await asyncio.to_thread(command.check, alembic_config(url))
        await asyncio.to_thread(downgrade, url, "base")
        assert await _tables(url) == {"alembic_version"}
        await asyncio.to_thread(upgrade, url)  # and up again from there
        assert "users" in await _tables(url)
    finally:
        await drop_database(admin_url, name)
