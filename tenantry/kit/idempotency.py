"""Idempotency keys (draft-ietf-httpapi-idempotency-key-header): a POST sent with an
`Idempotency-Key` header is done once, however often it is sent.

- The first request with a key claims it (the state store's set-if-absent) and runs; its
  answer (any but a 5xx or a 429, which change nothing) is kept for `ttl_s` (24 h).
- The same key with the same body: the kept answer again, the work not done again
  (`Idempotent-Replayed: true`).
- The same key while the first is still running: 409, `Retry-After: 1`.
- The same key with another body: 422.
- Keys are scoped by tenant and principal (a bearer token's subject; else the credential
  itself, hashed; else the client address), method and path.

A client that retries a request that timed out on its side therefore creates nothing twice.
A first request that failed (5xx) or was cut off drops its claim, so a retry does the work.
The kept answer is sealed with `SECRETS_KEYS` (it may hold a secret shown once: an API key, a
webhook signing secret). What remains: a process that dies after its transaction committed and
before it kept the answer leaves the key claimed as "running" for `running_ttl_s` (the request
timeout and a margin), and a retry after that runs again.

Written here: the draft's rules are short, and they sit on our state store and edge; the
libraries for it bring their own storage and framework middleware.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import re
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tenantry.kit.asgi import send_problem
from tenantry.kit.state import StateStore, StateUnavailable

NAMESPACE = "idempotency"
HEADER = b"idempotency-key"
_VISIBLE_ASCII = re.compile(rb"^[\x21-\x7e]{1,255}$")
# Answers that changed nothing: a retry should run again rather than get them back.
_NOT_KEPT = frozenset({429})


def applies(scope: Scope, excluded_prefixes: tuple[str, ...]) -> bool:
    return scope["method"] == "POST" and not scope["path"].startswith(excluded_prefixes)


def principal_key(scope: Scope, claims: Any, headers: dict[bytes, bytes]) -> str:
    """Whose idempotency keys these are: the token's tenant and subject; else the credential
    (an API key), hashed; else the client's address."""
    if claims is not None:
        return f"t:{claims.tid}:u:{claims.sub}"
    credential = headers.get(b"authorization")
    if credential is not None:
        return "c:" + hashlib.sha256(credential).hexdigest()
    client = scope.get("client")
    return f"a:{client[0] if client else 'unknown'}"


class Idempotency:
    def __init__(self, *, ttl_s: float, running_ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self.running_ttl_s = running_ttl_s

    async def serve(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        app: ASGIApp,
        *,
        who: str,
        raw_key: bytes,
    ) -> None:
        if not _VISIBLE_ASCII.match(raw_key):
            await send_problem(
                scope,
                send,
                400,
                "bad-idempotency-key",
                "Bad Idempotency-Key",
                "An Idempotency-Key is 1 to 255 visible ASCII characters.",
            )
            return
        body = await _read_body(receive)
        fingerprint = hashlib.sha256(body).hexdigest()
        name = "\n".join((who, scope["method"], scope["path"], raw_key.decode("ascii")))
        key = hashlib.sha256(name.encode()).hexdigest()
        state: StateStore = scope["app"].state.state_store
        try:
            claimed = await state.claim(
                NAMESPACE, key, {"state": "running", "fp": fingerprint}, self.running_ttl_s
            )
            found = None if claimed else await state.get(NAMESPACE, key)
            if not claimed and found is None:  # it expired in between: one more try
                claimed = await state.claim(
                    NAMESPACE, key, {"state": "running", "fp": fingerprint}, self.running_ttl_s
                )
        except StateUnavailable:
            await send_problem(
                scope,
                send,
                503,
                "service-unavailable",
                "Service unavailable",
                "Idempotency keys cannot be checked right now; retry shortly.",
            )
            return
        if not claimed:
            await self._answer_again(scope, send, found, fingerprint)
            return
        await self._first(scope, receive, send, app, state, key, fingerprint, body)

    async def _answer_again(self, scope: Scope, send: Send, found: Any, fingerprint: str) -> None:
        if found is not None and found["fp"] != fingerprint:
            await send_problem(
                scope,
                send,
                422,
                "idempotency-key-reused",
                "Idempotency-Key reused",
                "This Idempotency-Key was sent with another body; use a new key for a new request.",
            )
        elif found is None or found["state"] == "running":  # (None: it just ended)
            await send_problem(
                scope,
                send,
                409,
                "request-in-progress",
                "Request in progress",
                "A request with this Idempotency-Key is still running; retry shortly.",
                [(b"retry-after", b"1")],
            )
        else:
            await self._replay(scope, send, found)

    async def _replay(self, scope: Scope, send: Send, found: dict[str, Any]) -> None:
        sealed = scope["app"].state.platform.secrets.open(found["answer"])
        answer = orjson.loads(sealed)
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in answer["headers"]]
        headers.append((b"idempotent-replayed", b"true"))
        await send({"type": "http.response.start", "status": answer["status"], "headers": headers})
        await send({"type": "http.response.body", "body": base64.b64decode(answer["body"])})

    async def _first(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        app: ASGIApp,
        state: StateStore,
        key: str,
        fingerprint: str,
        body: bytes,
    ) -> None:
        started: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def keeping(message: Message) -> None:
            if message["type"] == "http.response.start":
                started.update(status=message["status"], headers=message.get("headers", []))
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        delivered = False

        async def replayed_body() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        kept = False
        try:
            await app(scope, replayed_body, keeping)
            status = started.get("status", 500)
            if status < 500 and status not in _NOT_KEPT:
                answer = {
                    "status": status,
                    "headers": [
                        (k.decode("latin-1"), v.decode("latin-1")) for k, v in started["headers"]
                    ],
                    "body": base64.b64encode(b"".join(chunks)).decode("ascii"),
                }
                sealed = scope["app"].state.platform.secrets.seal(orjson.dumps(answer).decode())
                done = {"state": "done", "fp": fingerprint, "answer": sealed}
                await state.put(NAMESPACE, key, done, self.ttl_s)
                kept = True
        finally:
            if not kept:  # failed, cut off or refused: a retry may do the work
                with contextlib.suppress(StateUnavailable):  # else it expires by itself
                    await state.delete(NAMESPACE, key)


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)
