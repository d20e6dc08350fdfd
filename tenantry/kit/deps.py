"""Typed dependency aliases shared by every router.

The small lookups are `async def` on purpose: FastAPI runs a plain `def` dependency in the
thread pool, a thread hop per dependency per request for what is an attribute read.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.config import Settings
from tenantry.kit.cache import Caches
from tenantry.kit.db import Database, session_scope
from tenantry.kit.state import StateStore


async def get_database(request: Request) -> Database:
    return request.app.state.db  # type: ignore[no-any-return]


async def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


async def get_caches(request: Request) -> Caches:
    return request.app.state.caches  # type: ignore[no-any-return]


async def get_state_store(request: Request) -> StateStore:
    return request.app.state.state_store  # type: ignore[no-any-return]


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
DatabaseDep = Annotated[Database, Depends(get_database)]
CachesDep = Annotated[Caches, Depends(get_caches)]
StateDep = Annotated[StateStore, Depends(get_state_store)]
