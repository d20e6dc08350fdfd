"""Rate limiting: per class of route, keyed by principal when authenticated, else by address;
the edge middleware (`kit.middleware`) applies it.

Limits are written in the `limits` library's notation ("600/minute") and parsed by it; counts
live in `limits`' Redis storage when `REDIS_URL` is set (every instance shares them), else in
this process.

Windows are fixed and aligned to the clock (a 60 s window starts on the minute). That is ours,
not `limits`' `FixedWindowRateLimiter`, for cost: with aligned windows one atomic increment
answers everything the response needs, the count (so `r`, remaining) and the reset (`t`, from
the clock); the library's limiter takes a second and third round trip (`get`, `ttl`) to learn
them. In this process `limits`' `MemoryStorage` is not used either: it starts an expiry task on
every increment that walks every key, measured here at 130 µs a request with 1,000 clients and
1.1 ms with 10,000. `WindowCounter` drops a whole window at once instead.

The price of fixed windows is the usual one: a client may spend a window's quota at its end and
the next window's at its start.

Every response of a limited route carries the IETF headers
(draft-ietf-httpapi-ratelimit-headers-10), one style only:

    RateLimit-Policy: "default";q=600;w=60
    RateLimit: "default";r=599;t=42

and a refused request gets a 429 problem document with `Retry-After`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from limits import parse
from limits.aio.storage import RedisStorage
from redis.asyncio import Redis
from redis.exceptions import NoScriptError
from starlette.types import Scope, Send

from tenantry.kit.asgi import send_problem
from tenantry.kit.logging import get_logger

log = get_logger("tenantry.ratelimit")


@dataclass(frozen=True, slots=True)
class Policy:
    """One class of route's limit: `amount` requests per `window_s` seconds. `by_address`:
    counted per client address even when a bearer token comes along (the login routes: a
    token must not open a fresh bucket of password guesses)."""

    name: str
    amount: int
    window_s: int
    # The RateLimit-Policy header, and the format of the RateLimit one's value, made once.
    policy_header: tuple[bytes, bytes] = field(repr=False, compare=False)
    state_format: bytes = field(repr=False, compare=False)
    by_address: bool = False

    @classmethod
    def parse(cls, name: str, text: str, *, by_address: bool = False) -> Policy:
        item = parse(text)
        window = item.get_expiry()
        quoted = b'"%s"' % name.encode()
        return cls(
            name,
            item.amount,
            window,
            (b"ratelimit-policy", b"%s;q=%d;w=%d" % (quoted, item.amount, window)),
            quoted + b";r=%d;t=%d",
            by_address,
        )

    def state(self, remaining: int, reset: int) -> bytes:
        """The RateLimit header's value: `"name";r=<remaining>;t=<seconds to reset>`."""
        return self.state_format % (remaining if remaining > 0 else 0, reset)


@dataclass(slots=True)
class _Window:
    number: int
    end: float  # when it ends, in seconds since the epoch
    counts: dict[Hashable, int] = field(default_factory=dict)
    full: bool = False


class WindowCounter:
    """Counts in this process: one dict per policy, replaced when its window ends.

    Bounded: past `max_keys` clients in one window, new ones are not counted (and so not
    limited) until the window turns, and that is logged once.
    """

    def __init__(self, max_keys: int = 100_000) -> None:
        self.max_keys = max_keys
        self._windows: dict[Hashable, _Window] = {}

    def hit(self, policy: Policy, who: Hashable, now: float) -> tuple[int, int]:
        """Count one request of `who` (a principal's id, or an address: no key to build) under
        `policy` at `now` (`time.time()`): (its count in the window, whole seconds until the
        window ends). Without a coroutine: the edge's path when counts are in this process."""
        current = self._windows.get(policy.name)
        if current is None or now >= current.end:
            number = int(now // policy.window_s)
            current = _Window(number, (number + 1) * policy.window_s)
            self._windows[policy.name] = current
        counts = current.counts
        count = counts.get(who, 0) + 1
        if count == 1 and len(counts) >= self.max_keys:
            count = self._full(current, policy.name)
        else:
            counts[who] = count
        return count, int(current.end - now + 0.999) or 1

    def _full(self, current: _Window, space: Hashable) -> int:
        """A new client in a full window: not counted (so not limited), logged once."""
        if not current.full:
            current.full = True
            log.warning("rate limiter full", space=str(space), clients=self.max_keys)
        return 1


class RedisCounter:
    """Counts in Redis with `limits`' atomic increment script (INCRBY, and EXPIRE on a new key),
    on the app's connection pool. Keys: `<prefix>:<policy>:<who>:<window number>`.

    Increments are coalesced: every request that needs a count in the same turn of the event
    loop waits on one pipeline, and one principal's concurrent requests become one INCRBY of
    their number. Ours, not one `limits` call per request, for cost: a redis-py command costs
    110-160 µs of CPU (measured here), as much as the whole request; under load one round trip
    now serves many requests.
    """

    def __init__(self, client: Redis, key_prefix: str) -> None:
        self.storage = RedisStorage(
            "async+redis://",
            implementation="redispy",
            key_prefix=key_prefix,
            wrap_exceptions=True,
            connection_pool=client.connection_pool,  # type: ignore[arg-type]
        )
        self.client = client
        self.script = self.storage.bridge.lua_incr_expire  # type: ignore[attr-defined]
        # (prefixed key, window seconds) -> the requests waiting for their count there
        self._pending: dict[tuple[str, int], list[asyncio.Future[int]]] = {}
        self._flushing: set[asyncio.Task[None]] = set()

    async def incr(self, key: str, window_s: int, window: int) -> int:
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[int] = loop.create_future()
        if not self._pending:
            loop.call_soon(self._flush)
        full_key = self.storage.bridge.prefixed_key(f"{key}:{window}")
        self._pending.setdefault((full_key, window_s), []).append(waiter)
        return await waiter

    def _flush(self) -> None:
        batch, self._pending = self._pending, {}
        task = asyncio.ensure_future(self._send(batch))
        self._flushing.add(task)
        task.add_done_callback(self._flushing.discard)

    async def _send(self, batch: dict[tuple[str, int], list[asyncio.Future[int]]]) -> None:
        try:
            try:
                totals = await self._pipeline(batch)
            except NoScriptError:  # Redis restarted or its scripts were flushed
                await self.client.script_load(self.script.script)
                totals = await self._pipeline(batch)
        except Exception as exc:
            for waiters in batch.values():
                for waiter in waiters:
                    if not waiter.done():
                        waiter.set_exception(exc)
            return
        for waiters, total in zip(batch.values(), totals, strict=True):
            first = int(total) - len(waiters)
            for i, waiter in enumerate(waiters, 1):
                if not waiter.done():  # a request cut meanwhile no longer waits
                    waiter.set_result(first + i)

    async def _pipeline(self, batch: dict[tuple[str, int], list[asyncio.Future[int]]]) -> list[Any]:
        async with self.client.pipeline(transaction=False) as pipe:
            for (key, window_s), waiters in batch.items():
                pipe.evalsha(self.script.sha, 1, key, window_s, len(waiters))
            return await pipe.execute()


class RateLimiter:
    """The policies and where counts live. Made in `create_app`; the lifespan moves the counts
    to Redis (`use_redis`) when `REDIS_URL` is set."""

    def __init__(
        self,
        rules: Sequence[tuple[str, Policy | None]],
        default: Policy,
        *,
        login_account: Policy | None = None,
        enabled: bool = True,
        key_prefix: str = "tenantry:ratelimit",
    ) -> None:
        self.rules = tuple(rules)
        self._prefixes = tuple(prefix for prefix, _ in self.rules)
        self.default = default
        # Login attempts per account (the auth service counts them; `account_attempt`).
        self.login_account = login_account
        self.enabled = enabled
        self.key_prefix = key_prefix
        # counts in this process, or (`use_redis`) in Redis: exactly one of the two is set
        self.local: WindowCounter | None = WindowCounter()
        self.shared: RedisCounter | None = None
        # Where counts go while Redis is unreachable: each instance limits on its own (a
        # client may get N instances' quota) rather than not at all.
        self.fallback = WindowCounter()
        self._failing_since = 0.0

    def use_redis(self, client: Redis) -> None:
        self.shared = RedisCounter(client, self.key_prefix)
        self.local = None

    async def account_attempt(self, account: str) -> int | None:
        """Count a login attempt for `account` (an email, lowercased); the seconds to wait
        when it is over the per-account limit, else None. Every attempt counts, right or
        wrong, from any address: guesses spread over many addresses meet the same bound."""
        policy = self.login_account
        if policy is None or not self.enabled:
            return None
        count, reset = await self.hit(policy, f"login:{account}")
        return reset if count > policy.amount else None

    def policy_for(self, path: str) -> Policy | None:
        if not self.enabled:
            return None
        if not path.startswith(self._prefixes):  # one C call for the common case
            return self.default
        for prefix, policy in self.rules:
            if path.startswith(prefix):
                return policy
        return self.default

    async def hit(self, policy: Policy, who: Hashable) -> tuple[int, int]:
        """Count one request of `who` under `policy` wherever counts live: (its count in the
        window, seconds until the window ends)."""
        if self.local is not None:
            return self.local.hit(policy, who, time.time())
        return await self.hit_shared(policy, who)

    async def hit_shared(self, policy: Policy, who: Hashable) -> tuple[int, int]:
        """`WindowCounter.hit` in Redis: (count in the current window, seconds until it ends);
        while Redis is unreachable, counted in this process instead (`fallback`). `who` as
        for the local count (an id, an address, any string key); its key says which."""
        assert self.shared is not None
        now = time.time()
        window = int(now // policy.window_s)
        key = f"{policy.name}:u:{who.hex}" if isinstance(who, UUID) else f"{policy.name}:a:{who}"
        try:
            count = await self.shared.incr(key, policy.window_s, window)
        except Exception as exc:  # the store is down: count here, say so now and then
            if now - self._failing_since > 30:
                self._failing_since = now
                log.warning("rate limit store unavailable", error=type(exc).__name__)
            return self.fallback.hit(policy, who, now)
        return count, _reset(policy, window, now)


def _reset(policy: Policy, window: int, now: float) -> int:
    """Whole seconds until the window ends, at least 1."""
    return max(1, int((window + 1) * policy.window_s - now + 0.999))


async def refuse(scope: Scope, send: Send, policy: Policy, reset: int) -> None:
    """The 429 problem response with `Retry-After` (the edge adds the RateLimit headers to it,
    as to every response of a limited route)."""
    await send_problem(
        scope,
        send,
        429,
        "too-many-requests",
        "Too many requests",
        f"Rate limit of {policy.amount} requests per {policy.window_s} s exceeded; "
        f"retry in {reset} s.",
        [(b"retry-after", b"%d" % reset)],
    )
