"""What uvicorn's parser refuses gets a problem document too, and a request head too large is
refused as it arrives, not after it has been read whole (`kit.server`): the protocol
`tenantry serve` runs, fed bytes as a socket would."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from uvicorn.config import Config
from uvicorn.server import ServerState

from tenantry.kit.server import ProblemHttpToolsProtocol


class Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = b""
        self.closed = False

    def write(self, data: Any) -> None:
        self.written += bytes(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 5000), "sockname": ("127.0.0.1", 8000)}.get(name, default)


async def _app(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def _protocol() -> tuple[ProblemHttpToolsProtocol, Transport]:
    config = Config(app=_app, http=ProblemHttpToolsProtocol, log_level="critical")
    config.load()
    protocol = ProblemHttpToolsProtocol(config=config, server_state=ServerState(), app_state={})
    transport = Transport()
    protocol.connection_made(transport)
    return protocol, transport


def _answer(raw: bytes) -> tuple[bytes, dict[str, Any]]:
    head, _, body = raw.partition(b"\r\n\r\n")
    return head, json.loads(body)


async def test_a_request_the_parser_refuses_gets_a_problem() -> None:
    protocol, transport = _protocol()
    protocol.data_received(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Bad: a\x00b\r\n\r\n")
    head, body = _answer(transport.written)
    assert head.startswith(b"HTTP/1.1 400 ")
    assert b"content-type: application/problem+json" in head
    assert body["status"] == 400 and body["type"].endswith("/bad-request")
    assert transport.closed


async def test_a_huge_head_is_refused_before_it_is_read_whole() -> None:
    protocol, transport = _protocol()
    protocol.data_received(b"GET /healthz HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ")
    chunk = b"a" * 65_536
    sent = 0
    while not transport.closed and sent < 64 * 2**20:  # a 64 MB header, 64 KiB at a time
        protocol.data_received(chunk)
        sent += len(chunk)
    assert sent <= 2 * 65_536  # refused within the first chunks past the bound
    head, body = _answer(transport.written)
    assert head.startswith(b"HTTP/1.1 431 ") and body["status"] == 431


async def test_a_normal_request_is_served() -> None:
    protocol, transport = _protocol()
    protocol.data_received(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    for _ in range(20):
        if transport.written:
            break
        await asyncio.sleep(0.01)
    assert transport.written.startswith(b"HTTP/1.1 200 ")
