"""Responses made from cached bytes, with a strong ETag, and the 304 for a client that has
them already (RFC 9110 section 13.1.2, If-None-Match)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from tenantry.kit.cache import Rendered

# The caller's own data: a shared cache must not keep it, a private one must ask again.
PRIVATE = "private, no-cache"

# For a route's `responses`: what a conditional GET may answer besides its 200.
NOT_MODIFIED: dict[int | str, dict[str, Any]] = {
    304: {"description": "Not modified: the `ETag` sent in `If-None-Match` is still current"}
}


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Whether an If-None-Match header names `etag` (weak comparison, `*` for any)."""
    if not if_none_match:
        return False
    for candidate in if_none_match.split(","):
        tag = candidate.strip()
        if tag == "*" or tag.removeprefix("W/") == etag:
            return True
    return False


def cached_json(request: Request, rendered: Rendered, *, cache_control: str = PRIVATE) -> Response:
    """The rendered JSON with its ETag, or a 304 when the client holds it already."""
    headers = {"ETag": rendered.etag, "Cache-Control": cache_control}
    if etag_matches(request.headers.get("if-none-match"), rendered.etag):
        return Response(status_code=304, headers=headers)
    return Response(rendered.body, media_type="application/json", headers=headers)


def model_json(model: BaseModel, *, status_code: int = 200) -> Response:
    """A model the endpoint built and validated, serialised once, straight to bytes: what
    FastAPI would send for it, without validating it a second time against the route's
    response model (a hot route's way to answer, `kit.lane`)."""
    body = model.__pydantic_serializer__.to_json(model)
    return Response(body, status_code=status_code, media_type="application/json")
