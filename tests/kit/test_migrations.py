from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from alembic import command

from tenantry.kit.db import plain_url
from tenantry.kit.migrations import alembic_config, downgrade, upgrade
from tenantry.models import Base
from tests.support.services import create_database, drop_database


async def _fetch(url: str, sql: str, *args: object) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(plain_url(url))
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


async def _tables(url: str) -> set[str]:
    rows = await _fetch(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return {r["tablename"] for r in rows}


async def _indexes(url: str) -> dict[str, bool]:
    rows = await _fetch(
        url,
        "SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
        " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public'",
    )
    return {r["relname"]: r["indisvalid"] for r in rows}


async def _primary_keys(url: str) -> dict[str, list[str]]:
    """Each table's primary key columns, in key order (autogenerate does not compare these)."""
    rows = await _fetch(
        url,
        "SELECT c.conrelid::regclass::text AS tbl, array_agg(a.attname ORDER BY k.n) AS cols"
        " FROM pg_constraint c CROSS JOIN unnest(c.conkey) WITH ORDINALITY AS k(attnum, n)"
        " JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum"
        " WHERE c.contype = 'p' AND c.connamespace = 'public'::regnamespace"
        " GROUP BY c.conrelid",
    )
    # Alembic's and Procrastinate's own tables (revision 0006) are not our models'.
    return {
        r["tbl"]: list(r["cols"])
        for r in rows
        if r["tbl"] != "alembic_version" and not r["tbl"].startswith("procrastinate_")
    }


async def _schema(url: str) -> set[tuple[str, str, str]]:
    """Every constraint and index, with its definition: to compare a schema before and after."""
    constraints = await _fetch(
        url,
        "SELECT conrelid::regclass::text AS tbl, conname, pg_get_constraintdef(oid) AS def"
        " FROM pg_constraint WHERE connamespace = 'public'::regnamespace",
    )
    indexes = await _fetch(
        url, "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"
    )
    return {(r["tbl"], r["conname"], r["def"]) for r in constraints} | {
        (r["tablename"], r["indexname"], r["indexdef"]) for r in indexes
    }


@pytest.fixture
async def empty_db(admin_url: str) -> AsyncIterator[str]:
    name = f"tenantry_migr_{uuid.uuid4().hex[:8]}"
    url = await create_database(admin_url, name)
    try:
        yield url
    finally:
        await drop_database(admin_url, name)


async def test_upgrade_from_empty_and_downgrade_back(empty_db: str) -> None:
    url = empty_db
    await asyncio.to_thread(upgrade, url)
    tables = await _tables(url)
    expected = {"tenants", "tenant_settings", "users", "state_entries", "api_keys"}
    assert expected | {"alembic_version", "procrastinate_jobs"} <= tables
    indexes = await _indexes(url)
    # Built concurrently, and valid; the plain indexes they replace are gone.
    assert indexes["uq_users_tenant_id_id"] is True
    assert indexes["pk_api_keys"] is True
    assert "ix_users_tenant_id_id" not in indexes
    assert "ix_api_keys_tenant_id_id" not in indexes
    # The models and the migrations agree: autogenerate finds nothing to do, and the primary
    # keys (which autogenerate does not compare) are the models', column for column.
    await asyncio.to_thread(command.check, alembic_config(url))
    declared = {
        t.name: [c.name for c in t.primary_key.columns] for t in Base.metadata.sorted_tables
    }
    assert await _primary_keys(url) == declared
    await asyncio.to_thread(downgrade, url, "base")
    assert await _tables(url) == {"alembic_version"}
    await asyncio.to_thread(upgrade, url)  # and up again from there
    assert "users" in await _tables(url)


async def test_0004_keeps_the_data_and_downgrades_to_the_same_schema(empty_db: str) -> None:
    url = empty_db
    await asyncio.to_thread(upgrade, url, "0003")
    before = await _schema(url)
    tenant, other, user, stranger, key = (uuid.uuid4() for _ in range(5))
    conn = await asyncpg.connect(plain_url(url))
    try:
        for tid, slug in ((tenant, "acme"), (other, "globex")):
            await conn.execute(
                "INSERT INTO tenants (id, slug, name) VALUES ($1, $2, $2)", tid, slug
            )
        for uid, tid, email in ((user, tenant, "a@acme.test"), (stranger, other, "b@globex.test")):
            await conn.execute(
                "INSERT INTO users (id, tenant_id, email, full_name, role, account_type)"
                " VALUES ($1, $2, $3, 'x', 'owner', 'customer')",
                uid,
                tid,
                email,
            )
        await conn.execute(
            "INSERT INTO api_keys (id, tenant_id, name, role, prefix, key_hash, created_by)"
            " VALUES ($1, $2, 'ci', 'member', 'tnt_x', 'h1', $3)",
            key,
            tenant,
            user,
        )
    finally:
        await conn.close()

    await asyncio.to_thread(upgrade, url, "0004")
    assert (await _primary_keys(url))["api_keys"] == ["tenant_id", "id"]
    conn = await asyncpg.connect(plain_url(url))
    try:
        assert await conn.fetchval("SELECT created_by FROM api_keys WHERE id = $1", key) == user
        # PostgreSQL itself refuses a key of one tenant created by a user of another.
        with pytest.raises(asyncpg.ForeignKeyViolationError):
            await conn.execute(
                "INSERT INTO api_keys (id, tenant_id, name, role, prefix, key_hash, created_by)"
                " VALUES ($1, $2, 'bad', 'member', 'tnt_y', 'h2', $3)",
                uuid.uuid4(),
                tenant,
                stranger,
            )
        # A run that stopped after its last step (version not yet written) runs again cleanly.
        await conn.execute("UPDATE alembic_version SET version_num = '0003'")
    finally:
        await conn.close()
    await asyncio.to_thread(upgrade, url, "0004")
    await asyncio.to_thread(upgrade, url)
    await asyncio.to_thread(command.check, alembic_config(url))

    await asyncio.to_thread(downgrade, url, "0003")
    assert await _schema(url) == before
    rows = await _fetch(url, "SELECT id, tenant_id, created_by FROM api_keys")
    assert [tuple(r) for r in rows] == [(key, tenant, user)]
