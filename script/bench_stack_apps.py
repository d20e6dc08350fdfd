"""The two apps `script/bench-stack` compares: one route, bare FastAPI vs Tenantry's full stack.

Not part of the package: uvicorn loads these factories with `--app-dir script`.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI


async def ping() -> dict[str, Any]:
    return {"message": "pong", "ok": True}


def bare() -> FastAPI:
    app = FastAPI()
    app.get("/ping")(ping)
    return app


def full() -> FastAPI:
    """The same route under the whole middleware stack. It goes first in the route table, as
    in `bare`, so that both pay the same routing cost and the difference is the stack's."""
    from tenantry.app import create_app

    app = create_app()
    app.get("/ping")(ping)
    app.router.routes.insert(0, app.router.routes.pop())
    return app


def full_last() -> FastAPI:
    """The route where `full` would add it, last: the difference to `full` is the cost of
    reaching a route at the end of Tenantry's route table."""
    from tenantry.app import create_app

    app = create_app()
    app.get("/ping")(ping)
    return app


def tenantry_bare() -> FastAPI:
    """Tenantry's app with no middleware at all: `full` minus this is the stack's own cost,
    with the same routes, objects in memory and exception handlers on both sides."""
    app = full()
    app.user_middleware.clear()
    return app


def full_nogc() -> FastAPI:
    import gc

    gc.disable()
    return full()


def tenantry_bare_nogc() -> FastAPI:
    import gc

    gc.disable()
    return tenantry_bare()


def full_only() -> FastAPI:
    """`full` with only the middleware named in BENCH_ONLY (comma-separated class names)."""
    import os

    app = full()
    keep = set(os.environ.get("BENCH_ONLY", "").split(","))
    app.user_middleware[:] = [m for m in app.user_middleware if m.cls.__name__ in keep]  # type: ignore[attr-defined]
    return app


def _no_freeze() -> None:
    import gc

    gc.freeze = lambda: None


def full_nofreeze() -> FastAPI:
    _no_freeze()
    return full()


def tenantry_bare_nofreeze() -> FastAPI:
    _no_freeze()
    return tenantry_bare()
