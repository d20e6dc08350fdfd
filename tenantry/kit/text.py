"""Text the database can store: how every request schema, and every string path or query
parameter, declares a string.

PostgreSQL cannot store every Python string. A `text` or `jsonb` value cannot hold NUL
(U+0000), and asyncpg encodes strings to UTF-8, which has no encoding for a surrogate code
point (U+D800-U+DFFF: JSON's `"\\ud800"` escape decodes to one when it is not half of a pair).
Either fails in the database, and the request would answer 500. These types refuse both up
front, with a 422 whose `errors` entry names the field.

- `Annotated[str, text(min_length=1, max_length=100)]`: a string with bounds (they appear
  in the OpenAPI schema as minLength/maxLength); `Text` is one without. For parameters, put
  `Path(...)`/`Query(...)` after it: `Annotated[str, text(max_length=64), Path()]`.
- `Email`: pydantic's `EmailStr` with the same check (email-validator already refuses both
  characters; the check pins that, with the same message).
- `JsonObject`: a free-form JSON object (settings): every key and string checked the same
  way, within `JSON_OBJECT_BOUNDS` so that no input makes the server work hard.
- `CheckedKeys`: `Annotated[dict[str, bool], CheckedKeys]` checks a typed dict's keys before
  its values: a value's error names its key, and a problem document cannot carry a surrogate.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from annotated_types import GroupedMetadata
from pydantic import (
    AfterValidator,
    BeforeValidator,
    EmailStr,
    StringConstraints,
    ValidatorFunctionWrapHandler,
    WithJsonSchema,
    WrapValidator,
)
from pydantic_core import PydanticCustomError

_SURROGATE = re.compile("[\ud800-\udfff]")

MAX_JSON_DEPTH = 8
MAX_JSON_ITEMS = 1_000
MAX_JSON_KEY_LENGTH = 128
MAX_JSON_INT = 2**53  # exact in every JSON reader, JavaScript's included

JSON_OBJECT_BOUNDS = (
    f"A JSON object at most {MAX_JSON_DEPTH} levels deep, with at most {MAX_JSON_ITEMS} "
    f"members and array items in all; keys at most {MAX_JSON_KEY_LENGTH} characters; numbers "
    "finite, integers between -2^53 and 2^53; no NUL characters or unpaired surrogates in "
    "keys or strings."
)


def storable(value: str) -> str:
    """`value` unchanged, or a validation error saying why PostgreSQL could not store it."""
    if "\x00" in value:
        raise PydanticCustomError("nul_character", "must not contain NUL characters")
    if not value.isascii() and _SURROGATE.search(value):
        raise PydanticCustomError("unpaired_surrogate", "must not contain unpaired surrogates")
    return value


def _check(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    # A string is checked before pydantic's own validation, so that the error is this one
    # (pydantic refuses a surrogate in a bounded string, but says only "not a valid string");
    # anything else once pydantic has made it a string.
    if isinstance(value, str):
        return handler(storable(value))
    return storable(handler(value))


_STORABLE = WrapValidator(_check)


@dataclass(frozen=True, slots=True)
class _Text(GroupedMetadata):
    constraints: StringConstraints

    def __iter__(self) -> Iterator[object]:
        # The constraints first, so that they are the string's own (`string_too_long`,
        # maxLength in OpenAPI) even inside `| None`; the check wraps them.
        yield from self.constraints
        yield _STORABLE


def text(
    *, min_length: int | None = None, max_length: int | None = None, pattern: str | None = None
) -> GroupedMetadata:
    """The metadata of a storable string: `Annotated[str, text(max_length=100)]`."""
    return _Text(StringConstraints(min_length=min_length, max_length=max_length, pattern=pattern))


Text = Annotated[str, text()]

# An http(s) URL (where it may point is `kit.http.check_url`'s to say).
_URL_PATTERN = r"^[Hh][Tt][Tt][Pp][Ss]?://"
Url = Annotated[
    str,
    text(min_length=8, max_length=2048, pattern=_URL_PATTERN),
    WithJsonSchema(
        {
            "type": "string",
            "format": "uri",
            "pattern": _URL_PATTERN,
            "minLength": 8,
            "maxLength": 2048,
        }
    ),
]

Email = Annotated[EmailStr, _STORABLE]


_Path = tuple[str | int, ...]


def _refuse(path: _Path | None, message: str) -> PydanticCustomError:
    """An error naming where in the object (`$.hours[0].open`): the 422's `loc` stops at the
    field."""
    if path is not None:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)
        message = f"${where}: {message}"
    return PydanticCustomError("json_value", message)


def _check_key(key: object, path: _Path | None) -> None:
    if not isinstance(key, str):
        raise _refuse(path, "a key must be a string")
    if len(key) > MAX_JSON_KEY_LENGTH:
        raise _refuse(path, f"a key must be at most {MAX_JSON_KEY_LENGTH} characters")
    try:
        storable(key)
    except PydanticCustomError as e:
        # The key is not quoted: it is what can be neither stored nor shown.
        raise _refuse(path, "a key " + e.message()) from None


def _check_keys(value: Any) -> Any:
    if isinstance(value, dict):
        for key in value:
            _check_key(key, None)
    return value


CheckedKeys = BeforeValidator(_check_keys)


def _json_object(value: dict[str, Any]) -> dict[str, Any]:
    """Walks the object without recursion, and stops at the first thing out of bounds."""
    items = 0
    stack: list[tuple[Any, int, _Path]] = [(value, 1, ())]
    while stack:
        node, depth, path = stack.pop()
        if isinstance(node, dict | list):
            if depth > MAX_JSON_DEPTH:
                raise _refuse(path, f"at most {MAX_JSON_DEPTH} levels of nesting")
            items += len(node)
            if items > MAX_JSON_ITEMS:
                raise _refuse(None, f"at most {MAX_JSON_ITEMS} members and array items in all")
            if isinstance(node, dict):
                for key, child in node.items():
                    _check_key(key, path)
                    stack.append((child, depth + 1, (*path, key)))
            else:
                stack.extend((child, depth + 1, (*path, i)) for i, child in enumerate(node))
        elif isinstance(node, str):
            try:
                storable(node)
            except PydanticCustomError as e:
                raise _refuse(path, e.message()) from None
        elif isinstance(node, bool) or node is None:
            pass
        elif isinstance(node, int):
            if abs(node) > MAX_JSON_INT:
                raise _refuse(path, "integers must be between -2^53 and 2^53")
        elif isinstance(node, float):
            if not math.isfinite(node):
                raise _refuse(path, "numbers must be finite")
        else:
            raise _refuse(path, "not a JSON value")
    return value


JsonObject = Annotated[dict[str, Any], AfterValidator(_json_object)]
"""A free-form JSON object; document `JSON_OBJECT_BOUNDS` in the field's description."""


@dataclass(frozen=True, slots=True)
class _OneOf(GroupedMetadata):
    what: str
    allowed: tuple[str, ...]

    def __iter__(self) -> Iterator[object]:
        yield from text(min_length=1, max_length=max(map(len, self.allowed), default=1))
        yield AfterValidator(self._check)
        yield WithJsonSchema({"type": "string", "enum": list(self.allowed)})

    def _check(self, value: str) -> str:
        if value not in self.allowed:
            raise PydanticCustomError(
                "not_one_of",
                "not a known {what}; one of: {allowed}",
                {"what": self.what, "allowed": ", ".join(self.allowed)},
            )
        return value


def one_of(what: str, allowed: Iterable[str]) -> GroupedMetadata:
    """A string from a vocabulary that is data, not code (a Literal needs it in the code):
    `Annotated[str, one_of("industry", CATALOG.industries)]`. A value outside it is a 422
    naming the field and listing the allowed values, which OpenAPI shows as an enum."""
    return _OneOf(what, tuple(allowed))


def _distinct(values: list[Any]) -> list[Any]:
    if len(set(values)) != len(values):
        raise PydanticCustomError("not_distinct", "a value is listed twice")
    return values


# A list whose items are each listed once: `Annotated[list[X], Field(...), DISTINCT]`.
DISTINCT = AfterValidator(_distinct)
