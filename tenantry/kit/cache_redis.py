"""The caches' Redis side: the L2 behind every shareable cache, and the invalidation bus
over Redis pub/sub.

L2 values are `{prefix}cache:{name}:{key}`. Next to each lives a generation counter
`{prefix}cachegen:{name}:{key}`, bumped by every invalidation: a loader reads it with the
(missing) value, and its write-back is a small Lua script that stores only if the generation
is unchanged, so a load that started before a commit cannot put the old row back into the L2
after that commit's invalidation deleted it.

Every call goes through `RedisHealth`: when Redis is down, the L2 is skipped (L1 and the
database serve), invalidations that could not be sent are kept and replayed when the bus is
back, and a reconnected bus clears L1 because messages may have been missed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis

from tenantry.kit.caches import Event
from tenantry.kit.redis import REDIS_FAILURES, RedisHealth

# Long enough to outlive any load in flight; short enough not to pile up.
GENERATION_TTL_MS = 24 * 3600 * 1000

_PUT_IF_GENERATION = """
local current = redis.call('GET', KEYS[2]) or ''
if current == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
"""


class RedisTier:
    def __init__(self, redis: Redis, *, prefix: str, health: RedisHealth) -> None:
        self.redis = redis
        self.prefix = prefix
        self.health = health
        self.channel = f"{prefix}cache-invalidations"
        self.ready = asyncio.Event()
        self._put_script = redis.register_script(_PUT_IF_GENERATION)

    def _value_key(self, cache: str, key: str) -> str:
        return f"{self.prefix}cache:{cache}:{key}"

    def _generation_key(self, cache: str, key: str) -> str:
        return f"{self.prefix}cachegen:{cache}:{key}"

    # --- L2 -----------------------------------------------------------------------------------

    async def get(self, cache: str, key: str) -> tuple[bytes | None, bytes | None] | None:
        names = (self._value_key(cache, key), self._generation_key(cache, key))
        found = await self.health.call("cache", lambda: self.redis.mget(*names), None)
        if found is None:
            return None
        value, generation = found
        return _as_bytes(value), _as_bytes(generation)

    async def put(
        self, cache: str, key: str, data: bytes, generation: bytes | None, ttl_s: float
    ) -> None:
        keys = [self._value_key(cache, key), self._generation_key(cache, key)]
        args: list[bytes | int] = [generation or b"", data, max(1, int(ttl_s * 1000))]
        await self.health.call("cache", lambda: self._put_script(keys=keys, args=args), None)

    async def _clear(self, cache: str) -> None:
        batch: list[bytes] = []
        async for name in self.redis.scan_iter(match=f"{self.prefix}cache:{cache}:*", count=500):
            batch.append(name)
            if len(batch) >= 500:
                await self.redis.unlink(*batch)
                batch = []
        if batch:
            await self.redis.unlink(*batch)

    # --- bus ----------------------------------------------------------------------------------

    # Redis cannot join the transaction, so this bus has no `stage`: `send` runs after the
    # commit.

    async def send(self, events: list[Event], messages: list[bytes]) -> bool:
        async def invalidate() -> bool:
            for cache, key in events:
                if key is None:
                    await self._clear(cache)
            pipe = self.redis.pipeline(transaction=False)
            for cache, key in events:
                if key is not None:
                    generation = self._generation_key(cache, key)
                    pipe.incr(generation)
                    pipe.pexpire(generation, GENERATION_TTL_MS)
                    pipe.delete(self._value_key(cache, key))
            for message in messages:
                pipe.publish(self.channel, message)
            await pipe.execute()
            return True

        return await self.health.call("cache-invalidation", invalidate, False)

    async def listen(
        self,
        on_message: Callable[[bytes | str], None],
        on_reconnect: Callable[[], Awaitable[None]],
    ) -> None:
        while True:
            _raise_if_cancelled()
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                self.health.succeeded()
                # Whatever was sent while nobody listened is lost: start from empty caches.
                await on_reconnect()
                self.ready.set()
                while True:
                    _raise_if_cancelled()
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        on_message(message["data"])
            except REDIS_FAILURES as exc:
                self.health.failed("cache-bus", exc)
            finally:
                self.ready.clear()
                with contextlib.suppress(*REDIS_FAILURES):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            await asyncio.sleep(self.health.retry_s)


def _as_bytes(value: bytes | str | None) -> bytes | None:
    return value.encode() if isinstance(value, str) else value


def _raise_if_cancelled() -> None:
    # redis-py can swallow a CancelledError that lands inside its own timeouts (connect,
    # read); the task still counts the request, so honour it here or shutdown never ends.
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
