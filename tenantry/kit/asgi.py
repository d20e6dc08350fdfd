"""Small pieces of raw ASGI shared by the edge middleware (`kit.middleware`) and its parts:
request ids, security headers and problem responses sent before the app is reached.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterable
from typing import Any

import orjson
from starlette.types import Scope, Send

from tenantry.kit.errors import PROBLEM_BASE, PROBLEM_MEDIA_TYPE

Headers = list[tuple[bytes, bytes]]

_PROBLEM_CONTENT_TYPE = (b"content-type", PROBLEM_MEDIA_TYPE.encode())
_MAX_REQUEST_ID = 128


def valid_request_id(raw: bytes | None) -> str | None:
    """The client's `X-Request-ID` when it is sane to echo and log: printable ASCII, no spaces,
    at most 128 characters."""
    if not raw or len(raw) > _MAX_REQUEST_ID:
        return None
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        return None
    return text if text.isprintable() and " " not in text else None


# A request id must be unique, not secret: 16 random hex digits for the process, then a counter
# (32 hex digits in all). A tenth of uuid4's cost, which reads the OS's random source each time.
_ID_PREFIX = f"{random.SystemRandom().getrandbits(64):016x}"
_id_counter = itertools.count(1)


def new_request_id() -> str:
    return f"{_ID_PREFIX}{next(_id_counter):016x}"


def security_headers(*, hsts_max_age_s: int) -> tuple[Headers, Headers]:
    """The headers every response carries: (over plain HTTP, over HTTPS). HSTS only over HTTPS
    (`scope["scheme"]`, which uvicorn sets from X-Forwarded-Proto behind a trusted proxy)."""
    plain = [
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"strict-origin-when-cross-origin"),
    ]
    tls = list(plain)
    if hsts_max_age_s:
        hsts = b"max-age=%d; includeSubDomains" % hsts_max_age_s
        tls.append((b"strict-transport-security", hsts))
    return plain, tls


async def send_problem(
    scope: Scope,
    send: Send,
    status: int,
    slug: str,
    title: str,
    detail: str,
    headers: Iterable[tuple[bytes, bytes]] = (),
) -> None:
    """An RFC 9457 problem response sent by the edge itself (the app's handlers not reached)."""
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": scope.get("path", ""),
    }
    request_id = scope.get("state", {}).get("request_id")
    if request_id:
        body["request_id"] = request_id
    payload = orjson.dumps(body)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                _PROBLEM_CONTENT_TYPE,
                (b"content-length", b"%d" % len(payload)),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
