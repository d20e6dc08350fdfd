"""Console sessions: an opaque id in an HttpOnly cookie, the access token and the CSRF token
in the state store (Redis or the table), so that signing out ends the session on every
instance at once and the token never reaches the browser."""

from __future__ import annotations

import hmac
import math
import re
import secrets
from dataclasses import dataclass
from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from tenantry.kit.deps import WROTE_COOKIE

NAMESPACE = "console-session"
COOKIE = "tenantry_console"
# Before there is a session, the sign-in form's CSRF token is a cookie of its own that the
# form must repeat (double submit): a page elsewhere can neither read it nor set it.
SIGN_IN_COOKIE = "tenantry_console_csrf"
PATH = "/console"
# The OpenID Connect sign-in's state, bound to the browser that started it.
OIDC_COOKIE = "tenantry_console_oidc"
OIDC_PATH = "/console/sign-in/oidc"
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{43}$")  # secrets.token_urlsafe(32)


def new_token() -> str:
    return secrets.token_urlsafe(32)


def well_formed(value: str | None) -> bool:
    return value is not None and _TOKEN.fullmatch(value) is not None


def same(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and hmac.compare_digest(a.encode(), b.encode())


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    id: str
    token: str
    csrf: str


class Sessions:
    def __init__(self, state: Any) -> None:
        self.state = state

    async def start(self, token: str, ttl_s: int) -> ConsoleSession:
        session = ConsoleSession(new_token(), token, new_token())
        await self.state.put(NAMESPACE, session.id, {"t": token, "c": session.csrf}, ttl_s)
        return session

    async def find(self, session_id: str | None) -> ConsoleSession | None:
        if not well_formed(session_id):
            return None
        assert session_id is not None
        found = await self.state.get(NAMESPACE, session_id)
        if not isinstance(found, dict):
            return None
        return ConsoleSession(session_id, found["t"], found["c"])

    async def end(self, session_id: str) -> None:
        await self.state.delete(NAMESPACE, session_id)


def secure(request: Request) -> bool:
    """HTTPS as the server sees it (behind a proxy: X-Forwarded-Proto from TRUSTED_PROXIES),
    or as PUBLIC_URL says it is reached (TLS ended before the proxy that talks to us)."""
    public_url = request.app.state.settings.public_url or ""
    return request.url.scheme == "https" or public_url.startswith("https://")


def after_write(request: Request, url: str) -> Response:
    """The redirect a form's POST answers with. With a read replica, the browser reads the
    primary for a moment (`kit.deps.WROTE_COOKIE`), so the page shows what the form did."""
    response = RedirectResponse(url, status_code=303)
    settings = request.app.state.settings
    if settings.database_read_url:
        _set(response, request, WROTE_COOKIE, "1", math.ceil(settings.database_read_max_lag_s) + 1)
    return response


def _set(
    response: Response,
    request: Request,
    name: str,
    value: str,
    max_age: int,
    *,
    path: str = PATH,
    samesite: Literal["lax", "strict"] = "lax",
) -> None:
    """Every console cookie: HttpOnly, Secure over HTTPS, scoped to its path."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=path,
        httponly=True,
        secure=secure(request),
        samesite=samesite,
    )


def set_session_cookie(
    response: Response, request: Request, session: ConsoleSession, ttl_s: int
) -> None:
    _set(response, request, COOKIE, session.id, ttl_s)


def set_sign_in_cookie(response: Response, request: Request, token: str) -> None:
    _set(response, request, SIGN_IN_COOKIE, token, 3600, samesite="strict")


def set_oidc_cookie(response: Response, request: Request, state: str) -> None:
    # Lax: it must come back on the provider's top-level redirect.
    ttl_s = request.app.state.settings.oauth_state_ttl_s
    _set(response, request, OIDC_COOKIE, state, ttl_s, path=OIDC_PATH)


def clear_cookies(response: Response) -> None:
    response.delete_cookie(COOKIE, path=PATH)
    response.delete_cookie(SIGN_IN_COOKIE, path=PATH)
