"""Route templates for metric labels and log fields: `/api/v1/users/{user_id}`, never the raw
path, so that their set stays bounded whatever the traffic.

The route table is flat (`include_flat`): every route is the app's own, so the route object
FastAPI leaves in the scope carries its whole template (`path_format`, prefixes included).

A response made before routing (a 429, a 413 on the declared length, a 504 at the door) has no
route in the scope: then the templates are matched against the path, which costs a scan of the
table but happens only on those short-cut responses. Nothing matches: the one fixed `UNMATCHED`.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute, APIRouter
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

UNMATCHED = "<unmatched>"

# What a route keeps of its declaration, to be declared again on the app.
_DECLARED = (
    "response_model",
    "status_code",
    "tags",
    "dependencies",
    "summary",
    "description",
    "response_description",
    "responses",
    "deprecated",
    "methods",
    "operation_id",
    "response_model_include",
    "response_model_exclude",
    "response_model_by_alias",
    "response_model_exclude_unset",
    "response_model_exclude_defaults",
    "response_model_exclude_none",
    "include_in_schema",
    "response_class",
    "name",
    "callbacks",
    "openapi_extra",
    "strict_content_type",
    "max_body_size",
    "form_limits",
)


def include_flat(app: FastAPI, router: APIRouter, *, prefix: str = "") -> None:
    """Declare the router's routes on the app itself, under `prefix`: what `include_router`
    does, but as the app's own routes. FastAPI 0.165 keeps an included router as one nested
    route that is matched router by router (each candidate router matched, then matched
    again when chosen): measured, half of a `/healthz`'s instructions. Flat, the whole table
    is one list matched once. The OpenAPI document is the same (`tests/kit/test_routes.py`
    compares the two)."""
    for route in router.routes:
        if not isinstance(route, APIRoute):
            raise TypeError(f"only API routes are flattened, not {route!r}")
        declared = {name: getattr(route, name) for name in _DECLARED}
        app.router.add_api_route(prefix + route.path, route.endpoint, **declared)


class RouteTemplates:
    def __init__(self, app: Any) -> None:
        self.app = app
        self._patterns: list[tuple[re.Pattern[str], frozenset[str] | None, str]] = []
        self._built_for: tuple[int, int] = (-1, -1)

    def template(self, scope: Scope) -> str:
        template = getattr(scope.get("route"), "path_format", None)
        return template if isinstance(template, str) else self.match(scope)

    def unique(self, route: Any) -> bool:
        """Whether `route` (a route object seen in a scope) names its template itself."""
        return isinstance(getattr(route, "path_format", None), str)

    def _build(self) -> None:
        routes: list[Any] = self.app.router.routes
        self._patterns = [
            (
                route.path_regex,
                frozenset(route.methods) if route.methods else None,
                route.path_format,
            )
            for route in routes
            if isinstance(route, Route)
        ]
        self._built_for = (id(routes), len(routes))

    def match(self, scope: Scope) -> str:
        """The template of the route this request's path and method would reach."""
        routes = self.app.router.routes
        if (id(routes), len(routes)) != self._built_for:
            self._build()
        path = scope.get("path", "")
        method = scope.get("method", "GET")
        partial = None
        for regex, methods, template in self._patterns:
            if regex.match(path):
                if methods is None or method in methods or (method == "HEAD" and "GET" in methods):
                    return template
                partial = partial or template
        return partial or UNMATCHED


class RouteIndex:
    """Finds the routes a request's path can reach without trying every route in turn.

    FastAPI matches a request against each route of the table in order (a regex and a few
    dictionary reads each, about 1.5 µs a route here): a route late in a table of a hundred
    pays for the ninety-nine before it. The index keeps, for every static path, the routes
    that can match it (that path's own, and any parameterised route whose literal start it
    shares), in table order; a path with parameters is checked only against the
    parameterised routes whose literal start it has. FastAPI's own matching then runs on
    that short list, so what is chosen, the 405 for a known path with another method, and
    everything else are FastAPI's; a path that no route's pattern matches goes to the whole
    table, for FastAPI's 404 or trailing-slash redirect. Written here because neither
    Starlette nor FastAPI indexes its routes.
    """

    def __init__(self, router: APIRouter) -> None:
        self.router = router
        self._whole = router.middleware_stack
        self._built_for: tuple[int, int] = (-1, -1)
        self._static: dict[str, APIRouter | None] = {}
        self._dynamic: list[tuple[str, Any]] = []
        self._views: dict[tuple[int, ...], APIRouter] = {}

    def install(self) -> None:
        """Serve the router's requests through the index (when nothing wraps its dispatch)."""
        if self.router.middleware_stack == self.router.app:
            self.router.middleware_stack = self

    def _view(self, routes: list[Any]) -> APIRouter:
        """The router with only `routes` (its settings shared): FastAPI's matching on them."""
        key = tuple(id(r) for r in routes)
        view = self._views.get(key)
        if view is None:
            view = copy.copy(self.router)
            view.routes = routes
            self._views[key] = view
        return view

    def _build(self) -> None:
        routes: list[Any] = self.router.routes
        indexable = all(isinstance(r, Route) for r in routes)
        static: dict[str, list[Any]] = {}
        dynamic: list[tuple[str, Any]] = []
        for route in routes if indexable else ():
            if "{" in route.path:
                dynamic.append((route.path.split("{", 1)[0], route))
            else:
                static.setdefault(route.path, [])
        for path in static:
            static[path] = [r for r in routes if r.path_regex.match(path) is not None]
        self._static = {path: self._view(found) for path, found in static.items()}
        self._dynamic = dynamic
        self._indexable = indexable
        self._built_for = (id(routes), len(routes))

    def view_for(self, path: str) -> APIRouter | None:
        """The router narrowed to the routes whose pattern matches `path`, or None."""
        routes = self.router.routes
        if (id(routes), len(routes)) != self._built_for:
            self._build()
        if not self._indexable or path.endswith("\n"):
            # Starlette's patterns end in `$`, which also matches before a final newline: such
            # a path could reach a static route the dictionary would not find.
            return None
        found = self._static.get(path)
        if found is not None or path in self._static:
            return found
        matching = [
            route
            for start, route in self._dynamic
            if path.startswith(start) and route.path_regex.match(path) is not None
        ]
        return self._view(matching) if matching else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            view = self.view_for(_route_path(scope))
            if view is not None:
                scope.setdefault("router", self.router)  # url_for sees the whole table
                await view.app(scope, receive, send)
                return
        await self._whole(scope, receive, send)


def _route_path(scope: Scope) -> str:
    """The path the routes are matched against: without the app's `root_path` (as Starlette)."""
    path: str = scope["path"]
    root = scope.get("root_path", "")
    if root and path.startswith(root) and path != root and path[len(root)] == "/":
        return path[len(root) :]
    return path
