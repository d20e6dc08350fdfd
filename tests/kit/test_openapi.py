"""The OpenAPI document is part of the product."""

from __future__ import annotations

from typing import Any

import httpx

PUBLIC = {
    "login",
    "oauth_authorize",
    "oauth_callback",
    "healthz",
    "readyz",
    "healthz_head",
    "readyz_head",
    "metrics",
    # onboarding: a visitor has no account until it completes
    "get_suite_catalog",
    "create_company_profile",
    "get_onboarding_session",
    "price_suites",
    "get_quote",
    "complete_demo_experience",
}


async def _spec(client: httpx.AsyncClient) -> dict[str, Any]:
    r = await client.get("/openapi.json")
    assert r.status_code == 200
    return r.json()  # type: ignore[no-any-return]


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, op) for path, item in spec["paths"].items() for method, op in item.items()
    ]


async def test_every_operation_is_documented(client: httpx.AsyncClient) -> None:
    spec = await _spec(client)
    ops = _operations(spec)
    ids = [op["operationId"] for _, _, op in ops]
    assert len(ids) == len(set(ids)), "operationIds must be unique"
    for path, method, op in ops:
        where = f"{method.upper()} {path}"
        assert op.get("summary"), f"{where} has no summary"
        assert op["operationId"].isidentifier(), where
        # Success is a 2xx, or a redirect for the OAuth start.
        assert any(code.startswith(("2", "3")) for code in op["responses"]), where
        for code, response in op["responses"].items():
            if code.startswith(("4", "5")):
                assert "application/problem+json" in response["content"], f"{where} {code}"
        if op["operationId"] not in PUBLIC:
            assert op.get("security") == [{"bearerAuth": []}], f"{where} lacks bearer security"
            assert "401" in op["responses"], f"{where} does not document 401"
        if "requestBody" in op or op.get("parameters"):
            assert "422" in op["responses"], f"{where} does not document 422"


async def test_schemes_and_problem_schema(client: httpx.AsyncClient) -> None:
    spec = await _spec(client)
    schemes = spec["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "An access token from `POST /api/v1/auth/login`, or an API key (`tnt_...`).",
    }
    problem = spec["components"]["schemas"]["Problem"]
    assert {"type", "title", "status"} <= set(problem["required"])
    assert "HTTPValidationError" not in spec["components"]["schemas"]


async def test_docs_page_serves(client: httpx.AsyncClient) -> None:
    r = await client.get("/docs")
    assert r.status_code == 200
    assert "swagger" in r.text.lower()
