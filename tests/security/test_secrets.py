"""No secret shows anywhere but the one response that hands it out: a full scenario (a login,
an API key made and used, a webhook and a sync source with secrets, a retried POST, the
audit log, the lists, the metrics) is run with the logs captured; no password, token, key,
webhook or source secret is in any log line, any other response or any metric, and the
secrets at rest are sealed (`SECRETS_KEYS`) or hashed."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from tenantry.config import Settings
from tenantry.kit.db import Database
from tests.kit.test_logging import _Logs, json_logs  # noqa: F401 - the fixture
from tests.support.platform import client_for, make_app
from tests.support.world import PASSWORD, CommittedWorld

PUBLIC = "https://93.184.215.14/"
SOURCE_SECRET = "Bearer src-" + "s" * 30
HOOK_SECRET = "whsec_" + "h" * 32


async def test_no_secret_is_logged_answered_twice_measured_or_stored_plain(
    settings: Settings,
    committed_db: Database,
    committed: CommittedWorld,
    json_logs: _Logs,  # noqa: F811
) -> None:
    """Committed, with the app's lifespan (its state store and background work) running."""
    owner = await committed.user(await committed.tenant(), "owner", login=False)
    app = make_app(settings, committed_db, log_format="json", access_log=True)
    json_logs()
    later: list[Any] = []  # responses that must not show a secret
    async with client_for(app, lifespan=True) as c:
        login = await c.post(
            "/api/v1/auth/login", json={"email": owner.email, "password": PASSWORD}
        )
        assert login.status_code == 200, login.text
        token = login.json()["access_token"]
        me = {"Authorization": f"Bearer {token}"}
        made = await c.post("/api/v1/api-keys", json={"name": "ci"}, headers=me)
        key = made.json()["key"]
        later.append(await c.get("/api/v1/users/me", headers={"Authorization": f"Bearer {key}"}))
        hook = await c.post(
            "/api/v1/webhooks",
            json={"url": PUBLIC, "events": ["lead.created"], "secret": HOOK_SECRET},
            headers={**me, "Idempotency-Key": "hook-once"},
        )
        assert hook.json()["secret"] == HOOK_SECRET
        again = await c.post(
            "/api/v1/webhooks",
            json={"url": PUBLIC, "events": ["lead.created"], "secret": HOOK_SECRET},
            headers={**me, "Idempotency-Key": "hook-once"},
        )
        assert again.headers["idempotent-replayed"] == "true"  # the one answer, once more
        source = await c.post(
            "/api/v1/sync-sources",
            json={"name": "crm", "base_url": PUBLIC, "secret": SOURCE_SECRET},
            headers=me,
        )
        assert source.status_code == 201 and "secret" not in source.json()
        later.append(source)
        source_id = source.json()["id"]
        later.append(
            await c.patch(
                f"/api/v1/sync-sources/{source_id}", json={"secret": SOURCE_SECRET}, headers=me
            )
        )
        for path in (
            "/api/v1/api-keys",
            "/api/v1/webhooks",
            "/api/v1/webhooks/deliveries",
            "/api/v1/sync-sources",
            f"/api/v1/sync-sources/{source_id}",
            "/api/v1/audit-events",
            "/api/v1/users",
        ):
            later.append(await c.get(path, headers=me))
        later.append(await c.get("/metrics"))
        wrong = await c.post(
            "/api/v1/auth/login", json={"email": owner.email, "password": "x" * 12}
        )
        later.append(wrong)
    json_logs()
    secrets = {
        "password": PASSWORD,
        "token": token,
        "API key": key,
        "webhook secret": HOOK_SECRET,
        "source secret": SOURCE_SECRET,
    }
    for response in later:
        assert response.status_code < 500, response.text
        for what, secret in secrets.items():
            assert secret not in response.text, f"{what} in {response.request.url}"
    for what, secret in secrets.items():
        assert secret not in json_logs.raw, f"{what} in the logs"
    stored = {
        "sync_sources": "SELECT secret_sealed FROM sync_sources WHERE tenant_id = :t",
        "webhook_endpoints": "SELECT secret_sealed FROM webhook_endpoints WHERE tenant_id = :t",
        "api_keys": "SELECT key_hash FROM api_keys WHERE tenant_id = :t",
        "audit_events": "SELECT details::text || coalesce(target, '') FROM audit_events"
        " WHERE tenant_id = :t",
        "state_entries": "SELECT value::text FROM state_entries",
    }
    for table, query in stored.items():
        async with committed_db.sessionmaker() as session:
            found = await session.execute(text(query), {"t": owner.tenant_id})
            values = found.scalars().all()
        assert values, table
        for what, secret in secrets.items():
            assert all(secret not in str(v) for v in values), f"{what} stored plain in {table}"
