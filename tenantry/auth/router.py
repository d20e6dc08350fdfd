from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse

from tenantry.auth.schemas import LoginRequest, TokenResponse
from tenantry.auth.service import AuthService
from tenantry.kit.deps import SessionDep, SettingsDep, no_store
from tenantry.kit.errors import problems
from tenantry.kit.text import Text, text

router = APIRouter(prefix="/auth", tags=["auth"])

Auth = Annotated[AuthService, Depends(AuthService.dep)]


@router.post(
    "/login",
    summary="Log in with email and password",
    response_model=TokenResponse,
    responses=problems(400, 401, 413, 422, 429),
    dependencies=[Depends(no_store)],
)
async def login(body: LoginRequest, auth: Auth, session: SessionDep) -> TokenResponse:
    """Returns a bearer access token (JWT) for the account."""
    token, ttl = await auth.login(session, email=body.email, password=body.password)
    return TokenResponse(access_token=token, expires_in=ttl)


def _callback_url(request: Request, public_url: str | None, provider: str) -> str:
    if public_url:
        return f"{public_url.rstrip('/')}/api/v1/auth/oauth/{provider}/callback"
    return str(request.url_for("oauth_callback", provider=provider))


@router.get(
    "/oauth/{provider}/authorize",
    summary="Start a login with an OpenID Connect provider (redirects there)",
    status_code=302,
    response_class=RedirectResponse,
    responses={
        302: {"description": "To the provider's login page, with state, nonce and PKCE"},
        **problems(404, 422, 502, 503),
    },
)
async def oauth_authorize(
    provider: Text, request: Request, auth: Auth, settings: SettingsDep
) -> RedirectResponse:
    url = await auth.start_oauth(
        provider=provider, redirect_uri=_callback_url(request, settings.public_url, provider)
    )
    return RedirectResponse(url, status_code=302, headers={"Cache-Control": "no-store"})


@router.get(
    "/oauth/{provider}/callback",
    summary="Finish a provider login: returns an access token",
    response_model=TokenResponse,
    responses=problems(400, 401, 404, 422, 502, 503),
    dependencies=[Depends(no_store)],
)
async def oauth_callback(
    provider: Text,
    auth: Auth,
    session: SessionDep,
    code: Annotated[str | None, text(max_length=2048), Query()] = None,
    state: Annotated[str | None, text(max_length=255), Query()] = None,
    error: Annotated[str | None, text(max_length=255), Query()] = None,
) -> TokenResponse:
    """The provider sends the browser here; the answer is a bearer token for the user whose
    verified email the provider vouched for, or a problem saying why not."""
    token, ttl = await auth.finish_oauth(
        session, provider=provider, code=code, state=state, error=error
    )
    return TokenResponse(access_token=token, expires_in=ttl)
