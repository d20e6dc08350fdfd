from __future__ import annotations

from fastapi import APIRouter, Request

from tenantry.auth import service
from tenantry.auth.schemas import LoginRequest, TokenResponse
from tenantry.kit.deps import SessionDep
from tenantry.kit.errors import problems

router = APIRouter(prefix="/auth", tags=["auth"])


@router.post(
    "/login",
    summary="Log in with email and password",
    response_model=TokenResponse,
    responses=problems(400, 401, 413, 422),
)
async def login(body: LoginRequest, session: SessionDep, request: Request) -> TokenResponse:
    """Returns a bearer access token (JWT) for the account."""
    token, ttl = await service.login(session, request.app.state.tokens, body.email, body.password)
    return TokenResponse(access_token=token, expires_in=ttl)
