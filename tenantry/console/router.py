"""Signing in and out of the console (password or an OpenID Connect provider), its home, and
`install(app)`: the routes, the static files and the error pages."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import RedirectResponse, Response

from tenantry.auth.schemas import LoginRequest
from tenantry.auth.service import AuthService
from tenantry.console import sessions as cookies
from tenantry.console.deps import SignedIn, SignInRequired, console_user, sessions
from tenantry.console.web import asset_response, page
from tenantry.kit.deps import SessionDep
from tenantry.kit.errors import AppError, NotFound, TooManyRequests, Unauthorized
from tenantry.kit.routes import include_flat
from tenantry.kit.text import Text, text

router = APIRouter(prefix="/console", include_in_schema=False)
Auth = Annotated[AuthService, Depends(AuthService.dep)]
# Checked by `safe_next`, which sends anything odd home: never a 422 on the way to sign in.
Next = Annotated[str | None, Query()]


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a page of the console, never another site, a path that
    climbs out of it, or the sign-in pages themselves; anything else goes home."""
    home = "/console"
    if not target or len(target) > 512 or not target.isprintable() or "\\" in target:
        return home
    parts = urlsplit(target)
    path = unquote(parts.path)
    if parts.scheme or parts.netloc or not (path == home or path.startswith(home + "/")):
        return home
    segments = path.split("/")[1:]
    if "" in segments[:-1] or {".", ".."} & set(segments) or path.startswith(home + "/sign-"):
        return home
    return target


def _sign_in_page(
    request: Request, next_: str, *, error: str | None = None, status: int = 200
) -> Response:
    token = cookies.new_token()
    providers = sorted(request.app.state.settings.oidc_providers)
    response = page(
        request,
        "sign_in.html",
        status=status,
        csrf=token,
        next=next_,
        error=error,
        providers=providers,
        user=None,
    )
    cookies.set_sign_in_cookie(response, request, token)
    return response


@router.get("/sign-in")
async def sign_in_form(request: Request, next: Next = None) -> Response:
    try:
        await console_user(request)
        return RedirectResponse(safe_next(next), status_code=303)
    except SignInRequired:
        return _sign_in_page(request, safe_next(next))


@router.post("/sign-in")
async def sign_in(request: Request, auth: Auth, session: SessionDep) -> Response:
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    next_ = safe_next(form.get("next"))
    if not cookies.same(form.get("csrf"), request.cookies.get(cookies.SIGN_IN_COOKIE)):
        why = "The form expired (or your browser refused its cookie); please try again."
        return _sign_in_page(request, next_, error=why, status=403)
    try:
        login = LoginRequest.model_validate(
            {"email": form.get("email", ""), "password": form.get("password", "")}
        )
    except ValidationError:
        return _sign_in_page(request, next_, error="Enter your email and password.", status=422)
    try:
        token, ttl = await auth.login(session, email=login.email, password=login.password)
    except Unauthorized as exc:
        return _sign_in_page(request, next_, error=exc.detail, status=401)
    except TooManyRequests as exc:
        response = _sign_in_page(request, next_, error=exc.detail, status=429)
        response.headers.update(exc.headers)
        return response
    return await _signed_in(request, token, ttl, next_)


async def _signed_in(request: Request, token: str, ttl: int, next_: str) -> Response:
    earlier = request.cookies.get(cookies.COOKIE)
    if cookies.well_formed(earlier):  # signing in again: the session before ends now
        await sessions(request).end(earlier or "")
    started = await sessions(request).start(token, ttl)
    response = RedirectResponse(next_, status_code=303)
    cookies.set_session_cookie(response, request, started, ttl)
    response.delete_cookie(cookies.SIGN_IN_COOKIE, path=cookies.PATH)
    response.delete_cookie(cookies.OIDC_COOKIE, path=cookies.OIDC_PATH)
    return response


def _oidc_callback_url(request: Request, provider: str) -> str:
    public_url = request.app.state.settings.public_url
    if public_url:
        return f"{public_url.rstrip('/')}/console/sign-in/oidc/{quote(provider)}/callback"
    return str(request.url_for("console_oidc_callback", provider=provider))


@router.get("/sign-in/oidc/{provider}")
async def oidc_start(provider: Text, request: Request, auth: Auth) -> Response:
    url = await auth.start_oauth(
        provider=provider, redirect_uri=_oidc_callback_url(request, provider)
    )
    response = RedirectResponse(url, status_code=302, headers={"Cache-Control": "no-store"})
    # The state is bound to this browser: a callback URL someone else started (and sends
    # here to sign a victim in to their own account) finds no matching cookie.
    state = parse_qs(urlsplit(url).query)["state"][0]
    cookies.set_oidc_cookie(response, request, state)
    return response


@router.get("/sign-in/oidc/{provider}/callback", name="console_oidc_callback")
async def oidc_callback(
    provider: Text,
    request: Request,
    auth: Auth,
    session: SessionDep,
    code: Annotated[str | None, text(max_length=2048), Query()] = None,
    state: Annotated[str | None, text(max_length=255), Query()] = None,
    error: Annotated[str | None, text(max_length=255), Query()] = None,
) -> Response:
    if not cookies.same(state, request.cookies.get(cookies.OIDC_COOKIE)):
        why = "This sign-in was not started in this browser; start it again here."
        return _sign_in_page(request, "/console", error=why, status=403)
    try:
        token, ttl = await auth.finish_oauth(
            session, provider=provider, code=code, state=state, error=error
        )
    except AppError as exc:
        return _sign_in_page(request, "/console", error=exc.detail, status=exc.status)
    return await _signed_in(request, token, ttl, "/console")


@router.post("/sign-out")
async def sign_out(request: Request, user: SignedIn) -> Response:
    form = await request.form()
    csrf = form.get("csrf")
    if not cookies.same(csrf if isinstance(csrf, str) else None, user.session.csrf):
        return page(
            request,
            "error.html",
            status=403,
            user=user,
            title="This form has expired",
            detail="Reload the page and sign out again.",
        )
    await sessions(request).end(user.session.id)  # gone for every instance at once
    response = RedirectResponse("/console/sign-in", status_code=303)
    cookies.clear_cookies(response)
    return response


@router.get("/static/{name}")
async def static(name: Text, request: Request) -> Response:
    """The stylesheet and the script (a route, not a mount: the route table stays flat)."""
    found = asset_response(name, request.query_params.get("v"))
    if found is None:
        raise NotFound("There is no such file.")
    return found


@router.get("")
async def home(user: SignedIn) -> Response:
    return RedirectResponse("/console/leads", status_code=303)


# --- wiring -----------------------------------------------------------------------------------


def _wants_page(request: Request) -> bool:
    path = request.url.path
    return (path == "/console" or path.startswith("/console/")) and "application/json" not in (
        request.headers.get("accept", "")
    )


def install(app: FastAPI, *routers: APIRouter) -> None:
    """The console's routes, and HTML error pages for its pages (a script's fetch, which asks
    for JSON, gets the API's problem documents)."""
    for each in (router, *routers):
        include_flat(app, each)
    handlers: dict[Any, Any] = dict(app.exception_handlers)

    def wrap(kind: type[Exception]) -> None:
        inner = handlers[kind]

        async def handle(request: Request, exc: Exception) -> Response:
            if not _wants_page(request):
                return await inner(request, exc)  # type: ignore[no-any-return]
            if isinstance(exc, SignInRequired):
                return RedirectResponse(_sign_in_url(request), status_code=303)
            status, title, detail = _explain(exc)
            return page(request, "error.html", status=status, user=None, title=title, detail=detail)

        app.add_exception_handler(kind, handle)

    for kind in (AppError, RequestValidationError, StarletteHTTPException):
        wrap(kind)


def _sign_in_url(request: Request) -> str:
    """Back here after signing in: this page for a GET (without its query if that is too
    long), the page the form was on for a POST (a form's URL answers POST only)."""
    if request.method in ("GET", "HEAD"):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if len(target) > 512:
            target = request.url.path
    else:
        target = urlsplit(request.headers.get("referer", "")).path
    return "/console/sign-in?next=" + quote(safe_next(target))


def _explain(exc: Exception) -> tuple[int, str, str]:
    if isinstance(exc, AppError):
        return exc.status, exc.title, exc.detail
    if isinstance(exc, RequestValidationError):
        fields = ", ".join(str(e.get("loc", ("?",))[-1]) for e in exc.errors()[:5])
        return 422, "This address asks for something we cannot show", f"Check: {fields}."
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        return 404, "Not found", "There is no such page."
    return exc.status_code, "Request refused", str(exc.detail)
