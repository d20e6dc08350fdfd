"""The fast lane (`kit.lane`): what it refuses at start-up, and that a hot route answers through
it exactly as FastAPI answers (the same bodies, statuses and problems, whichever serves)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request, Response
from starlette.types import Receive, Scope, Send

from tenantry.kit import errors
from tenantry.kit.errors import Forbidden
from tenantry.kit.lane import Lane, hot


class Recorder:
    """What the dependencies and endpoints did, in order (module level: FastAPI resolves the
    annotations below from the module's names)."""

    events: list[str] = []


async def counted() -> int:
    Recorder.events.append("counted")
    return 7


async def uncached() -> int:
    Recorder.events.append("uncached")
    return 1


async def limit(limit: Annotated[int, Query(ge=1, le=5)] = 2) -> int:
    return limit


async def session() -> AsyncIterator[str]:
    Recorder.events.append("open")
    try:
        yield "session"
    except Exception:
        Recorder.events.append("rolled back")
        raise
    Recorder.events.append("closed")


Counted = Annotated[int, Depends(counted)]


async def twice(a: Counted, b: Counted) -> int:
    return a + b


def build(lane_active: bool, recorder: Recorder) -> tuple[Lane, Any]:
    """A small app with hot routes and the problem handlers, and an ASGI entry that asks the
    lane first, as the edge does."""
    recorder.events.clear()
    app = FastAPI()
    errors.install(app)

    @app.get("/sum")
    @hot
    async def total(
        request: Request,
        value: Annotated[int, Depends(twice)],
        again: Counted,
        fresh: Annotated[int, Depends(uncached, use_cache=False)],
        fresh_again: Annotated[int, Depends(uncached, use_cache=False)],
        size: Annotated[int, Depends(limit)],
        page: Annotated[int, Query(ge=1)] = 1,
    ) -> Response:
        body = f'{{"value":{value + again + fresh + fresh_again},"size":{size},"page":{page}}}'
        return Response(body, media_type="application/json", headers={"x-path": request.url.path})

    @app.get("/unit")
    @hot
    async def unit(
        session: Annotated[str, Depends(session, scope="function")], fail: str = ""
    ) -> Response:
        Recorder.events.append("endpoint")
        if fail == "http":
            raise HTTPException(418, "short and stout")
        if fail == "problem":
            raise Forbidden("Not for you.")
        if fail == "bug":
            raise RuntimeError("unhandled")
        return Response(b"{}", media_type="application/json")

    lane = Lane(app, active=lane_active)

    async def entry(scope: Scope, receive: Receive, send: Send) -> None:
        hot_route = lane.match(scope) if scope["type"] == "http" else None
        if hot_route is None:
            await app(scope, receive, send)
        else:
            await lane.serve(hot_route, scope, receive, send)

    return lane, entry


@pytest.fixture(params=[True, False], ids=["fast lane", "FastAPI"])
async def served(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Lane, Any, Recorder]]:
    recorder = Recorder()
    lane, entry = build(request.param, recorder)
    transport = httpx.ASGITransport(app=entry, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        yield lane, client, recorder


async def test_dependencies_are_solved_and_cached_as_fastapi_does(served: Any) -> None:
    lane, client, recorder = served
    r = await client.get("/sum?page=3&limit=4")
    assert r.status_code == 200
    # counted once for three uses, uncached twice
    assert r.json() == {"value": 7 + 7 + 7 + 1 + 1, "size": 4, "page": 3}
    assert recorder.events.count("counted") == 1
    assert recorder.events.count("uncached") == 2
    assert r.headers["x-path"] == "/sum"
    assert lane.served == (1 if lane.active else 0)


async def test_every_bad_parameter_is_named_in_one_422(served: Any) -> None:
    _, client, _ = served
    r = await client.get("/sum?page=0&limit=9")
    assert r.status_code == 422
    body = r.json()
    assert body["type"].endswith("/validation-error")
    located = sorted(tuple(e["loc"]) for e in body["errors"])
    assert located == [("query", "limit"), ("query", "page")]


async def test_a_generator_dependency_closes_before_the_response(served: Any) -> None:
    _, client, recorder = served
    assert (await client.get("/unit")).status_code == 200
    assert recorder.events == ["open", "endpoint", "closed"]


@pytest.mark.parametrize(
    ("fail", "status"), [("http", 418), ("problem", 403), ("bug", 500)], ids=str
)
async def test_errors_reach_the_same_handlers(served: Any, fail: str, status: int) -> None:
    _, client, recorder = served
    r = await client.get(f"/unit?fail={fail}")
    assert r.status_code == status
    assert recorder.events == ["open", "endpoint", "rolled back"]
    if fail != "bug":  # the edge renders the 500 in the real app (tests/kit/test_errors.py)
        assert r.headers["content-type"] == "application/problem+json"


async def test_the_lane_steps_aside_for_dependency_overrides() -> None:
    recorder = Recorder()
    lane, entry = build(True, recorder)
    lane.app.dependency_overrides[Recorder] = Recorder  # anything at all
    transport = httpx.ASGITransport(app=entry)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.get("/unit")).status_code == 200
    assert lane.served == 0


async def test_other_methods_and_paths_go_to_fastapi() -> None:
    lane, entry = build(True, Recorder())
    transport = httpx.ASGITransport(app=entry)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        assert (await client.post("/unit")).status_code == 405
        assert (await client.get("/unit/")).status_code in (307, 404)
        # FastAPI's GET routes answer no HEAD: the lane goes by the route's own methods
        assert (await client.head("/unit")).status_code == 405
    assert lane.served == 0


def refused(app: FastAPI, reason: str) -> None:
    with pytest.raises(TypeError, match=reason):
        Lane(app)


def sync_dep() -> int:
    return 1


async def gen() -> AsyncIterator[int]:
    yield 1


SyncDep = Annotated[int, Depends(sync_dep)]
GenDep = Annotated[int, Depends(gen)]


def test_routes_the_lane_cannot_serve_are_refused_at_start_up() -> None:
    app = FastAPI()

    @app.get("/items/{item_id}")
    @hot
    async def item(item_id: int) -> Response:
        return Response()

    refused(app, "without parameters")

    app = FastAPI()

    @app.post("/items")
    @hot
    async def make() -> Response:
        return Response()

    refused(app, "GET")

    app = FastAPI()

    @app.get("/model")
    @hot
    async def model() -> dict[str, int]:
        return {}

    refused(app, "returns its Response")

    app = FastAPI()

    @app.get("/header")
    @hot
    async def header(x_thing: Annotated[str, Header()]) -> Response:
        return Response()

    refused(app, "header parameters")

    app = FastAPI()

    @app.get("/sync")
    @hot
    async def uses_sync(v: SyncDep) -> Response:
        return Response()

    refused(app, "async functions only")

    app = FastAPI()

    @app.get("/gen")
    @hot
    async def uses_gen(v: GenDep) -> Response:
        return Response()

    refused(app, 'scope="function"')

    app = FastAPI()

    @app.get("/{anything}")
    async def catch_all(anything: str) -> Response:
        return Response()

    @app.get("/late")
    @hot
    async def late() -> Response:
        return Response()

    refused(app, "shadowed by the earlier route '/{anything}'")


def test_the_app_serves_its_hot_routes_through_the_lane(app: Any) -> None:
    assert sorted(app.state.lane.paths) == [
        "/api/v1/intelligence/customers",
        "/api/v1/onboarding/suite-catalog",
        "/api/v1/syncs",
        "/api/v1/tenant",
        "/api/v1/tenant/settings",
        "/api/v1/users",
        "/api/v1/users/me",
        "/healthz",
    ]


async def test_a_hot_route_of_the_app_is_served_by_the_lane(
    both_lanes: str, app: Any, client: httpx.AsyncClient
) -> None:
    lane = app.state.lane
    before = lane.served
    r = await client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "checks": {}}
    assert lane.served - before == (1 if both_lanes == "fast lane" else 0)
