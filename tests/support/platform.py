"""Helpers shared by test modules: apps with their own settings, metric samples, two app
instances on one database, polling for what travels between them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families

from tenantry.app import create_app
from tenantry.config import Settings
from tenantry.kit.db import Database


@asynccontextmanager
async def running(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """Run an app's lifespan and give a client for it; waits until its cache bus listens."""
    async with app.router.lifespan_context(app):
        bus = app.state.caches.bus
        await asyncio.wait_for(bus.ready.wait(), 10)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            yield c


def make_app(settings: Settings, database: Database, **overrides: Any) -> FastAPI:
    """The real app (every middleware) with some settings changed."""
    return create_app(settings.model_copy(update=overrides), database=database)


@asynccontextmanager
async def client_for(
    app: FastAPI, *, lifespan: bool = False, base_url: str = "http://test", **kwargs: Any
) -> AsyncIterator[httpx.AsyncClient]:
    """A client on `app`; `lifespan=True` runs its startup and shutdown (Redis, rate limiter)."""
    transport = httpx.ASGITransport(app=app, **kwargs)
    async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
        if lifespan:
            async with app.router.lifespan_context(app):
                yield client
        else:
            yield client


async def metric_samples(
    client: httpx.AsyncClient,
) -> dict[str, list[tuple[dict[str, str], float]]]:
    """`/metrics`, parsed by prometheus-client's own parser: sample name -> (labels, value)."""
    r = await client.get("/metrics")
    assert r.status_code == 200, r.text
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(r.text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return samples


def sample_value(
    samples: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str
) -> float:
    """The value of the sample with exactly these labels (0 when absent)."""
    for sample_labels, value in samples.get(name, []):
        if sample_labels == labels:
            return value
    return 0.0


async def eventually(check: Callable[[], Awaitable[bool]], within_s: float = 5.0) -> None:
    """Poll until `check()` holds: invalidation travels through PostgreSQL or Redis."""
    async with asyncio.timeout(within_s):
        while not await check():  # noqa: ASYNC110 - the change arrives from another process
            await asyncio.sleep(0.01)


@asynccontextmanager
async def two_instances(
    settings: Settings, db: Database
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    other = Database(settings.database_url or "", settings)  # each instance its own pool
    try:
        async with (
            running(create_app(settings, database=db)) as a,
            running(create_app(settings, database=other)) as b,
        ):
            yield a, b
    finally:
        await other.dispose()
