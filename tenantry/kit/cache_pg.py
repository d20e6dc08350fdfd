"""The invalidation bus without Redis: PostgreSQL `LISTEN/NOTIFY`.

Messages are sent with `pg_notify` inside the writing transaction, so PostgreSQL delivers
them when (and only if) it commits. Each instance listens on one dedicated connection
(outside the pool, not counted as a query); when that connection is lost it reconnects and
clears its caches, since notifications sent meanwhile were missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from tenantry.kit.caches import Event
from tenantry.kit.db import plain_url

log = logging.getLogger("tenantry.cache")

CHANNEL = "tenantry_cache"
_NOTIFY = text("SELECT pg_notify(:channel, :payload)")


class PostgresBus:
    def __init__(self, url: str, *, keepalive_s: float = 30.0, retry_max_s: float = 10.0) -> None:
        self.url = plain_url(url)
        self.keepalive_s = keepalive_s
        self.retry_max_s = retry_max_s
        self.ready = asyncio.Event()

    async def stage(self, session: AsyncSession, messages: list[bytes]) -> None:
        """NOTIFY inside the transaction: PostgreSQL delivers it with the commit, never before
        the data and never lost between commit and publish."""
        for message in messages:
            await session.execute(_NOTIFY, {"channel": CHANNEL, "payload": message.decode()})

    async def send(self, events: list[Event], messages: list[bytes]) -> bool:
        return True  # delivered by the commit itself

    async def listen(
        self,
        on_message: Callable[[bytes | str], None],
        on_reconnect: Callable[[], Awaitable[None]],
    ) -> None:
        backoff = 0.2
        while True:
            try:
                await self._session(on_message, on_reconnect)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, ConnectionError) as exc:
                log.warning("cache invalidation listener: %s; reconnecting", exc)
                if self.ready.is_set():
                    backoff = 0.2
            finally:
                self.ready.clear()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.retry_max_s)

    async def _session(
        self,
        on_message: Callable[[bytes | str], None],
        on_reconnect: Callable[[], Awaitable[None]],
    ) -> None:
        conn: Any = await asyncpg.connect(
            self.url, server_settings={"application_name": "tenantry-cache-bus"}
        )
        queue: asyncio.Queue[str | None] = asyncio.Queue()
        try:
            await conn.add_listener(
                CHANNEL, lambda _c, _pid, _ch, payload: queue.put_nowait(payload)
            )
            conn.add_termination_listener(lambda _c: queue.put_nowait(None))
            # Whatever was sent while nobody listened is lost: start from empty caches.
            await on_reconnect()
            self.ready.set()
            while True:
                try:
                    payload = await asyncio.wait_for(queue.get(), self.keepalive_s)
                except TimeoutError:
                    await asyncio.wait_for(conn.fetchval("SELECT 1"), 5)  # still there?
                    continue
                if payload is None:
                    raise ConnectionError("the listening connection was closed")
                on_message(payload)
        finally:
            with contextlib.suppress(Exception):
                conn.terminate()
