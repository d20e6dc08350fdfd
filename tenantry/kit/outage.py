"""The database is down: an answer, not a crash. A request whose database cannot be reached
(refused, reset, closed under it, starting up or shutting down, or no pooled connection free
within DB_POOL_TIMEOUT) gets a 503 problem with `Retry-After` at once, not a 500, and the log
says so in one line (no traceback: it is the outage, not a bug), at most every few seconds.
The pool pings an idle connection before use and replaces a dead one, so the first requests
after the database is back succeed."""

from __future__ import annotations

import errno
import time

import asyncpg
from sqlalchemy import exc as sa_exc

from tenantry.kit.logging import get_logger

log = get_logger("tenantry.db")

RETRY_AFTER_S = 5
PROBLEM = (
    "database-unavailable",
    "Service unavailable",
    "The database cannot be reached right now; nothing was changed. Retry shortly.",
)
_CONNECTION_ERRNOS = {
    errno.ECONNREFUSED,
    errno.ECONNRESET,
    errno.ECONNABORTED,
    errno.EHOSTUNREACH,
    errno.ENETUNREACH,
    errno.ETIMEDOUT,
    errno.EPIPE,
}
_DRIVER = (
    asyncpg.exceptions.CannotConnectNowError,  # starting up, shutting down
    asyncpg.exceptions.ConnectionDoesNotExistError,  # closed under us
    asyncpg.exceptions.ConnectionFailureError,
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.InterfaceError,
)
_last_logged = 0.0
_since_logged = 0


def database_unavailable(exc: BaseException) -> bool:
    """Whether `exc` says the database cannot be reached (rather than a bug or bad data)."""
    if isinstance(exc, sa_exc.TimeoutError):  # no pooled connection within DB_POOL_TIMEOUT
        return True
    if isinstance(exc, sa_exc.DBAPIError):
        inner = exc.orig or exc.__cause__
        return exc.connection_invalidated or (inner is not None and database_unavailable(inner))
    if isinstance(exc, _DRIVER):
        return True
    if isinstance(exc, OSError) and exc.errno in _CONNECTION_ERRNOS:
        return True
    cause = exc.__cause__
    return isinstance(cause, BaseException) and cause is not exc and database_unavailable(cause)


def note(exc: BaseException, path: str | None) -> None:
    """Log the outage: the first request now, then one line every few seconds with a count."""
    global _last_logged, _since_logged
    _since_logged += 1
    now = time.monotonic()
    if now - _last_logged >= RETRY_AFTER_S:
        log.warning(
            "database unavailable",
            error=type(exc).__name__,
            path=path,
            requests=_since_logged,
        )
        _last_logged, _since_logged = now, 0
