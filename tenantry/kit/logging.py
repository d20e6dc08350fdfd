"""Structured logs: structlog, JSON in production and readable in development.

Every line, ours (structlog) or a library's (the standard `logging` module: uvicorn, SQLAlchemy,
our error handler), goes through one processor chain that

- stamps the time (UTC, milliseconds) and the level,
- adds the request's `request_id`, and `tenant_id` and `user_id` when the caller is known
  (read from the request's state in the in-flight registry, `kit.context`, by the task serving
  it: lines logged from other tasks or threads a request starts carry no request context),
- masks every field whose name says it holds a secret (password, token, secret, authorization,
  cookie, api key ...), nested dictionaries included,
- renders an exception (`format_exception`, in both formats) as a plain traceback: never a
  frame's local variables (a request's locals hold passwords, keys, the settings' secrets),
  bounded in size, and with database errors cut to their class and primary message (a
  driver's text quotes the row or the parameter that failed).

Nothing here logs headers or query strings, where tokens travel: the access line has the path
only. Lines go to standard output, one per line, looked up at write time so that a test's
capture sees them.
"""

from __future__ import annotations

import logging
import re
import sys
import time
import traceback
from collections.abc import MutableMapping
from types import TracebackType
from typing import Any, TextIO

import orjson
import pydantic_core
import structlog
from sqlalchemy.exc import StatementError
from structlog.typing import EventDict, ExcInfo, Processor, WrappedLogger

from tenantry.config import Settings
from tenantry.kit.context import request_state

REDACTED = "[redacted]"
_SECRET_PARTS = (
    "password",
    "passwd",
    "secret",
    "token",
    "authorization",
    "cookie",
    "api_key",
    "apikey",
    "credential",
    "private_key",
    "verifier",
)

# --- processors ------------------------------------------------------------------------------


def add_request_context(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    state = request_state()
    if state is None:
        return event_dict
    request_id = state.get("request_id")
    if request_id is not None:
        event_dict.setdefault("request_id", request_id)
    claims = state.get("token_claims")
    if claims is not None:
        event_dict.setdefault("tenant_id", str(claims.tid))
        event_dict.setdefault("user_id", str(claims.sub))
    return event_dict


# Field names seen so far and whether they name a secret: the names come from our code, so the
# memo stays small; it is capped all the same.
_secret_names: dict[str, bool] = {}


def _is_secret(name: str) -> bool:
    known = _secret_names.get(name)
    if known is None:
        lowered = name.lower().replace("-", "_")
        known = any(part in lowered for part in _SECRET_PARTS)
        if len(_secret_names) < 4096:
            _secret_names[name] = known
    return known


def _redact_mapping(mapping: MutableMapping[str, Any]) -> None:
    for key, value in mapping.items():
        if isinstance(key, str) and _is_secret(key):
            mapping[key] = REDACTED
        elif isinstance(value, dict):
            mapping[key] = redacted(value)


def redacted(mapping: dict[str, Any]) -> dict[str, Any]:
    """A copy of `mapping` with every secret-named field masked, nested ones included."""
    copy = dict(mapping)
    _redact_mapping(copy)
    return copy


def redact_secrets(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    _redact_mapping(event_dict)
    return event_dict


_second = -1
_second_text = ""


def add_timestamp(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """ISO 8601 UTC with milliseconds; the date part is formatted once a second (structlog's
    TimeStamper formats the whole stamp on every line, a third of a line's cost)."""
    global _second, _second_text
    now = time.time()
    second = int(now)
    if second != _second:
        _second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _second = second
    event_dict["timestamp"] = f"{_second_text}.{int((now - second) * 1000):03d}Z"
    return event_dict


def _json(event_dict: Any, **_: Any) -> str:
    return orjson.dumps(event_dict, default=str).decode()


# --- exceptions ------------------------------------------------------------------------------
#
# Every line carrying an exception (ours, a library's, uvicorn's) renders it here, in both
# formats, in Python's plain traceback layout. Never with local variables: structlog's console
# default, when `rich` is installed, prints every frame's locals (request bodies with
# passwords, the settings' secrets, keys just made), tens of thousands of lines that held the
# event loop for seconds. Bounded: the innermost frames of each exception, a few exceptions of
# a chain, a capped message, a capped whole.

TRACEBACK_FRAMES = 30  # the innermost frames kept of each exception's traceback
TRACEBACK_EXCEPTIONS = 6  # exceptions rendered: a chain's causes and contexts, a group's members
MESSAGE_CHARS = 1000  # of one exception's message
TRACEBACK_CHARS = 16_000  # of the whole; its end, the outermost exception, is what is kept

_CAUSE = "\nThe above exception was the direct cause of the following exception:\n\n"
_CONTEXT = "\nDuring handling of the above exception, another exception occurred:\n\n"
# What a database error wraps (asyncpg's codec errors: "invalid UUID 'hunter2' ...") quotes the
# parameter it could not encode.
_WITHHELD = "[message withheld: raised under a database error, it may quote a value]"
# The driver's own text names the failure in its primary message; the rest (DETAIL: the row's
# key and values; SQLAlchemy's SQL and parameters) is dropped. In the primary message, a quoted
# string is an identifier when a word naming one comes before it (constraint "users_email_key",
# column "email" of relation "users") and a value otherwise (invalid input syntax for type
# uuid: "hunter2"), masked; asyncpg's own "invalid input for query argument $1: 'hunter2' ..."
# quotes the parameter, masked too.
_DB_MODULES = ("asyncpg", "sqlalchemy")
_DRIVER_MODULES = ("asyncpg", "sqlalchemy.dialects", "sqlalchemy.connectors")
_IDENTIFIER_BEFORE = re.compile(
    r"\b(?:constraint|relation|column|table|index|type|schema|database|role|function|procedure"
    r"|sequence|trigger|view|extension|operator|collation|domain|publication|subscription"
    r"|tablespace|policy|rule|cursor|statement|savepoint|channel)\s+$",
    re.IGNORECASE,
)
_QUOTED = re.compile(r'"[^"]*"')
_QUERY_ARGUMENT = re.compile(r"(invalid input for query argument \$\d+):.*", re.DOTALL)


def _type_name(exc_type: type[BaseException]) -> str:
    module = exc_type.__module__
    name = exc_type.__qualname__
    return name if module in ("builtins", "__main__") else f"{module}.{name}"


def _is_db_error(exc: BaseException) -> bool:
    return type(exc).__module__.partition(".")[0] in _DB_MODULES


def _wraps_values(exc: BaseException) -> bool:
    """A driver-level error: what it wraps came from encoding or running a statement."""
    module = type(exc).__module__
    return isinstance(exc, StatementError) or module.startswith(_DRIVER_MODULES)


def _text(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:
        return "[unprintable message]"


def _mask_values(message: str) -> str:
    message = _QUERY_ARGUMENT.sub(r"\1: [value hidden]", message)

    def mask(match: re.Match[str]) -> str:
        named = _IDENTIFIER_BEFORE.search(message, 0, match.start())
        return match[0] if named else '"[hidden]"'

    return _QUOTED.sub(mask, message)


def _db_message(exc: BaseException) -> str:
    if isinstance(exc, StatementError):  # SQLAlchemy's: the driver's error is `orig`
        orig = exc.orig
        if orig is None:
            return _mask_values(_text(exc).partition("\n")[0])
        inner = _db_message(orig) if _is_db_error(orig) else _WITHHELD
        return f"({_type_name(type(orig))}) {inner}"
    first = exc.args[0] if exc.args and isinstance(exc.args[0], str) else _text(exc)
    message = _mask_values(first.partition("\n")[0])
    sqlstate = getattr(exc, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate:
        message += f" [SQLSTATE {sqlstate}]"
    return message


def _message(exc: BaseException, *, withheld: bool) -> str:
    if _is_db_error(exc):
        message = _db_message(exc)
    elif withheld:
        message = _WITHHELD
    elif isinstance(exc, pydantic_core.ValidationError):  # its text quotes the input
        errors = exc.errors(include_url=False, include_context=False, include_input=False)
        where = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in errors[:5]
        )
        message = f"{exc.error_count()} validation error(s) for {exc.title}: {where}"
    else:
        message = _text(exc)
    if len(message) > MESSAGE_CHARS:
        message = f"{message[:MESSAGE_CHARS]}... [{len(message) - MESSAGE_CHARS} more characters]"
    return message


def describe_exception(exc: BaseException) -> str:
    """`Type: message`, safe to log: a database error's message cut to its primary message
    with values masked (no DETAIL, no SQL parameters), a validation error's without the input,
    any message capped at MESSAGE_CHARS."""
    message = _message(exc, withheld=False)
    name = _type_name(type(exc))
    return f"{name}: {message}" if message else name


def _frames(tb: TracebackType | None) -> str:
    depth, walk = 0, tb
    while walk is not None:
        depth += 1
        walk = walk.tb_next
    if not depth:
        return ""
    kept = traceback.StackSummary.extract(
        traceback.walk_tb(tb), limit=-TRACEBACK_FRAMES, capture_locals=False
    )
    text = "Traceback (most recent call last):\n"
    if depth > TRACEBACK_FRAMES:
        text += f"  [{depth - TRACEBACK_FRAMES} outer frames left out]\n"
    return text + "".join(kept.format())


def _render(exc: BaseException, budget: list[int], withheld: bool) -> str:
    """One exception and its causes and contexts, the innermost first (as Python prints
    them); `budget[0]` is how many exceptions may still be rendered."""
    chain: list[tuple[BaseException, str]] = []  # each, and how it links to the one before
    seen: set[int] = set()
    current: BaseException | None = exc
    link = ""
    while current is not None and id(current) not in seen and budget[0] > 0:
        seen.add(id(current))
        budget[0] -= 1
        chain.append((current, link))
        if current.__cause__ is not None:
            current, link = current.__cause__, _CAUSE
        elif current.__context__ is not None and not current.__suppress_context__:
            current, link = current.__context__, _CONTEXT
        else:
            current = None
    parts: list[str] = []
    if current is not None and id(current) not in seen:
        parts.append("[earlier exceptions of the chain left out]\n")
    # Messages are decided from the outside in: below a driver's error, withheld.
    hidden: list[bool] = []
    for item, _ in chain:
        hidden.append(withheld)
        withheld = withheld or _wraps_values(item)
    for index in range(len(chain) - 1, -1, -1):
        item, link = chain[index]
        withheld = hidden[index]
        message = _message(item, withheld=withheld)
        name = _type_name(type(item))
        parts.append(_frames(item.__traceback__))
        parts.append(f"{name}: {message}\n" if message else f"{name}\n")
        if isinstance(item, BaseExceptionGroup):
            withheld = withheld or _wraps_values(item)
            members = item.exceptions
            for number, member in enumerate(members, 1):
                if budget[0] <= 0:
                    parts.append(f"  [{len(members) - number + 1} more member(s) left out]\n")
                    break
                inner = _render(member, budget, withheld)
                parts.append(f"  +-- member {number} of {len(members)}:\n")
                parts.extend(f"  | {line}\n" for line in inner.splitlines())
        parts.append(link)
    return "".join(parts)


def format_exception(exc_info: ExcInfo) -> str:
    """An exception as a plain traceback (see above): structlog's `ExceptionRenderer` (JSON)
    and ConsoleRenderer's `exception_formatter` use it."""
    exc = exc_info[1]
    if exc is None:
        return ""
    text = _render(exc, [TRACEBACK_EXCEPTIONS], False).rstrip("\n")
    if len(text) > TRACEBACK_CHARS:
        text = text[-TRACEBACK_CHARS:]
        text = text[text.find("\n") + 1 :]
        text = f"[traceback cut to its last {len(text)} characters]\n{text}"
    return text


def _console_exception(sio: TextIO, exc_info: ExcInfo) -> None:
    """ConsoleRenderer's `exception_formatter`: the same plain text (its default, with `rich`
    installed, prints every frame's local variables)."""
    sio.write("\n" + format_exception(exc_info))


# --- output ----------------------------------------------------------------------------------


class _StdoutLogger:
    """structlog's PrintLogger, but resolving `sys.stdout` at each write; named, so that
    `add_logger_name` treats our lines like the standard library's."""

    def __init__(self, name: str) -> None:
        self.name = name

    def msg(self, message: str) -> None:
        stream = sys.stdout
        stream.write(message + "\n")
        stream.flush()

    log = debug = info = warn = warning = error = critical = exception = fatal = msg


class _StdoutLoggerFactory:
    def __init__(self) -> None:
        self._loggers: dict[str, _StdoutLogger] = {}

    def __call__(self, *args: Any) -> _StdoutLogger:
        name = str(args[0]) if args else "tenantry"
        logger = self._loggers.get(name)
        if logger is None:
            logger = self._loggers[name] = _StdoutLogger(name)
        return logger


class _StdoutHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The standard library's side: resolves `sys.stdout` at each record, like ours."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    @property
    def stream(self) -> Any:
        return sys.stdout

    @stream.setter
    def stream(self, _: Any) -> None:
        pass


_HANDLER_NAME = "tenantry"
# One list object, refilled in place by `configure_logging`: structlog's cached loggers hold a
# reference to it, so reconfiguring (a test switching to JSON) reaches loggers already in use.
_processors: list[Processor] = []


def configure_logging(settings: Settings) -> None:
    """Set up structlog and route the standard library's records through the same chain.

    Idempotent: each worker process calls it from `create_app`; calling it again replaces our
    handler and configuration.
    """
    level = logging.getLevelName(settings.log_level)
    shared: list[Processor] = [
        structlog.stdlib.add_logger_name,
        structlog.processors.add_log_level,
        add_timestamp,
        add_request_context,
        redact_secrets,
    ]
    # An exception as `format_exception`'s text in both formats: never rich's traceback with
    # every frame's local variables (ConsoleRenderer's default when rich is installed), never
    # an unbounded one. ConsoleRenderer formats `exc_info` itself, through the formatter given.
    tail: list[Processor]
    if settings.json_logs:
        tail = [
            structlog.processors.ExceptionRenderer(format_exception),
            structlog.processors.JSONRenderer(serializer=_json),
        ]
    else:
        tail = [
            structlog.dev.ConsoleRenderer(
                colors=sys.stdout.isatty(), exception_formatter=_console_exception
            )
        ]

    _fast_json[0] = settings.json_logs and level <= logging.INFO
    _processors[:] = [*shared, *tail]
    structlog.configure(
        processors=_processors,
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=_StdoutLoggerFactory(),
        cache_logger_on_first_use=True,
    )

    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *tail],
    )
    handler = _StdoutHandler()
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # uvicorn's own loggers: through ours, not theirs (`tenantry serve` passes log_config=None;
    # another launcher may have installed uvicorn's handlers). Its access log is replaced by
    # ours (the edge middleware, `kit.middleware`), so it stays off.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    logging.getLogger("uvicorn.access").disabled = True
    # httpx logs every outbound request at INFO with its full URL, query string included.
    logging.getLogger("httpx").setLevel(logging.WARNING)


# The access line, once per request, is the one line hot enough to skip structlog's chain in
# JSON mode: measured +46 µs a request through the chain, against a few here. It renders
# exactly what the chain would (same fields, timestamp, request context); its fields are fixed
# by the edge middleware and hold no secret, so nothing needs masking.
_fast_json = [False]


def access_line(event: str, fields: dict[str, Any]) -> bool:
    """Write one access line in JSON straight away; False when not in JSON mode (then the
    caller logs it through structlog)."""
    if not _fast_json[0]:
        return False
    fields["event"] = event
    fields["logger"] = "tenantry.http"
    fields["level"] = "info"
    add_timestamp(None, "", fields)
    add_request_context(None, "", fields)
    stream = sys.stdout
    stream.write(orjson.dumps(fields).decode() + "\n")
    stream.flush()
    return True


def get_logger(name: str) -> Any:
    """A structlog logger whose lines carry `logger=name` (assembled lazily, at first use)."""
    return structlog.get_logger(name)
