"""The fast lane: the hottest GET routes served from the edge, past FastAPI's per-route machinery.

A route is declared once, with FastAPI, and opts in with `@hot` under its decorator:

    @router.get("/users/me", response_model=MeOut, responses=...)
    @hot
    async def get_me(request: Request, principal: CurrentPrincipal) -> Response: ...

Its OpenAPI, parameters and dependencies stay FastAPI's. At start-up the lane reads FastAPI's
own analysis of the route (`route.dependant`) and refuses (TypeError) a hot route it cannot
serve exactly as FastAPI would. Per request it then does only what that route needs: the
dependencies are called in FastAPI's order and cached per request as FastAPI caches them, path
and query parameters are validated by FastAPI's own `request_params_to_args` (so the same
values and the same errors, rendered by the same `RequestValidationError` handler), generator
dependencies (`scope="function"`) are closed before the response is sent, and exceptions go
to the app's exception handlers, found as Starlette finds them; what none handles goes on to
the edge like any other.

What it skips is FastAPI's fixed cost per route, about a third of a cached request's time
(measured: the exception middleware, the dependency exit-stack middleware, route matching,
two exit stacks per request, the dependency solver's general case, re-validating a returned
model). That is why it is written here rather than taken from a library: the cost is FastAPI's
generality, and no library serves FastAPI routes without it.

What a hot route may not have (each refused at start-up, with the reason): a path parameter
(the lane matches paths by equality, so an earlier route can never shadow a hot one unnoticed),
a body, header or cookie parameters, security scopes, background tasks, a `Response` parameter,
a synchronous dependency or endpoint, a generator dependency not scoped to the function, or an
endpoint whose return annotation is not a `Response` (a hot route serialises its own bytes,
with the response model only documenting them). While `app.dependency_overrides` holds
anything, the lane steps aside and FastAPI serves every route.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import get_typed_return_annotation, request_params_to_args
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

_HOT = "__tenantry_hot__"
_UNSOLVED = object()  # a dependency whose parameters failed validation: not called

F = TypeVar("F", bound=Callable[..., Any])


def hot(endpoint: F) -> F:
    """Mark an endpoint for the fast lane (under its route decorator)."""
    setattr(endpoint, _HOT, True)
    return endpoint


@dataclass(frozen=True, slots=True)
class _Step:
    """One dependency: its own dependencies first, then its call."""

    call: Callable[..., Any]
    name: str | None  # the parameter it fills in its parent
    cache: bool
    generator: bool
    needs: tuple[_Step, ...]
    request_param: str | None
    path_params: list[Any]
    query_params: list[Any]


@dataclass(frozen=True, slots=True)
class _HotRoute:
    route: APIRoute
    methods: frozenset[str]
    plan: _Step
    exits: bool  # some dependency is a generator: an exit stack is needed


class Lane:
    """The hot routes of one app, by exact path."""

    def __init__(self, app: FastAPI, *, active: bool = True) -> None:
        self.app = app
        self.active = active
        self.served = 0  # requests the lane answered (the tests check it is used)
        self._routes: dict[str, _HotRoute] = {}
        routes = app.router.routes
        for index, route in enumerate(routes):
            if isinstance(route, APIRoute) and getattr(route.endpoint, _HOT, False):
                self._routes[route.path] = _compile(route, routes[:index])

    @property
    def paths(self) -> list[str]:
        return list(self._routes)

    def match(self, scope: Scope) -> _HotRoute | None:
        """The hot route for this request, or None for FastAPI to route it."""
        if not self.active:
            return None
        hot_route = self._routes.get(scope["path"])
        if (
            hot_route is None
            or scope["method"] not in hot_route.methods
            or self.app.dependency_overrides
        ):
            return None
        return hot_route

    async def serve(self, hot_route: _HotRoute, scope: Scope, receive: Receive, send: Send) -> None:
        route = hot_route.route
        # What Starlette's router leaves in the scope for a matched route (logs, metrics).
        scope["route"] = route
        scope["endpoint"] = route.endpoint
        scope["path_params"] = {}
        request = Request(scope, receive, send)
        self.served += 1
        try:
            if hot_route.exits:
                async with AsyncExitStack() as stack:
                    response = await _respond(hot_route, request, stack)
            else:
                response = await _respond(hot_route, request, None)
        except Exception as exc:
            handler = self._handler_for(exc)
            if handler is None:
                raise  # to the edge, as from FastAPI: logged once, a 500 problem
            if inspect.iscoroutinefunction(handler):
                response = await handler(request, exc)
            else:
                response = await run_in_threadpool(handler, request, exc)
        await response(scope, receive, send)

    def _handler_for(self, exc: Exception) -> Callable[..., Any] | None:
        """The handler Starlette's exception middleware would pick (status code first for
        HTTP exceptions, then the exception's classes in order); `Exception` itself is the
        server error handler's, and the edge plays that part."""
        handlers = self.app.exception_handlers
        if isinstance(exc, HTTPException) and exc.status_code in handlers:
            return handlers[exc.status_code]
        for cls in type(exc).__mro__:
            if cls is Exception:
                return None
            if cls in handlers:
                return handlers[cls]
        return None


async def _run(
    step: _Step,
    request: Request,
    cache: dict[Any, Any],
    stack: AsyncExitStack | None,
    errors: list[Any],
) -> Any:
    """A step's value, solved as FastAPI's `solve_dependencies` solves it: its dependencies in
    order, each once per request unless `use_cache=False`; then its own parameters, validated
    by FastAPI's own function (the same values, the same errors); then its call, skipped when
    anything it needs failed validation. The errors of every step are gathered, so that one
    422 names them all, as FastAPI's does."""
    values: dict[str, Any] = {}
    failed = False
    for need in step.needs:
        if need.cache and need.call in cache:
            value = cache[need.call]
        else:
            value = await _run(need, request, cache, stack, errors)
            if value is _UNSOLVED:
                failed = True
                continue
            if need.cache:
                cache[need.call] = value
        values[need.name] = value  # type: ignore[index]
    before = len(errors)
    if step.path_params:
        found, wrong = request_params_to_args(step.path_params, request.path_params)
        values.update(found)
        errors.extend(wrong)
    if step.query_params:
        found, wrong = request_params_to_args(step.query_params, request.query_params)
        values.update(found)
        errors.extend(wrong)
    if failed or len(errors) > before:
        return _UNSOLVED
    if step.request_param is not None:
        values[step.request_param] = request
    if step.generator:
        assert stack is not None  # _compile marks the route
        return await stack.enter_async_context(asynccontextmanager(step.call)(**values))
    return await step.call(**values)


async def _respond(hot_route: _HotRoute, request: Request, stack: AsyncExitStack | None) -> Any:
    errors: list[Any] = []
    response = await _run(hot_route.plan, request, {}, stack, errors)
    if errors:
        raise RequestValidationError(errors)
    return response


def _compile(route: APIRoute, earlier: list[Any]) -> _HotRoute:
    where = f"hot route {route.path!r} ({route.endpoint.__qualname__})"
    if "{" in route.path:
        raise TypeError(f"{where}: the fast lane serves paths without parameters only")
    methods = frozenset(route.methods or ())
    if not methods or not methods <= {"GET", "HEAD"}:
        raise TypeError(f"{where}: the fast lane serves GET (and HEAD) only")
    for other in earlier:  # FastAPI would answer with the first match: it must be this one
        match = getattr(other, "path_regex", None)
        if match is not None and match.match(route.path) and methods & set(other.methods or ()):
            raise TypeError(f"{where}: shadowed by the earlier route {other.path!r}")
    returns = get_typed_return_annotation(route.endpoint)  # as FastAPI reads it
    if not (inspect.isclass(returns) and issubclass(returns, Response)):
        raise TypeError(
            f"{where}: a hot endpoint returns its Response (bytes it made), not a value for "
            "FastAPI to validate and serialise"
        )
    generators: list[bool] = []
    plan = _step(route.dependant, None, where, generators, top=True)
    return _HotRoute(route, methods, plan, exits=any(generators))


def _step(
    d: Dependant, name: str | None, where: str, generators: list[bool], *, top: bool
) -> _Step:
    call = d.call
    label = f"{where}, dependency {getattr(call, '__qualname__', type(call).__qualname__)}"
    for unsupported, why in (
        (d.body_params, "a body"),
        (d.header_params, "header parameters"),
        (d.cookie_params, "cookie parameters"),
        (d.security_scopes_param_name, "security scopes"),
        (d.own_oauth_scopes, "security scopes"),
        (d.background_tasks_param_name, "background tasks"),
        (d.response_param_name, "a Response parameter"),
        (d.websocket_param_name, "a websocket"),
        (d.http_connection_param_name, "an HTTPConnection parameter"),
    ):
        if unsupported:
            raise TypeError(f"{label}: the fast lane does not serve {why}")
    if call is None:
        raise TypeError(f"{label}: nothing to call")
    generator = inspect.isasyncgenfunction(call)
    if generator:
        if top:
            raise TypeError(f"{where}: a streaming endpoint is not served by the fast lane")
        if d.scope != "function":
            raise TypeError(
                f'{label}: a generator dependency needs scope="function" in the fast lane '
                "(closed before the response is sent)"
            )
        generators.append(True)
    elif not (
        inspect.iscoroutinefunction(call)
        or inspect.iscoroutinefunction(getattr(call, "__call__", None))  # noqa: B004
    ):
        raise TypeError(f"{label}: the fast lane calls async functions only")
    needs = tuple(_step(sub, sub.name, where, generators, top=False) for sub in d.dependencies)
    return _Step(
        call=call,
        name=name,
        cache=d.use_cache,
        generator=generator,
        needs=needs,
        request_param=d.request_param_name,
        path_params=list(d.path_params),
        query_params=list(d.query_params),
    )
