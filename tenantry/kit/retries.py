"""When a failed job runs again: the retry strategies of the jobs kit (`kit.jobs`).

Procrastinate's own `RetryStrategy` has no jitter, and a webhook needs a fixed schedule and a
way for the task itself to say when (a 429's Retry-After); these are small subclasses of its
`BaseRetryStrategy`.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from procrastinate import RetryDecision
from procrastinate.jobs import Job
from procrastinate.retry import BaseRetryStrategy


class Backoff(BaseRetryStrategy):
    """At most `attempts` runs; after the n-th failure the job waits `base_s * 2**(n-1)`
    seconds, capped at `cap_s`, drawn between half of that and all of it (jitter, so jobs that
    failed together do not come back together). Only `retry_on` exceptions are retried."""

    def __init__(
        self,
        attempts: int = 5,
        *,
        base_s: float = 2.0,
        cap_s: float = 3600.0,
        retry_on: tuple[type[BaseException], ...] = (Exception,),
    ) -> None:
        if attempts < 1:
            raise ValueError("attempts must be at least 1")
        self.attempts, self.base_s, self.cap_s, self.retry_on = attempts, base_s, cap_s, retry_on

    def delay_s(self, failures: int) -> float:
        full = min(self.cap_s, self.base_s * 2 ** (failures - 1))
        return random.uniform(full / 2, full)  # noqa: S311 - jitter, not a secret

    def get_retry_decision(self, *, exception: BaseException, job: Job) -> RetryDecision | None:
        failures = job.attempts + 1  # `attempts` counts the runs before this one
        if failures >= self.attempts or not isinstance(exception, self.retry_on):
            return None
        return RetryDecision(retry_at=_after(self.delay_s(failures)))


class Schedule(BaseRetryStrategy):
    """Fixed delays between runs (a webhook's: Svix's schedule), each moved by up to
    `jitter` of itself either way; after the last delay the job fails."""

    def __init__(self, delays_s: tuple[float, ...], *, jitter: float = 0.1) -> None:
        self.delays_s, self.jitter = delays_s, jitter

    def delay_s(self, failures: int) -> float | None:
        if failures > len(self.delays_s):
            return None
        base = self.delays_s[failures - 1]
        spread = random.uniform(1 - self.jitter, 1 + self.jitter)  # noqa: S311 - jitter
        return max(0.0, base * spread)

    def get_retry_decision(self, *, exception: BaseException, job: Job) -> RetryDecision | None:
        delay = self.delay_s(job.attempts + 1)
        if delay is None:
            return None
        return RetryDecision(retry_at=_after(delay))


class RetryIn(Exception):
    """Raised by a task that knows when it should run again (a webhook's next slot on its
    schedule, a 429's Retry-After); `Planned` retries it then."""

    def __init__(self, seconds: float, reason: str) -> None:
        super().__init__(f"{reason}; again in {seconds:g} s")
        self.seconds, self.reason = max(0.0, seconds), reason


class Planned(BaseRetryStrategy):
    """Retries a `RetryIn` when it says; anything else (a bug, the database away) by
    `fallback`, if any."""

    def __init__(self, fallback: BaseRetryStrategy | None = None) -> None:
        self.fallback = fallback

    def get_retry_decision(self, *, exception: BaseException, job: Job) -> RetryDecision | None:
        if isinstance(exception, RetryIn):
            return RetryDecision(retry_at=_after(exception.seconds))
        if self.fallback is None:
            return None
        decision: RetryDecision | None = self.fallback.get_retry_decision(
            exception=exception, job=job
        )
        return decision


# Jobs cut short by their worker's shutdown, by id (`kit.jobs` records them as it sees the
# cancellation, with Procrastinate's own reason for it). Never emptied: the process is
# stopping, and holds at most JOBS_CONCURRENCY of them.
CUT_BY_SHUTDOWN: set[int] = set()


class Released(BaseRetryStrategy):
    """Every task's outer strategy (`kit.jobs`): a job cut short by its worker's shutdown
    (cancelled once JOBS_SHUTDOWN_GRACE_S ran out) is queued again at once for any worker,
    whatever its own strategy says; Procrastinate would mark it aborted, and a job someone
    was promised would be lost. It spends one of its tries (Procrastinate counts every run).
    Any other cancellation (an abort someone asked for, a task's own) and every other
    failure go to `inner`."""

    def __init__(self, inner: BaseRetryStrategy | None) -> None:
        self.inner = inner

    def get_retry_decision(self, *, exception: BaseException, job: Job) -> RetryDecision | None:
        if job.id in CUT_BY_SHUTDOWN:
            return RetryDecision(retry_at=_after(0))
        if self.inner is None:
            return None
        decision: RetryDecision | None = self.inner.get_retry_decision(exception=exception, job=job)
        return decision


def _after(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)
