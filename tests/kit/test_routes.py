"""The route table: flat (one list, matched once), with the OpenAPI document of the nested
routers it replaced."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute
from starlette.routing import Route

from tenantry import __version__
from tenantry.app import (
    API_PREFIX,
    API_ROUTERS,
    CONSOLE_ROUTERS,
    IDEMPOTENCY_EXEMPT,
    OPENAPI_LINKS,
    UNLIMITED_PATHS,
    create_app,
)
from tenantry.config import Settings
from tenantry.console import router as console
from tenantry.kit import openapi
from tenantry.kit.routes import RouteIndex
from tenantry.ops.router import router as ops_router
from tests.support.platform import client_for


def _nested_document(app: FastAPI) -> dict[str, Any]:
    """The document FastAPI makes for the same routers included the usual way."""
    nested = FastAPI(
        title=app.title,
        version=__version__,
        description=app.description,
        generate_unique_id_function=openapi.operation_id,
        docs_url=None,
        redoc_url=None,
    )
    api = APIRouter(prefix=API_PREFIX)
    for router in API_ROUTERS:
        api.include_router(router)
    nested.include_router(api)
    nested.include_router(ops_router)
    openapi.install(
        nested,
        unlimited_paths=UNLIMITED_PATHS,
        idempotency_exempt=IDEMPOTENCY_EXEMPT,
        links=OPENAPI_LINKS,
    )
    return nested.openapi()


def test_the_flat_table_documents_what_the_nested_routers_did(settings: Settings) -> None:
    app = create_app(settings)
    flat, nested = app.openapi(), _nested_document(app)
    assert list(flat["paths"]) == list(nested["paths"])  # the same paths, in the same order
    assert flat == nested


def test_every_route_is_the_apps_own(settings: Settings) -> None:
    app = create_app(settings)
    # Only routes (API routes, and the document's and the docs pages' plain ones): no
    # included router left to walk.
    assert all(isinstance(r, Route) for r in app.router.routes)
    api_routes = [r for r in app.router.routes if isinstance(r, APIRoute)]
    routers = (*API_ROUTERS, ops_router, console.router, *CONSOLE_ROUTERS)
    assert len(api_routes) == sum(len(r.routes) for r in routers)


def _with_many_routes(settings: Settings, *, indexed: bool) -> FastAPI:
    """The app with a hundred more routes in front of where the domains' would go."""
    app = create_app(settings)
    for i in range(100):

        async def numbered(n: int = i) -> dict[str, int]:
            return {"n": n}

        app.router.add_api_route(f"/many/{i}", numbered, methods=["GET"], name=f"many_{i}")

    async def item(item_id: int) -> dict[str, int]:
        return {"item": item_id}

    app.router.add_api_route("/many/items/{item_id}", item, methods=["GET"], name="many_item")
    if not indexed:
        app.router.middleware_stack = app.router.app
    return app


REQUESTS = [
    ("GET", "/many/0"),
    ("GET", "/many/99"),
    ("POST", "/many/99"),  # a known path, another method: 405
    ("GET", "/many/items/7"),
    ("GET", "/many/items/seven"),  # the parameter fails validation: 422
    ("GET", "/many/100"),  # no such route: 404
    ("GET", "/many/99/"),  # trailing slash: FastAPI's redirect
    ("GET", "/healthz"),
    ("GET", "/api/v1/users/me"),  # no token: 401 from the route's dependency
    ("PATCH", "/api/v1/users/me"),  # /users/{user_id} matches the path: its 401
    ("DELETE", "/api/v1/users/me"),
    ("GET", "/api/v1/nothing"),
    ("GET", "/api/v1/users/me\n"),  # `$` matches before a final newline: FastAPI's choice
]


async def test_the_index_answers_as_the_whole_table_does(settings: Settings) -> None:
    answers = {}
    for indexed in (False, True):
        app = _with_many_routes(settings, indexed=indexed)
        async with client_for(app) as c:
            for method, path in REQUESTS:
                r = await c.request(method, path.replace("\n", "%0A"), follow_redirects=False)
                body = r.json() if r.content else None
                if isinstance(body, dict):
                    body.pop("request_id", None)
                answers[indexed, method, path] = (r.status_code, r.headers.get("location"), body)
    for method, path in REQUESTS:
        assert answers[True, method, path] == answers[False, method, path], (method, path)
    assert answers[True, "GET", "/many/99"][0] == 200
    assert answers[True, "POST", "/many/99"][0] == 405
    assert answers[True, "GET", "/many/100"][0] == 404
    assert answers[True, "GET", "/many/99/"][0] == 307


def test_the_index_narrows_a_path_to_the_routes_that_can_match_it(settings: Settings) -> None:
    app = _with_many_routes(settings, indexed=True)
    index = app.router.middleware_stack
    assert isinstance(index, RouteIndex)
    last = index.view_for("/many/99")
    assert last is not None and [r.path for r in last.routes] == ["/many/99"]
    me = index.view_for("/api/v1/users/me")
    assert me is not None
    assert [r.path for r in me.routes] == ["/api/v1/users/me"]  # the id route takes only ids
    some = index.view_for("/api/v1/users/01a229e6-1dd7-7103-9f46-87f2072edb90")
    assert some is not None
    assert [r.path for r in some.routes] == ["/api/v1/users/{user_id:uuid}"]
    item = index.view_for("/many/items/7")
    assert item is not None and [r.path for r in item.routes] == ["/many/items/{item_id}"]
    assert index.view_for("/many/nothing/here") is None  # the whole table answers
