"""The edge's request-size limits (step 6 of `kit.middleware`): too many headers or header
bytes is a 431 problem, a declared `Content-Length` over the body limit a 413, before the app
runs; a chunked body is counted as it streams and cut at the limit (the app's error handler
renders that 413). The server has read the headers by then: `kit.server` and the proxy in
front bound what is read at all."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.types import Message, Receive, Scope, Send

from tenantry.kit.asgi import send_problem
from tenantry.kit.errors import PayloadTooLarge

_CLOSE = [(b"connection", b"close")]


@dataclass(frozen=True, slots=True)
class SizeLimits:
    max_body_bytes: int = 1_048_576
    max_header_bytes: int = 16_384
    max_headers: int = 100

    async def refused(self, scope: Scope, send: Send, headers: dict[bytes, bytes]) -> bool:
        """Answer 431 or 413 when the request is over a limit; whether it did."""
        raw = scope["headers"]
        if len(raw) > self.max_headers or (
            sum(len(name) + len(value) for name, value in raw) > self.max_header_bytes
        ):
            detail = f"At most {self.max_headers} headers of {self.max_header_bytes} bytes in all."
            await send_problem(
                scope,
                send,
                431,
                "request-header-fields-too-large",
                "Request header fields too large",
                detail,
                _CLOSE,
            )
            return True
        if b"transfer-encoding" not in headers and _over(
            headers.get(b"content-length"), self.max_body_bytes
        ):
            await send_problem(
                scope, send, 413, PayloadTooLarge.slug, PayloadTooLarge.title, self._large(), _CLOSE
            )
            return True
        return False

    def counting(self, receive: Receive) -> Receive:
        """`receive` for a chunked body: counted as it streams, cut past the limit."""
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body_bytes:
                    raise PayloadTooLarge(self._large())
            return message

        return limited_receive

    def _large(self) -> str:
        return f"The request body is larger than the limit of {self.max_body_bytes} bytes."


def _over(length: bytes | None, limit: int) -> bool:
    try:
        return length is not None and int(length) > limit
    except ValueError:
        return False
