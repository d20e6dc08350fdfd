"""The HTTP protocol `tenantry serve` runs: uvicorn's httptools protocol, with two of its
answers made ours.

- A request the parser refuses (a NUL byte in a header, a malformed request line) gets an RFC
  9457 problem document, like every other error, instead of uvicorn's `text/plain` 400.
- A request head (request line and headers) larger than `max_head_bytes` is answered 431 and
  the connection closed as soon as that many bytes have arrived, instead of buffering the
  whole head (uvicorn and httptools set no bound: a 64 MB header was read whole). The edge
  middleware's own 431 (`MAX_HEADER_BYTES`, `MAX_HEADERS`) checks what gets past this.

Written here: uvicorn offers no setting for either, and takes a protocol class.
"""

from __future__ import annotations

from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from tenantry.config import get_settings
from tenantry.kit.errors import PROBLEM_BASE, PROBLEM_MEDIA_TYPE

STATUS_LINES = {
    400: b"HTTP/1.1 400 Bad Request\r\n",
    431: b"HTTP/1.1 431 Request Header Fields Too Large\r\n",
}
# The request line comes on top of the headers the edge allows.
HEAD_ALLOWANCE = 8192


def problem_bytes(status: int, slug: str, title: str, detail: str) -> bytes:
    body = orjson.dumps(
        {"type": PROBLEM_BASE + slug, "title": title, "status": status, "detail": detail}
    )
    head = [
        STATUS_LINES[status],
        b"content-type: " + PROBLEM_MEDIA_TYPE.encode() + b"\r\n",
        b"content-length: %d\r\n" % len(body),
        b"connection: close\r\n",
        b"\r\n",
    ]
    return b"".join(head) + body


class ProblemHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # From the settings here, not passed in: uvicorn takes the class, and sends it to
        # its worker processes by name.
        self.max_head_bytes = get_settings().max_header_bytes + HEAD_ALLOWANCE
        self._head_bytes = 0
        self._in_head = True

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes, self._in_head = 0, True

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_bytes += len(data)
            if self._head_bytes > self.max_head_bytes:
                self.logger.warning("Request head over %d bytes refused.", self.max_head_bytes)
                self.transport.write(
                    problem_bytes(
                        431,
                        "request-header-fields-too-large",
                        "Request header fields too large",
                        f"The request line and headers are over {self.max_head_bytes} bytes.",
                    )
                )
                self.transport.close()
                return
        super().data_received(data)

    def send_400_response(self, msg: str) -> None:
        self.transport.write(
            problem_bytes(
                400,
                "bad-request",
                "Bad request",
                "The request is not valid HTTP (a header with a control character, or a"
                " malformed request line).",
            )
        )
        self.transport.close()
