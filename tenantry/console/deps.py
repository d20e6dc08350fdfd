"""Who is signed in to the console, and the forms they send (CSRF-checked)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from tenantry.authz.dependencies import Authenticators
from tenantry.authz.principal import Principal
from tenantry.console.sessions import COOKIE, ConsoleSession, Sessions, same
from tenantry.kit.errors import AppError, Forbidden, NotFound, Unauthorized
from tenantry.kit.security import InvalidToken


class SignInRequired(AppError):
    """No live session: a page answers with the sign-in page, a script's fetch with a 401."""

    status = 401
    slug = "console-sign-in-required"
    title = "Sign in required"


class CsrfRefused(AppError):
    status = 403
    slug = "console-csrf-refused"
    title = "This form has expired"


@dataclass(frozen=True, slots=True)
class ConsoleUser:
    principal: Principal
    session: ConsoleSession

    @property
    def staff(self) -> bool:
        return self.principal.is_platform_staff and self.principal.at_least("admin")


def sessions(request: Request) -> Sessions:
    return Sessions(request.app.state.state_store)


async def console_user(request: Request) -> ConsoleUser:
    found = await sessions(request).find(request.cookies.get(COOKIE))
    if found is None:
        raise SignInRequired("Sign in to use the console.")
    authenticators: Authenticators = request.app.state.authenticators
    try:
        # The edge verified no bearer header (there is none): the session's token is checked
        # here, signature, expiry and all, then its principal, as the API's would be.
        claims = request.app.state.tokens.decode(found.token)
        principal = await authenticators.claims(claims)
    except (InvalidToken, Unauthorized):  # expired, revoked, deactivated: the session ends
        await sessions(request).end(found.id)
        raise SignInRequired("Your session has ended; sign in again.") from None
    return ConsoleUser(principal, found)


SignedIn = Annotated[ConsoleUser, Depends(console_user)]


async def staff_user(user: SignedIn) -> ConsoleUser:
    """Platform staff pages: to anyone else they do not exist."""
    if not user.staff:
        raise NotFound("There is no such page.")
    return user


Staff = Annotated[ConsoleUser, Depends(staff_user)]


async def checked_form(request: Request, user: SignedIn) -> dict[str, str]:
    """The form a signed-in user posted, once its CSRF token matches their session's."""
    form = await request.form()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    if not same(fields.get("csrf"), user.session.csrf):
        raise CsrfRefused("The form's security token is missing or stale: reload and retry.")
    return fields


Form = Annotated[dict[str, str], Depends(checked_form)]


def forbid_unless(allowed: bool, why: str) -> None:
    if not allowed:
        raise Forbidden(why)
