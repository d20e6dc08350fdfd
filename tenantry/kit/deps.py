"""Typed dependency aliases shared by every router: the request's unit of work and the
settings. A domain's service comes with `Depends(<Service>.dep)` (`kit.platform`).

The small lookups are `async def` on purpose: FastAPI runs a plain `def` dependency in the
thread pool, a thread hop per dependency per request for what is an attribute read.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.config import Settings
from tenantry.kit.db import Reader, session_scope


async def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


# With a read replica (DATABASE_READ_URL), requests of these methods read from it until they
# write (`kit.replica`); the others use the primary throughout, so a write's checks never
# read rows older than the primary's.
READ_METHODS = frozenset({"GET", "HEAD"})
# Set (for DATABASE_READ_MAX_LAG_S) on a browser that has just written (the console's forms):
# its next pages read the primary, so the page a form redirects to shows what it did.
WROTE_COOKIE = "tenantry_wrote"


def _reads_replica(request: Request) -> bool:
    return request.scope["method"] in READ_METHODS and WROTE_COOKIE not in request.cookies


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's one session: committed when the endpoint returns, before the response is
    sent (so a failed commit is an error response, not a lie), rolled back when it raises.
    Lazy: a request that never runs a statement never checks out a connection. The caches
    its changes made stale are invalidated everywhere once it has committed."""
    state = request.app.state
    db = state.db
    factory = db.sessionmaker
    if db.read_sessionmaker is not None and _reads_replica(request):
        factory = db.read_sessionmaker
    async with session_scope(factory, state.caches) as session:
        yield session


async def get_reader(request: Request) -> Reader:
    """The lean read path (`kit.db.Reader`), for a read-only endpoint that runs lean queries
    only: no session is made, and each read takes a pooled connection for its one statement
    (the replica's, for GET and HEAD, while it is within its lag bound)."""
    db = request.app.state.db
    if db.read_reader is not None and _reads_replica(request):
        return db.read_reader  # type: ignore[no-any-return]
    return db.reader  # type: ignore[no-any-return]


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
ReaderDep = Annotated[Reader, Depends(get_reader)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


def no_store(response: Response) -> None:
    """A route whose body holds a secret (a token, a key): no cache may keep it (RFC 6749
    §5.1). Used as `dependencies=[Depends(no_store)]`."""
    response.headers["Cache-Control"] = "no-store"
