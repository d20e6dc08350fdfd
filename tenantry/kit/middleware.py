"""Pure ASGI middleware (no BaseHTTPMiddleware: it costs a task and a queue per request and
breaks contextvars). Order, outermost first, is set in one place: `tenantry.app.create_app`.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tenantry.kit.db import count_queries
from tenantry.kit.errors import PROBLEM_BASE, PROBLEM_MEDIA_TYPE, PayloadTooLarge

_MAX_REQUEST_ID = 128


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value  # type: ignore[no-any-return]
    return None


def _valid_request_id(raw: bytes | None) -> str | None:
    if not raw or len(raw) > _MAX_REQUEST_ID:
        return None
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        return None
    return text if text.isprintable() and " " not in text else None


class RequestContextMiddleware:
    """Request id (accepted from the client or made), timing, and the per-request query count.

    Adds `X-Request-ID`, `X-Process-Time` (seconds) and, when `expose_query_count`, the
    `X-DB-Queries` header.
    """

    def __init__(self, app: ASGIApp, *, expose_query_count: bool = False) -> None:
        self.app = app
        self.expose_query_count = expose_query_count

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _valid_request_id(_header(scope, b"x-request-id")) or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        with count_queries() as counter:

            async def send_with_headers(message: Message) -> None:
                if message["type"] == "http.response.start":
                    headers = list(message.get("headers", []))
                    headers.append((b"x-request-id", request_id.encode()))
                    elapsed = time.perf_counter() - started
                    headers.append((b"x-process-time", f"{elapsed:.6f}".encode()))
                    if self.expose_query_count:
                        headers.append((b"x-db-queries", str(counter.count).encode()))
                    message["headers"] = headers
                await send(message)

            await self.app(scope, receive, send_with_headers)


class BodyLimitMiddleware:
    """Refuses bodies over `max_bytes` with 413, without reading them whole.

    A declared `Content-Length` over the limit is refused before the app runs; a chunked body
    is counted as it streams and cut at the limit (the app's error handler renders the 413).
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _header(scope, b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > self.max_bytes
            except ValueError:
                too_big = False
            if too_big:
                await self._refuse(scope, send)
                return

        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise PayloadTooLarge(self._detail())
            return message

        await self.app(scope, limited_receive, send)

    def _detail(self) -> str:
        return f"The request body is larger than the limit of {self.max_bytes} bytes."

    async def _refuse(self, scope: Scope, send: Send) -> None:
        body: dict[str, Any] = {
            "type": PROBLEM_BASE + "payload-too-large",
            "title": "Request body too large",
            "status": 413,
            "detail": self._detail(),
            "instance": scope.get("path", ""),
        }
        request_id = scope.get("state", {}).get("request_id")
        if request_id:
            body["request_id"] = request_id
        payload = orjson.dumps(body)
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
                    (b"content-length", str(len(payload)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})
