"""Numbered pages of a list: the query parameters every list endpoint takes, and the page model
it answers with (`class UserPage(Page[UserOut])`: the subclass keeps its own schema name)."""

from __future__ import annotations

import math
from typing import Annotated, Generic, Self, TypeVar

from fastapi import Query
from pydantic import BaseModel

T = TypeVar("T")

PageNumber = Annotated[int, Query(ge=1, le=100_000, description="1-based page number")]
PerPage = Annotated[int, Query(ge=1, le=100, description="Items per page (at most 100)")]


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    page: int
    per_page: int
    pages: int

    @classmethod
    def of(cls, items: list[T], *, total: int, page: int, per_page: int) -> Self:
        """Page `page` of `total` items, `per_page` a page: at least one page, even empty."""
        pages = max(1, math.ceil(total / per_page))
        return cls(items=items, total=total, page=page, per_page=per_page, pages=pages)


def offset_of(page: int, per_page: int) -> int:
    """How many items come before page `page`."""
    return (page - 1) * per_page
