"""gzip for response bodies of at least `min_bytes`, when the client accepts it.

Ours rather than Starlette's `GZipMiddleware`, for cost: that one builds a responder object,
parses the request's and the response's headers into `Headers` objects and normalises its list
of excluded types on every request, compressed or not (measured: +18 µs a request, most of the
stack's budget). Here a request whose client does not accept gzip costs one scan of the raw
headers and keeps the server's own `send`; one that does is held only until its first body
chunk says whether it is big enough.
"""

from __future__ import annotations

import zlib

import anyio.to_thread
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Already compressed, or streamed to be read as it comes.
_SKIP_TYPES = (
    b"image/",
    b"video/",
    b"audio/",
    b"font/woff",
    b"application/zip",
    b"application/gzip",
    b"application/x-gzip",
    b"application/grpc",
    b"text/event-stream",
)
# Compressing this much at once would hold the event loop for milliseconds: a worker thread.
_THREAD_MIN_BYTES = 256 * 1024
_GZIP_WBITS = 16 + zlib.MAX_WBITS


def accepts_gzip(scope: Scope) -> bool:
    for key, value in scope["headers"]:
        if key == b"accept-encoding":
            lowered = value.lower()
            return b"gzip" in lowered and b"gzip;q=0" not in lowered.replace(b" ", b"")
    return False


def _compressible(start: Message) -> bool:
    if start["status"] in (204, 206, 304):
        return False
    for key, value in start.get("headers", ()):
        if key == b"content-encoding":
            return False
        if key == b"content-type" and value.lower().startswith(_SKIP_TYPES):
            return False
    return True


class GZipMiddleware:
    def __init__(self, app: ASGIApp, *, min_bytes: int = 1024, level: int = 6) -> None:
        self.app = app
        self.min_bytes = min_bytes
        self.level = level

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not accepts_gzip(scope):
            await self.app(scope, receive, send)
            return
        held: Message | None = None  # the response start, until the first body decides
        compressor: zlib._Compress | None = None
        passthrough = False

        async def send_gzip(message: Message) -> None:
            nonlocal held, compressor, passthrough
            kind = message["type"]
            if passthrough:
                await send(message)
            elif kind == "http.response.start":
                if _compressible(message):
                    held = message
                else:
                    passthrough = True
                    await send(message)
            elif kind != "http.response.body":
                if held is not None:  # pathsend, trailers ...: not ours to compress
                    passthrough = True
                    await send(held)
                    held = None
                await send(message)
            elif held is not None:
                start, held = held, None
                body = message.get("body", b"")
                more = message.get("more_body", False)
                if not more and len(body) < self.min_bytes:
                    passthrough = True
                    await send(start)
                    await send(message)
                    return
                compressor = zlib.compressobj(self.level, zlib.DEFLATED, _GZIP_WBITS)
                data = await self._compress(compressor, body, more)
                headers = [(k, v) for k, v in start.get("headers", ()) if k != b"content-length"]
                headers.append((b"content-encoding", b"gzip"))
                headers.append((b"vary", b"Accept-Encoding"))
                if not more:
                    headers.append((b"content-length", b"%d" % len(data)))
                start["headers"] = headers
                await send(start)
                await send({"type": "http.response.body", "body": data, "more_body": more})
            else:
                assert compressor is not None
                more = message.get("more_body", False)
                data = await self._compress(compressor, message.get("body", b""), more)
                await send({"type": "http.response.body", "body": data, "more_body": more})

        await self.app(scope, receive, send_gzip)

    @staticmethod
    async def _compress(compressor: zlib._Compress, body: bytes, more: bool) -> bytes:
        def run() -> bytes:
            mode = zlib.Z_SYNC_FLUSH if more else zlib.Z_FINISH
            return compressor.compress(body) + compressor.flush(mode)

        if len(body) >= _THREAD_MIN_BYTES:
            return await anyio.to_thread.run_sync(run)
        return run()
