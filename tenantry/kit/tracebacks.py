"""Exceptions rendered for the logs: Python's plain traceback layout, never a frame's local
variables, bounded, and with database errors cut to what they may safely say.

Every line carrying an exception (ours, a library's, uvicorn's) renders it here, in both log
formats (`kit.logging`). structlog's console default, when `rich` is installed, prints every
frame's locals (request bodies with passwords, the settings' secrets, keys just made): tens of
thousands of lines that held the event loop for seconds. Bounded: the innermost frames of each
exception, a few exceptions of a chain, a capped message, a capped whole. Written here
because no library renders a traceback both without locals and with these bounds.
"""

from __future__ import annotations

import re
import traceback
from types import TracebackType

import pydantic_core
from sqlalchemy.exc import StatementError
from structlog.typing import ExcInfo

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
