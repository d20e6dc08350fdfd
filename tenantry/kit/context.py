"""What code running for a request can find without being handed it: the request's state (for
the log lines: request id, caller) and its count of database statements.

The in-flight requests of the process are kept by the asyncio task serving each (the server
runs one task per request): the edge middleware (`kit.middleware`) puts a request in
`inflight` when it arrives and takes it out when it is answered; the statement hook (`kit.db`),
the log processor (`kit.logging`) and the request timeout (`kit.timeout`) look it up.

Ours, keyed by task, rather than a context variable, for cost: setting a context variable makes
a new context, and every other context variable read in the request (anyio's, OpenTelemetry's
in FastAPI, structlog's) then misses its cache; measured +4 µs a request in the full app.
Tasks a request starts are not the request: their statements are not counted as its own.

`count_queries` (tests, the benchmark) is a context variable all the same: a block counts what
runs inside it, requests included, and costs nothing when not used.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any


class RequestContext:
    """One in-flight request: its state dict, its statement count, and its deadline (for
    `kit.timeout`). The edge's per-request object extends it."""

    __slots__ = ("count", "cut", "deadline", "state")

    count: int
    state: dict[str, Any]
    deadline: float  # on the time.perf_counter() clock
    cut: bool  # cancelled for being past its deadline


# The in-flight requests by the task serving each.
inflight: dict[asyncio.Task[Any], RequestContext] = {}


def current_request() -> RequestContext | None:
    try:
        task = asyncio.current_task()
    except RuntimeError:  # no event loop running (a thread, the CLI)
        return None
    return None if task is None else inflight.get(task)


def request_state() -> dict[str, Any] | None:
    """The current request's state dict, or None outside a request."""
    request = current_request()
    return None if request is None else request.state


# --- statement counting ----------------------------------------------------------------------


class QueryCounter:
    """Counts the statements run inside a `count_queries` block (and keeps them, with their
    parameters, when asked: `bench/explain.py` explains them). An enclosing block sees the
    inner one's statements too."""

    __slots__ = ("count", "keep_statements", "parameters", "parent", "statements")

    def __init__(self, *, keep_statements: bool = False, parent: QueryCounter | None = None):
        self.count = 0
        self.keep_statements = keep_statements
        self.statements: list[str] = []
        self.parameters: list[Sequence[Any]] = []
        self.parent = parent

    def record(self, statement: str, parameters: Sequence[Any] = ()) -> None:
        counter: QueryCounter | None = self
        while counter is not None:
            counter.count += 1
            if counter.keep_statements:
                counter.statements.append(statement)
                counter.parameters.append(parameters)
            counter = counter.parent


_block: contextvars.ContextVar[QueryCounter | None] = contextvars.ContextVar(
    "tenantry_query_counter", default=None
)


@contextmanager
def count_queries(*, keep_statements: bool = False) -> Iterator[QueryCounter]:
    counter = QueryCounter(keep_statements=keep_statements, parent=_block.get())
    token = _block.set(counter)
    try:
        yield counter
    finally:
        _block.reset(token)


def record_statement(statement: str, parameters: Sequence[Any] = ()) -> None:
    """One statement ran (`$n` parameters): counted for the current request and the
    enclosing blocks."""
    request = current_request()
    if request is not None:
        request.count += 1
    block = _block.get()
    if block is not None:
        block.record(statement, parameters)
