"""Assertions shared by test modules: query counts and problem documents."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from tenantry.kit.context import count_queries


@contextmanager
def assert_max_queries(n: int) -> Iterator[Any]:
    """Fails when the block (requests through the app included) runs more than `n` queries."""
    with count_queries(keep_statements=True) as counter:
        yield counter
    assert counter.count <= n, f"{counter.count} queries, at most {n} allowed:\n" + "\n".join(
        counter.statements
    )


def queries(response: httpx.Response) -> int:
    """Statements the request ran (`X-DB-Queries`; the test settings expose it)."""
    return int(response.headers["x-db-queries"])


def assert_problem(
    response: httpx.Response, status: int, slug: str | None = None
) -> dict[str, Any]:
    """The response is an RFC 9457 problem of this status (and type slug); its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["title"]
    assert body["type"].startswith("https://")
    if slug:
        assert body["type"].endswith("/" + slug), body["type"]
    return body
