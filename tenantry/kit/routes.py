"""Route templates for metric labels and log fields: `/api/v1/users/{user_id}`, never the raw
path, so that their set stays bounded whatever the traffic.

FastAPI (0.165+) leaves in the scope the route object as its router declared it
(`/users/{user_id}`, without the prefixes it was included under). The full template comes from
FastAPI's public route walk (`fastapi.routing.iter_route_contexts`), mapped once per app from
route object to template; the map is rebuilt when it meets a route it does not know (one added
after the first request).

A response made before routing (a 429, a 413 on the declared length, a 504 at the door) has no
route in the scope: then the templates are matched against the path, which costs a scan of the
table but happens only on those short-cut responses. Nothing matches: the one fixed `UNMATCHED`.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi.routing import iter_route_contexts
from starlette.routing import compile_path
from starlette.types import Scope

UNMATCHED = "<unmatched>"


class RouteTemplates:
    def __init__(self, app: Any) -> None:
        self.app = app
        self._by_route: dict[int, str] = {}
        self._patterns: list[tuple[re.Pattern[str], frozenset[str] | None, str]] = []
        self._built_for = -1

    def _build(self) -> None:
        by_route: dict[int, str] = {}
        patterns = []
        for context in iter_route_contexts(self.app.router.routes):
            template = context.path_format
            path = context.path
            if not isinstance(template, str) or not isinstance(path, str):
                continue
            # The same route object included twice under different prefixes has no one
            # template; those few are told apart by matching the path instead.
            key = id(context.original_route)
            by_route[key] = template if key not in by_route else ""
            regex, _, _ = compile_path(path)
            methods = context.methods
            patterns.append((regex, frozenset(methods) if methods else None, template))
        self._by_route = by_route
        self._patterns = patterns
        self._built_for = len(self.app.router.routes)

    def template(self, scope: Scope) -> str:
        route = scope.get("route")
        if route is None:
            return self.match(scope)
        template = self._by_route.get(id(route))
        if template is None:
            self._build()
            template = self._by_route.get(id(route))
            if template is None:  # a route no walk can see: its own template, remembered
                template = self._by_route[id(route)] = getattr(route, "path_format", UNMATCHED)
        return template or self.match(scope)

    def unique(self, route: Any) -> bool:
        """Whether `route` (a route object seen by `template`) has one template of its own."""
        return bool(self._by_route.get(id(route)))

    def match(self, scope: Scope) -> str:
        """The template of the route this request's path and method would reach."""
        if self._built_for < 0:
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
