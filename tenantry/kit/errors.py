"""One error base class carrying its status and problem type; one set of handlers that render
every error, ours or the framework's, as an RFC 9457 problem document.

An error no handler answers (a bug, a database failure) is a 500 `internal-error` problem that
names nothing of the error, and one log line (`log_unhandled`): written by the edge middleware
(`kit.middleware`), which answers it and does not let it propagate. Past the edge, Starlette's
ServerErrorMiddleware would send the 500 and re-raise, and the server would log it a second
time and close the client's keep-alive connection. The `Exception` handler installed here is
the fallback for what escapes the edge, or an app without it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match

from tenantry.kit import outage
from tenantry.kit.logging import get_logger
from tenantry.kit.tracebacks import describe_exception

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_BASE = "https://tenantry.dev/problems/"

log = get_logger("tenantry.errors")

# The 500 problem: slug, title, detail.
INTERNAL_ERROR = (
    "internal-error",
    "Internal server error",
    "Something went wrong on our side; the request id identifies it in our logs.",
)


def log_unhandled(exc: BaseException, scope: Mapping[str, Any], **fields: Any) -> None:
    """The one log line of an error no handler answered: method and path (never the query
    string), the error's type and message (`error`, cut and masked by
    `kit.logging.describe_exception`) and its traceback (plain, bounded, no local variables:
    `kit.logging.format_exception`). Inside a request, the line carries its id and caller."""
    log.error(
        "unhandled error",
        method=scope.get("method"),
        path=scope.get("path"),
        error=describe_exception(exc),
        exc_info=exc,
        **fields,
    )


class AppError(Exception):
    status: int = 500
    slug: str = "internal-error"
    title: str = "Internal server error"

    def __init__(
        self, detail: str | None = None, *, headers: dict[str, str] | None = None, **extra: Any
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.headers = headers or {}
        self.extra = extra


class BadRequest(AppError):
    status, slug, title = 400, "bad-request", "Bad request"


class Unauthorized(AppError):
    status, slug, title = 401, "unauthorized", "Authentication required"

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"}, **extra)


class Forbidden(AppError):
    status, slug, title = 403, "forbidden", "Not allowed"


class NotFound(AppError):
    status, slug, title = 404, "not-found", "Not found"


class Conflict(AppError):
    status, slug, title = 409, "conflict", "Conflict"


class PayloadTooLarge(AppError):
    status, slug, title = 413, "payload-too-large", "Request body too large"


class Invalid(AppError):
    """A field a service found invalid past the schema (a URL that points somewhere we will
    not call): the same 422 problem as a schema's, naming the field."""

    status, slug, title = 422, "validation-error", "Request validation failed"

    def __init__(self, loc: tuple[str | int, ...], message: str, kind: str = "value_error"):
        field = ".".join(str(p) for p in loc)
        super().__init__(
            f"1 invalid field(s): {field}.",
            errors=[{"loc": list(loc), "message": message, "type": kind}],
        )


class TooManyRequests(AppError):
    """Refused by a limit a service keeps (the edge's own limits answer before the app)."""

    status, slug, title = 429, "too-many-requests", "Too many requests"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)})


class ServiceUnavailable(AppError):
    status, slug, title = 503, "service-unavailable", "Service unavailable"


class FieldError(BaseModel):
    loc: list[str | int] = Field(description="Where the error is: body, query, path, header ...")
    message: str
    type: str


class Problem(BaseModel):
    """An RFC 9457 problem document."""

    type: str = Field(examples=[PROBLEM_BASE + "not-found"])
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    request_id: str | None = None
    errors: list[FieldError] | None = Field(
        default=None, description="Each invalid field, on validation problems"
    )


def problem_response(
    status: int,
    slug: str,
    title: str,
    detail: str | None = None,
    *,
    request: Request | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail or title,
    }
    if request is not None:
        body["instance"] = request.url.path
        request_id = request.scope.get("state", {}).get("request_id")
        if request_id:
            body["request_id"] = request_id
    body.update(extra)
    return Response(
        orjson.dumps(body), status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers
    )


_STATUS_SLUGS = {
    400: ("bad-request", "Bad request"),
    401: ("unauthorized", "Authentication required"),
    403: ("forbidden", "Not allowed"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    406: ("not-acceptable", "Not acceptable"),
    409: ("conflict", "Conflict"),
    413: ("payload-too-large", "Request body too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
    429: ("too-many-requests", "Too many requests"),
    431: ("request-header-fields-too-large", "Request header fields too large"),
    503: ("service-unavailable", "Service unavailable"),
}


def _loc(parts: tuple[Any, ...]) -> list[str | int]:
    return [p if isinstance(p, int) else str(p) for p in parts]


async def _app_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AppError)
    return problem_response(
        exc.status,
        exc.slug,
        exc.title,
        exc.detail,
        request=request,
        headers=exc.headers,
        **exc.extra,
    )


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    raw = exc.errors()
    if any(e.get("type") == "json_invalid" for e in raw):
        first = next(e for e in raw if e.get("type") == "json_invalid")
        reason = (first.get("ctx") or {}).get("error", "invalid JSON")
        return problem_response(
            400,
            "malformed-json",
            "Malformed JSON body",
            f"The request body is not valid JSON: {reason}.",
            request=request,
        )
    errors = [
        {
            "loc": _loc(tuple(e.get("loc", ()))),
            "message": e.get("msg", ""),
            "type": e.get("type", ""),
        }
        for e in raw
    ]
    fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in errors[:5])
    return problem_response(
        422,
        "validation-error",
        "Request validation failed",
        f"{len(errors)} invalid field(s): {fields}.",
        request=request,
        errors=errors,
    )


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if isinstance(exc.__cause__, AppError):
        # FastAPI wraps any error raised while reading the body (our 413 from the body-limit
        # middleware's receive) in a generic 400; the cause is the real answer.
        return await _app_error(request, exc.__cause__)
    slug, title = _STATUS_SLUGS.get(exc.status_code, ("http-error", "HTTP error"))
    detail = exc.detail if isinstance(exc.detail, str) else title
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(_allowed_methods(request))
    return problem_response(exc.status_code, slug, title, detail, request=request, headers=headers)


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route answers on this path. Starlette's 405 names only the first
    route that matched the path, and `GET|POST /users` are two routes."""
    probe = {**request.scope, "method": ""}  # no route has it: a path match is PARTIAL
    methods: set[str] = set()
    for route in request.app.router.routes:
        allowed = getattr(route, "methods", None)
        if allowed and route.matches(probe)[0] is not Match.NONE:
            methods |= allowed
    return sorted(methods)


async def _unhandled(request: Request, exc: Exception) -> Response:
    # Starlette's ServerErrorMiddleware calls this for what escaped the edge middleware, which
    # answers (and logs) every error of the app itself; see the module's docstring.
    if outage.database_unavailable(exc):
        outage.note(exc, request.scope.get("path"))
        retry = {"Retry-After": str(outage.RETRY_AFTER_S)}
        return problem_response(503, *outage.PROBLEM, request=request, headers=retry)
    log_unhandled(exc, request.scope)
    return problem_response(500, *INTERNAL_ERROR, request=request)


def install(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unhandled)


_PROBLEM_DESCRIPTIONS = {
    400: "Malformed request (for example a body that is not JSON)",
    401: "Missing, invalid, expired or revoked credentials",
    403: "Authenticated, but not allowed to do this",
    404: "No such resource in your tenant",
    409: "Conflicts with the current state (for example a duplicate)",
    413: "Request body too large",
    422: "Request validation failed; `errors` names each field",
    429: "Rate limit exceeded; see Retry-After",
    431: "More header bytes or headers than MAX_HEADER_BYTES or MAX_HEADERS allow",
    502: "An upstream service (such as a login provider) failed",
    503: "A dependency is unavailable",
    504: "The request took longer than REQUEST_TIMEOUT_S and was stopped; nothing was saved",
}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for the given problem statuses."""
    return {
        status: {
            "description": _PROBLEM_DESCRIPTIONS.get(status, "Problem"),
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }
