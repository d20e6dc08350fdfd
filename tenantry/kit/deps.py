"""Typed dependency aliases shared by every router: the request's unit of work and the
settings. A domain's service comes with `Depends(<Service>.dep)` (`kit.platform`).

The small lookups are `async def` on purpose: FastAPI runs a plain `def` dependency in the
thread pool, a thread hop per dependency per request for what is an attribute read.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.config import Settings
from tenantry.kit.db import session_scope


async def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's one session: committed when the endpoint returns, before the response is
    sent (so a failed commit is an error response, not a lie), rolled back when it raises.
    Lazy: a request that never runs a statement never checks out a connection. The caches
    its changes made stale are invalidated everywhere once it has committed."""
    state = request.app.state
    async with session_scope(state.db.sessionmaker, state.caches) as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
