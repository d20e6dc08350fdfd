"""What create_app chooses for the whole app."""

from __future__ import annotations

import pytest
from opentelemetry import trace

from tenantry.config import Settings
from tenantry.kit.db import Database
from tests.support.platform import client_for, make_app


@pytest.mark.parametrize("otel_enabled", [False, True])
async def test_fastapi_asks_opentelemetry_only_when_enabled(
    settings: Settings,
    database: Database,
    monkeypatch: pytest.MonkeyPatch,
    otel_enabled: bool,
) -> None:
    asked = []
    real = trace.get_tracer_provider

    def counting() -> trace.TracerProvider:
        asked.append(1)
        return real()

    monkeypatch.setattr(trace, "get_tracer_provider", counting)
    app = make_app(settings, database, otel_enabled=otel_enabled)
    async with client_for(app) as c:
        assert (await c.get("/healthz")).status_code == 200
    assert bool(asked) is otel_enabled
