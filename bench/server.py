"""The process the benchmark loads: the real Tenantry app plus the two floors, in one server.

Measuring the floors in the same process, under the same uvicorn settings and at the same
moment, is what makes the ratios honest on a shared machine whose absolute numbers drift.

- `/__floor/starlette`: a bare Starlette route (the framework's ceiling under uvicorn);
- `/__floor/fastapi`: a bare FastAPI route: no middleware, database or auth;
- `/__cold/<path>`: empties the app's in-process caches, then serves `<path>`;
- `/__bench/queries`: statements run per path since the last reset (bench bookkeeping);
- anything else: the Tenantry app, middleware and all.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import orjson
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from tenantry.app import create_app
from tenantry.kit.context import count_queries

FLOOR_BODY = {"status": "ok", "service": "tenantry", "floor": True}


def _fastapi_floor() -> FastAPI:
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/__floor/fastapi")
    async def floor() -> dict[str, Any]:
        return FLOOR_BODY

    return app


def _starlette_floor() -> Starlette:
    body = orjson.dumps(FLOOR_BODY)

    async def floor(_: Any) -> PlainTextResponse:
        return PlainTextResponse(body, media_type="application/json")

    return Starlette(routes=[Route("/__floor/starlette", floor)])


def _clear_caches(app: Any) -> None:
    """Empty this process's caches (L1). With Redis, a cold request is then an L2 hit."""
    app.state.caches.clear_local()


class BenchServer:
    def __init__(self) -> None:
        self.app = create_app()
        self.fastapi_floor = _fastapi_floor()
        self.starlette_floor = _starlette_floor()
        self.queries: dict[str, list[int]] = defaultdict(lambda: [0, 0])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        if path.startswith("/__floor/starlette"):
            await self.starlette_floor(scope, receive, send)
        elif path.startswith("/__floor/fastapi"):
            await self.fastapi_floor(scope, receive, send)
        elif path == "/__bench/queries":
            await self._queries(scope, send)
        else:
            if path.startswith("/__cold/"):
                _clear_caches(self.app)
                path = path[len("/__cold") :]
                scope = {**scope, "path": path, "raw_path": path.encode()}
            with count_queries() as counter:
                await self.app(scope, receive, send)
            seen = self.queries[path]
            seen[0] += counter.count
            seen[1] += 1

    async def _queries(self, scope: Scope, send: Send) -> None:
        if scope.get("method") == "DELETE":
            self.queries.clear()
        body = orjson.dumps(self.queries)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})


def create() -> BenchServer:
    return BenchServer()
