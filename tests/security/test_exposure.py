"""What the service shows of itself: the API documentation is served in development, and in
production only when asked (`API_DOCS`)."""

from __future__ import annotations

import pytest

from tenantry.config import Settings
from tenantry.kit.db import Database
from tests.support.asserts import assert_problem
from tests.support.platform import client_for, make_app

DOCS = ("/docs", "/redoc", "/openapi.json")


def test_docs_default_to_off_in_production(settings: Settings) -> None:
    production = settings.model_copy(update={"tenantry_env": "production", "api_docs": None})
    assert not production.serves_docs
    assert production.model_copy(update={"api_docs": True}).serves_docs
    assert settings.model_copy(update={"api_docs": None}).serves_docs  # development


@pytest.mark.parametrize("served", [True, False])
async def test_docs_are_served_only_when_on(
    settings: Settings, database: Database, served: bool
) -> None:
    app = make_app(settings, database, api_docs=served)
    async with client_for(app) as c:
        for path in DOCS:
            r = await c.get(path)
            if served:
                assert r.status_code == 200, path
            else:
                assert_problem(r, 404)
    assert app.openapi()["paths"]  # the schema itself still exists for the app's own use


async def test_metrics_ask_for_the_scrapers_token_when_one_is_set(
    settings: Settings, database: Database
) -> None:
    guarded = make_app(settings, database, metrics_token="scrape-" + "x" * 30)
    async with client_for(guarded) as c:
        assert_problem(await c.get("/metrics"), 401)
        wrong = {"Authorization": "Bearer nope"}
        assert_problem(await c.get("/metrics", headers=wrong), 401)
        right = {"Authorization": "Bearer scrape-" + "x" * 30}
        r = await c.get("/metrics", headers=right)
        assert r.status_code == 200 and "tenantry_" in r.text
    open_in_development = make_app(settings, database, metrics_token=None)
    async with client_for(open_in_development) as c:
        assert (await c.get("/metrics")).status_code == 200
    production = settings.model_copy(update={"tenantry_env": "production", "metrics_token": None})
    assert not production.serves_metrics
