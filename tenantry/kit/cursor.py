"""Lists paged by cursor: `?limit=&cursor=`, answered with `items` and an opaque
`next_cursor` (null on the last page).

Rows are keyed by time-ordered ids (UUIDv7, `kit.ids`), so "newest first" is `ORDER BY id
DESC` and the next page is `id < the last id seen`: one index range scan whatever the depth,
and stable under inserts (a row added meanwhile is newer than every cursor, so a walk never
sees a row twice or skips one). The cursor is that id, base64url-encoded with a version
prefix: opaque to clients, and a bad one is a 422 naming `cursor`. Written by hand: it is a
dozen lines, and the libraries for it bring their own query builders.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from typing import Annotated, Any, Generic, Self, TypeVar

from asyncpg import Record
from fastapi import Query
from pydantic import BaseModel, Field

from tenantry.kit.errors import Invalid
from tenantry.kit.text import text

T = TypeVar("T")

_PREFIX = b"v1:"

Limit = Annotated[int, Query(ge=1, le=100, description="Items per page (at most 100)")]
Cursor = Annotated[
    str | None,
    Query(description="`next_cursor` of the page before; unset for the first page"),
    text(min_length=1, max_length=64),
]


def encode(last_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(_PREFIX + last_id.bytes).decode().rstrip("=")


def decode(cursor: str | None) -> uuid.UUID | None:
    """The id a cursor stands for (None for the first page), or a 422 naming `cursor`."""
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError):
        raw = b""
    if not raw.startswith(_PREFIX) or len(raw) != len(_PREFIX) + 16:
        raise Invalid(("query", "cursor"), "not a cursor this list gave out", "bad_cursor")
    return uuid.UUID(bytes=raw[len(_PREFIX) :])


class CursorPage(BaseModel, Generic[T]):
    """`class CustomerList(CursorPage[CustomerOut])`: the subclass keeps its schema name."""

    items: list[T]
    limit: int
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null: last")

    @classmethod
    def of(cls, rows: list[Any], items: list[T], *, limit: int) -> Self:
        """From up to `limit + 1` rows read (the extra one says there is more), newest first,
        each with an `id` (an entity's attribute or a lean row's column); `items` are the first
        `limit` of them as answered."""
        if len(rows) <= limit:
            return cls(items=items[:limit], limit=limit, next_cursor=None)
        last = rows[limit - 1]
        last_id = last["id"] if isinstance(last, Record) else last.id
        return cls(items=items[:limit], limit=limit, next_cursor=encode(last_id))
