"""Idempotency keys (draft-ietf-httpapi-idempotency-key-header): a POST retried with its key
creates nothing twice; the answer comes again, sealed at rest; another body under the same
key is a 422, the same key while the first runs a 409; a failed first try leaves the key free;
keys are the principal's own."""

from __future__ import annotations

import asyncio
import uuid
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.crm.models import Customer
from tenantry.kit.db import Database
from tenantry.kit.idempotency import Idempotency
from tenantry.kit.platform import Platform
from tenantry.kit.state import PostgresStateStore
from tests.support.asserts import assert_problem
from tests.support.world import PASSWORD, World

CUSTOMERS = "/api/v1/customers"


async def _count(session: AsyncSession, tenant_id: uuid.UUID) -> int:
    stmt = select(func.count()).select_from(Customer).where(Customer.tenant_id == tenant_id)
    return int((await session.execute(stmt)).scalar_one())


async def test_a_retried_post_creates_once_and_answers_the_same(
    world: World, session: AsyncSession
) -> None:
    member = await world.user(await world.tenant(), "member")
    other = await world.user(member.tenant_id, "member")
    key = {"Idempotency-Key": "order-7f3a"}
    body = {"name": "Ada Lovelace"}
    first = await world.client.post(CUSTOMERS, json=body, headers={**member.headers, **key})
    again = await world.client.post(CUSTOMERS, json=body, headers={**member.headers, **key})
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert await _count(session, member.tenant_id) == 1

    changed = await world.client.post(
        CUSTOMERS, json={"name": "Grace"}, headers={**member.headers, **key}
    )
    assert_problem(changed, 422, "idempotency-key-reused")
    # the same key is another person's own
    theirs = await world.client.post(CUSTOMERS, json=body, headers={**other.headers, **key})
    assert theirs.status_code == 201 and theirs.json()["id"] != first.json()["id"]
    assert await _count(session, member.tenant_id) == 2
    for bad in ("", "has space", "x" * 256):
        r = await world.client.post(
            CUSTOMERS, json=body, headers={**member.headers, "Idempotency-Key": bad}
        )
        assert_problem(r, 400, "bad-idempotency-key")


async def test_a_kept_answer_holding_a_secret_is_sealed(
    world: World, session: AsyncSession
) -> None:
    owner = await world.user(await world.tenant(), "owner")
    r = await world.client.post(
        "/api/v1/webhooks",
        json={"url": "https://93.184.215.14/hooks", "events": ["lead.created"]},
        headers={**owner.headers, "Idempotency-Key": "hook-1"},
    )
    secret = r.json()["secret"]
    kept = list(
        (
            await session.execute(
                text("SELECT value::text FROM state_entries WHERE namespace = 'idempotency'")
            )
        ).scalars()
    )
    assert kept and all(secret not in v and '"done"' in v for v in kept)
    login = await world.client.post(
        "/api/v1/auth/login",
        json={"email": owner.email, "password": PASSWORD},
        headers={"Idempotency-Key": "login-1"},
    )
    assert "idempotent-replayed" not in login.headers  # logins are exempt: nothing kept


def _scope(store: PostgresStateStore, platform: Platform) -> dict[str, Any]:
    app = SimpleNamespace(state=SimpleNamespace(state_store=store, platform=platform))
    return {"type": "http", "method": "POST", "path": "/api/v1/things", "app": app}


async def _call(idem: Idempotency, scope: dict[str, Any], app: Any, key: bytes) -> list[Any]:
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b'{"n": 1}', "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    await idem.serve(scope, receive, send, app, who="t:x:u:y", raw_key=key)
    return sent


async def test_the_same_key_while_the_first_runs_is_409_and_a_failure_frees_it(
    database: Database, app: Any
) -> None:
    store = PostgresStateStore(database)
    scope = _scope(store, app.state.platform)
    idem = Idempotency(ttl_s=60, running_ttl_s=60)
    release = asyncio.Event()
    runs = 0

    async def slow(scope: Any, receive: Any, send: Any) -> None:
        nonlocal runs
        runs += 1
        await receive()
        await release.wait()
        await send({"type": "http.response.start", "status": 201, "headers": []})
        await send({"type": "http.response.body", "body": b"made"})

    key = f"k-{uuid.uuid4().hex}".encode()
    first = asyncio.create_task(_call(idem, scope, slow, key))
    await asyncio.sleep(0.05)
    busy = await _call(idem, scope, slow, key)
    assert busy[0]["status"] == 409 and (b"retry-after", b"1") in busy[0]["headers"]
    release.set()
    assert (await first)[1]["body"] == b"made"
    replay = await _call(idem, scope, slow, key)
    assert (replay[0]["status"], replay[1]["body"], runs) == (201, b"made", 1)

    async def broken(scope: Any, receive: Any, send: Any) -> None:
        nonlocal runs
        runs += 1
        raise RuntimeError("the database went away")

    failing = f"k-{uuid.uuid4().hex}".encode()
    with pytest.raises(RuntimeError):
        await _call(idem, scope, broken, failing)
    retried = await _call(idem, scope, slow, failing)  # the key is free again: it runs
    assert (retried[0]["status"], runs) == (201, 3)
