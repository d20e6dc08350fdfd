"""Liveness, readiness and metrics: cheap enough for a probe every second."""

from __future__ import annotations

import asyncio
import hmac

import anyio
from fastapi import APIRouter, Request
from pydantic import BaseModel
from sqlalchemy import text
from starlette.responses import Response

from tenantry.kit import metrics as metrics_kit
from tenantry.kit.errors import NotFound, Unauthorized, problem_response, problems
from tenantry.kit.lane import hot

router = APIRouter(tags=["ops"])


class Health(BaseModel):
    status: str
    checks: dict[str, str] = {}


_HEALTHY = Health(status="ok").model_dump_json().encode()


@router.get("/healthz", summary="Liveness: the process answers", response_model=Health)
@hot
async def healthz() -> Response:
    return Response(_HEALTHY, media_type="application/json")


@router.head(
    "/healthz",
    summary="Liveness, headers only (for probes that send HEAD)",
    response_class=Response,
    responses={200: {"description": "The process answers"}},
)
async def healthz_head() -> Response:
    return Response(media_type="application/json")


async def _readiness(request: Request) -> dict[str, str]:
    """Each dependency and whether it answers ("ok", or why not), within 2 s each. An instance
    told to stop (SIGTERM, `kit.shutdown`) is not ready from that instant, whatever they say."""
    if request.app.state.shutdown.draining:
        return {"shutdown": "draining: this instance is stopping"}
    checks: dict[str, str] = {}
    try:
        async with asyncio.timeout(2):
            async with request.app.state.db.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # any failure means not ready; say which
        checks["database"] = f"unavailable: {type(exc).__name__}"
    redis = request.app.state.redis
    if redis is not None:
        try:
            async with asyncio.timeout(2):
                pong = await redis.ping()
            checks["redis"] = "ok" if pong is True else "unavailable: no PONG"
        except Exception as exc:  # unreachable, timed out, refused: all "not ready"
            checks["redis"] = f"unavailable: {type(exc).__name__}"
    return checks


@router.get(
    "/readyz",
    summary="Readiness: the database (and Redis, when configured) answer",
    response_model=Health,
    responses=problems(503),
)
async def readyz(request: Request) -> Health | Response:
    checks = await _readiness(request)
    ready = all(v == "ok" for v in checks.values())
    if (replica := request.app.state.db.replica) is not None:  # information, never unready
        checks["replica"] = replica.describe()
    if ready:
        return Health(status="ok", checks=checks)
    return problem_response(
        503,
        "not-ready",
        "Not ready",
        "A dependency is unavailable.",
        request=request,
        checks=checks,
    )


@router.head(
    "/readyz",
    summary="Readiness, headers only (for probes that send HEAD)",
    response_class=Response,
    responses={200: {"description": "Ready"}, **problems(503)},  # the GET's headers, no body
)
async def readyz_head(request: Request) -> Response:
    ready = all(v == "ok" for v in (await _readiness(request)).values())
    return Response(status_code=200 if ready else 503, media_type="application/json")


@router.get(
    "/metrics",
    summary="Prometheus metrics (text exposition format)",
    response_class=Response,
    responses={
        200: {"description": "Every metric", "content": {"text/plain": {}}},
        **problems(401, 404),
    },
)
async def metrics(request: Request) -> Response:
    """Request counts, latencies, queries per request, pool use, caches and jobs; with several
    workers, every worker's. With METRICS_TOKEN set, only for `Authorization: Bearer <it>`;
    without it, open in development and not served in production."""
    settings = request.app.state.settings
    if not settings.serves_metrics:
        raise NotFound("Not Found")
    token = settings.metrics_token
    if token is not None:
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            raise Unauthorized("The metrics ask for the scraper's token (METRICS_TOKEN).")
    if metrics_kit.MULTIPROCESS:  # every worker's files: read them off the event loop
        body, media_type = await anyio.to_thread.run_sync(metrics_kit.render)
    else:  # this process's numbers, which the event loop updates: read them on it
        body, media_type = metrics_kit.render()
    return Response(body, media_type=media_type)
